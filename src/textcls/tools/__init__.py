"""Tooling outside the DAG: experiment workflows and their analysis."""
