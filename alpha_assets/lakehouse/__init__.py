"""The lakehouse file contract: keys, paths, schemas and atomic parquet I/O (no Dagster, no network)."""
