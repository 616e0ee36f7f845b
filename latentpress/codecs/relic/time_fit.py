"""Relic's last training stage: the parameter network's time fitted to what LPIPS
and DISTS see, on photos the model did not learn from.

The codec stage teaches the parameter network P its time ``t`` from a squared error
in latent space, which rewards smoothing, on photos whose latents the denoiser has
learnt by heart: on new photos its ``t`` comes out too large, most at low rates
(docs/relic.md). The encoder's pixel search (``time_search="pixels"``) fixes that at
about 30 s a photo; this stage moves the measuring into training, once per
collection, on photos held out of the other stages (``codec.held_out_photos``):

1. :func:`measure`: each photo is coded whole at several qualities, as the encoder
   codes it, the code decoded from each time of a grid through the denoiser and the
   VAE, and pixel LPIPS plus DISTS against the original measured on a few windows.
2. :func:`fit_time`: only P's time output is refitted (one row of its last layer:
   a weight per pooled feature and a bias), so that its time lands where those
   measurements are least (interpolated between grid times). The bias moves
   freely; the weights are held near their trained values by a ridge whose strength
   is chosen by fitting on half the photos and measuring on the other half, so a few
   photos that cannot tell how the best time depends on the photo only shift it.

The code (P's scales and shifts, the entropy model) is unchanged, and so is every
decoder: the time travels in the payload as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from latentpress.codecs.relic import schedule
from latentpress.codecs.relic.params import TimeFit
from latentpress.codecs.relic.time_search import PixelJudge
from latentpress.models.tiling import Window

RIDGES = (float("inf"), 10.0, 1.0, 0.1, 0.01)
"""Ridge strengths tried on held-out photos (inf: the bias alone)."""


@dataclass(frozen=True)
class Measurements:
    """What each photo and quality costs when decoded from each time."""

    features: torch.Tensor
    """(S, F) P's pooled features of each photo coded at one quality."""
    costs: torch.Tensor
    """(S, K) pixel LPIPS plus DISTS of its windows (mean) decoded from each of ``times``."""
    times: torch.Tensor
    """(K,) increasing."""
    photo: torch.Tensor
    """(S,) index of each sample's photo."""


