"""Evaluate: decode every stored container the ledger has no finished row for, and
measure it (each photo once for all its configurations)."""

from __future__ import annotations

from latentpress.codecs import CodecConfig
from latentpress.config import DEFAULT_BATCH_SIZE
from latentpress.flows.common import Job, balanced_batch, finished, ids, job_errors, photo_batches, start
from latentpress.flows.executors import Executor, InProcess
from latentpress.flows.results import RunResult, new_run_id
from latentpress.infra.collection import Item, archived_items
from latentpress.infra.layout import ArchiveLayout, read_manifest
from latentpress.infra.lease import leased
from latentpress.pipeline.evaluate import evaluate_batch, evaluate_images, recorded, unevaluated


@leased("evaluate")
def evaluate(
    archive: str,
    ledger: str | None = None,
    run_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    executor: Executor | None = None,
    metrics: tuple[str, ...] | None = None,
) -> RunResult:
    """Append a ledger row for every stored (image, configuration) the ledger lacks
    (measuring ``metrics``, default all four)."""
    executor = executor or InProcess()
    layout = ArchiveLayout(archive)
    ledger_url = ledger or layout.ledger
    result = RunResult(run_id or new_run_id())
    manifest = read_manifest(archive)
    configs = [CodecConfig.from_dict(entry) for entry in manifest["configs"]]
    items = archived_items(archive)
    todo = unevaluated(archive, items, configs, recorded(ledger_url))
    size = balanced_batch(batch_size, len({i.image_id for images in todo.values() for i in images}), executor.threads)
    jobs = evaluation_jobs(archive, items, todo, manifest["vae"], ledger_url, result.run_id, metrics, size,
                           executor.threads)  # fmt: skip
    collect_evaluations(executor, start(executor, jobs), result)
    return result


def evaluation_jobs(archive: str, items: list[Item], todo: dict[CodecConfig, list[Item]], vae: str, ledger_url: str,
                    run_id: str, metrics: tuple[str, ...] | None, size: int, threads: int) -> list[Job]:  # fmt: skip
    """``evaluate_images`` jobs over batches of ``items``, each covering every
    configuration of ``todo`` its images need (each photo measured once for all)."""
    pending = {config: {i.image_id for i in images} for config, images in todo.items()}
    jobs = []
    for batch in photo_batches(items, todo.values(), size, threads):
        work = [(item, [c for c, image_ids in pending.items() if item.image_id in image_ids]) for item in batch]
        params = {"work": work, "archive": archive, "vae_name": vae, "ledger_url": ledger_url, "run_id": run_id,
                  "metrics": metrics}  # fmt: skip
        pairs = [(config.key, item.image_id) for item, configs in work for config in configs]
        jobs.append(Job(evaluate_images, params, ids(batch), "", gpu=True, pairs=pairs))
    return jobs


def evaluation_job(
    archive: str,
    config: CodecConfig,
    items: list[Item],
    vae: str,
    ledger_url: str,
    run_id: str,
    metrics: tuple[str, ...] | None = None,
) -> Job:
    """An ``evaluate_batch`` job for ``items`` under ``config`` (model-heavy: metrics)."""
    params = {"items": items, "archive": archive, "config": config, "vae_name": vae, "ledger_url": ledger_url,
              "run_id": run_id, "metrics": metrics}  # fmt: skip
    return Job(evaluate_batch, params, ids(items), config.key, gpu=True)


def collect_evaluations(executor: Executor, jobs: list[Job], result: RunResult) -> None:
    """Wait for started evaluation jobs; their outcomes and rows into ``result``."""
    for job, evaluation in finished(executor, jobs, "evaluate"):
        if isinstance(evaluation, BaseException):
            result.add("evaluate", job_errors(job, evaluation))
        else:
            result.add("evaluate", evaluation.outcomes)
            result.new_rows += evaluation.rows
