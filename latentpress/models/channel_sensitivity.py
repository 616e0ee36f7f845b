"""How much each channel of a VAE's latent matters to what LPIPS and DISTS see.

A codec that measures its distortion as each latent channel's squared error over the
channel's variance treats the channels alike; the VAE decoder does not. Noise of the
same share of each channel's spread, put into one channel at a time of real photos'
latents and drawn by the decoder, raises pixel LPIPS plus DISTS by amounts that differ
nine- to twentyfold between TAESD3's 16 channels (docs/glc.md). :func:`channel_sensitivity`
measures that rise per unit of normalised noise variance, on a collection's own
photos, as weights of mean 1: the diagonal of a quadratic model of the pixel metrics
in the latent, which a codec's rate-distortion loss can weigh its channels by.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NOISE = 0.35
"""Standard deviation of the noise, in each channel's standard deviations: about the
error of a glc or relic code at middle qualities."""
PHOTOS = 8
CROP = 256
"""Side in pixels of the window judged in each photo (its centre)."""
FLOOR = 0.05
"""No weight falls under this share of the mean."""


def channel_sensitivity(
    vae,
    images: Sequence[np.ndarray],
    latents: Sequence[np.ndarray],
    std: np.ndarray,
    seed: int = 0,
) -> np.ndarray:
    """(C,) pixel LPIPS plus DISTS added per unit of normalised noise variance in each
    channel of ``latents`` ((C, h, w) of the VAE ``vae``, with their ``images``), mean
    1, floored at ``FLOOR``; measured on the centre window of up to ``PHOTOS`` photos.
    ``std`` is each channel's standard deviation in the collection. ``ValueError`` if
    no photo is large enough for the metrics."""
    from latentpress.models.metrics import MIN_SIZE, Reference

    rng = np.random.default_rng(seed)
    rises, measured = np.zeros(len(std)), 0
    for image, latent in zip(images, latents, strict=True):
        if measured == PHOTOS:
            break
        side = min(CROP, image.shape[0], image.shape[1], latent.shape[1] * vae.stride, latent.shape[2] * vae.stride)
        cells = side // vae.stride
        if cells * vae.stride < MIN_SIZE:
            continue
        top, left = (latent.shape[1] - cells) // 2, (latent.shape[2] - cells) // 2
        window = np.ascontiguousarray(latent[:, top : top + cells, left : left + cells])
        s = vae.stride
        pixels = np.ascontiguousarray(image[top * s : (top + cells) * s, left * s : (left + cells) * s])
        candidates = [window]
        for channel, spread in enumerate(std):
            moved = window.copy()
            noise = rng.uniform(-0.5, 0.5, window[channel].shape) * np.sqrt(12) * NOISE * spread
            moved[channel] += noise.astype(np.float32)
            candidates.append(moved)
        drawn = vae.decode(candidates, [(pixels.shape[1], pixels.shape[0])] * len(candidates))
        costs = [v["lpips"] + v["dists"] for v in Reference(pixels).measure(drawn, ("lpips", "dists"))]
        rises += (np.array(costs[1:]) - costs[0]) / NOISE**2
        measured += 1
    if not measured:
        raise ValueError(f"channel sensitivity needs photos of at least {MIN_SIZE} pixels a side")
    rises = np.maximum(rises / measured, 0)
    if rises.mean() <= 0:
        return np.ones(len(std))
    weights = np.maximum(rises / rises.mean(), FLOOR)
    return weights / weights.mean()
