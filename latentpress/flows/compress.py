"""Compress: latents for the latent codecs, then one container per image and
configuration (one shared model per shard for shard-model codecs)."""

from __future__ import annotations

from latentpress.codecs import CodecConfig, codec_info, parse_specs
from latentpress.flows.collection_models import ModelKey, collection_models, model_ids
from latentpress.flows.collection_models import key as model_key
from latentpress.flows.common import (
    Job,
    Plan,
    balanced_batch,
    finer_tail,
    finished,
    ids,
    job_errors,
    shard_batches,
    start,
)
from latentpress.flows.executors import Executor, InProcess
from latentpress.flows.results import RunResult, new_run_id
from latentpress.infra.collection import Item, archived_items
from latentpress.infra.lease import leased
from latentpress.pipeline import compress as stage
from latentpress.pipeline.context import RunContext
from latentpress.pipeline.encode import LATENT, encode_latents
from latentpress.pipeline.evaluate import recorded
from latentpress.pipeline.manifest import finish_compression
from latentpress.pipeline.outcomes import Outcome
from latentpress.run import Run


@leased("compress")
def compress(run: Run, executor: Executor | None = None) -> RunResult:
    """Compress the ingested collection of ``run.archive`` with each of its codecs.

    Images whose container already exists and verifies are skipped, and so are
    images the ledger records as refused; the manifest is written last. Shard-model
    codecs fit one model per shard (one job each); collection-model codecs use the
    archive's model, or ``run.model`` (copied in), or one trained first on a sample.
    """
    executor = executor or InProcess()
    configs = parse_specs(run.codecs)
    result = RunResult(run.run_id or new_run_id())
    context = run.context(result.run_id)
    items = archived_items(run.archive)
    plan = Plan(configs, context, executor, balanced_batch(run.batch_size, len(items), executor.threads))
    usable = with_latents(plan, items, result)
    models = collection_models(plan, usable, run, result)
    done = recorded(context.ledger)
    jobs = [
        compression_job(context, config, group, done.rejected_for(config.key), models)
        for config, group in compression_jobs(configs, with_models(usable, models), plan.size, plan.threads)
    ]
    for job, outcome in finished(executor, start(executor, jobs), "compress"):
        result.add("compress", job_errors(job, outcome) if isinstance(outcome, BaseException) else outcome)
    finish_compression(context, items, configs, result.stages.get("compress", []), model_ids(models))
    return result


def compression_job(
    run: RunContext, config: CodecConfig, items: list[Item], rejected: frozenset[str], models: dict[ModelKey, str]
) -> Job:
    """A ``compress_batch`` job (``fit_shard`` for a shard-model codec) over ``items``;
    ``rejected``: ids the ledger records as refused under ``config``; ``models``: the
    run's collection models."""
    params = {"items": items, "run": run, "config": config}
    if codec_info(config.name).per_image:
        extra = {"rejected": rejected, "model_url": models.get(model_key(config))}
        return Job(stage.compress_batch, params | extra, ids(items), config.key, gpu=is_latent(config))
    return Job(stage.fit_shard, params, ids(items), config.key, gpu=is_latent(config))


def is_latent(config: CodecConfig) -> bool:
    """Whether the configuration's codec works on VAE latents (model-heavy work)."""
    return codec_info(config.name).domain == "latent"


def with_latents(plan: Plan, items: list[Item], result: RunResult) -> dict[CodecConfig, list[Item]]:
    """Encode the VAE latents the latent codecs of the plan need (outcomes under the
    stage ``latents``), and for each configuration the items it can work on: all for
    pixel codecs, those with a latent for latent codecs. Each image without a latent
    ends as an ``error`` under every latent configuration, with the latent's reason."""
    if not any(is_latent(c) for c in plan.configs):
        return {config: items for config in plan.configs}
    params = {"latents_url": plan.context.latents, "vae_name": plan.context.vae}
    jobs = [
        Job(encode_latents, {"items": b, **params}, ids(b), LATENT, gpu=True) for b in shard_batches(items, plan.size)
    ]
    for job, outcomes in finished(plan.executor, start(plan.executor, jobs), "encode latents"):
        result.add("latents", job_errors(job, outcomes) if isinstance(outcomes, BaseException) else outcomes)
    missing = {o.image_id: o.reason for o in result.stages.get("latents", []) if o.status != "ok"}
    usable = {}
    for config in plan.configs:
        if is_latent(config):
            usable[config] = [item for item in items if item.image_id not in missing]
            result.add("compress", [Outcome(i, config.key, "error", f"no latent: {r}") for i, r in missing.items()])
        else:
            usable[config] = items
    return usable


def with_models(usable: dict[CodecConfig, list[Item]], models: dict[ModelKey, str]) -> dict[CodecConfig, list[Item]]:
    """``usable`` without the configurations whose collection model could not be had
    (their images already ended in error)."""
    return {
        c: items for c, items in usable.items() if not codec_info(c.name).collection_model or model_key(c) in models
    }


def compression_jobs(
    configs: list[CodecConfig], items: dict[CodecConfig, list[Item]], size: int, threads: int
) -> list[tuple[CodecConfig, list[Item]]]:
    """One job's work each: a batch of at most ``size`` images of one shard, or for a
    shard-model codec a whole shard; the last batches halved (``finer_tail``)."""
    per_image = [c for c in configs if codec_info(c.name).per_image]
    shards = [
        (c, shard)
        for c in configs
        if c not in per_image
        for shard in shard_batches(items[c], max(1, len(items[c])), None)
    ]
    return shards + finer_tail([(c, batch) for c in per_image for batch in shard_batches(items[c], size)], threads)
