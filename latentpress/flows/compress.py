"""Compress: latents for the latent codecs, then one container per image and
configuration (one shared model per shard for shard-model codecs)."""

from __future__ import annotations

from latentpress.codecs import CodecConfig, codec_info, parse_specs
from latentpress.config import DEFAULT_BATCH_SIZE, DEFAULT_VAE
from latentpress.flows.collection_models import ModelKey, collection_models, model_ids
from latentpress.flows.collection_models import key as model_key
from latentpress.flows.common import Job, balanced_batch, finer_tail, finished, ids, job_errors, shard_batches, start
from latentpress.flows.executors import Executor, InProcess
from latentpress.flows.results import RunResult, new_run_id
from latentpress.infra.collection import Item, archived_items
from latentpress.infra.layout import ArchiveLayout
from latentpress.infra.lease import leased
from latentpress.pipeline import compress as stage
from latentpress.pipeline.encode import LATENT, encode_latents
from latentpress.pipeline.evaluate import recorded
from latentpress.pipeline.manifest import finish_compression
from latentpress.pipeline.outcomes import Outcome


@leased("compress")
def compress(
    archive: str,
    codecs: list[str],
    vae: str = DEFAULT_VAE,
    latents: str | None = None,
    ledger: str | None = None,
    run_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    executor: Executor | None = None,
    model: str | None = None,
    train_sample: int | None = None,
    train_steps: int | None = None,
) -> RunResult:
    """Compress the ingested collection of ``archive`` with every codec configuration.

    Images whose container already exists and verifies are skipped, and so are
    images the ledger records as refused; the manifest is written last. Shard-model
    codecs fit one model per shard (one job each); collection-model codecs use the
    archive's model, or ``model`` (copied in), or one trained first on a sample.
    """
    executor = executor or InProcess()
    configs = parse_specs(codecs)
    layout = ArchiveLayout(archive)
    latents_url = latents or layout.latents
    ledger_url = ledger or layout.ledger
    result = RunResult(run_id or new_run_id())
    items = archived_items(archive)
    size = balanced_batch(batch_size, len(items), executor.threads)
    usable = with_latents(executor, items, configs, latents_url, vae, size, result)
    models = collection_models(
        executor, configs, usable, archive, latents_url, vae, result, model, train_sample, train_steps
    )
    done = recorded(ledger_url)
    jobs = [
        compression_job(config, group, archive, latents_url, vae, done.rejected_for(config.key), models)
        for config, group in compression_jobs(configs, with_models(usable, models), size, executor.threads)
    ]
    for job, outcome in finished(executor, start(executor, jobs), "compress"):
        result.add("compress", job_errors(job, outcome) if isinstance(outcome, BaseException) else outcome)
    finish_compression(
        archive, ledger_url, items, configs, result.stages.get("compress", []), result.run_id, vae, model_ids(models)
    )
    return result


def compression_job(
    config: CodecConfig,
    items: list[Item],
    archive: str,
    latents_url: str,
    vae: str,
    rejected: frozenset[str],
    models: dict[ModelKey, str],
) -> Job:
    """A ``compress_batch`` job (``fit_shard`` for a shard-model codec) over ``items``;
    ``rejected``: ids the ledger records as refused under ``config``; ``models``: the
    run's collection models."""
    params = {"items": items, "archive": archive, "latents_url": latents_url, "vae_name": vae, "config": config}
    if codec_info(config.name).per_image:
        extra = {"rejected": rejected, "model_url": models.get(model_key(config))}
        return Job(stage.compress_batch, params | extra, ids(items), config.key, gpu=is_latent(config))
    return Job(stage.fit_shard, params, ids(items), config.key, gpu=is_latent(config))


def is_latent(config: CodecConfig) -> bool:
    """Whether the configuration's codec works on VAE latents (model-heavy work)."""
    return codec_info(config.name).domain == "latent"


def with_latents(
    executor: Executor,
    items: list[Item],
    configs: list[CodecConfig],
    latents_url: str,
    vae: str,
    size: int,
    result: RunResult,
) -> dict[CodecConfig, list[Item]]:
    """Encode the VAE latents the latent codecs of ``configs`` need (outcomes under the
    stage ``latents``), and for each configuration the items it can work on: all for
    pixel codecs, those with a latent for latent codecs. Each image without a latent
    ends as an ``error`` under every latent configuration, with the latent's reason."""
    if not any(is_latent(c) for c in configs):
        return {config: items for config in configs}
    jobs = [
        Job(encode_latents, {"items": b, "latents_url": latents_url, "vae_name": vae}, ids(b), LATENT, gpu=True)
        for b in shard_batches(items, size)
    ]
    for job, outcomes in finished(executor, start(executor, jobs), "encode latents"):
        result.add("latents", job_errors(job, outcomes) if isinstance(outcomes, BaseException) else outcomes)
    missing = {o.image_id: o.reason for o in result.stages.get("latents", []) if o.status != "ok"}
    usable = {}
    for config in configs:
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
