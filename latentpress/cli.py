"""The ``latentpress`` command: one subcommand per flow, plus codec and ledger tools.

Every command checks its arguments and environment first (``preflight``): a mistake
is one line on standard error and exit status 2, before any server or cluster
starts. A run exits 1 when any image ended in ``error`` (each reason printed once),
else 0. Tracebacks only with ``--debug``. Importing this module loads neither torch
nor Prefect; the commands import what they use.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from latentpress import __version__
from latentpress.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SHARD_SIZE,
    DEFAULT_VAE,
    DEVICE_ENV,
    LOCAL_MAX_IMAGES,
    MODELS_ENV,
    OUTPUT_FORMATS,
    RESTORE_LAYOUTS,
)
from latentpress.preflight import UsageError

CODEC_HELP = (
    "codec and quality points as NAME[:PRESET][@Q1,Q2,...], repeatable, e.g. "
    "--codec avif@20,40 --codec latent-q (see `latentpress codecs`)"
)
VERIFY_SHOWN = 50
"""Problems `verify` lists by name (the rest are counted)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.models:
        os.environ[MODELS_ENV] = args.models
    if args.device:
        os.environ[DEVICE_ENV] = args.device
    from latentpress.infra.cluster import apply_quiet_defaults
    from latentpress.terminal import errors

    apply_quiet_defaults(debug=args.debug)
    try:
        return args.run(args)
    except UsageError as exc:
        errors.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        return 2
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/red]: rerun the same command to finish the missing work")
        return 130
    except Exception as exc:  # every failure ends with one clear line and status 1
        if args.debug:
            raise
        errors.print(
            f"[red]error:[/red] {type(exc).__name__}: {exc} (--debug shows the traceback)",
            soft_wrap=True,
            highlight=False,
        )
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentpress", description="Compress photo collections with generative latent codecs."
    )
    parser.add_argument("--version", action="version", version=f"latentpress {__version__}")
    parser.add_argument("--models", help=f"folder of pretrained models (default: ${MODELS_ENV})")
    parser.add_argument(
        "--device", help=f"torch device for models (default: ${DEVICE_ENV}, else cuda if present, else cpu)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and the logs of Prefect and Dask")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    archive = _command(commands, "archive", "ingest, compress and evaluate a collection in one run", run_archive)
    archive.add_argument("source", help="folder or URL of images (local path, s3://bucket/prefix, ...)")
    archive.add_argument("archive", help="archive folder or URL")
    _codec_options(archive)
    _ledger_option(archive)
    archive.add_argument(
        "--shard-size", type=_positive, default=DEFAULT_SHARD_SIZE, help="images per shard (default %(default)s)"
    )
    _target_option(archive, search=True)
    _metrics_option(archive)
    _execution_options(archive)

    ingest = _command(commands, "ingest", "list, validate and identify the images of a collection", run_ingest)
    ingest.add_argument("source", help="folder or URL of images")
    ingest.add_argument("archive", help="archive folder or URL")
    ingest.add_argument(
        "--shard-size", type=_positive, default=DEFAULT_SHARD_SIZE, help="images per shard (default %(default)s)"
    )
    _execution_options(ingest)

    train = _command(commands, "train", "train a collection model (glc) on a sample of a collection", run_train)
    train.add_argument("source", help="folder or URL of images")
    train.add_argument("model", help="where to write the model: a URL ending in .lpm")
    train.add_argument("--codec", required=True, metavar="SPEC", help="codec and preset, e.g. glc or glc:fast")
    train.add_argument("--vae", default=DEFAULT_VAE, help="latent autoencoder (default %(default)s)")
    train.add_argument(
        "--sample", type=_positive, help="images to train on, a deterministic sample (default: the preset's)"
    )
    train.add_argument("--steps", type=_positive, help="training steps (default: the preset's)")
    _execution_options(train)

    compress = _command(commands, "compress", "compress an ingested collection", run_compress)
    compress.add_argument("archive", help="archive folder or URL (after `ingest`)")
    _codec_options(compress)
    _ledger_option(compress)
    _execution_options(compress)

    evaluate = _command(commands, "evaluate", "decode stored images and record rate and quality", run_evaluate)
    evaluate.add_argument("archive", help="archive folder or URL")
    _ledger_option(evaluate)
    _metrics_option(evaluate)
    _execution_options(evaluate)

    restore = _command(commands, "restore", "decode an archive back to image files", run_restore)
    restore.add_argument("archive", help="archive folder or URL")
    restore.add_argument("out", help="output folder or URL (with restored.csv: which file holds which image)")
    restore.add_argument("--layout", choices=RESTORE_LAYOUTS, default="original",
                         help="original: the collection's folder tree and file names, from one configuration; "
                              "ids: <out>/<config-key>/<image-id>.<ext> (default %(default)s)")  # fmt: skip
    restore.add_argument(
        "--format",
        dest="fmt",
        choices=tuple(OUTPUT_FORMATS),
        default="png",
        help="file format (png and webp lossless; jpeg and avif at high quality; default %(default)s)",
    )
    restore.add_argument(
        "--config", action="append", help="configuration key to restore (repeatable with --layout ids; default: all)"
    )
    restore.add_argument("--vae", help="VAE for latent codecs (default: the one recorded in the archive)")
    _execution_options(restore)

    verify = _command(
        commands,
        "verify",
        "check an archive's fixity: every object against its recorded SHA-256, "
        "missing and extra objects, the manifest; exit status 1 if anything is wrong",
        run_verify,
    )
    verify.add_argument("archive", help="archive folder or URL")
    verify.add_argument(
        "--decode",
        action="store_true",
        help="also decode every image container to pixels (the quality-floor selection's, if the "
        "archive has one; runs the codecs and the VAE: slow)",
    )
    verify.add_argument(
        "--config", action="append", help="with --decode: a configuration key to decode (repeatable; default: all)"
    )
    verify.add_argument("--vae", help="with --decode: VAE for latent codecs (default: the one recorded in the archive)")

    select = _command(commands, "select", "choose for every image the smallest configuration that meets a quality "
                      "floor; restore follows the choice", run_select)  # fmt: skip
    select.add_argument("archive", help="archive folder or URL")
    _target_option(select, required=True)
    select.add_argument(
        "--config", action="append", help="configuration key to choose among (repeatable; default: all)"
    )
    _ledger_option(select)

    bag = _command(commands, "bag", "export an archive as a BagIt bag (RFC 8493) for a repository's own tools", run_bag)
    bag.add_argument("archive", help="archive folder or URL")
    bag.add_argument("out", help="new bag folder or URL: OUT/data/ is a copy of the archive, checked on the way")

    _command(commands, "codecs", "list the codecs, their presets, quality knobs and default points", run_codecs)

    report = _command(
        commands, "report", "write an HTML report of a ledger: rate/quality curves, BD-rates, speed, crops", run_report
    )
    report.add_argument("ledger", help="ledger folder or URL (an archive's is <archive>/ledger)")
    report.add_argument("out", help="output folder or URL: OUT/index.html and the PNG plots it embeds")
    report.add_argument(
        "--anchor",
        default="avif",
        help="curve the BD-rates are measured against, e.g. avif or jpeg:best (default %(default)s)",
    )
    report.add_argument(
        "--archive",
        help="archive to decode the side-by-side crops from (default: the ledger's parent when the ledger is <archive>/ledger)",
    )
    report.add_argument(
        "--crops", type=int, default=3, help="images shown as side-by-side crops; 0 for none (default %(default)s)"
    )

    ledger = _command(commands, "ledger", "summarise, export or compact a ledger", None)
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    summary = _command(ledger_commands, "summary", "mean rate, quality and speed per group of rows", run_ledger_summary)
    summary.add_argument("ledger", help="ledger folder or URL (an archive's is <archive>/ledger)")
    summary.add_argument(
        "--by",
        choices=["codec", "quality", "shard", "vae"],
        default="quality",
        help="one row per codec, per codec and quality point (default), per shard and codec, or per VAE and codec",
    )
    summary.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="a table for people (default), or CSV or JSON records on standard output",
    )
    export = _command(ledger_commands, "export", "write all ledger rows to one file", run_ledger_export)
    export.add_argument("ledger", help="ledger folder or URL")
    export.add_argument("out", help="output file or URL")
    export.add_argument(
        "--format", choices=["csv", "parquet", "json"], default=None, help="default: from OUT's suffix, else csv"
    )
    compact = _command(ledger_commands, "compact", "merge the ledger's small Parquet parts into few large ones, "
                       "losing and repeating no row even if killed", run_ledger_compact)  # fmt: skip
    compact.add_argument("ledger", help="ledger folder or URL (an archive's is <archive>/ledger)")
    return parser


