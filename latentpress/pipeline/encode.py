"""Latent encoding: images through the VAE encoder into the Zarr latent store.

Each latent records its share of the batch's VAE encoding time, which the latent
codecs add to their own encoding time in the ledger.
"""

from __future__ import annotations

import time

import numpy as np

from latentpress.infra import storage
from latentpress.infra.collection import Item
from latentpress.infra.images import decode_image
from latentpress.infra.latent_store import LatentStore
from latentpress.infra.model_files import model_id
from latentpress.pipeline.outcomes import Outcome, failure, unless_transient

LATENT = "latent"
"""The configuration key of latent-encoding outcomes."""


def encode_latents(items: list[Item], latents_url: str, vae_name: str) -> list[Outcome]:
    """Encode the items whose latent is not stored yet; one outcome per item."""
    from latentpress.models.vae import load_vae

    store = LatentStore(latents_url, model_id(vae_name))
    outcomes: list[Outcome] = []
    todo: list[tuple[Item, np.ndarray]] = []
    for item in items:
        try:
            if store.has(item.image_id):
                outcomes.append(Outcome(item.image_id, LATENT, "ok", cached=True))
                continue
            todo.append((item, decode_image(storage.read_bytes(item.source), item.name)))
        except Exception as exc:  # noqa: BLE001
            unless_transient(exc)
            outcomes.append(failure(item.image_id, LATENT, exc, bad_input=False))
    if not todo:
        return outcomes
    start = time.perf_counter()
    try:
        vae = load_vae(vae_name)
        latents = vae.encode([image for _, image in todo])
    except Exception as exc:  # noqa: BLE001
        unless_transient(exc)
        return outcomes + [failure(item.image_id, LATENT, exc, bad_input=False) for item, _ in todo]
    seconds_each = (time.perf_counter() - start) / len(todo)
    for (item, _), latent in zip(todo, latents, strict=True):
        attrs = {
            "source": item.source,
            "width": item.width,
            "height": item.height,
            "padding": [latent.shape[1] * vae.stride - item.height, latent.shape[2] * vae.stride - item.width],
            "vae_id": vae.vae_id,
            "scaling_factor": vae.scaling_factor,
            "shift_factor": vae.shift_factor,
            "encode_seconds": seconds_each,
        }
        store.write(item.image_id, latent, attrs)
        outcomes.append(Outcome(item.image_id, LATENT, "ok"))
    return outcomes
