"""The ``latentpress`` command: one subcommand per flow, plus ledger tools."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import pandas as pd
from rich.console import Console
from rich.table import Table

from latentpress import __version__
from latentpress.config import DEFAULT_BATCH_SIZE, DEFAULT_SHARD_SIZE, DEFAULT_VAE, DEVICE_ENV, MODELS_ENV

console = Console()
if not console.is_terminal:  # logs and pipes: wide enough for the summary table
    console = Console(width=160)
errors = Console(stderr=True)

SUMMARY_HEADERS = {
    "images": "images",
    "bpp": "bpp",
    "lpips": "LPIPS",
    "dists": "DISTS",
    "psnr": "PSNR dB",
    "ms_ssim": "MS-SSIM",
    "encode_seconds": "enc s",
    "decode_seconds": "dec s",
    "failed": "failed",
}

KEY_HEADERS = {"codec": "codec", "quality": "quality", "shard": "shard", "vae_id": "VAE"}

CODEC_HELP = (
    "codec and quality points as NAME[:PRESET][@Q1,Q2,...], repeatable, e.g. "
    "--codec avif@20,40 --codec latent-q (see `latentpress codecs`)"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.models:
        os.environ[MODELS_ENV] = args.models
    if args.device:
        os.environ[DEVICE_ENV] = args.device
    from latentpress.infra.cluster import apply_quiet_defaults

    apply_quiet_defaults()
    try:
        return args.run(args)
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/red]: rerun the same command to finish the missing work")
        return 130
    except Exception as exc:  # every failure ends with a clear message and status 1
        errors.print(f"[red]error:[/red] {type(exc).__name__}: {exc}")
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentpress", description="Compress photo collections with generative latent codecs."
    )
    parser.add_argument("--version", action="version", version=f"latentpress {__version__}")
    parser.add_argument("--models", help=f"folder of pretrained models (default: ${MODELS_ENV})")
    parser.add_argument("--device", help=f"torch device for models (default: ${DEVICE_ENV}, else cuda if present, else cpu)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    archive = _command(commands, "archive", "ingest, compress and evaluate a collection in one run", run_archive)
    archive.add_argument("source", help="folder or URL of images (local path, s3://bucket/prefix, ...)")
    archive.add_argument("archive", help="archive folder or URL")
    _codec_options(archive, required=True)
    _ledger_option(archive)
    archive.add_argument("--shard-size", type=_positive, default=DEFAULT_SHARD_SIZE, help="images per shard (default %(default)s)")
    _cluster_options(archive)

    ingest = _command(commands, "ingest", "list, validate and identify the images of a collection", run_ingest)
    ingest.add_argument("source", help="folder or URL of images")
    ingest.add_argument("archive", help="archive folder or URL")
    ingest.add_argument("--shard-size", type=_positive, default=DEFAULT_SHARD_SIZE, help="images per shard (default %(default)s)")
    _cluster_options(ingest)

    compress = _command(commands, "compress", "compress an ingested collection", run_compress)
    compress.add_argument("archive", help="archive folder or URL (after `ingest`)")
    _codec_options(compress, required=True)
    _ledger_option(compress)
    _cluster_options(compress)

    evaluate = _command(commands, "evaluate", "decode stored images and record rate and quality", run_evaluate)
    evaluate.add_argument("archive", help="archive folder or URL")
    _ledger_option(evaluate)
    _cluster_options(evaluate)

    restore = _command(commands, "restore", "decode an archive back to PNG images", run_restore)
    restore.add_argument("archive", help="archive folder or URL")
    restore.add_argument("out", help="output folder or URL: <out>/<config-key>/<image-id>.png and restored.csv")
    restore.add_argument("--config", action="append", help="configuration key to restore (repeatable; default: all)")
    restore.add_argument("--vae", help="VAE for latent codecs (default: the one recorded in the archive)")
    _cluster_options(restore)

    codecs = _command(commands, "codecs", "list the available codecs, presets and default quality points", run_codecs)

    report = _command(commands, "report", "write an HTML report of a ledger: rate/quality curves, BD-rates, speed, crops", run_report)
    report.add_argument("ledger", help="ledger folder or URL (an archive's is <archive>/ledger)")
    report.add_argument("out", help="output folder or URL: OUT/index.html and the PNG plots it embeds")
    report.add_argument("--anchor", default="avif", help="curve the BD-rates are measured against, e.g. avif or jpeg:best (default %(default)s)")
    report.add_argument("--archive", help="archive to decode the side-by-side crops from (default: the ledger's parent when the ledger is <archive>/ledger)")
    report.add_argument("--crops", type=int, default=3, help="images shown as side-by-side crops; 0 for none (default %(default)s)")

    ledger = _command(commands, "ledger", "summarise or export a ledger", None)
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    summary = _command(ledger_commands, "summary", "mean rate, quality and speed per group of rows", run_ledger_summary)
    summary.add_argument("ledger", help="ledger folder or URL (an archive's is <archive>/ledger)")
    summary.add_argument("--by", choices=["codec", "quality", "shard", "vae"], default="quality", help="one row per codec, per codec and quality point (default), per shard and codec, or per VAE and codec")
    summary.add_argument("--format", choices=["table", "csv", "json"], default="table", help="a table for people (default), or CSV or JSON records on standard output")
    export = _command(ledger_commands, "export", "write all ledger rows to one file", run_ledger_export)
    export.add_argument("ledger", help="ledger folder or URL")
    export.add_argument("out", help="output file or URL")
    export.add_argument("--format", choices=["csv", "parquet", "json"], default=None, help="default: from OUT's suffix, else csv")
    return parser


def _command(commands, name: str, help_text: str, run: Callable | None) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(run=run)
    return sub


def _codec_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--codec", action="append", required=required, metavar="SPEC", help=CODEC_HELP)
    parser.add_argument("--vae", default=DEFAULT_VAE, help="latent autoencoder: name, folder or hub id (default %(default)s)")
    parser.add_argument("--latents", help="latent store URL (default <archive>/latents)")
    parser.add_argument("--target-bpp", type=_bpp_list, metavar="X[,Y...]", help="encode each codec with rate control (clric) to these bits per pixel, each within 10%%, instead of its default quality points (configuration keys NAME.PRESET.bppX)")


def _bpp_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.1,0.2, got {text!r}") from None
    if not values or not all(0 < v < 64 for v in values):
        raise argparse.ArgumentTypeError(f"bits per pixel must be in (0, 64), got {text!r}")
    return values


def _codec_specs(args: argparse.Namespace) -> list[str]:
    """The --codec values, with --target-bpp points for codecs with rate control."""
    from latentpress.codecs.spec import with_target_bpp

    return with_target_bpp(args.codec, args.target_bpp) if args.target_bpp else args.codec


def _ledger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ledger", help="ledger folder or URL (default <archive>/ledger)")


def _cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dask-address", help="existing Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: a local cluster)")
    parser.add_argument("--workers", type=_positive, help="local cluster workers (default: one per CPU core)")
    parser.add_argument("--batch-size", type=_positive, default=DEFAULT_BATCH_SIZE, help="images per task (default %(default)s)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _cluster(args: argparse.Namespace) -> dict:
    return {"dask_address": args.dask_address, "workers": args.workers, "batch_size": args.batch_size}


def run_archive(args: argparse.Namespace) -> int:
    from latentpress.flows.archive import archive_flow
    from latentpress.flows.compress import parse_specs
    from latentpress.infra.cluster import prefect_api

    args.codec = _codec_specs(args)
    parse_specs(args.codec)  # a bad spec fails before any server or cluster starts
    with prefect_api():
        report = archive_flow(
            args.source,
            args.archive,
            args.codec,
            ledger=args.ledger,
            vae=args.vae,
            latents=args.latents,
            shard_size=args.shard_size,
            **_cluster(args),
        )
    _print_items(report.items)
    _print_compress(report.compress)
    console.print(f"run {report.run_id}: {len(report.rows)} new ledger row(s)")
    from latentpress.infra.archive import ArchiveLayout

    return _summary(args.ledger or ArchiveLayout(args.archive).ledger)


def run_ingest(args: argparse.Namespace) -> int:
    from latentpress.flows.ingest import ingest_flow
    from latentpress.infra.cluster import prefect_api

    with prefect_api():
        items = ingest_flow(
            args.source, args.archive, shard_size=args.shard_size, dask_address=args.dask_address, workers=args.workers
        )
    _print_items(items)
    return 0


def run_compress(args: argparse.Namespace) -> int:
    from latentpress.flows.compress import compress_flow, parse_specs
    from latentpress.infra.cluster import prefect_api

    args.codec = _codec_specs(args)
    parse_specs(args.codec)
    with prefect_api():
        statuses = compress_flow(
            args.archive, args.codec, vae=args.vae, latents=args.latents, ledger=args.ledger, **_cluster(args)
        )
    _print_compress(statuses)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from latentpress.flows.evaluate import evaluate_flow
    from latentpress.infra.archive import ArchiveLayout
    from latentpress.infra.cluster import prefect_api

    with prefect_api():
        rows = evaluate_flow(args.archive, ledger=args.ledger, **_cluster(args))
    console.print(f"{len(rows)} new ledger row(s)")
    return _summary(args.ledger or ArchiveLayout(args.archive).ledger)


def run_restore(args: argparse.Namespace) -> int:
    from latentpress.flows.restore import restore_flow
    from latentpress.infra.cluster import prefect_api

    with prefect_api():
        statuses = restore_flow(args.archive, args.out, configs=args.config, vae=args.vae, **_cluster(args))
    counts = _count(statuses)
    console.print(f"restore: {_format_counts(counts)} -> {args.out}")
    for s in statuses:
        if s["status"] == "failed":
            errors.print(f"[red]failed[/red] {s['config_key']}/{s['image_id']}: {s['error']}")
    return 1 if counts.get("failed") else 0


def run_codecs(args: argparse.Namespace) -> int:
    from latentpress.codecs import CODECS

    table = Table(title="codecs")
    for column in ("name", "domain", "knob", "presets", "default quality points"):
        table.add_column(column)
    for name, cls in sorted(CODECS.items()):
        qualities = ",".join(f"{q:g}" for q in cls.default_qualities)
        table.add_row(name, cls.domain, cls.quality_name, ", ".join(cls.presets), qualities)
    console.print(table)
    return 0


def run_ledger_summary(args: argparse.Namespace) -> int:
    return _summary(args.ledger, args.by, args.format)


def run_report(args: argparse.Namespace) -> int:
    from latentpress.report import write_report

    page = write_report(args.ledger, args.out, anchor=args.anchor, archive=args.archive, crop_images=args.crops)
    console.print(f"report written to {page}")
    return 0


def run_ledger_export(args: argparse.Namespace) -> int:
    from latentpress.infra.ledger import export, read_ledger

    fmt = args.format or {"parquet": "parquet", "json": "json"}.get(args.out.rsplit(".", 1)[-1].lower(), "csv")
    frame = read_ledger(args.ledger)
    export(frame, args.out, fmt)
    console.print(f"exported {len(frame)} row(s) to {args.out} ({fmt})")
    return 0


def _summary(ledger_url: str, by: str = "quality", fmt: str = "table") -> int:
    from latentpress.infra.ledger import SUMMARY_GROUPS, read_ledger, summarize

    frame = read_ledger(ledger_url)
    summary = summarize(frame, by=by)
    if fmt == "csv":
        sys.stdout.write(summary.to_csv(index=False))
        return 0
    if fmt == "json":
        sys.stdout.write(summary.to_json(orient="records", indent=1, double_precision=15) + "\n")
        return 0
    if frame.empty:
        console.print(f"ledger {ledger_url} is empty")
        return 0
    keys = [k for k in SUMMARY_GROUPS[by] if k not in ("preset", "config_key")]
    table = Table(title=f"ledger {ledger_url}")
    for key in keys:
        table.add_column(KEY_HEADERS[key], justify="left" if key in ("codec", "vae_id") else "right")
    for header in SUMMARY_HEADERS.values():
        table.add_column(header, justify="right")
    for row in summary.itertuples(index=False):
        codec = row.codec if row.preset == "default" else f"{row.codec}:{row.preset}"
        cells = [codec if key == "codec" else _quality_cell(row) if key == "quality" else _cell(getattr(row, key))
                 for key in keys]
        table.add_row(*cells, *(_cell(getattr(row, c)) for c in SUMMARY_HEADERS))
    console.print(table)
    return 0


def _quality_cell(row) -> str:
    """The quality knob's value, or the target size (``bpp0.1``) of a rate-controlled configuration."""
    setting = row.config_key.split(".", 2)[-1]
    return setting if setting.startswith("bpp") else _cell(row.quality)


def _cell(value) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.4g}"
    return "-" if value is None or value is pd.NA else str(value)


def _count(statuses: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s["status"]] = counts.get(s["status"], 0) + 1
    return counts


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing to do"


def _print_items(items) -> None:
    good = sum(1 for i in items if i.status == "ok")
    console.print(f"ingest: {good} image(s) ok, {len(items) - good} not archived")
    for item in items:
        if item.status != "ok":
            errors.print(f"[yellow]{item.status}[/yellow] {item.source}: {item.error}")


def _print_compress(statuses: list[dict]) -> None:
    console.print(f"compress: {_format_counts(_count(statuses))}")
    for s in statuses:
        if s["status"] == "failed":
            errors.print(f"[red]failed[/red] {s['config_key']}/{s['image_id']}: {s['error']}")


if __name__ == "__main__":
    sys.exit(main())
