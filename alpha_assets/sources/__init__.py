"""Market-data sources behind one interface; the only package that talks to exchanges (DataOps only)."""
