"""Where models come from (hub, local folders, PyPI packages) and loading them safely."""
