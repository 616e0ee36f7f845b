"""Perceptual weight maps: where in a latent an error costs LPIPS and DISTS.

The latent perceptual distance (``models.latent_distance``) of a latent ``y`` and
``y + e`` is a sum of squared differences of normalised decoder features, so near
``e = 0`` it is the quadratic form ``e' H e``. The diagonal of ``H`` says how much an
error at each latent value costs; clric weights its squared error by it (normalised
to mean 1, raised to ``ClricParams.perceptual_weighting``), so that its bits go where the
distance sees them. The diagonal is estimated once per image from Hessian-vector
products with random sign vectors (Hutchinson), smoothed over neighbouring positions.
"""

from __future__ import annotations

import numpy as np
import torch

from latentpress.codecs.base import CodecError

PROBES = 16
"""Random sign vectors of the diagonal's estimate."""
SMOOTHING = 5
"""Side of the box (latent positions) each estimate is averaged over."""
FLOOR = 0.05
"""Least weight, as a fraction of the mean: no error is free."""


def weight_map(latent: np.ndarray, vae_id: str, exponent: float, seed: int = 0) -> np.ndarray:
    """(C, h, w) float32 weights of mean 1 for the errors of ``latent`` (of the VAE
    ``vae_id``): the latent distance's sensitivity to each value, to ``exponent``."""
    from latentpress.models.latent_distance import LatentDistanceError, shipped_latent_distance

    try:
        distance = shipped_latent_distance(vae_id)
    except (LatentDistanceError, OSError) as exc:
        raise CodecError(f"clric's perceptual weighting needs the latent distance of VAE {vae_id!r}: {exc}") from None
    device = next(distance.buffers()).device
    y = torch.from_numpy(np.asarray(latent, dtype=np.float32))[None].to(device)
    diagonal = _hessian_diagonal(distance, y, seed)
    weights = torch.nn.functional.avg_pool2d(diagonal, SMOOTHING, 1, SMOOTHING // 2, count_include_pad=False)
    weights = weights.clamp_min(FLOOR * float(weights.mean().clamp_min(1e-30)))
    weights = (weights / weights.mean()) ** exponent
    return (weights / weights.mean())[0].cpu().numpy().astype(np.float32)


def _hessian_diagonal(distance: torch.nn.Module, y: torch.Tensor, seed: int) -> torch.Tensor:
    """Hutchinson's estimate of the diagonal of the distance's Hessian at ``y`` (both
    targets, LPIPS and DISTS)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        reference = distance.features(y)
    error = torch.zeros_like(y, requires_grad=True)
    (gradient,) = torch.autograd.grad(distance(y + error, reference, "both").sum(), error, create_graph=True)
    total = torch.zeros_like(y)
    for _ in range(PROBES):
        sign = (torch.randint(0, 2, y.shape, generator=generator) * 2 - 1).to(y)
        (product,) = torch.autograd.grad((gradient * sign).sum(), error, retain_graph=True)
        total += sign * product
    return (total / PROBES).detach()