def _target_option(parser: argparse.ArgumentParser, required: bool = False, search: bool = False) -> None:
    parser.add_argument("--target-quality", type=_quality_target, required=required, metavar="FLOOR",
                        help="a quality floor per image, lpips<=X, dists<=X, psnr>=X or ms_ssim>=X: each image keeps "
                             "the smallest configuration that meets it (the best one where none does)"
                             + (", among the run's quality points and, for each codec whose knob can be searched "
                                "(jpeg, webp, avif, jxl, latent-q, clric), the cheapest setting found for that image "
                                "(configuration NAME.PRESET.lpipsX)" if search else ""))  # fmt: skip
    if search:
        parser.add_argument(
            "--no-search",
            action="store_true",
            help="with --target-quality: choose among the run's quality points only, searching no knob",
        )


def _metrics_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", type=_metric_list, metavar="M[,M...]",
                        help="measure only these of psnr, ms_ssim, lpips, dists (default: all four; LPIPS and DISTS "
                             "cost the most); the ledger's metrics column names those measured")  # fmt: skip


def _metric_list(text: str) -> tuple[str, ...]:
    from latentpress.quality_floors import METRICS

    names = tuple(dict.fromkeys(n.strip().replace("-", "_") for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in METRICS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(METRICS)}, got {text!r}")
    return names


def _quality_target(text: str):
    from latentpress.quality_floors import parse_target

    try:
        return parse_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _command(commands, name: str, help_text: str, run: Callable | None) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(run=run)
    return sub


def _codec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codec", action="append", required=True, metavar="SPEC", help=CODEC_HELP)
    parser.add_argument(
        "--vae", default=DEFAULT_VAE, help="latent autoencoder: name, folder or hub id (default %(default)s)"
    )
    parser.add_argument("--latents", help="latent store URL (default <archive>/latents)")
    parser.add_argument(
        "--target-bpp",
        type=_bpp_list,
        metavar="X[,Y...]",
        help="encode each codec with rate control (clric) to these bits per pixel, each within 10%%, instead of its default quality points (configuration keys NAME.PRESET.bppX)",
    )
    models = parser.add_argument_group(
        "collection models (glc)",
        "A codec that codes against a collection model uses the archive's model; without one, it trains one on "
        "a sample of the collection first, or copies --model into the archive.",
    )
    models.add_argument("--model", metavar="URL", help="a model made by `latentpress train`, copied into the archive")
    models.add_argument(
        "--train-sample", type=_positive, metavar="N", help="images a new model is trained on (default: the preset's)"
    )
    models.add_argument(
        "--train-steps", type=_positive, metavar="N", help="training steps of a new model (default: the preset's)"
    )


def _ledger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ledger", help="ledger folder or URL (default <archive>/ledger)")


def _execution_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group(
        "where the work runs",
        f"Jobs of at most {LOCAL_MAX_IMAGES} images run in this process; larger ones, and any run given "
        "--workers, --dask-address or PREFECT_API_URL, run as Prefect tasks on a Dask cluster.",
    )
    where.add_argument("--local", action="store_true", help="run in this process: no Prefect server, no Dask cluster")
    where.add_argument(
        "--dask-address", help="existing Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: a local cluster)"
    )
    where.add_argument("--workers", type=_positive, help="workers of a local Dask cluster (default: one per CPU core)")
    where.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH_SIZE,
        help="images per task (default %(default)s; a step of one configuration makes at most 1,000 tasks, so large collections get larger batches)",
    )


