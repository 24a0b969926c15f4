"""``alpha-assets``: run flow_data, flow_production or the whole demo through Dagster from a terminal."""

from __future__ import annotations

import warnings

# Dagster's beta and preview notices (raised while the definitions are imported) concern us as authors, not a
# user at the terminal; set before the imports below so they are silenced from the start.
warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview).*")
warnings.filterwarnings("ignore", message=r".*is superseded.*")

import argparse
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import sqlalchemy.exc
import yaml
from dagster import DagsterInstance, DagsterInvalidConfigError
from tqdm import tqdm

from alpha_assets.definitions import build_definitions
from alpha_assets.defs import names
from alpha_assets.defs.alpha.gate import require_gate_passed
from alpha_assets.defs.chain import ChainSettings, export_writer
from alpha_assets.defs.dataops.resources import SourceKind
from alpha_assets.defs.resources import bind_data_dir, rebind_data_dir, served_data_dir
from alpha_assets.errors import (
    AlphaAssetsError,
    DiskFullError,
    ExitCode,
    GateFailedError,
    NoPortfolioError,
    UnusableEnvironmentError,
)
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.lakehouse.keys import new_run_id, validate_run_id
from alpha_assets.lakehouse.locks import exclusive_lock
from alpha_assets.lakehouse.paths import LakehousePaths, RunDataFile, resolve_data_dir
from alpha_assets.lakehouse.storage import DataPath, check_writable, is_object_store
from alpha_assets.orchestration.runner import (
    FLOW_DATA_LINKS,
    FlowFailedError,
    ensure_production_partition,
    link_materializations,
    run_flow_data,
    run_link,
)
from alpha_assets.validation import parse_utc_clock

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


def dagster_instance() -> DagsterInstance:
    """The persistent instance: ``$DAGSTER_HOME``, else ``./.dagster_home`` (created with the project's settings).

    Raises
    ------
    UnusableEnvironmentError
        When the home is not a writable folder (a file, a read-only file system, no permission), its
        ``dagster.yaml`` is not valid YAML or not a valid instance configuration, or its storage cannot be opened.
    DiskFullError
        When the file system holding the home is full.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    if home.exists() and not home.is_dir():
        raise UnusableEnvironmentError(f"DAGSTER_HOME {home} is a file, not a folder: point it at a folder")
    try:
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "dagster.yaml").exists() and PROJECT_DAGSTER_YAML.exists():
            shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
        # Dagster creates the sqlite tables of a fresh home without a lock: two commands starting together both
        # run CREATE TABLE and one fails ("table ... already exists"). Opening under a lock on the home
        # serialises it; taking the lock also proves the home writable before any run starts.
        with exclusive_lock(home / "instance.lock"):
            return DagsterInstance.get()
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(str(home)) from err
        raise UnusableEnvironmentError(f"DAGSTER_HOME {home} cannot be used: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise UnusableEnvironmentError(f"{home / 'dagster.yaml'} is not valid YAML{line}: {problem}") from err
    except DagsterInvalidConfigError as err:
        first = err.errors[0].message.split(". Expected", 1)[0] if err.errors else str(err)
        raise UnusableEnvironmentError(
            f"{home / 'dagster.yaml'} is not a valid Dagster instance configuration: {' '.join(first.split())}"
        ) from err
    except sqlalchemy.exc.OperationalError as err:
        raise UnusableEnvironmentError(f"DAGSTER_HOME {home}: its storage cannot be opened ({err.orig})") from err


class _Parser(argparse.ArgumentParser):
    """argparse with each error on one line and the exit code of bad input."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` on one line and exit with :attr:`ExitCode.BAD_INPUT`."""
        self.exit(ExitCode.BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _clock(text: str) -> str:
    """``--clock``: an ISO-8601 time with its zone, as a UTC ISO string."""
    try:
        return parse_utc_clock(text, "--clock").isoformat()
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default $ALPHA_ASSETS_DATA_DIR or ./data)")
    parser.add_argument("--manifest", help="manifest JSON (default: the packaged configs/manifest.json)")
    parser.add_argument("--profile", help="manifest profile (default: the manifest's default_profile)")


