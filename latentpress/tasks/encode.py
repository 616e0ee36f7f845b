"""Latent encoding task: images of a batch through the VAE encoder into the store.

Each latent records its share of the batch's VAE encoding time, which the latent
codecs add to their own encoding time in the ledger.
"""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NO_CACHE

from latentpress.infra import storage
from latentpress.infra.collection import Item
from latentpress.infra.images import ImageError, decode_image
from latentpress.infra.latent_store import LatentStore
from latentpress.models.vae import load_vae


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def encode_batch(items: list[Item], latents_url: str, vae_name: str) -> list[dict]:
    """Encode the items whose latent is not stored yet; one status dict per item."""
    vae = load_vae(vae_name)
    store = LatentStore(latents_url, vae.vae_id)
    statuses: list[dict] = []
    todo: list[tuple[Item, object]] = []
    for item in items:
        if store.has(item.image_id):
            statuses.append({"image_id": item.image_id, "status": "skipped", "error": None})
            continue
        try:
            todo.append((item, decode_image(storage.read_bytes(item.source), item.name)))
        except ImageError as exc:
            statuses.append({"image_id": item.image_id, "status": "failed", "error": str(exc)})
    if todo:
        start = time.perf_counter()
        latents = vae.encode([image for _, image in todo])
        seconds_each = (time.perf_counter() - start) / len(todo)
        for (item, _), latent in zip(todo, latents):
            pad_h = latent.shape[1] * vae.stride - item.height
            pad_w = latent.shape[2] * vae.stride - item.width
            store.write(
                item.image_id,
                latent,
                {
                    "source": item.source,
                    "width": item.width,
                    "height": item.height,
                    "padding": [pad_h, pad_w],
                    "vae_id": vae.vae_id,
                    "scaling_factor": vae.scaling_factor,
                    "shift_factor": vae.shift_factor,
                    "encode_seconds": seconds_each,
                },
            )
            statuses.append({"image_id": item.image_id, "status": "encoded", "error": None})
    return statuses
