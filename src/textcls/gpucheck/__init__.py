"""The one-command GPU check (``make gpu-check``): outside the DAG, no stage imports it (see run.py)."""
