"""The lakehouse, storage only: keys, paths, schemas, parquet and JSON I/O, atomic writes, locks, the stores."""