def measure(
    loaded,
    photos: Sequence[tuple[np.ndarray, np.ndarray]],
    vae,
    fit: TimeFit,
    progress: Callable[[int, int], None] | None = None,
) -> Measurements:
    """Code each of ``photos`` ((H, W, 3) image, (C, h, w) latent of ``vae``) whole with
    ``loaded`` (a ``codec.LoadedModel``) at each quality, as the encoder does, decode
    the code from every time of ``fit.times`` and judge ``fit.windows`` random
    windows of it (the same ones for every time) as the encoder's pixel search does;
    ``progress(done, total)`` after each photo."""
    rng = np.random.default_rng(fit.seed)
    features, costs, photo_index = [], [], []
    for index, (image, latent) in enumerate(photos):
        rows = min(latent.shape[1], image.shape[0] // vae.stride)
        cols = min(latent.shape[2], image.shape[1] // vae.stride)
        for quality in fit.qualities:
            _, y_hat = loaded.code(latent, quality)
            judge = PixelJudge(image, vae, [_window(rows, cols, fit, rng) for _ in range(fit.windows)])
            costs.append(judge.costs([_denoised(loaded, y_hat, t, judge.windows) for t in fit.times]))
            features.append(pooled_features(loaded.model, latent, quality))
            photo_index.append(index)
        if progress is not None:
            progress(index + 1, len(photos))
    return Measurements(torch.stack(features), torch.tensor(np.array(costs), dtype=torch.float32),
                        torch.tensor(fit.times, dtype=torch.float32), torch.tensor(photo_index))  # fmt: skip


def _window(rows: int, cols: int, fit: TimeFit, rng: np.random.Generator) -> Window:
    """A random window (a core of ``fit.window`` cells and its margin) of a ``rows`` x
    ``cols`` latent."""
    side_r, side_c = min(fit.window, rows), min(fit.window, cols)
    top, left = int(rng.integers(0, rows - side_r + 1)), int(rng.integers(0, cols - side_c + 1))
    return Window(max(0, top - fit.margin), max(0, left - fit.margin), min(rows, top + side_r + fit.margin),
                  min(cols, left + side_c + fit.margin), top, left, top + side_r, left + side_c)  # fmt: skip


def _denoised(loaded, y_hat: torch.Tensor, t: float, windows: list[Window]) -> list[np.ndarray]:
    """The decoder's latent from ``y_hat`` (1, C, h, w) at ``t`` on each of ``windows``:
    denoised whole where the decoder denoises whole, else each window with the
    decoder's context around it (``codec.DENOISE_MARGIN``)."""
    from latentpress.codecs.relic.codec import DENOISE_MARGIN, DENOISE_TILE

    height, width = y_hat.shape[2:]
    if max(height, width) <= DENOISE_TILE:
        whole = loaded.to_latent(loaded.denoise(y_hat, t))
        return [whole[(slice(None), *window.window())] for window in windows]
    out = []
    for window in windows:
        top, left = max(0, window.top - DENOISE_MARGIN), max(0, window.left - DENOISE_MARGIN)
        bottom, right = min(height, window.bottom + DENOISE_MARGIN), min(width, window.right + DENOISE_MARGIN)
        region = loaded.to_latent(loaded.denoise(y_hat[..., top:bottom, left:right], t))
        out.append(region[:, window.top - top : window.bottom - top, window.left - left : window.right - left])
    return out


@torch.inference_mode()
def pooled_features(model, latent: np.ndarray, quality: float) -> torch.Tensor:
    """(F,) P's pooled features of ``latent`` (C, h, w, the VAE's units) at ``quality``."""
    y = model.normalise(torch.from_numpy(latent))[None]
    return model.parameter_net.features(y, torch.tensor([quality]))[0]


def interpolated(costs: torch.Tensor, times: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(S,) each row of ``costs`` (S, K) at ``t`` (S,), linear between ``times`` and
    beyond the last along the last segment."""
    k = torch.searchsorted(times, t.detach().contiguous()).clamp(1, len(times) - 1)
    t0, t1 = times[k - 1], times[k]
    c0, c1 = costs.gather(1, (k - 1)[:, None])[:, 0], costs.gather(1, k[:, None])[:, 0]
    return c0 + (c1 - c0) * (t - t0) / (t1 - t0)


def fit_row(
    data: Measurements, weight: torch.Tensor, bias: float, ridge: float, fit: TimeFit, rows: torch.Tensor | None = None
) -> tuple[torch.Tensor, float]:
    """P's time row (weight (F,), bias) refitted on ``data`` (its ``rows`` only, if
    given): least mean interpolated cost, plus ``ridge`` times the squared change of
    the weights on standardised features (``inf``: the weights kept)."""
    features, costs = data.features, data.costs
    if rows is not None:
        features, costs = features[rows], costs[rows]
    mean, std = features.mean(0), features.std(0, unbiased=False).clamp_min(1e-6)
    v0 = weight * std
    v = v0.clone().requires_grad_(not np.isinf(ridge))
    b = torch.tensor(float(bias + weight @ mean), requires_grad=True)
    standard = (features - mean) / std
    optimizer = torch.optim.Adam([b, v] if v.requires_grad else [b], lr=fit.learning_rate)
    for _ in range(fit.steps):
        t = torch.sigmoid(b + standard @ v) * schedule.T_MAX
        loss = interpolated(costs, data.times, t).mean()
        if v.requires_grad:
            loss = loss + ridge * ((v - v0) ** 2).sum() / len(v)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    v = v.detach()
    return v / std, float(b.detach() - (v / std) @ mean)


def mean_cost(data: Measurements, weight: torch.Tensor, bias: float, rows: torch.Tensor) -> float:
    """Mean interpolated cost of ``rows`` at the time the row (``weight``, ``bias``) predicts."""
    t = torch.sigmoid(data.features[rows] @ weight + bias) * schedule.T_MAX
    return float(interpolated(data.costs[rows], data.times, t).mean())


@dataclass(frozen=True)
class FitReport:
    """What the fit chose and what it gained on the measured photos (costs: mean
    LPIPS plus DISTS of their windows)."""

    ridge: float
    held_out: dict[float, float]
    """Mean cost of each ridge tried, fitted on half the photos and measured on the other."""
    before: float
    """Mean cost at the trained time."""
    after: float
    """Mean cost at the refitted time."""
    best: float
    """Mean of each photo and quality's least measured cost (the floor)."""

    def summary(self) -> str:
        return (f"LPIPS+DISTS {self.before:.4f} at the trained time, {self.after:.4f} at the refitted one "
                f"(best measured {self.best:.4f}), ridge {self.ridge:g}")  # fmt: skip


def fit_stage(
    loaded, photos: Sequence[tuple[np.ndarray, np.ndarray]], vae_name: str, fit: TimeFit,
    progress: Callable[[int, int], None] | None = None,
) -> FitReport:  # fmt: skip
    """Measure ``photos`` with ``loaded`` (a ``codec.LoadedModel``) and the VAE
    ``vae_name``, and refit its model's time in place."""
    from latentpress.models.vae import load_vae

    return fit_time(loaded.model, measure(loaded, photos, load_vae(vae_name), fit, progress), fit)


def fit_time(model, data: Measurements, fit: TimeFit) -> FitReport:
    """Refit ``model``'s time row in place on ``data`` (see the module docstring)."""
    out = model.parameter_net.out
    weight, bias = out.weight[-1, :, 0, 0].detach().clone(), float(out.bias[-1])
    halves = [data.photo % 2 == 0, data.photo % 2 == 1]
    held_out = {}
    for ridge in RIDGES:
        scores = []
        for train, test in (halves, halves[::-1]):
            if train.any() and test.any():
                w, b = fit_row(data, weight, bias, ridge, fit, train)
                scores.append(mean_cost(data, w, b, test))
        held_out[ridge] = float(np.mean(scores)) if scores else float("nan")
    known = {r: c for r, c in held_out.items() if np.isfinite(c)}
    ridge = min(known, key=known.get) if known else float("inf")
    everything = torch.ones(len(data.photo), dtype=torch.bool)
    before = mean_cost(data, weight, bias, everything)
    w, b = fit_row(data, weight, bias, ridge, fit)
    with torch.no_grad():
        out.weight[-1, :, 0, 0] = w
        out.bias[-1] = b
    return FitReport(ridge, held_out, before, mean_cost(data, w, b, everything), float(data.costs.min(1).values.mean()))
