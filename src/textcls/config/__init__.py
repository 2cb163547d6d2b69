"""Params schema and loading; plugins."""
