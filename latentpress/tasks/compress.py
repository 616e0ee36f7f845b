"""Compression task: one codec configuration over a batch of images."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timezone

from prefect import task
from prefect.cache_policies import NO_CACHE

from latentpress.codecs import CodecConfig, CodecInput, get_codec
from latentpress.config import get_settings
from latentpress.infra import storage
from latentpress.infra.archive import ArchiveLayout, pack_image, unpack_image
from latentpress.infra.collection import Item
from latentpress.infra.container import ContainerError
from latentpress.infra.images import decode_image
from latentpress.infra.latent_store import LatentStore
from latentpress.infra.models import model_id


def stored_and_valid(url: str) -> bool:
    """Whether a complete, checksum-valid container is stored at ``url``."""
    if not storage.exists(url):
        return False
    try:
        unpack_image(storage.read_bytes(url), source=url)
    except ContainerError:
        return False
    return True


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def compress_batch(
    items: list[Item], archive: str, latents_url: str, vae_name: str, config: CodecConfig
) -> list[dict]:
    """Write one container per item that lacks a valid one; a status dict per item.

    A failing image is reported with its error and never stops the batch.
    """
    layout = ArchiveLayout(archive)
    codec = get_codec(config.name)
    params = codec.params(config.preset, config.quality)
    vae_id = model_id(vae_name) if codec.domain == "latent" else ""
    store = LatentStore(latents_url, vae_id) if codec.domain == "latent" else None
    statuses = []
    for item in items:
        url = layout.image(config.key, item.image_id)
        status = {"image_id": item.image_id, "config_key": config.key, "status": "skipped", "error": None}
        if stored_and_valid(url):
            statuses.append(status)
            continue
        try:
            if store is not None:
                latent, attrs = store.read(item.image_id)
                vae_seconds = float(attrs.get("encode_seconds", 0.0))
                codec_input = CodecInput(item.image_id, item.width, item.height, latent=latent, vae_id=vae_id)
            else:
                image = decode_image(storage.read_bytes(item.source), item.name)
                vae_seconds = 0.0
                codec_input = CodecInput(item.image_id, item.width, item.height, image=image)
            start = time.perf_counter()
            payload = codec.encode(codec_input, params)
            encode_seconds = time.perf_counter() - start + vae_seconds
        except (ValueError, KeyError) as exc:  # bad input or codec refusal: record, go on
            statuses.append({**status, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
            continue
        data = pack_image(
            codec=codec.name,
            codec_version=codec.version,
            config={"codec": config.name, "preset": config.preset, "quality": config.quality},
            payload=payload,
            width=item.width,
            height=item.height,
            vae_id=vae_id,
        )
        stats = {
            "encode_seconds": encode_seconds,
            "device": get_settings().device,
            "params": dataclasses.asdict(params),
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }
        storage.write_bytes_atomic(layout.stats(config.key, item.image_id), json.dumps(stats).encode())
        storage.write_bytes_atomic(url, data)
        statuses.append({**status, "status": "written", "bytes": len(data)})
    return statuses