def _bpp_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.1,0.2, got {text!r}") from None
    if not values or not all(0 < v < 64 for v in values):
        raise argparse.ArgumentTypeError(f"bits per pixel must be in (0, 64), got {text!r}")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# --- checks before any work ---------------------------------------------------------


def _configs(args: argparse.Namespace) -> list:
    """The codec configurations of ``--codec`` (and ``--target-bpp``, and the searches
    of ``--target-quality``); ``UsageError``."""
    from latentpress.codecs import parse_specs
    from latentpress.codecs.spec import with_floor, with_target_bpp

    try:
        args.codec = with_target_bpp(args.codec, args.target_bpp) if args.target_bpp else args.codec
        if getattr(args, "target_quality", None) is not None and not args.no_search:
            args.codec = with_floor(args.codec, args.target_quality)
        return parse_specs(args.codec)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _check_execution(args: argparse.Namespace) -> None:
    from latentpress.preflight import check_dask

    if args.local and (args.dask_address or args.workers):
        raise UsageError("--local runs in this process: leave out --dask-address and --workers")
    if args.dask_address:
        check_dask(args.dask_address)


def _vaes(configs: list, vae: str) -> list[str]:
    """``[vae]`` if any configuration needs latents, else none."""
    from latentpress.codecs import codec_info

    return [vae] if any(codec_info(c.name).domain == "latent" for c in configs) else []


