"""The manifest sections the DataOps cycle owns, each with its parameter class (registered here only)."""

from __future__ import annotations

from alpha_assets.dataops.audit.engine import AuditParams
from alpha_assets.sources.params import DiscoveryParams, IngestionParams, MarketParams, SourceParams

#: Section name -> parameter class, in the order of the manifest reference.
DATAOPS_SECTIONS: dict[str, type] = {
    "source": SourceParams,
    "discovery": DiscoveryParams,
    "ingestion": IngestionParams,
    "audit": AuditParams,
    "markets": MarketParams,
}
