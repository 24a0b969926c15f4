"""Resources shared by both cycles: where the data lives, which manifest profile, and the offline guard."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy.exc
from dagster import ConfigurableResource, DagsterInstance, InitResourceContext
from dagster._core.storage.runs.base import RunStorage
from dagster._core.storage.runs.schema import KeyValueStoreTable
from dagster._core.storage.runs.sql_run_storage import SqlRunStorage
from pydantic import Field, PrivateAttr

from alpha_assets import netguard
from alpha_assets.alpha.pipeline import ALPHA_SECTIONS
from alpha_assets.defs.dataops.sections import DATAOPS_SECTIONS
from alpha_assets.errors import DataDirMismatchError
from alpha_assets.lakehouse.paths import DATA_DIR_ENV, LakehousePaths, resolve_data_dir
from alpha_assets.lakehouse.storage import object_store_host_patterns
from alpha_assets.manifest import DEFAULT_MANIFEST, ResolvedProfile, load_profile

#: Every section a manifest may hold, with its parameter class: the DataOps cycle's and the Alpha cycle's.
MANIFEST_SECTIONS: dict[str, type] = {**DATAOPS_SECTIONS, **ALPHA_SECTIONS}
#: Key of the instance's key-value store (the table Dagster's daemons keep their cursors in) naming the one data
#: directory the instance serves.
DATA_DIR_KEY = "alpha_assets/data_dir"


def bind_data_dir(instance: DagsterInstance, data_dir: str | os.PathLike[str], *, record: bool = True) -> None:
    """The data directory ``instance`` serves: ``data_dir``, recorded on first use; any other one is refused.

    The instance's ``symbols`` and ``runs`` partitions, its materialisations and check results describe the
    files of one data directory. A second directory on the same instance would show the first one's history
    as its own and mix both universes in the partitions, so it is refused before anything is written to it.

    Parameters
    ----------
    instance : DagsterInstance
        The instance a run records itself on (SQLite under ``$DAGSTER_HOME``, or Postgres).
    data_dir : str or PathLike
        The run's data directory as :func:`resolve_data_dir` gives it (absolute, symbolic links followed).
    record : bool, default True
        Record ``data_dir`` when the instance serves none yet; False only checks (a caller that creates the
        directory first, and records it once it proved writable).

    Raises
    ------
    DataDirMismatchError
        When the instance already serves another data directory.
    """
    wanted = str(data_dir)
    served = served_data_dir(instance)
    if served is None and record:
        _record_first(instance.run_storage, wanted)
        served = served_data_dir(instance)
    if served is not None and served != wanted:
        raise DataDirMismatchError(
            f"data directory {wanted} refused: the Dagster instance of DAGSTER_HOME {instance.root_directory} serves "
            f"{served}, recorded by its first run; use that data directory (--data-dir, ${DATA_DIR_ENV} or the "
            f"lakehouse resource's data_dir), another DAGSTER_HOME for {wanted}, or `alpha-assets data-dir "
            f"--rebind` if you moved the data there"
        )


def served_data_dir(instance: DagsterInstance) -> str | None:
    """The data directory ``instance`` serves, None before its first run."""
    return instance.run_storage.get_cursor_values({DATA_DIR_KEY}).get(DATA_DIR_KEY)


def rebind_data_dir(instance: DagsterInstance, data_dir: str | os.PathLike[str]) -> None:
    """Serve ``data_dir`` from now on: the data directory was moved there, with the history the instance records."""
    instance.run_storage.set_cursor_values({DATA_DIR_KEY: str(data_dir)})


def _record_first(storage: RunStorage, data_dir: str) -> None:
    if not isinstance(storage, SqlRunStorage):
        storage.set_cursor_values({DATA_DIR_KEY: data_dir})
        return
    # Dagster's set_cursor_values replaces a value; a plain insert fails on the key's unique index, so of two
    # first runs at once (two terminals, two run workers) exactly one records its directory.
    try:
        with storage.connect() as conn:
            conn.execute(KeyValueStoreTable.insert().values(key=DATA_DIR_KEY, value=data_dir))
    except sqlalchemy.exc.IntegrityError:
        pass


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

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Refuse a run whose data directory is not the one its instance serves, before any step writes.

        Sensors only read, so only runs bind the instance (see :func:`bind_data_dir`).
        """
        if context.run is not None and context.instance is not None:
            bind_data_dir(context.instance, resolve_data_dir(self.data_dir))


class ManifestResource(ConfigurableResource):
    """The manifest file and the profile a run uses; set per run through the run config."""

    path: str | None = Field(default=None, description="Manifest JSON. Empty: the packaged configs/manifest.json.")
    profile: str | None = Field(default=None, description="Profile name. Empty: the manifest's defaults.")

    def resolve(self, sections: Mapping[str, type]) -> ResolvedProfile:
        """Validate the sections the caller owns and return the resolved profile.

        Any other section of the manifest must be one of :data:`MANIFEST_SECTIONS`.
        """
        path = Path(self.path) if self.path else DEFAULT_MANIFEST
        return load_profile(path, self.profile, sections=sections, known=MANIFEST_SECTIONS)


class OfflineGuardResource(ConfigurableResource):
    """Refuses non-loopback connections for the whole step of every asset that requires it.

    Each run process sets it up for its steps and tears it down afterwards, so the Alpha cycle
    cannot reach the network even through a library that opens sockets on its own. The one host it lets through
    is the S3 endpoint (``AWS_ENDPOINT_URL``'s host, else AWS's S3 host names), where a lakehouse in a bucket is.
    """

    enabled: bool = Field(default=True, description="Turn the guard off only to debug; the tests keep it on.")
    _allowed_hosts: tuple[str, ...] = PrivateAttr(default=())

    def setup_for_execution(self, context: InitResourceContext) -> None:  # noqa: D102
        if self.enabled:
            self._allowed_hosts = object_store_host_patterns()
            netguard.install(allowed_hosts=self._allowed_hosts)

    def teardown_after_execution(self, context: InitResourceContext) -> None:  # noqa: D102
        if self.enabled:
            netguard.uninstall(allowed_hosts=self._allowed_hosts)