def run_locally(args: argparse.Namespace, images: int) -> bool:
    """Whether to run in this process: ``--local``, or a small job with no cluster or
    Prefect server asked for."""
    if args.local:
        return True
    asked = args.dask_address or args.workers or os.environ.get("PREFECT_API_URL")
    return not asked and images <= LOCAL_MAX_IMAGES


def _cluster(args: argparse.Namespace) -> Any:
    """The Dask cluster ``--dask-address`` and ``--workers`` ask for."""
    from latentpress.run import Cluster

    return Cluster(args.dask_address, args.workers)


def _run(args: argparse.Namespace, images: int, local: Callable[..., Any], flow_name: str, run: Any) -> Any:
    """``local(run)`` in this process, or the Prefect flow ``flow_name`` of ``run`` on Dask."""
    if run_locally(args, images):
        from latentpress.flows.executors import InProcess

        return local(run, InProcess())
    from latentpress.flows import prefect_flows
    from latentpress.flows.run_log import ImagesInError
    from latentpress.infra.cluster import prefect_api

    with prefect_api():
        state = getattr(prefect_flows, flow_name)(run, return_state=True)
        value = state.result(raise_on_failure=False)
    if isinstance(value, ImagesInError):  # the run failed for images in error: its result says which
        return value.value
    if isinstance(value, BaseException):
        raise value
    return value


# --- commands -------------------------------------------------------------------------


