"""Archive: ingest, compress and evaluate a collection in one run.

Each batch is compressed and evaluated by one ``archive_batch`` job, so ledger rows
arrive while the run goes on; a shard-model codec's shard is evaluated in batches as
soon as its model is fitted. Containers stored by earlier runs under configurations
this run does not name, and missing from the ledger, are evaluated too.
"""

from __future__ import annotations

from latentpress.codecs import CodecConfig, codec_info, parse_specs
from latentpress.flows.collection_models import ModelKey, collection_models, model_ids
from latentpress.flows.collection_models import key as model_key
from latentpress.flows.common import (
    Job,
    Plan,
    balanced_batch,
    finished,
    ids,
    job_errors,
    photo_batches,
    shard_batches,
    start,
)
from latentpress.flows.compress import compression_job, compression_jobs, is_latent, with_latents, with_models
from latentpress.flows.evaluate import collect_evaluations, evaluation_job
from latentpress.flows.executors import Executor, InProcess
from latentpress.flows.ingest import ingest
from latentpress.flows.results import RunResult, new_run_id
from latentpress.infra.collection import Item
from latentpress.infra.layout import ArchiveLayout, read_manifest
from latentpress.infra.lease import leased
from latentpress.pipeline import archive_batch as stage
from latentpress.pipeline.archive_batch import BatchWork
from latentpress.pipeline.evaluate import Recorded, recorded, unevaluated, warm_up_in_background
from latentpress.pipeline.manifest import finish_compression
from latentpress.pipeline.outcomes import Outcome
from latentpress.run import Run


@leased("archive")
def archive(run: Run, executor: Executor | None = None) -> RunResult:
    """Archive every image under ``run.source`` into ``run.archive`` with each of its
    codecs and record the results in the ledger (default ``<archive>/ledger``).

    Collection-model codecs use the archive's model, or ``run.model`` (copied in), or
    one trained first (see :class:`~latentpress.run.Run`). Reruns are
    idempotent: stored models, containers and finished ledger rows are never redone;
    images that ended in ``error`` are tried again.
    """
    executor = executor or InProcess()
    configs = parse_specs(run.codecs)  # a bad codec spec fails before any work
    result = RunResult(run.run_id or new_run_id())
    context = run.context(result.run_id)
    result.items = ingest(run, executor)
    result.lap("ingest")
    good = [item for item in result.items if item.status == "ok"]
    done = recorded(context.ledger)
    todo = not_recorded(configs, good, done, run.archive, result)
    result.lap("ledger read")
    size = balanced_batch(run.batch_size, max(map(len, todo.values()), default=0), executor.threads)
    if any(todo.values()):
        executor.on_every_worker(warm_up_in_background)  # metric networks load while the codecs run
    plan = Plan(configs, context, executor, size)
    needed = {i.image_id: i for c in configs if is_latent(c) for i in todo[c]}
    latent = with_latents(plan, list(needed.values()), result)
    with_latent = {c: set(ids(latent[c])) for c in configs if is_latent(c)}
    usable = {c: [i for i in todo[c] if i.image_id in with_latent[c]] if is_latent(c) else todo[c] for c in configs}
    result.lap("latents")
    models = collection_models(plan, usable, run, result)
    result.lap("collection models")
    earlier = read_manifest(run.archive, missing_ok=True)
    leftovers = [c for c in map(CodecConfig.from_dict, earlier.get("configs", [])) if c not in configs]
    jobs = archive_jobs(plan, good, with_models(usable, models), done, models)
    start(executor, jobs)
    earlier_context = run.context(result.run_id, earlier.get("vae"))
    evaluations = start(executor, [
        evaluation_job(earlier_context, config, batch)
        for config, images in unevaluated(run.archive, good, leftovers, done).items()
        for batch in shard_batches(images, size)
    ])  # fmt: skip
    for job, outcome in finished(executor, jobs, "compress and evaluate"):
        if isinstance(outcome, BaseException):
            result.add("compress", job_errors(job, outcome))
        elif isinstance(outcome, stage.ArchivedBatch):
            result.add("compress", outcome.compressed)
            result.add("evaluate", outcome.evaluated)
            result.new_rows += outcome.rows
        else:  # a fitted shard: evaluate it in batches
            result.add("compress", outcome)
            config = job.params["config"]
            todo = stage.to_evaluate(job.params["items"], outcome, done.done_for(config.key))
            evaluations += start(executor, [evaluation_job(context, config, b) for b in shard_batches(todo, size)])
    collect_evaluations(executor, evaluations, result)
    result.lap("compress and evaluate")
    finish_compression(context, good, configs, result.stages.get("compress", []), model_ids(models))
    result.lap("bookkeeping")
    return result


def not_recorded(
    configs: list[CodecConfig], items: list[Item], done: Recorded, archive: str, result: RunResult
) -> dict[CodecConfig, list[Item]]:
    """Per configuration, the ``items`` still to do: no finished ledger row, or an ``ok``
    row whose container is gone (for a shard-model codec, every item of a shard that
    has one such item). The others count as done before (``cached``: ``ok``, or
    ``rejected`` when refused) without a task: a rerun opens no container of an image
    that is done, and lists each configuration's folder once."""
    todo = {}
    for config in configs:
        finished, refused = done.done_for(config.key), done.rejected_for(config.key)
        stored = ArchiveLayout(archive).stored_images(config.key) if finished else set()
        waiting = {i.image_id for i in items if i.image_id not in finished
                   or (i.image_id not in refused and i.image_id not in stored)}  # fmt: skip
        if not codec_info(config.name).per_image:
            open_shards = {i.shard for i in items if i.image_id in waiting}
            waiting = {i.image_id for i in items if i.shard in open_shards}
        todo[config] = [i for i in items if i.image_id in waiting]
        result.add("compress", [
            Outcome(i.image_id, config.key, "rejected" if i.image_id in refused else "ok",
                    "refused by an earlier run" if i.image_id in refused else None, cached=True)
            for i in items if i.image_id not in waiting
        ])  # fmt: skip
    return todo


def archive_jobs(
    plan: Plan,
    items: list[Item],
    usable: dict[CodecConfig, list[Item]],
    done: Recorded,
    models: dict[ModelKey, str],
) -> list[Job]:
    """A ``fit_shard`` job per shard of each shard-model codec, and an ``archive_batch``
    job per batch of ``items`` covering every per-image configuration the batch's
    images need (each photo then measured once for all of them)."""
    shard_configs = [c for c in plan.configs if c in usable and not codec_info(c.name).per_image]
    jobs = [compression_job(plan.context, config, shard, done.rejected_for(config.key), models)
            for config, shard in compression_jobs(shard_configs, usable, plan.size, plan.threads)]  # fmt: skip
    per_image = [c for c in plan.configs if c in usable and codec_info(c.name).per_image]
    for batch in photo_batches(items, [usable[c] for c in per_image], plan.size, plan.threads):
        batch_ids = set(ids(batch))
        work = [
            BatchWork(config, [i for i in usable[config] if i.image_id in batch_ids],
                      frozenset(batch_ids & done.done_for(config.key)), frozenset(batch_ids & done.rejected_for(config.key)),
                      models.get(model_key(config)))
            for config in per_image
        ]  # fmt: skip
        work = [part for part in work if part.items]
        pairs = [(part.config.key, item.image_id) for part in work for item in part.items]
        jobs.append(Job(stage.archive_batch, {"work": work, "run": plan.context}, ids(batch), "",
                        gpu=any(is_latent(p.config) for p in work), pairs=pairs))  # fmt: skip
    return jobs
