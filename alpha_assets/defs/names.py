"""Asset keys, check names, job names and tags shared by both cycles: the names a user sees in the UI."""

from __future__ import annotations

from dagster import AssetKey

# DataOps (group "dataops", the flow_data cycle)
CANDIDATES = AssetKey("candidates")
OHLCV = AssetKey("ohlcv")
SYMBOLS = AssetKey("symbols")
CANDIDATES_VALIDATED = AssetKey("candidates_validated")
FEATURES_MATRIX = AssetKey("features_matrix")

# Alpha (group "alpha", the flow_production cycle)
RETURNS_MATRIX = AssetKey("returns_matrix")
SELECTION = AssetKey("selection")
PORTFOLIO_FLATTENED = AssetKey("portfolio_flattened")

DATAOPS_GROUP = "dataops"
ALPHA_GROUP = "alpha"

# Audit checks on ohlcv (severity WARN: a bad symbol is filtered out by candidates_validated, not a stop).
OHLCV_INGEST_SUCCEEDED = "ohlcv_ingest_succeeded"
OHLCV_SCHEMA_IS_VALID = "ohlcv_schema_is_valid"
OHLCV_PRICES_ARE_SANE = "ohlcv_prices_are_sane"
OHLCV_HAS_NO_UNREPAIRED_GAPS = "ohlcv_has_no_unrepaired_gaps"
OHLCV_IS_FRESH = "ohlcv_is_fresh"
OHLCV_IS_NOT_TOXIC = "ohlcv_is_not_toxic"

# Checks on features_matrix.
FEATURES_HAVE_NO_INF = "features_matrix_has_no_inf"
FEATURES_COVER_LAST_BAR = "features_matrix_covers_last_bar"
FEATURES_ARE_POINT_IN_TIME = "features_matrix_is_point_in_time"

# The foundation gate on returns_matrix (blocking, severity ERROR).
GATE_NO_NAN = "returns_matrix_has_no_nan"
GATE_MAX_ABS_RETURN = "returns_matrix_max_abs_return_below_limit"
GATE_INDEX_UTC_INCREASING = "returns_matrix_index_is_utc_increasing"
GATE_DENSITY = "returns_matrix_is_dense_enough"
GATE_FEATURES_PRESENT = "features_present_at_as_of"
# A warning on returns_matrix (severity WARN, not blocking): trimming dropped a symbol for a toxic daily return.
RETURNS_DROPPED_NO_TOXIC_SYMBOL = "returns_matrix_dropped_no_toxic_symbol"
# On selection and portfolio_flattened (blocking, severity ERROR): the RUN_ID's latest materialisation still
# stands; it fails when a later freeze of the RUN_ID failed the gate and withdrew its files.
SELECTION_NOT_WITHDRAWN = "selection_is_not_withdrawn"
PORTFOLIO_NOT_WITHDRAWN = "portfolio_flattened_is_not_withdrawn"

# Jobs: flow_data is a chain of these three links; flow_production is one run.
DISCOVERY_JOB = "flow_data_discovery"
INGEST_JOB = "flow_data_ingest"
VALIDATION_JOB = "flow_data_validation"
PRODUCTION_JOB = "flow_production"

#: Tag that ties every run of a chain to its RUN_ID.
RUN_ID_TAG = "alpha_assets/run_id"
#: Tag naming the chain a run belongs to: the Dagster run id of the chain's discovery.
CHAIN_TAG = "alpha_assets/chain"
#: Tag ``i/n`` of a symbol link's runs: the link covers its universe in n contiguous partition ranges.
PART_TAG = "alpha_assets/part"