def run_archive(args: argparse.Namespace) -> int:
    from latentpress.flows.archive import archive
    from latentpress.models.weights import METRIC_WEIGHTS
    from latentpress.preflight import check_models, check_source, check_target
    from latentpress.run import Run
    from latentpress.terminal import console, print_errors, print_items, print_stages, steps_line

    configs = _configs(args)
    _check_execution(args)
    listing = check_source(args.source)
    check_target(args.archive)
    _log_training()
    if args.ledger:
        check_target(args.ledger, "ledger")
    check_models(_vaes(configs, args.vae), METRIC_WEIGHTS)
    _check_model_options(args, configs)
    started = time.perf_counter()
    run = Run(args.archive, source=args.source, codecs=args.codec, vae=args.vae, ledger=args.ledger,
              latents=args.latents, shard_size=args.shard_size, batch_size=args.batch_size, model=args.model,
              train_sample=args.train_sample, train_steps=args.train_steps, metrics=args.metrics,
              cluster=_cluster(args))  # fmt: skip
    result = _run(args, len(listing), archive, "archive_flow", run)
    print_items(result.items)
    print_stages(result)
    console.print(f"run {result.run_id}: {result.new_rows} new ledger row(s) in {time.perf_counter() - started:.1f} s "
                  f"({steps_line(result.seconds)})", highlight=False, soft_wrap=True)  # fmt: skip
    status = print_errors(result)
    from latentpress.infra.layout import ArchiveLayout

    if args.target_quality is not None:
        _select(args.archive, args.target_quality, args.ledger, [c.key for c in configs])
    _summary(args.ledger or ArchiveLayout(args.archive).ledger)
    return status


def run_select(args: argparse.Namespace) -> int:
    from latentpress.infra.layout import read_manifest
    from latentpress.preflight import check_archive, check_ledger

    check_archive(args.archive)
    if args.ledger:
        check_ledger(args.ledger)
    keys = [c.key for c in _chosen_configs(args, read_manifest(args.archive))]
    _select(args.archive, args.target_quality, args.ledger, keys)
    return 0


SELECTION_SHOWN = 20
"""Images below the floor that `select` lists by name."""


def _select(archive: str, target, ledger: str | None, configs: list[str]) -> None:
    """Choose and store the configuration of every image for ``target``; say what it gives."""
    from latentpress.flows.select import select_configs
    from latentpress.terminal import console

    selection = select_configs(archive, target, ledger, configs)
    below = selection[~selection["meets"]]
    console.print(f"{target}: {len(selection)} image(s), {selection['bytes'].sum() / 1e6:.3f} MB chosen "
                  f"({', '.join(f'{n} {k}' for k, n in selection['config_key'].value_counts().items())}); "
                  f"{len(below)} below the floor", highlight=False)  # fmt: skip
    for row in below.head(SELECTION_SHOWN).itertuples():
        console.print(
            f"  below the floor: {row.image_id} ({row.config_key}, {target.metric} {row.value:.4g})", highlight=False
        )
    if len(below) > SELECTION_SHOWN:
        console.print(f"  ... and {len(below) - SELECTION_SHOWN} more (ARCHIVE/selection.parquet has them all)")


def _check_model_options(args: argparse.Namespace, configs: list) -> None:
    """``--model`` names a readable model of the run's one collection-model codec."""
    from latentpress.codecs import CODECS

    collection = {(c.name, c.preset) for c in configs if CODECS[c.name].collection_model}
    if (args.model or args.train_sample or args.train_steps) and not collection:
        raise UsageError("--model, --train-sample and --train-steps are for codecs with a collection model (glc)")
    if args.model:
        from latentpress.preflight import check_file

        if len(collection) != 1:
            raise UsageError(
                f"--model names one model, but {len(collection)} codec(s) of this run use collection models"
            )
        check_file(args.model, "model")


