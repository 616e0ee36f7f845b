"""How much of the tuning each anchor quality decodes with, chosen by what LPIPS and
DISTS see on photos the tuning did not see."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from latentpress.codecs.tuned_decoder.stored import ANCHOR_QUALITIES, weights_key

BLEND_CHOICES = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Blends of the tuning an anchor may decode with (0: the stock decoder)."""


def choose_blends(
    decoding: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    state: dict[str, np.ndarray],
    vae,
    judge: tuple[torch.Tensor, torch.Tensor],
) -> np.ndarray:
    """Per anchor quality, the blend of ``BLEND_CHOICES`` whose drawings of the codec's
    ``decoding`` of the ``judge`` crops (latents, pixels in [-1, 1]) have the lowest
    mean pixel LPIPS plus DISTS."""
    from latentpress.models.metrics import KeepBudget, Reference
    from latentpress.models.vae import DecoderWeights

    latents, pixels = judge
    originals = list(pixels.add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy())
    budget = KeepBudget(1 << 30)
    references = [Reference(np.ascontiguousarray(o), str(vae.device), budget) for o in originals]
    sizes = [(o.shape[1], o.shape[0]) for o in originals]
    decoders = [vae.with_decoder(DecoderWeights(weights_key(state), state, blend)) for blend in BLEND_CHOICES]
    blends = np.zeros(len(ANCHOR_QUALITIES), np.float32)
    for anchor, quality in enumerate(ANCHOR_QUALITIES):
        with torch.no_grad():
            qualities = torch.full((len(latents),), quality, device=vae.device)
            decoded = list(decoding(latents.to(vae.device), qualities).cpu().numpy())
        images = [decoder.decode(decoded, sizes) for decoder in decoders]
        scores = np.zeros(len(BLEND_CHOICES))
        for index, reference in enumerate(references):
            for choice, measured in enumerate(reference.measure([i[index] for i in images], ("lpips", "dists"))):
                scores[choice] += measured["lpips"] + measured["dists"]
        blends[anchor] = BLEND_CHOICES[int(np.argmin(scores))]
    return blends
