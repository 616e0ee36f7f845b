"""The Prefect flows: each command's orchestration on the workers of a Dask cluster.

These are what ``latentpress`` runs for bulk jobs and what the deployments in
``prefect.yaml`` schedule. Each takes the command's run object whole
(``latentpress.run``; a deployment's parameters nest it under ``run``), starts a
Dask executor on ``run.cluster`` (a local cluster, or the cluster at its address) and
runs the same orchestration as the in-process path (``latentpress.flows.archive`` and
its siblings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow

from latentpress.flows import archive as archive_step
from latentpress.flows import collection_models as models_step
from latentpress.flows import compress as compress_step
from latentpress.flows import evaluate as evaluate_step
from latentpress.flows import ingest as ingest_step
from latentpress.flows import restore as restore_step
from latentpress.flows.executors import Executor, dask_executor
from latentpress.flows.results import RunResult, new_run_id
from latentpress.flows.run_log import concluded, run_logger
from latentpress.infra.cluster import quiet_cluster_logs
from latentpress.infra.collection import Item
from latentpress.pipeline.collection_models import TrainedModel
from latentpress.run import RestoreRun, Run, TrainRun


def _on_dask(step: Callable[[Any, Executor], Any], run: Run | RestoreRun | TrainRun) -> Any:
    """``step(run, executor)`` with an executor on the Dask workers of ``run.cluster``."""
    quiet_cluster_logs()
    with dask_executor(run.cluster.dask_address, run.cluster.workers) as executor:
        return step(run, executor)


@flow(name="archive")
def archive_flow(run: Run) -> RunResult:
    """Archive every image under ``run.source`` (see ``latentpress.flows.archive.archive``)."""
    return concluded("archive", _on_dask(archive_step.archive, run))


@flow(name="ingest")
def ingest_flow(run: Run) -> list[Item]:
    """Inspect every image under ``run.source`` (see ``latentpress.flows.ingest.ingest``)."""
    items = _on_dask(ingest_step.ingest, run)
    return concluded("ingest", RunResult(new_run_id(), items=items), items)


@flow(name="compress")
def compress_flow(run: Run) -> RunResult:
    """Compress an ingested collection (see ``latentpress.flows.compress.compress``)."""
    return concluded("compress", _on_dask(compress_step.compress, run))


@flow(name="evaluate")
def evaluate_flow(run: Run) -> RunResult:
    """Measure what the ledger lacks (see ``latentpress.flows.evaluate.evaluate``)."""
    return concluded("evaluate", _on_dask(evaluate_step.evaluate, run))


@flow(name="restore")
def restore_flow(run: RestoreRun) -> RunResult:
    """Decode an archive to image files (see ``latentpress.flows.restore.restore``)."""
    return concluded("restore", _on_dask(restore_step.restore, run))


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
def train_flow(run: TrainRun) -> TrainedModel:
    """Train one collection model (see ``latentpress.flows.collection_models.train``)."""
    return _on_dask(models_step.train, run)