def run_train(args: argparse.Namespace) -> int:
    from latentpress.codecs import CODECS
    from latentpress.flows.collection_models import train
    from latentpress.infra.model_files import model_id
    from latentpress.preflight import check_models, check_source, check_target
    from latentpress.run import TrainRun
    from latentpress.terminal import console

    _check_execution(args)
    args.codec, args.target_bpp = [args.codec], None
    configs = _configs(args)
    if not CODECS[configs[0].name].collection_model:
        raise UsageError(f"--codec {args.codec[0]}: train takes a codec with a collection model, e.g. glc:fast")
    if not args.model.endswith(".lpm"):
        raise UsageError(f"the model's URL must end in .lpm, got {args.model}")
    listing = check_source(args.source)
    check_target(args.model.rsplit("/", 1)[0] or ".", "model folder")
    check_models([args.vae])
    sample = min(len(listing), args.sample or configs[0].params().sample)
    _log_training()
    run = TrainRun(args.source, args.model, args.codec[0], vae=args.vae, sample=args.sample, steps=args.steps,
                   cluster=_cluster(args))  # fmt: skip
    trained = _run(args, sample, train, "train_flow", run)
    console.print(
        f"model {trained.model_id} ({configs[0].name}:{configs[0].preset}, VAE {model_id(args.vae)}) trained on "
        f"{trained.images} image(s) in {trained.seconds:.0f} s -> {trained.url}",
        highlight=False,
    )
    return 0


