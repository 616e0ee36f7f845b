"""Held-aside checks: pixel LPIPS and DISTS beside the latent distance's prediction,
and a distance that drifted from them refreshed to fit them."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from latentpress.models.latent_distance import LatentDistance, load_latent_distance
from latentpress.models.proxy_check import HeldAside
from latentpress.models.vae import load_vae


def _scaled(distance: LatentDistance, factor: float) -> LatentDistance:
    """The same distance with every weight times ``factor``: a proxy that flatters."""
    calibration = distance.calibration
    weights = {name: w * factor for name, w in calibration.weights.items()}
    return LatentDistance(load_vae("taesd").vae.decoder, dataclasses.replace(calibration, weights=weights))


def test_a_flattering_distance_is_refreshed_at_a_check(kodak_crop: np.ndarray) -> None:
    latent = torch.from_numpy(load_vae("taesd").encode([kodak_crop])[0])[None]
    crops = torch.cat([latent, torch.flip(latent, (3,))])
    held = HeldAside(crops, "taesd")
    scale = crops.std()
    decoded = torch.round(crops / (0.5 * scale)) * (0.5 * scale)

    honest = held.check(1, decoded, load_latent_distance("taesd"))  # no refresh asked for
    measured = honest.lpips + honest.dists
    assert 0.01 < honest.lpips < 1 and 0.01 < honest.dists < 1 and honest.refreshed is None
    flattering = _scaled(load_latent_distance("taesd"), 0.05)
    check = held.check(2, decoded, flattering, refresh_beyond=0.15)
    assert (check.lpips, check.dists) == (honest.lpips, honest.dists)  # the same pixels, measured again
    assert check.drift < -0.15 * measured and check.refreshed is not None
    assert abs(check.refreshed - measured) < abs(check.drift)
    assert len(held.terms) == 2 and len(held.measured["lpips"]) == 4  # every pair so far was refitted
    assert flattering.calibration.record["refreshed"]["tap_scales"] == check.scales
    # within the share allowed, a distance is left as it is
    again = held.check(3, decoded, flattering, refresh_beyond=10.0)
    assert again.refreshed is None and again.predicted == check.refreshed