def _source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=[k.value for k in SourceKind], default=SourceKind.SIMULATED.value)
    parser.add_argument(
        "--exchange",
        help="ccxt exchange id (with --source ccxt, default binance); with --source files, keep only the files "
        "of this exchange prefix (default: every exchange of the folder)",
    )
    parser.add_argument("--base-url", help="override the exchange's API URLs (with --source ccxt)")
    parser.add_argument("--files-dir", help="folder of <EXCHANGE>_<SYMBOL>_1d.csv|parquet (with --source files)")
    parser.add_argument(
        "--clock", type=_clock, help="ISO-8601 time with its zone to treat as now, e.g. 2026-11-25T12:00:00Z"
    )
    parser.add_argument("--run-id", help="RUN_ID (default: from the UTC time)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``alpha-assets``."""
    parser = _Parser(prog="alpha-assets", description=__doc__, epilog=EXIT_CODES_EPILOG)
    commands = parser.add_subparsers(dest="command", required=True)
    flow_data = commands.add_parser("flow-data", help="discover, ingest, repair, audit and backfill features")
    _common(flow_data)
    _source_args(flow_data)
    production = commands.add_parser("flow-production", help="target weights of one RUN_ID, offline")
    _common(production)
    production.add_argument("--run-id", required=True)
    production.add_argument("--refreeze", action="store_true", help="re-read the lakehouse for this RUN_ID")
    demo = commands.add_parser("demo", help="flow-data on the simulated exchange, then flow-production")
    _common(demo)
    _source_args(demo)
    data_dir = commands.add_parser("data-dir", help="the one data directory this DAGSTER_HOME serves")
    data_dir.add_argument(
        "--rebind", metavar="DIR", help="serve DIR from now on, after moving the data directory there"
    )
    return parser


def data_dir_command(args: argparse.Namespace, instance: DagsterInstance) -> str:
    """``data-dir``: the line saying which data directory the instance serves, after ``--rebind`` if given.

    Raises
    ------
    ValueError
        When ``--rebind`` names a folder that does not exist: the data is moved first, then the instance.
    """
    if args.rebind:
        folder = resolve_data_dir(args.rebind)
        if not folder.is_dir():
            raise ValueError(f"--rebind {folder}: no such folder; move the data directory there first")
        rebind_data_dir(instance, folder)
    served = served_data_dir(instance)
    home = instance.root_directory
    return f"DAGSTER_HOME {home} serves " + (served or "no data directory yet (its first run records one)")


def chain_run_config(args: argparse.Namespace, data_dir: DataPath) -> dict[str, Any]:
    """The run config every run of the command gets: ``{"resources": {...}}`` from the arguments.

    Passed as run config rather than bound into the definitions, so each run records the settings it ran with
    (the UI shows them) and a daemon that continues the chain (the export sensor) carries them on.
    """
    resources: dict[str, Any] = {"lakehouse": {"config": {"data_dir": str(data_dir)}}}
    manifest = {name: value for name, value in (("path", args.manifest), ("profile", args.profile)) if value}
    if manifest:
        resources["manifest"] = {"config": manifest}
    if hasattr(args, "source"):
        files = args.source == SourceKind.FILES.value
        source = {
            "source": SourceKind(args.source).name,  # Dagster config takes an enum by its name
            # --exchange names the ccxt exchange, or with the files source the one exchange prefix to keep.
            "exchange": None if files else args.exchange,
            "files_exchange": args.exchange.upper() if files and args.exchange else None,
            "base_url": args.base_url,
            "files_dir": args.files_dir,
            "clock": args.clock,
        }
        resources["market_source"] = {"config": {k: v for k, v in source.items() if v is not None}}
    return {"resources": resources}


def writable_data_dir(data_dir: str | None, instance: DagsterInstance) -> DataPath:
    """The data directory (``--data-dir``, else ``$ALPHA_ASSETS_DATA_DIR``, else ``./data``), created and writable.

    It must be the one ``instance`` serves; a fresh instance records it (``bind_data_dir``) once it proved
    writable. A bucket prefix (``s3://bucket/prefix``) is probed with one object put and deleted.

    Raises
    ------
    DataDirMismatchError
        When the instance serves another data directory: checked before anything is created.
    UnusableEnvironmentError
        When it cannot be created or written (a file in the way, a read-only file system, no permission; a
        missing bucket, refused credentials, an endpoint that does not answer).
    DiskFullError
        When its file system has no room left for even a probe file.
    """
    folder = resolve_data_dir(data_dir)
    bind_data_dir(instance, folder, record=False)
    if is_object_store(folder):
        check_writable(folder)
        bind_data_dir(instance, folder)
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(str(folder)) from err
        raise UnusableEnvironmentError(f"data directory {folder} cannot be written: {err.strerror or err}") from err
    bind_data_dir(instance, folder)
    return folder


@dataclass(frozen=True)
class FlowDataOutcome:
    """What ``flow-data`` did: its RUN_ID and the symbols that failed, each with its reason."""

    run_id: str
    failures: dict[str, str]


def flow_data(args: argparse.Namespace, instance: DagsterInstance) -> FlowDataOutcome:
    """Run the three links of flow_data; print the RUN_ID and what was ingested, repaired and rejected."""
    now = parse_utc_clock(args.clock) if args.clock else pd.Timestamp.now(tz="UTC")
    run_id = validate_run_id(args.run_id) if args.run_id else new_run_id(now.to_pydatetime())
    data_dir = writable_data_dir(args.data_dir, instance)
    paths = LakehousePaths(data_dir)
    run_config = chain_run_config(args, data_dir)
    with tqdm(total=FLOW_DATA_LINKS, desc=f"flow_data {run_id}", unit="link", file=sys.stdout) as bar:

        def advance(stage: str) -> None:
            # Called as each link starts: the previous one has finished.
            bar.update(0 if bar.postfix is None else 1)
            bar.set_postfix_str(stage.split("] ", 1)[-1][:60])

        links = run_flow_data(build_definitions(), instance, paths, run_id, progress=advance, run_config=run_config)
        bar.update(1)
    ingests = link_materializations(links, "ohlcv")
    requests = sum(ingest.get("requests") or 0 for ingest in ingests)
    symbols = sum(ingest.get("symbols") or 0 for ingest in ingests)
    validated = read_json(paths.candidates_validated_file(run_id))
    print(f"\nRUN_ID {run_id}")
    print(
        f"  symbols ingested: {symbols}, new bars: {sum(ingest.get('new_bars') or 0 for ingest in ingests)}, "
        f"requests per symbol: {round(requests / max(symbols, 1), 3)}"
    )
    failures: dict[str, str] = {}
    for stage, asset in (("ingest", "ohlcv"), ("compute features", "features_matrix")):
        parts = link_materializations(links, asset)
        stage_failures = {key: reason for part in parts for key, reason in (part.get("failures") or {}).items()}
        print(f"  failed to {stage}: {len(stage_failures) or 'none'}")
        for key, reason in sorted(stage_failures.items()):
            print(f"    {key}: {reason}")
            failures.setdefault(key, reason)
    short = {key: history for part in ingests for key, history in (part.get("short_history") or {}).items()}
    print(f"  short history: {len(short) or 'none'}")
    for key, history in sorted(short.items()):
        print(
            f"    {key}: bars from {history['first_bar'][:10]}, {history['short_by_days']} days after the requested "
            f"{history['requested_start'][:10]} ({history['reason']})"
        )
    skipped = {
        entry["name"]: entry["reason"]
        for asset in ("candidates", "ohlcv")
        for metadata in link_materializations(links, asset)
        for entry in metadata.get("skipped_files") or []
    }
    if skipped:
        print(f"  files skipped: {len(skipped)}")
        for name, reason in sorted(skipped.items()):
            print(f"    {name}: {reason}")
    print(f"  validated: {len(validated['symbols'])}, rejected: {len(validated['rejected'])}")
    for key, rejection in sorted(validated["rejected"].items()):
        print(f"    {key}: {rejection['verdict']} - {'; '.join(rejection['reasons'])}")
    print(f"  export: {paths.export_dir(run_id)}")
    return FlowDataOutcome(run_id=run_id, failures=failures)


def flow_production(args: argparse.Namespace, instance: DagsterInstance, run_id: str) -> DataPath:
    """Run flow_production for ``run_id`` and return the path of portfolio_flattened.json.

    Without ``--manifest`` / ``--profile`` the run takes the manifest settings its chain ran with on this
    instance (the run that wrote its validated export), else the manifest's default profile.

    Raises
    ------
    GateFailedError
        When the RUN_ID's foundation gate failed, naming the failed checks and what they saw.
    """
    run_id = validate_run_id(run_id)
    data_dir = writable_data_dir(args.data_dir, instance)
    paths = LakehousePaths(data_dir)
    ensure_production_partition(instance, paths, run_id)
    run_config = chain_run_config(argparse.Namespace(manifest=args.manifest, profile=args.profile), data_dir)
    writer = export_writer(instance, run_id)
    chain = ChainSettings.of_run(writer, run_id) if writer else ChainSettings({}, {names.RUN_ID_TAG: run_id})
    chain_manifest = chain.run_config.get("resources", {}).get("manifest")
    if "manifest" not in run_config["resources"] and chain_manifest:
        run_config["resources"]["manifest"] = chain_manifest
    run_config["ops"] = {"returns_matrix": {"config": {"refreeze": bool(getattr(args, "refreeze", False))}}}
    print(f"flow_production for RUN_ID {run_id}")
    try:
        run_link(
            build_definitions(),
            instance,
            names.PRODUCTION_JOB,
            partition_key=run_id,
            run_config=run_config,
            tags=chain.tags,
        )
    except FlowFailedError as err:
        if err.error_class in _GATE_ERRORS:
            # The verdict names each failed check and what it saw: a better line than the step's error.
            require_gate_passed(paths, run_id)
        raise
    return paths.run_data_file(run_id, RunDataFile.PORTFOLIO)


def print_portfolio(path: DataPath) -> dict[str, str]:
    """Each profile's weights as a table, then where the files are; return the failed profiles' reasons."""
    document = read_json(path)
    failed = {}
    for profile, body in sorted(document["profiles"].items()):
        report = body["report"]
        print(
            f"\n{profile}: {report['status']}"
            + (f" ({report['reason']})" if report.get("reason") else f" via {report.get('solver')}")
        )
        if body["status"] != "optimal":
            failed[profile] = body.get("reason") or report.get("reason") or body["status"]
        rows = sorted(body["rows"], key=lambda r: -r["Weight"])
        for row in rows:
            if row["Direction"] != "FLAT":
                print(
                    f"  {row['Symbol']:<22} {row['Direction']:<5} {row['Weight']:8.4f}  cluster {row['Cluster_ID']}"
                    f"  {row['Sector']}"
                )
    print(f"\nportfolio: {path}\nrun folder: {path.parent.parent}")
    if len(failed) == len(document["profiles"]):
        by_reason: dict[str, list[str]] = {}
        for name, reason in sorted(failed.items()):
            by_reason.setdefault(reason, []).append(name)
        raise NoPortfolioError(
            f"every optimisation profile failed for RUN_ID {document['metadata']['run_id']}, no weights: "
            + "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())
        )
    return failed


def _partial_message(run_id: str, failures: dict[str, str]) -> str:
    shown = sorted(failures)[:_SYMBOLS_SHOWN]
    more = f" and {len(failures) - len(shown)} more" if len(failures) > len(shown) else ""
    noun = "symbol" if len(failures) == 1 else "symbols"
    return f"RUN_ID {run_id} finished, but {len(failures)} {noun} failed (reasons above): {', '.join(shown)}{more}"


def _run(args: argparse.Namespace) -> ExitCode:
    instance = dagster_instance()
    if args.command == "data-dir":
        print(data_dir_command(args, instance))
        return ExitCode.OK
    if args.command == "flow-production":
        print_portfolio(flow_production(args, instance, args.run_id))
        return ExitCode.OK
    outcome = flow_data(args, instance)
    if args.command == "demo":
        print_portfolio(flow_production(args, instance, outcome.run_id))
    if outcome.failures:
        print(f"alpha-assets: error: {_partial_message(outcome.run_id, outcome.failures)}", file=sys.stderr)
        return ExitCode.PARTIAL
    return ExitCode.OK


#: Step errors of a failed foundation gate: a blocking check failed in the run, or a later step refused the RUN_ID.
_GATE_ERRORS = frozenset({"GateFailedError", "DagsterAssetCheckFailedError"})
#: Step errors that come from what the user gave (arguments, manifest, keys, input files).
_BAD_INPUT_ERRORS = frozenset(
    {"ManifestError", "UnsafeKeyError", "LakehouseReadError", "EmptyUniverseError", "DagsterInvalidConfigError"}
)
#: Step errors of the environment, by class, and the errno values of an OSError that is one.
_ENVIRONMENT_ERRORS = frozenset(
    {"DiskFullError", "UnusableEnvironmentError", "DataDirMismatchError", "PermissionError"}
)
_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
_ERRNO_IN_MESSAGE = re.compile(r"\[Errno (\d+)\]")
#: Symbols named in the one-line message of a partial flow (all of them are printed above it).
_SYMBOLS_SHOWN = 10
EXIT_CODES_EPILOG = "exit codes: " + ", ".join(f"{code.value} {code.name}" for code in ExitCode) + " (see the README)"


def exit_code_of(err: BaseException) -> ExitCode:
    """The exit code for an error that ended a command (the README's table)."""
    if isinstance(err, GateFailedError):
        return ExitCode.GATE_FAILED
    if isinstance(err, NoPortfolioError):
        return ExitCode.NO_PORTFOLIO
    if isinstance(err, DiskFullError | UnusableEnvironmentError):
        return ExitCode.ENVIRONMENT
    if isinstance(err, FlowFailedError):
        found = _ERRNO_IN_MESSAGE.search(err.error_message)
        if err.error_class in _GATE_ERRORS:
            return ExitCode.GATE_FAILED
        if err.error_class in _ENVIRONMENT_ERRORS or (found and int(found.group(1)) in _ENVIRONMENT_ERRNOS):
            return ExitCode.ENVIRONMENT
        return ExitCode.BAD_INPUT if err.error_class in _BAD_INPUT_ERRORS else ExitCode.FAILED
    if isinstance(err, OSError) and err.errno in _ENVIRONMENT_ERRNOS:
        return ExitCode.ENVIRONMENT
    if isinstance(err, sqlalchemy.exc.OperationalError) and "disk is full" in str(err.orig):
        return ExitCode.ENVIRONMENT
    if isinstance(err, AlphaAssetsError | ValueError):
        return ExitCode.BAD_INPUT
    return ExitCode.FAILED


def _one_line(err: BaseException) -> str:
    if isinstance(err, sqlalchemy.exc.OperationalError):
        # SQLAlchemy appends the statement and a link; the driver's message is what a person can act on.
        text = f"the Dagster instance's storage failed: {err.orig}"
    elif isinstance(err, AlphaAssetsError | ValueError):
        text = str(err)
    else:
        text = f"{type(err).__name__}: {err}"
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alpha-assets`` command: its exit code is one of :class:`ExitCode`.

    Every failure ends in one line on stderr, ``alpha-assets: error: ...``, and the code of the README's
    table; the whole error of a failed run stays in its Dagster logs (the UI shows them).
    """
    args = build_parser().parse_args(argv)
    try:
        return int(_run(args))
    except Exception as err:  # noqa: BLE001 - the command's contract: one line and a documented code, no traceback.
        print(f"alpha-assets: error: {_one_line(err)}", file=sys.stderr)
        return int(exit_code_of(err))


if __name__ == "__main__":
    sys.exit(main())
