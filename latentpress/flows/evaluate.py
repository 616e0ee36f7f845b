"""Evaluate: decode every stored container the ledger has no finished row for, and
measure it (each photo once for all its configurations)."""

from __future__ import annotations

from latentpress.codecs import CodecConfig
from latentpress.flows.common import Job, Plan, balanced_batch, finished, ids, job_errors, photo_batches, start
from latentpress.flows.executors import Executor, InProcess
from latentpress.flows.results import RunResult, new_run_id
from latentpress.infra.collection import Item, archived_items
from latentpress.infra.layout import read_manifest
from latentpress.infra.lease import leased
from latentpress.pipeline.context import RunContext
from latentpress.pipeline.evaluate import evaluate_batch, evaluate_images, recorded, unevaluated
from latentpress.run import Run


@leased("evaluate")
def evaluate(run: Run, executor: Executor | None = None) -> RunResult:
    """Append a ledger row for every stored (image, configuration) of ``run.archive``
    the ledger lacks (measuring ``run.metrics``), decoding latents with the archive's
    VAE."""
    executor = executor or InProcess()
    result = RunResult(run.run_id or new_run_id())
    manifest = read_manifest(run.archive)
    context = run.context(result.run_id, manifest["vae"])
    configs = [CodecConfig.from_dict(entry) for entry in manifest["configs"]]
    items = archived_items(run.archive)
    todo = unevaluated(run.archive, items, configs, recorded(context.ledger))
    photos = len({i.image_id for images in todo.values() for i in images})
    plan = Plan(configs, context, executor, balanced_batch(run.batch_size, photos, executor.threads))
    collect_evaluations(executor, start(executor, evaluation_jobs(plan, items, todo)), result)
    return result


def evaluation_jobs(plan: Plan, items: list[Item], todo: dict[CodecConfig, list[Item]]) -> list[Job]:
    """``evaluate_images`` jobs over batches of ``items``, each covering every
    configuration of ``todo`` its images need (each photo measured once for all)."""
    pending = {config: {i.image_id for i in images} for config, images in todo.items()}
    jobs = []
    for batch in photo_batches(items, todo.values(), plan.size, plan.threads):
        work = [(item, [c for c, image_ids in pending.items() if item.image_id in image_ids]) for item in batch]
        pairs = [(config.key, item.image_id) for item, configs in work for config in configs]
        jobs.append(Job(evaluate_images, {"work": work, "run": plan.context}, ids(batch), "", gpu=True, pairs=pairs))
    return jobs


def evaluation_job(run: RunContext, config: CodecConfig, items: list[Item]) -> Job:
    """An ``evaluate_batch`` job for ``items`` under ``config`` (model-heavy: metrics)."""
    return Job(evaluate_batch, {"items": items, "run": run, "config": config}, ids(items), config.key, gpu=True)


def collect_evaluations(executor: Executor, jobs: list[Job], result: RunResult) -> None:
    """Wait for started evaluation jobs; their outcomes and rows into ``result``."""
    for job, evaluation in finished(executor, jobs, "evaluate"):
        if isinstance(evaluation, BaseException):
            result.add("evaluate", job_errors(job, evaluation))
        else:
            result.add("evaluate", evaluation.outcomes)
            result.new_rows += evaluation.rows
