"""The collection's latents as the hyperprior codecs take them: checked, one channel count."""

from __future__ import annotations

import numpy as np

from latentpress.codecs.base import CodecError, CodecInput

MAX_VALUES = 1 << 26
"""Largest code (N * h * w) a payload may describe."""


def training_latents(items: list[CodecInput], codec: str) -> list[np.ndarray]:
    """The checked latents of ``items`` (see ``checked_latent``): at least one, all of
    one channel count, else ``CodecError`` naming ``codec``."""
    latents = [checked_latent(item, codec) for item in items]
    if not latents:
        raise CodecError(f"{codec} needs at least one image to train on")
    channels = {z.shape[0] for z in latents}
    if len(channels) > 1:
        raise CodecError(f"{codec} trains on latents of one channel count, got {sorted(channels)}")
    return latents


def checked_latent(item: CodecInput, codec: str) -> np.ndarray:
    """``item``'s latent as float32 (C, h, w); ``CodecError`` naming ``codec`` and the
    image unless it is non-empty, in size and finite."""
    latent = item.latent
    if latent is None or latent.ndim != 3 or latent.size == 0 or max(latent.shape[1:]) >= 1 << 16:
        raise CodecError(
            f"{codec} needs a non-empty (C, h, w) latent, image {item.image_id} has "
            f"{None if latent is None else latent.shape}"
        )
    latent = np.asarray(latent, dtype=np.float32)
    if not np.all(np.isfinite(latent)):
        raise CodecError(f"latent of image {item.image_id} has non-finite values")
    return latent
