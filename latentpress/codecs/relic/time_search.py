"""Choosing relic's denoising time at encoding, for what LPIPS and DISTS see.

The parameter network predicts ``t`` from the latent alone, and learns it from a
squared error in latent space, which rewards smoothing: its ``t`` is too large at
low rates (docs/relic.md). The encoder knows the original, so it can instead try
times: decode the code's ``y_hat`` from each candidate (the decoder's own DDIM path,
the same result the decoder will get) and keep the one whose decoded latent costs
least. Two costs (``RelicParams.time_search``):

- ``distance``: the latent perceptual distance to the original latent
  (``models.latent_distance``, calibrated to LPIPS plus DISTS); no VAE decoding, but
  measured to pick the wrong times (docs/relic.md).
- ``pixels``: pixel LPIPS plus DISTS of the VAE's decoding against the original
  image; a VAE decoding and both metrics per candidate.

The time travels in the payload as before, so decoders and stored payloads are
unchanged.

The search (:func:`best_time`): a coarse grid and the predicted time, then around the
best so far at half the spacing, ``refinements`` times: ``len(coarse) + 1 + 2 *
refinements`` candidates at most.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from latentpress.codecs.relic import schedule
from latentpress.models.tiling import Window, spread_windows, windows

if TYPE_CHECKING:
    from latentpress.models.metrics import KeepBudget
    from latentpress.models.vae import DecoderWeights

COARSE_TIMES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
"""Times the latent distance tries first. Best times measured by hand on Kodak photos
lie in 0-0.3 (docs/relic.md's t sweep); 0.6 leaves room for coarser codes than those."""
REFINEMENTS = 2
PIXEL_COARSE_TIMES = (0.0, 0.1, 0.2, 0.3)
"""Times the pixel search tries first (each costs a VAE decoding and two metrics):
the range of the best hand-set times; the predicted time and the refinement reach
beyond it where the best lies at its edge."""
PIXEL_REFINEMENTS = 1
PIXEL_WINDOW, PIXEL_WINDOWS, PIXEL_MARGIN = 32, 2, 2
"""Photos of more latent cells than ``PIXEL_WINDOWS ** 2`` windows of ``PIXEL_WINDOW``
cells a side (256 pixels for TAESD: over 0.26 MP) are judged on that many windows
spread over the photo, each decoded with ``PIXEL_MARGIN`` cells of context: a cost
per candidate that does not grow with the photo. On Kodak photos the windows chose
the time the whole photo chose 11 times in 12 (docs/relic.md)."""
KEEP_BYTES = 512 << 20
"""The original's LPIPS and DISTS features kept across candidates up to this size
(DISTS's take about 500 bytes a pixel: photos over 1 MP recompute some per candidate)."""


@dataclass(frozen=True)
class TimeSearch:
    """What a candidate time's decoded latent costs, and the grid it is searched on."""

    cost: Callable[[np.ndarray], float]
    """Of a decoded (C, h, w) latent in the VAE's units; less is better."""
    coarse: tuple[float, ...] = COARSE_TIMES
    refinements: int = REFINEMENTS


def best_time(
    cost: Callable[[float], float], predicted: float, coarse: tuple[float, ...] = COARSE_TIMES,
    refinements: int = REFINEMENTS,
) -> float:  # fmt: skip
    """The time in [0, ``schedule.T_MAX``] of least ``cost`` found by the search (ties:
    the smaller time, less denoising)."""
    costs: dict[float, float] = {}

    def tried(t: float) -> float:
        t = round(min(max(t, 0.0), schedule.T_MAX), 3)
        if t not in costs:
            costs[t] = cost(t)
        return costs[t]

    for t in (*coarse, predicted):
        tried(t)
    spacing = coarse[1] - coarse[0]
    for _ in range(refinements):
        spacing /= 2
        best = min(costs, key=lambda t: (costs[t], t))
        tried(best - spacing)
        tried(best + spacing)
    return min(costs, key=lambda t: (costs[t], t))


def by_distance(latent: np.ndarray, vae_name: str) -> TimeSearch:
    """The search by the latent perceptual distance of ``vae_name`` to ``latent``."""
    import torch

    from latentpress.models.latent_distance import shipped_latent_distance

    distance = shipped_latent_distance(vae_name)
    device = next(distance.buffers()).device
    with torch.inference_mode():
        reference = distance.features(torch.from_numpy(latent)[None].to(device))

    def cost(decoded: np.ndarray) -> float:
        with torch.inference_mode():
            return float(distance(torch.from_numpy(decoded)[None].to(device), reference, "both")[0])

    return TimeSearch(cost)


def by_pixels(image: np.ndarray, vae_name: str, weights: DecoderWeights | None = None) -> TimeSearch:
    """The search by pixel LPIPS plus DISTS against ``image`` (H, W, 3) of the VAE
    ``vae_name``'s decoding (with the decoder ``weights``, if given), whole for small
    photos, else in ``PIXEL_WINDOWS`` windows spread over the photo."""
    from latentpress.models.metrics import KeepBudget
    from latentpress.models.vae import load_vae

    vae = load_vae(vae_name).with_decoder(weights)
    height, width = vae.latent_size(image.shape[1], image.shape[0])[::-1]
    if height * width <= PIXEL_WINDOWS**2 * PIXEL_WINDOW**2:
        judged = windows(height, width, max(height, width), 0)  # the whole photo
    else:
        judged = spread_windows(height, width, PIXEL_WINDOW, PIXEL_WINDOWS, PIXEL_MARGIN)
    judge = PixelJudge(image, vae, judged, KeepBudget(KEEP_BYTES))

    def cost(decoded: np.ndarray) -> float:
        return float(judge.costs([[decoded[(slice(None), *w.window())] for w in judged]])[0])

    return TimeSearch(cost, PIXEL_COARSE_TIMES, PIXEL_REFINEMENTS)


class PixelJudge:
    """Windows of a photo judged by pixel LPIPS plus DISTS: the VAE's decoding of each
    window's latent, its core against the original's (whose side of both metrics is
    computed once)."""

    def __init__(self, image: np.ndarray, vae, judged: list[Window], budget: KeepBudget | None = None) -> None:
        from latentpress.models.metrics import Reference

        self.vae, self.windows = vae, judged
        self.references = [Reference(np.ascontiguousarray(image[w.core(vae.stride)]), budget=budget) for w in judged]

    def costs(self, candidates: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """Mean LPIPS plus DISTS over the windows of each candidate: ``candidates[k][n]``
        is candidate ``k``'s latent (C, h, w) on window ``n`` (``Window.window()``)."""
        s, total = self.vae.stride, np.zeros(len(candidates))
        for n, (window, reference) in enumerate(zip(self.windows, self.references, strict=True)):
            pixels = []
            for candidate in candidates:
                latent = np.ascontiguousarray(candidate[n])
                decoded = self.vae.decode([latent], [(latent.shape[2] * s, latent.shape[1] * s)])[0]
                core = decoded[window.core_in_window(s)][: reference.image.shape[0], : reference.image.shape[1]]
                pixels.append(np.ascontiguousarray(core))
            total += [v["lpips"] + v["dists"] for v in reference.measure(pixels, ("lpips", "dists"))]
        return total / len(self.windows)
