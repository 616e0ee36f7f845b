"""Compress flow: latents for latent codecs, then one container per image and configuration."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from prefect import flow
from prefect.futures import PrefectFuture

from latentpress import __version__
from latentpress.codecs import CodecConfig, get_codec, parse_codec_spec
from latentpress.config import DEFAULT_BATCH_SIZE, DEFAULT_VAE
from latentpress.flows.common import Workers, finer_tail, flatten, gather, shard_batches, use_cluster
from latentpress.infra.archive import ArchiveLayout, read_manifest, write_manifest
from latentpress.infra.cluster import gpu_tasks
from latentpress.infra.collection import Item, read_collection
from latentpress.infra.ledger import append_rows
from latentpress.infra.models import model_id
from latentpress.tasks.compress import compress_batch, fit_shard
from latentpress.tasks.encode import encode_batch
from latentpress.tasks.evaluate import base_row


def parse_specs(codecs: list[str]) -> list[CodecConfig]:
    """All configurations of the ``--codec`` values, without repeats, in order."""
    configs: list[CodecConfig] = []
    for spec in codecs:
        configs += [c for c in parse_codec_spec(spec) if c not in configs]
    if not configs:
        raise ValueError("no codec given")
    return configs


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
) -> list[dict]:
    """Compress the ingested collection of ``archive`` with every codec configuration.

    Images whose container already exists and verifies are skipped; the manifest is
    written last. Shared-model codecs fit one model per shard (one task each).
    Images a codec fails on get a ``failed`` ledger row with the
    reason. Returns a status dict per (image, configuration).
    """
    with use_cluster(dask_address, workers) as running:
        return compress(running, archive, codecs, vae, latents, ledger, run_id, batch_size)


def compress(
    running: Workers,
    archive: str,
    codecs: list[str],
    vae: str = DEFAULT_VAE,
    latents: str | None = None,
    ledger: str | None = None,
    run_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[dict]:
    """The compress step on already running workers (see ``compress_flow``)."""
    configs = parse_specs(codecs)
    layout = ArchiveLayout(archive)
    latents_url = latents or layout.latents
    items = [item for item in read_collection(layout.collection) if item.status == "ok"]
    size = running.batch_size(batch_size, len(items))
    statuses = encode_latents(running, items, configs, latents_url, vae, size)
    jobs = compression_jobs(configs, items, size, running.threads)
    futures = submit_compression(running, jobs, archive, latents_url, vae)
    statuses += flatten(gather(futures, "compress"))
    finish_compression(archive, ledger or layout.ledger, items, configs, statuses, run_id or uuid.uuid4().hex[:12], vae)
    return statuses


def encode_latents(
    running: Workers, items: list[Item], configs: list[CodecConfig], latents_url: str, vae: str, size: int
) -> list[dict]:
    """Encode the VAE latents the latent codecs of ``configs`` need (none if no latent
    codec); a status per image, with ``config_key`` ``latent``."""
    if not any(is_latent(c) for c in configs):
        return []
    with gpu_tasks(running.gpus):
        futures = [
            running.runner.submit(encode_batch, {"items": b, "latents_url": latents_url, "vae_name": vae})
            for b in shard_batches(items, size)
        ]
    return [{**s, "config_key": "latent"} for s in flatten(gather(futures, "encode latents"))]


def compression_jobs(
    configs: list[CodecConfig], items: list[Item], size: int, threads: int
) -> list[tuple[CodecConfig, list[Item]]]:
    """One task's work each: a batch of at most ``size`` images of one shard, or for a
    shared-model codec a whole shard; the last batches halved (``finer_tail``)."""
    shared = [c for c in configs if get_codec(c.name).shared]
    jobs = [(c, shard) for c in shared for shard in shard_batches(items, max(1, len(items)))]
    batches = shard_batches(items, size)
    return jobs + finer_tail([(c, batch) for c in configs if c not in shared for batch in batches], threads)


def submit_compression(
    running: Workers, jobs: list[tuple[CodecConfig, list[Item]]], archive: str, latents_url: str, vae: str
) -> list[PrefectFuture]:
    """A ``fit_shard`` or ``compress_batch`` task per job."""
    futures = []
    for config, group in jobs:
        task = fit_shard if get_codec(config.name).shared else compress_batch
        with gpu_tasks(running.gpus and is_latent(config)):
            parameters = {"items": group, "archive": archive, "latents_url": latents_url, "vae_name": vae, "config": config}
            futures.append(running.runner.submit(task, parameters))
    return futures


def finish_compression(
    archive: str, ledger_url: str, items: list[Item], configs: list[CodecConfig], statuses: list[dict], run_id: str,
    vae: str,
) -> None:
    """Record the images that failed, then write the manifest (last: it lists what is archived)."""
    record_failures(ledger_url, items, configs, statuses, run_id)
    write_manifest(archive, build_manifest(archive, items, configs, vae))


def is_latent(config: CodecConfig) -> bool:
    """Whether the configuration's codec works on VAE latents (model-heavy work)."""
    return get_codec(config.name).domain == "latent"


def record_failures(
    ledger_url: str, items: list[Item], configs: list[CodecConfig], statuses: list[dict], run_id: str
) -> None:
    """Ledger rows for the images a codec could not compress, with the reason."""
    by_id = {item.image_id: item for item in items}
    by_key = {config.key: config for config in configs}
    rows = [
        {**base_row(by_id[s["image_id"]], by_key[s["config_key"]], run_id), "status": "failed", "error": s["error"]}
        for s in statuses
        if s["status"] == "failed" and s["config_key"] in by_key
    ]
    if rows:
        append_rows(ledger_url, rows, run_id)


def build_manifest(archive: str, items: list[Item], configs: list[CodecConfig], vae: str) -> dict:
    """The manifest: this run's configurations merged with those already archived."""
    previous = read_manifest(archive, missing_ok=True)
    known = {c["key"]: c for c in previous.get("configs", [])}
    for config in configs:
        known[config.key] = {"key": config.key, **config.to_dict(), "codec_version": get_codec(config.name).version}
    return {
        "code_version": __version__,
        "updated": datetime.now(timezone.utc).isoformat(),
        "vae": vae,
        "vae_id": model_id(vae),
        "configs": sorted(known.values(), key=lambda c: c["key"]),
        "items": [
            {"image_id": i.image_id, "width": i.width, "height": i.height, "shard": i.shard, "name": i.name}
            for i in items
        ],
    }
