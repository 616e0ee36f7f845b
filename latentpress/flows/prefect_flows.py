"""The Prefect flows: each command's orchestration on the workers of a Dask cluster.

These are what ``latentpress`` runs for bulk jobs and what the deployments in
``prefect.yaml`` schedule. Each one starts a Dask executor (a local cluster, or the
cluster at ``dask_address``) and runs the same orchestration as the in-process
path (``latentpress.flows.archive`` and its siblings).
"""

from __future__ import annotations

from prefect import flow

from latentpress.config import DEFAULT_BATCH_SIZE, DEFAULT_SHARD_SIZE, DEFAULT_VAE
from latentpress.flows import archive as archive_step
from latentpress.flows import collection_models as models_step
from latentpress.flows import compress as compress_step
from latentpress.flows import evaluate as evaluate_step
from latentpress.flows import ingest as ingest_step
from latentpress.flows import restore as restore_step
from latentpress.flows.executors import dask_executor
from latentpress.flows.results import RunResult, new_run_id
from latentpress.flows.run_log import concluded, run_logger
from latentpress.infra.cluster import quiet_cluster_logs
from latentpress.infra.collection import Item
from latentpress.pipeline.collection_models import TrainedModel


@flow(name="archive")
def archive_flow(
    source: str,
    archive: str,
    codecs: list[str],
    ledger: str | None = None,
    vae: str = DEFAULT_VAE,
    latents: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dask_address: str | None = None,
    workers: int | None = None,
    model: str | None = None,
    train_sample: int | None = None,
    train_steps: int | None = None,
    metrics: tuple[str, ...] | None = None,
) -> RunResult:
    """Archive every image under ``source`` (see ``latentpress.flows.archive.archive``)."""
    quiet_cluster_logs()
    with dask_executor(dask_address, workers) as executor:
        result = archive_step.archive(source, archive, codecs, ledger, vae, latents, shard_size, batch_size, executor,
                                      model, train_sample, train_steps, metrics)  # fmt: skip
    return concluded("archive", result)


@flow(name="ingest")
def ingest_flow(
    source: str,
    archive: str,
    shard_size: int = DEFAULT_SHARD_SIZE,
    dask_address: str | None = None,
    workers: int | None = None,
) -> list[Item]:
    """Inspect every image under ``source`` (see ``latentpress.flows.ingest.ingest``)."""
    quiet_cluster_logs()
    with dask_executor(dask_address, workers) as executor:
        result = RunResult(new_run_id(), items=ingest_step.ingest(source, archive, shard_size, executor))
    return concluded("ingest", result, result.items)


@flow(name="compress")
def compress_flow(
    archive: str,
    codecs: list[str],
    vae: str = DEFAULT_VAE,
    latents: str | None = None,
    ledger: str | None = None,
    run_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dask_address: str | None = None,
    workers: int | None = None,
    model: str | None = None,
    train_sample: int | None = None,
    train_steps: int | None = None,
) -> RunResult:
    """Compress an ingested collection (see ``latentpress.flows.compress.compress``)."""
    quiet_cluster_logs()
    with dask_executor(dask_address, workers) as executor:
        result = compress_step.compress(archive, codecs, vae, latents, ledger, run_id, batch_size, executor, model,
                                        train_sample, train_steps)  # fmt: skip
    return concluded("compress", result)


@flow(name="evaluate")
def evaluate_flow(
    archive: str,
    ledger: str | None = None,
    run_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dask_address: str | None = None,
    workers: int | None = None,
    metrics: tuple[str, ...] | None = None,
) -> RunResult:
    """Measure what the ledger lacks (see ``latentpress.flows.evaluate.evaluate``)."""
    quiet_cluster_logs()
    with dask_executor(dask_address, workers) as executor:
        result = evaluate_step.evaluate(archive, ledger, run_id, batch_size, executor, metrics)
    return concluded("evaluate", result)


@flow(name="restore")
def restore_flow(
    archive: str,
    out: str,
    configs: list[str] | None = None,
    vae: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dask_address: str | None = None,
    workers: int | None = None,
    layout: str = "original",
    fmt: str = "png",
) -> RunResult:
    """Decode an archive to image files (see ``latentpress.flows.restore.restore``)."""
    quiet_cluster_logs()
    with dask_executor(dask_address, workers) as executor:
        result = restore_step.restore(archive, out, configs, vae, batch_size, executor, layout, fmt)
    return concluded("restore", result)


@flow(name="verify")
def verify_flow(archive: str, decode: bool = False, configs: list[str] | None = None, vae: str | None = None) -> dict:
    """Check an archive's fixity (see ``latentpress.pipeline.verify.verify``): every
    problem is logged, then how many objects were checked; the run ends Failed, its
    message counting the problems, unless the archive is intact."""
    from prefect.states import Failed

    from latentpress.pipeline.verify import ArchiveNotIntact, verify

    result = verify(archive, decode, configs, vae)
    logger = run_logger()
    for kind, path, why in result.problems():
        logger.error("%s: %s: %s", kind, path, why)
    summary = result.summary(archive)
    if result.intact:
        logger.info(summary)
        return {"checked": result.fixity.checked, "decoded": result.decoded}
    logger.error(summary)
    return Failed(message=summary, data=ArchiveNotIntact(summary))


@flow(name="train")
def train_flow(
    source: str,
    model_url: str,
    codec: str,
    vae: str = DEFAULT_VAE,
    sample: int | None = None,
    steps: int | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> TrainedModel:
    """Train one collection model (see ``latentpress.flows.collection_models.train``)."""
    quiet_cluster_logs()
    with dask_executor(dask_address, workers) as executor:
        return models_step.train(source, model_url, codec, vae, sample, steps, executor)
