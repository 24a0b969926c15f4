"""``alpha-assets``: run flow_data, flow_production or the whole demo through Dagster from a terminal."""

from __future__ import annotations

import warnings

# Dagster's beta notices (raised while the definitions are imported) concern us as authors, not a user at the
# terminal; set before the imports below so they are silenced from the start.
warnings.filterwarnings("ignore", message=r".*is currently in beta.*")
warnings.filterwarnings("ignore", message=r".*is superseded.*")

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import DagsterInstance
from tqdm import tqdm

from alpha_assets.definitions import build_definitions
from alpha_assets.defs import keys
from alpha_assets.defs.chain import ChainSettings, export_writer
from alpha_assets.defs.dataops.resources import SourceKind
from alpha_assets.defs.runner import (
    FLOW_DATA_LINKS,
    ensure_production_partition,
    link_materializations,
    run_flow_data,
    run_link,
)
from alpha_assets.errors import AlphaAssetsError
from alpha_assets.lakehouse.keys import new_run_id, validate_run_id
from alpha_assets.lakehouse.parquet import exclusive_lock, read_json
from alpha_assets.lakehouse.paths import LakehousePaths, resolve_data_dir

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


def dagster_instance() -> DagsterInstance:
    """The persistent instance: ``$DAGSTER_HOME``, else ``./.dagster_home`` (created with the project's settings)."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and PROJECT_DAGSTER_YAML.exists():
        shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    # Dagster creates the sqlite tables of a fresh home without a lock: two commands starting together both
    # run CREATE TABLE and one fails ("table ... already exists"). Opening under a lock on the home serialises it.
    with exclusive_lock(home / "instance.lock"):
        return DagsterInstance.get()


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default $ALPHA_ASSETS_DATA_DIR or ./data)")
    parser.add_argument("--manifest", help="manifest JSON (default: the packaged configs/manifest.json)")
    parser.add_argument("--profile", help="manifest profile (default: the manifest's default_profile)")


def _source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=[k.value for k in SourceKind], default=SourceKind.SIMULATED.value)
    parser.add_argument("--exchange", default="binance", help="ccxt exchange id (with --source ccxt)")
    parser.add_argument("--base-url", help="override the exchange's API URLs (with --source ccxt)")
    parser.add_argument("--files-dir", help="folder of <EXCHANGE>_<SYMBOL>_1d.csv|parquet (with --source files)")
    parser.add_argument("--clock", help="ISO-8601 UTC time to treat as now (reproducible runs)")
    parser.add_argument("--run-id", help="RUN_ID (default: from the UTC time)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``alpha-assets``."""
    parser = argparse.ArgumentParser(prog="alpha-assets", description=__doc__)
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
    return parser


