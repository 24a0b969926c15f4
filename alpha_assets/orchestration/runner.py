"""Drive the cycles' jobs on a Dagster instance from a terminal: the chain of flow_data, then flow_production.

Each link is a real run recorded on the instance (visible in the UI), executed in this process so a terminal
run pays no per-step process start-up. The links follow the rules of ``defs/chain.py``: each symbol link
covers exactly the RUN_ID's universe, and every link carries the same run config and tags, so the runs look
in the UI as if the daemon had chained them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetKey,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    Field,
    InitLoggerContext,
    logger,
)
from dagster._utils.error import SerializableErrorInfo

from alpha_assets.defs import names
from alpha_assets.defs.chain import candidate_symbols, symbol_link_tags
from alpha_assets.errors import AlphaAssetsError
from alpha_assets.lakehouse.keys import validate_run_id
from alpha_assets.lakehouse.paths import LakehousePaths, RunDataFile

Progress = Callable[[str], None]
#: Links of flow_data, for progress bars.
FLOW_DATA_LINKS = 3


class FlowFailedError(AlphaAssetsError):
    """A link of a flow failed; the message names the job, the run and the first error (on one line).

    Parameters
    ----------
    job_name : str
        The job of the failed run.
    dagster_run_id : str
        The Dagster run, whose logs in the UI hold the whole error.
    step_key : str or None
        The first failed step, None when no step failed (e.g. the run could not start).
    error_class : str or None
        The class name of that step's own error, Dagster's wrappers removed (``GateFailedError``,
        ``DiskFullError``, ``DagsterAssetCheckFailedError`` for a blocking check ...).
    error_message : str
        That error's message.
    """

    def __init__(
        self, job_name: str, dagster_run_id: str, step_key: str | None, error_class: str | None, error_message: str
    ) -> None:
        where = f"{step_key}: " if step_key else ""
        message = " ".join(error_message.split())
        super().__init__(f"{job_name} failed (Dagster run {dagster_run_id}): {where}{message}")
        self.job_name = job_name
        self.dagster_run_id = dagster_run_id
        self.step_key = step_key
        self.error_class = error_class
        self.error_message = error_message


class UnknownRunIdError(AlphaAssetsError, ValueError):
    """A RUN_ID with neither an export nor a frozen run: nothing to produce, and no partition is added."""


@dataclass(frozen=True)
class LinkResult:
    """One finished run of a chain."""

    job_name: str
    dagster_run_id: str
    materializations: dict[str, dict[str, Any]]


@logger(
    {
        "log_level": Field(str, is_required=False, default_value="INFO", description="The logger's threshold."),
        "name": Field(str, is_required=False, default_value="dagster", description="The logger's name."),
    },
    description="The runs' log lines on standard output, each message cut to its first line, for a terminal.",
)
def terminal_logger(init_context: InitLoggerContext) -> logging.Logger:
    """The runs' log lines on standard output, each message cut to its first line.

    A failed step's message carries its whole stack trace: at a terminal the command prints the error once, on
    one line of standard error, and the trace stays in the run's logs (the UI shows them).
    """
    config = init_context.logger_config
    console = logging.Logger(config["name"], level=config["log_level"].upper())
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    console.addHandler(handler)
    console.addFilter(_first_line_only)
    return console


def _first_line_only(record: logging.LogRecord) -> bool:
    record.msg, record.args = record.getMessage().split("\n", 1)[0], None
    return True


def ensure_run_partition(instance: DagsterInstance, run_id: str) -> None:
    """Add ``run_id`` to the ``runs`` partitions if it is not there yet."""
    if not instance.has_dynamic_partition("runs", validate_run_id(run_id)):
        instance.add_dynamic_partitions("runs", [run_id])


def ensure_production_partition(instance: DagsterInstance, paths: LakehousePaths, run_id: str) -> None:
    """Add ``run_id`` to ``runs`` for flow_production, only if it has an export or a frozen run to produce.

    Raises
    ------
    UnknownRunIdError
        When ``export/<RUN_ID>/candidates_validated.json`` and the run folder are both missing (a mistyped
        RUN_ID): refused input never becomes a partition.
    """
    validated, frozen = paths.candidates_validated_file(run_id), paths.run_data_file(run_id, RunDataFile.SNAPSHOT)
    if not validated.is_file() and not frozen.is_file():
        raise UnknownRunIdError(
            f"RUN_ID {run_id} has no validated export ({validated}) and no frozen run ({frozen}); "
            f"run `alpha-assets flow-data --run-id {run_id}` first, or check the RUN_ID and --data-dir"
        )
    ensure_run_partition(instance, run_id)


def run_link(
    defs: Definitions,
    instance: DagsterInstance,
    job_name: str,
    *,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
    asset_selection: Sequence[AssetKey] | None = None,
) -> LinkResult:
    """Execute one job of the code location in this process and record it on ``instance``.

    Raises
    ------
    FlowFailedError
        When the run does not succeed, with the first step error.
    """
    # INFO on the console: the assets' one line per stage, not Dagster's step-by-step DEBUG events.
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    job = defs.resolve_job_def(job_name).with_logger_defs({"console": terminal_logger})
    result: ExecuteInProcessResult = job.execute_in_process(
        instance=instance,
        partition_key=partition_key,
        tags=dict(tags or {}),
        run_config=config,
        asset_selection=asset_selection,
        raise_on_error=False,
    )
    if not result.success:
        raise FlowFailedError(job_name, result.run_id, *_first_error(result))
    materializations = {
        event.asset_key.to_user_string(): {
            k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }
    return LinkResult(job_name=job_name, dagster_run_id=result.run_id, materializations=materializations)


def run_flow_data(
    defs: Definitions,
    instance: DagsterInstance,
    paths: LakehousePaths,
    run_id: str,
    progress: Progress = print,
    *,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> list[LinkResult]:
    """Discovery, ingestion (with features) and validation for ``run_id``, each after the previous one.

    Parameters
    ----------
    run_config : Mapping, optional
        ``{"resources": {...}}`` every link runs with (and records, so the UI shows it).
    tags : Mapping, optional
        The user's tags, put on every link with the RUN_ID and chain tags.

    Returns
    -------
    list of LinkResult
        Discovery, one ingest run per contiguous range of the universe (usually one), validation.
    """
    run_id = validate_run_id(run_id)
    created = not instance.has_dynamic_partition("runs", run_id)
    ensure_run_partition(instance, run_id)
    chain_tags = {**(tags or {}), names.RUN_ID_TAG: run_id}
    progress(f"[1/3] discovery for RUN_ID {run_id}")
    try:
        discovery = run_link(
            defs, instance, names.DISCOVERY_JOB, partition_key=run_id, tags=chain_tags, run_config=run_config
        )
    except FlowFailedError:
        if created and not paths.candidates_file(run_id).exists():
            # Refused input (a bad source, files folder or manifest) leaves no RUN_ID behind.
            instance.delete_dynamic_partition("runs", run_id)
        raise
    chain_tags[names.CHAIN_TAG] = discovery.dagster_run_id
    links = [discovery]
    symbols = candidate_symbols(paths, run_id)
    parts = symbol_link_tags(instance, symbols, chain_tags)
    progress(f"[2/3] ingest, repair, audit and features of {len(symbols)} candidates ({len(parts)} run(s))")
    links += [run_link(defs, instance, names.INGEST_JOB, tags=part, run_config=run_config) for part in parts]
    progress("[3/3] validation of the candidates")
    links.append(
        run_link(defs, instance, names.VALIDATION_JOB, partition_key=run_id, tags=chain_tags, run_config=run_config)
    )
    return links


def link_materializations(links: Sequence[LinkResult], asset: str) -> list[dict[str, Any]]:
    """The metadata of every materialisation of ``asset`` in ``links``, in order (one per ingest part)."""
    return [link.materializations[asset] for link in links if asset in link.materializations]


def _first_error(result: ExecuteInProcessResult) -> tuple[str | None, str | None, str]:
    """The first failure (of a step, the resources or the run): step, error class and message (the user code's)."""
    for event in result.all_events:
        error = _error_of(event)
        if error is not None:
            while error.cause is not None and "dagster" in error.cls_name.lower():
                error = error.cause
            # "alpha_assets.errors.X: text": our messages say what happened without the class's dotted name.
            message = error.message.strip().removeprefix(f"alpha_assets.errors.{error.cls_name}: ")
            return event.step_key, error.cls_name, message
    return None, None, "see the run's logs"


def _error_of(event: DagsterEvent) -> SerializableErrorInfo | None:
    """The error of a failed step, of resources that failed to start (before any step), or of the run."""
    if event.is_step_failure:
        return event.step_failure_data.error
    if event.is_resource_init_failure:
        return event.engine_event_data.error
    if event.event_type == DagsterEventType.RUN_FAILURE:
        return event.job_failure_data.error
    return None
