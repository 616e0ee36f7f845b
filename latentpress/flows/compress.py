"""Compress flow: latents for latent codecs, then one container per image and configuration."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from prefect import flow

from latentpress import __version__
from latentpress.codecs import CodecConfig, get_codec, parse_codec_spec
from latentpress.config import DEFAULT_BATCH_SIZE, DEFAULT_VAE
from latentpress.flows.common import Workers, flatten, gather, shard_batches, use_cluster
from latentpress.infra import storage
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
    batches = shard_batches(items, running.batch_size(batch_size, len(items)))
    statuses: list[dict] = []
    if any(is_latent(c) for c in configs):
        with gpu_tasks(running.gpus):
            futures = [
                running.runner.submit(encode_batch, {"items": b, "latents_url": latents_url, "vae_name": vae})
                for b in batches
            ]
        statuses += [{**s, "config_key": "latent"} for s in flatten(gather(futures, "encode latents"))]
    futures = []
    for config in configs:
        shared = get_codec(config.name).shared
        task, groups = (fit_shard, shard_batches(items, max(1, len(items)))) if shared else (compress_batch, batches)
        with gpu_tasks(running.gpus and is_latent(config)):
            futures += [
                running.runner.submit(
                    task, {"items": g, "archive": archive, "latents_url": latents_url, "vae_name": vae, "config": config}
                )
                for g in groups
            ]
    statuses += flatten(gather(futures, "compress"))
    record_failures(ledger or layout.ledger, items, configs, statuses, run_id or uuid.uuid4().hex[:12])
    write_manifest(archive, build_manifest(archive, items, configs, vae))
    return statuses


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
    previous = read_manifest(archive) if storage.exists(ArchiveLayout(archive).manifest) else {}
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
