"""Resources shared by both cycles: where the data lives, which manifest profile, and the offline guard."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from alpha_assets import netguard
from alpha_assets.lakehouse.paths import LakehousePaths, resolve_data_dir
from alpha_assets.manifest import DEFAULT_MANIFEST, ResolvedProfile, load_profile


class LakehouseResource(ConfigurableResource):
    """The data directory; every path under it comes from :class:`LakehousePaths`."""

    data_dir: str | None = Field(
        default=None,
        description="Data directory. Empty: $ALPHA_ASSETS_DATA_DIR at run time, else ./data.",
    )

    @property
    def paths(self) -> LakehousePaths:
        """Paths under the resolved data directory (the environment is read here, not at import)."""
        return LakehousePaths(resolve_data_dir(self.data_dir))


class ManifestResource(ConfigurableResource):
    """The manifest file and the profile a run uses; set per run through the run config."""

    path: str | None = Field(default=None, description="Manifest JSON. Empty: the packaged configs/manifest.json.")
    profile: str | None = Field(default=None, description="Profile name. Empty: the manifest's defaults.")

    def resolve(self, sections: Mapping[str, type]) -> ResolvedProfile:
        """Validate the sections the caller owns and return the resolved profile."""
        return load_profile(Path(self.path) if self.path else DEFAULT_MANIFEST, self.profile, sections=sections)


class OfflineGuardResource(ConfigurableResource):
    """Refuses non-loopback connections for the whole step of every asset that requires it.

    Each step process sets it up (multiprocess executor) and tears it down afterwards, so the Alpha cycle
    cannot reach the network even through a library that opens sockets on its own.
    """

    enabled: bool = Field(default=True, description="Turn the guard off only to debug; the tests keep it on.")

    def setup_for_execution(self, context: InitResourceContext) -> None:  # noqa: D102
        if self.enabled:
            netguard.install()

    def teardown_after_execution(self, context: InitResourceContext) -> None:  # noqa: D102
        if self.enabled:
            netguard.uninstall()
