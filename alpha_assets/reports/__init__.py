"""Plots and the per-run report: PNG bytes and Markdown/HTML text built from a run's documents (no I/O)."""