def chain_run_config(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """The run config every run of the command gets: ``{"resources": {...}}`` from the arguments.

    Passed as run config rather than bound into the definitions, so each run records the settings it ran with
    (the UI shows them) and a daemon that continues the chain (the export sensor) carries them on.
    """
    resources: dict[str, Any] = {"lakehouse": {"config": {"data_dir": str(data_dir)}}}
    manifest = {name: value for name, value in (("path", args.manifest), ("profile", args.profile)) if value}
    if manifest:
        resources["manifest"] = {"config": manifest}
    if hasattr(args, "source"):
        source = {
            "source": SourceKind(args.source).name,  # Dagster config takes an enum by its name
            "exchange": args.exchange,
            "base_url": args.base_url,
            "files_dir": args.files_dir,
            "clock": args.clock,
        }
        resources["market_source"] = {"config": {k: v for k, v in source.items() if v is not None}}
    return {"resources": resources}


def flow_data(args: argparse.Namespace, instance: DagsterInstance) -> str:
    """Run the three links of flow_data; print the RUN_ID and what was ingested, repaired and rejected."""
    data_dir = resolve_data_dir(args.data_dir)
    paths = LakehousePaths(data_dir)
    now = pd.Timestamp(args.clock).tz_convert("UTC") if args.clock else pd.Timestamp.now(tz="UTC")
    run_id = validate_run_id(args.run_id) if args.run_id else new_run_id(now.to_pydatetime())
    run_config = chain_run_config(args, data_dir)
    with tqdm(total=FLOW_DATA_LINKS, desc=f"flow_data {run_id}", unit="link", file=sys.stdout) as bar:

        def advance(stage: str) -> None:
            # Called as each link starts: the previous one has finished.
            bar.update(0 if bar.postfix is None else 1)
            bar.set_postfix_str(stage.split("] ", 1)[-1][:60])

        links = run_flow_data(build_definitions(), instance, paths, run_id, progress=advance, run_config=run_config)
        bar.update(1)
    ingests = link_materializations(links, "ohlcv")
    failed = sorted(key for ingest in ingests for key in ingest.get("failed_symbols") or [])
    requests = sum(ingest.get("requests") or 0 for ingest in ingests)
    symbols = sum(ingest.get("symbols") or 0 for ingest in ingests)
    validated = read_json(paths.candidates_validated_file(run_id))
    print(f"\nRUN_ID {run_id}")
    print(
        f"  symbols ingested: {symbols}, new bars: {sum(ingest.get('new_bars') or 0 for ingest in ingests)}, "
        f"requests per symbol: {round(requests / max(symbols, 1), 3)}"
    )
    print(f"  failed to ingest: {', '.join(failed) or 'none'}")
    print(f"  validated: {len(validated['symbols'])}, rejected: {len(validated['rejected'])}")
    for key, rejection in sorted(validated["rejected"].items()):
        print(f"    {key}: {rejection['verdict']} - {'; '.join(rejection['reasons'])}")
    print(f"  export: {paths.export_dir(run_id)}")
    return run_id


def flow_production(args: argparse.Namespace, instance: DagsterInstance, run_id: str) -> Path:
    """Run flow_production for ``run_id`` and return the path of portfolio_flattened.json.

    Without ``--manifest`` / ``--profile`` the run takes the manifest settings its chain ran with on this
    instance (the run that wrote its validated export), else the manifest's default profile.
    """
    data_dir = resolve_data_dir(args.data_dir)
    paths = LakehousePaths(data_dir)
    run_id = validate_run_id(run_id)
    ensure_production_partition(instance, paths, run_id)
    run_config = chain_run_config(argparse.Namespace(manifest=args.manifest, profile=args.profile), data_dir)
    writer = export_writer(instance, run_id)
    chain = ChainSettings.of_run(writer, run_id) if writer else ChainSettings({}, {keys.RUN_ID_TAG: run_id})
    chain_manifest = chain.run_config.get("resources", {}).get("manifest")
    if "manifest" not in run_config["resources"] and chain_manifest:
        run_config["resources"]["manifest"] = chain_manifest
    run_config["ops"] = {"returns_matrix": {"config": {"refreeze": bool(getattr(args, "refreeze", False))}}}
    print(f"flow_production for RUN_ID {run_id}")
    run_link(
        build_definitions(),
        instance,
        keys.PRODUCTION_JOB,
        partition_key=run_id,
        run_config=run_config,
        tags=chain.tags,
    )
    return paths.run_data_file(run_id, "portfolio_flattened.json")


def print_portfolio(path: Path) -> None:
    """Each profile's weights as a table, then where the files are."""
    document = read_json(path)
    for profile, body in sorted(document["profiles"].items()):
        report = body["report"]
        print(
            f"\n{profile}: {report['status']}"
            + (f" ({report['reason']})" if report.get("reason") else f" via {report.get('solver')}")
        )
        rows = sorted(body["rows"], key=lambda r: -r["Weight"])
        for row in rows:
            if row["Direction"] != "FLAT":
                print(
                    f"  {row['Symbol']:<22} {row['Direction']:<5} {row['Weight']:8.4f}  cluster {row['Cluster_ID']}"
                    f"  {row['Sector']}"
                )
    print(f"\nportfolio: {path}\nrun folder: {path.parent.parent}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alpha-assets`` command."""
    args = build_parser().parse_args(argv)
    try:
        instance = dagster_instance()
        if args.command == "flow-data":
            flow_data(args, instance)
        elif args.command == "flow-production":
            print_portfolio(flow_production(args, instance, args.run_id))
        else:
            run_id = flow_data(args, instance)
            print_portfolio(flow_production(args, instance, run_id))
    except (AlphaAssetsError, ValueError) as err:
        print(f"alpha-assets: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
