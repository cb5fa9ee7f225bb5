"""Reproducible speed benchmarks, run as scripts (``python benchmarks/<name>.py``); not shipped."""
