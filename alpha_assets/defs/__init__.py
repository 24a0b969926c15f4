"""Dagster wiring only: assets, checks, partitions, sensors, resources and jobs of both cycles."""
