"""Choosing relic's denoising time at encoding, for what LPIPS and DISTS see.

The parameter network predicts ``t`` from the latent alone, and learns it from a
squared error in latent space, which rewards smoothing: its ``t`` is too large at
low rates (docs/relic.md). The encoder knows the original latent, so it can instead
try times: decode the code's ``y_hat`` from each candidate (the decoder's own DDIM
path, the same result the decoder will get) and keep the one whose latent is closest
to the original by the latent perceptual distance (``models.latent_distance``,
calibrated to LPIPS plus DISTS). The time travels in the payload as before, so
decoders and stored payloads are unchanged.

The search: a coarse grid (``COARSE_TIMES``) and the predicted time, then around the
best so far at half the spacing, twice (``REFINEMENTS``): ``len(COARSE_TIMES) + 1 +
2 * REFINEMENTS`` decodes of the latent at most, a quarter of the grid's spacing
(0.025) at the end.
"""

from __future__ import annotations

from collections.abc import Callable

from latentpress.codecs.relic import schedule

COARSE_TIMES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
"""Times tried first. Best times measured by hand on Kodak photos lie in 0-0.3
(docs/relic.md's t sweep); 0.6 leaves room for coarser codes than those."""
REFINEMENTS = 2


def best_time(cost: Callable[[float], float], predicted: float) -> float:
    """The time in [0, ``schedule.T_MAX``] of least ``cost`` found by the search (ties:
    the smaller time, less denoising)."""
    costs: dict[float, float] = {}

    def tried(t: float) -> float:
        t = round(min(max(t, 0.0), schedule.T_MAX), 3)
        if t not in costs:
            costs[t] = cost(t)
        return costs[t]

    for t in (*COARSE_TIMES, predicted):
        tried(t)
    spacing = COARSE_TIMES[1] - COARSE_TIMES[0]
    for _ in range(REFINEMENTS):
        spacing /= 2
        best = min(costs, key=lambda t: (costs[t], t))
        tried(best - spacing)
        tried(best + spacing)
    return min(costs, key=lambda t: (costs[t], t))
