"""Relic's allocation fit: the parameter network's steps moved between the latent's
channels to where pixel LPIPS and DISTS buy the most per bit, on the photos held out
for the time fit.

The codec stage teaches P each channel's step from the squared error of the
normalised latent, which weighs every channel's error by its spread; the VAE decoder
does not see the channels alike (docs/relic.md: on TAESD a finer step buys three times
as much LPIPS per bit in one channel as in another). Bits are best spent where each
buys the most: at the optimum every channel's slope (cost saved per bit) is the same.

1. :func:`measure`: each photo is coded whole at several qualities, as the encoder
   codes it, and again with one channel's step made finer and then coarser by a
   factor ``2 ** fit.step``, for each channel; a code's rate is its stream's bits,
   its cost the pixel LPIPS plus DISTS of its decoding (from the time the encoder
   writes) on a few windows, the same windows for every code. A channel's slope is
   the cost its finer code saves against its coarser one, per bit it spends.
2. :func:`shifts`: at high rate a channel's distortion falls by a factor 4 per bit,
   so its slope scales as ``2 ** (-2 d)`` when its log2 scale moves by ``d``; the shift
   that brings it to the geometric mean of the channels' slopes is ``d = log2(slope /
   mean) / 2``, averaged over the photos and qualities. The shifts sum to zero: the
   bits move between channels, their total barely changes.
3. :func:`fit_scales` adds the shifts to P's log-scale biases (the same shift at every
   quality and for every photo). Decoders and payloads are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from latentpress.codecs.relic.bitstream import LOG_SCALE_UNITS
from latentpress.codecs.relic.params import ScaleFit
from latentpress.codecs.relic.time_fit import denoised_windows, random_window
from latentpress.codecs.relic.time_search import PixelJudge


@dataclass(frozen=True)
class Slopes:
    """What a finer step of each channel buys, per photo and quality."""

    slopes: np.ndarray
    """(S, C) pixel LPIPS plus DISTS saved per bit per image pixel."""
    cost: np.ndarray
    """(S,) cost of each photo and quality as the encoder codes it."""
    bpp: np.ndarray
    """(S,) its stream's bits per image pixel."""


def measure(
    loaded,
    photos: Sequence[tuple[np.ndarray, np.ndarray]],
    vae,
    fit: ScaleFit,
    progress: Callable[[int, int], None] | None = None,
) -> Slopes:
    """The slopes of each channel for each of ``photos`` ((H, W, 3) image, (C, h, w)
    latent of ``vae``) at each of ``fit.qualities``, coded with ``loaded`` (a
    ``codec.LoadedModel``); ``progress(done, total)`` after each photo."""
    rng = np.random.default_rng(fit.seed)
    step = round(fit.step * LOG_SCALE_UNITS)
    slopes, costs, rates = [], [], []
    for index, (image, latent) in enumerate(photos):
        rows = min(latent.shape[1], image.shape[0] // vae.stride)
        cols = min(latent.shape[2], image.shape[1] // vae.stride)
        pixels = image.shape[0] * image.shape[1]
        for quality in fit.qualities:
            side = loaded.side_info(latent, quality)
            judge = PixelJudge(image, vae, [random_window(rows, cols, fit.window, fit.margin, rng)
                                            for _ in range(fit.windows)])  # fmt: skip
            sides = [side]
            for channel in range(len(side.log_scales)):
                for change in (step, -step):
                    moved = side.log_scales.copy()
                    moved[channel] += change
                    sides.append(replace(side, log_scales=moved))
            coded = [loaded.code_with(latent, s) for s in sides]
            bpp = np.array([8 * len(stream) / pixels for stream, _ in coded])
            cost = judge.costs([denoised_windows(loaded, y_hat, side.time, judge.windows) for _, y_hat in coded])
            finer, coarser = slice(1, None, 2), slice(2, None, 2)
            spent = np.maximum(bpp[finer] - bpp[coarser], 1e-9)
            slopes.append((cost[coarser] - cost[finer]) / spent)
            costs.append(cost[0])
            rates.append(bpp[0])
        if progress is not None:
            progress(index + 1, len(photos))
    return Slopes(np.array(slopes), np.array(costs), np.array(rates))


def shifts(data: Slopes, fit: ScaleFit) -> np.ndarray:
    """(C,) log2 shifts of each channel's scale that even out its slope with the
    others' (see the module docstring)."""
    logs = floored_logs(data, fit)
    if not len(logs):
        return np.zeros(data.slopes.shape[1])
    moved = (logs - logs.mean(1, keepdims=True)).mean(0) / 2
    return np.clip(moved, -fit.max_shift, fit.max_shift)


def floored_logs(data: Slopes, fit: ScaleFit) -> np.ndarray:
    """(S', C) log2 of the slopes of the samples where some channel buys something, a
    slope under ``fit.floor`` of its sample's largest counted as that much."""
    slopes = data.slopes[data.slopes.max(1) > 0]
    return np.log2(np.maximum(slopes, fit.floor * slopes.max(1, keepdims=True)))


@dataclass(frozen=True)
class ScaleFitReport:
    """The shifts the fit chose, and the spread of the channels' slopes they even out."""

    shifts: np.ndarray
    spread: float
    """Geometric mean over the samples of the largest slope over the smallest (floored
    as the fit floors them), before the fit."""

    def summary(self) -> str:
        moved = ", ".join(f"{s:+.2f}" for s in self.shifts)
        return f"log2 scale shifts per channel {moved} (slopes spread {self.spread:.2f}x before)"


def fit_scales(
    loaded, photos: Sequence[tuple[np.ndarray, np.ndarray]], vae_name: str, fit: ScaleFit,
    progress: Callable[[int, int], None] | None = None,
) -> ScaleFitReport:  # fmt: skip
    """Measure ``photos`` with ``loaded`` (a ``codec.LoadedModel``) and the VAE
    ``vae_name``, and shift its model's log2 scales in place."""
    from latentpress.models.vae import load_vae

    data = measure(loaded, photos, load_vae(vae_name), fit, progress)
    moved = shifts(data, fit)
    channels = len(moved)
    with torch.no_grad():
        loaded.model.parameter_net.out.bias[:channels] += torch.from_numpy(moved).float()
    logs = floored_logs(data, fit)
    spread = float(2 ** np.mean(logs.max(1) - logs.min(1))) if len(logs) else float("nan")
    return ScaleFitReport(moved, spread)