def _log_training() -> None:
    """Print training progress (step, loss, estimated rate) on standard error."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("latentpress.train")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def run_ingest(args: argparse.Namespace) -> int:
    from latentpress.flows.ingest import ingest
    from latentpress.flows.results import RunResult, new_run_id
    from latentpress.preflight import check_source, check_target
    from latentpress.run import Run
    from latentpress.terminal import print_errors, print_items

    _check_execution(args)
    listing = check_source(args.source)
    check_target(args.archive)
    run = Run(args.archive, source=args.source, shard_size=args.shard_size, cluster=_cluster(args))
    items = _run(args, len(listing), ingest, "ingest_flow", run)
    print_items(items)
    return print_errors(RunResult(new_run_id(), items=items))


def run_compress(args: argparse.Namespace) -> int:
    from latentpress.flows.compress import compress
    from latentpress.infra.collection import archived_items
    from latentpress.preflight import check_archive, check_models
    from latentpress.run import Run
    from latentpress.terminal import print_errors, print_stages

    configs = _configs(args)
    _check_execution(args)
    check_archive(args.archive, "collection")
    check_models(_vaes(configs, args.vae))
    _check_model_options(args, configs)
    images = len(archived_items(args.archive))
    run = Run(args.archive, codecs=args.codec, vae=args.vae, ledger=args.ledger, latents=args.latents,
              batch_size=args.batch_size, model=args.model, train_sample=args.train_sample,
              train_steps=args.train_steps, cluster=_cluster(args))  # fmt: skip
    result = _run(args, images, compress, "compress_flow", run)
    print_stages(result)
    return print_errors(result)


def run_evaluate(args: argparse.Namespace) -> int:
    from latentpress.flows.evaluate import evaluate
    from latentpress.infra.collection import archived_items
    from latentpress.infra.layout import ArchiveLayout, read_manifest
    from latentpress.models.weights import METRIC_WEIGHTS
    from latentpress.preflight import check_archive, check_models
    from latentpress.run import Run
    from latentpress.terminal import console, print_errors, print_stages

    _check_execution(args)
    check_archive(args.archive)
    manifest = read_manifest(args.archive)
    check_models(_vaes(_manifest_configs(manifest), manifest["vae"]), METRIC_WEIGHTS)
    run = Run(args.archive, ledger=args.ledger, batch_size=args.batch_size, metrics=args.metrics,
              cluster=_cluster(args))  # fmt: skip
    result = _run(args, len(archived_items(args.archive)), evaluate, "evaluate_flow", run)
    print_stages(result)
    console.print(f"run {result.run_id}: {result.new_rows} new ledger row(s)")
    status = print_errors(result)
    _summary(args.ledger or ArchiveLayout(args.archive).ledger)
    return status


def run_restore(args: argparse.Namespace) -> int:
    from latentpress.flows.restore import restore
    from latentpress.infra.collection import archived_items
    from latentpress.infra.layout import ArchiveLayout, read_manifest
    from latentpress.pipeline.selection import read_selection
    from latentpress.preflight import check_archive, check_models, check_target
    from latentpress.run import RestoreRun
    from latentpress.terminal import console, print_errors, print_stages

    _check_execution(args)
    check_archive(args.archive)
    check_archive(args.archive, "collection")
    check_target(args.out, "output folder")
    manifest = read_manifest(args.archive)
    chosen = _chosen_configs(args, manifest)
    selection = None if args.config else read_selection(ArchiveLayout(args.archive).selection)
    if selection is not None:
        console.print(
            f"restoring each image from the configuration chosen for {selection[0]} (--config overrides)",
            highlight=False,
        )
    elif args.layout == "original" and len(chosen) > 1:
        raise UsageError(f"--layout original restores one configuration per image: choose one with --config "
                         f"(archive {args.archive} has: {', '.join(c.key for c in chosen)}), set a quality floor "
                         f"with `latentpress select`, or use --layout ids")  # fmt: skip
    check_models(_vaes(chosen, args.vae or manifest["vae"]))
    per_image = 1 if selection is not None else len(chosen)
    run = RestoreRun(args.archive, args.out, configs=args.config, vae=args.vae, batch_size=args.batch_size,
                     layout=args.layout, fmt=args.fmt, cluster=_cluster(args))  # fmt: skip
    result = _run(args, len(archived_items(args.archive)) * per_image, restore, "restore_flow", run)
    print_stages(result)
    console.print(f"restored to {args.out} (index: restored.csv)")
    return print_errors(result)


def run_verify(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from latentpress.infra.layout import read_manifest
    from latentpress.pipeline.verify import verify
    from latentpress.preflight import check_archive, check_models
    from latentpress.terminal import console, errors

    check_archive(args.archive)
    if args.decode:
        manifest = read_manifest(args.archive)
        check_models(_vaes(_chosen_configs(args, manifest), args.vae or manifest["vae"]))
    result = verify(args.archive, args.decode, args.config, args.vae)
    problems = result.problems()
    for kind, path, why in problems[:VERIFY_SHOWN]:
        errors.print(f"[red]{kind}[/red]: {path}: {why}", soft_wrap=True, highlight=False)
    if len(problems) > VERIFY_SHOWN:
        errors.print(f"... and {len(problems) - VERIFY_SHOWN} more", highlight=False)
    if result.intact:
        console.print(result.summary(args.archive), highlight=False)
        return 0
    errors.print(f"[red]{escape(result.summary(args.archive))}[/red]", highlight=False)
    return 1


def run_bag(args: argparse.Namespace) -> int:
    from latentpress.infra.bag import export_bag
    from latentpress.preflight import check_archive, check_target
    from latentpress.terminal import console

    check_archive(args.archive)
    check_target(args.out, "bag folder")
    summary = export_bag(args.archive, args.out)
    console.print(
        f"bag written to {args.out}: {summary.files} file(s), {summary.payload_bytes} bytes of payload", highlight=False
    )
    return 0


def _chosen_configs(args: argparse.Namespace, manifest: dict) -> list:
    """The archive's configurations named by ``--config`` (all without it); ``UsageError``
    naming any it does not have."""
    configs = _manifest_configs(manifest)
    known = [c.key for c in configs]
    unknown = sorted(set(args.config or []) - set(known))
    if unknown:
        raise UsageError(
            f"archive {args.archive} has no configuration {', '.join(unknown)} (it has: {', '.join(known)})"
        )
    return [c for c in configs if c.key in (args.config or known)]


def _manifest_configs(manifest: dict) -> list:
    from latentpress.codecs import CodecConfig

    return [CodecConfig.from_dict(entry) for entry in manifest["configs"]]


def run_codecs(args: argparse.Namespace) -> int:
    from rich import box
    from rich.table import Table

    from latentpress.codecs import CODECS
    from latentpress.terminal import console

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("codec", "knob", "better", "presets", "default points", "per-image search"):
        table.add_column(column, overflow="fold")
    for name, info in sorted(CODECS.items()):
        points = ",".join(f"{q:g}" for q in info.default_qualities)
        search = f"{info.search.low:g}..{info.search.high:g}" if info.search else "-"
        table.add_row(name, info.knob, info.better, ",".join(info.presets), points, search)
    console.print(table)
    for name, info in sorted(CODECS.items()):
        console.print(f"{name} ({info.domain}): {info.summary}", highlight=False, markup=False)
    console.print(
        "Pick with --codec NAME[:PRESET][@Q1,Q2,...] (rate control: @bppX; the cheapest setting per "
        "image that meets a floor: @lpipsX, @distsX, @psnrX, @ms_ssimX).",
        highlight=False,
        markup=False,
    )
    return 0


def run_report(args: argparse.Namespace) -> int:
    from latentpress.preflight import check_ledger, check_target
    from latentpress.terminal import console

    check_ledger(args.ledger)
    check_target(args.out, "report folder")
    from latentpress.report import write_report

    page = write_report(args.ledger, args.out, anchor=args.anchor, archive=args.archive, crop_images=args.crops)
    console.print(f"report written to {page}")
    return 0


def run_ledger_summary(args: argparse.Namespace) -> int:
    from latentpress.preflight import check_ledger

    check_ledger(args.ledger)
    return _summary(args.ledger, args.by, args.format)


def run_ledger_compact(args: argparse.Namespace) -> int:
    from latentpress.flows.compact import compact_ledger
    from latentpress.preflight import check_ledger
    from latentpress.terminal import console

    check_ledger(args.ledger)
    done = compact_ledger(args.ledger)
    console.print(f"{done.merged} part(s) merged into {len(done.written)} ({done.rows} rows)"
                  + (f"; {done.finished} part(s) of an interrupted compaction removed" if done.finished else ""),
                  highlight=False)  # fmt: skip
    return 0


def run_ledger_export(args: argparse.Namespace) -> int:
    from latentpress.infra.ledger import export, read_ledger
    from latentpress.preflight import check_ledger
    from latentpress.terminal import console

    check_ledger(args.ledger)
    fmt = args.format or {"parquet": "parquet", "json": "json"}.get(args.out.rsplit(".", 1)[-1].lower(), "csv")
    frame = read_ledger(args.ledger)
    export(frame, args.out, fmt)
    console.print(f"exported {len(frame)} row(s) to {args.out} ({fmt})")
    return 0


def _summary(ledger_url: str, by: str = "quality", fmt: str = "table") -> int:
    from latentpress.infra.ledger import SUMMARY_COLUMNS, SUMMARY_GROUPS, read_ledger, summarize
    from latentpress.terminal import console, print_summary

    frame = read_ledger(ledger_url, columns=SUMMARY_COLUMNS)
    summary = summarize(frame, by=by)
    if fmt == "csv":
        sys.stdout.write(summary.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(summary.to_json(orient="records", indent=1, double_precision=15) + "\n")
    elif frame.empty:
        console.print(f"ledger {ledger_url} is empty")
    else:
        print_summary(summary, [k for k in SUMMARY_GROUPS[by] if k not in ("preset", "config_key")], ledger_url)
        _selection_summary(ledger_url)
    return 0


def _selection_summary(ledger_url: str) -> None:
    """A line on the quality-floor selection of the archive whose ledger this is, if any."""
    from latentpress.infra.layout import ArchiveLayout, ledger_archive
    from latentpress.pipeline.selection import read_selection
    from latentpress.terminal import console

    archive = ledger_archive(ledger_url)
    stored = read_selection(ArchiveLayout(archive).selection) if archive else None
    if stored is None:
        return
    target, selection = stored
    bits = 8 * selection["bytes"].sum()
    pixels = (8 * selection["bytes"] / selection["bpp"]).sum()
    console.print(f"under the selection for {target}: {len(selection)} image(s), {bits / 8e6:.3f} MB stored "
                  f"({bits / pixels:.4f} bpp), {int((~selection['meets']).sum())} below the floor", highlight=False)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
