"""The Alpha cycle (flow_production): offline, deterministic, one RUN_ID per partition."""
