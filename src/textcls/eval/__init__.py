"""Test-set metrics and statistics."""
