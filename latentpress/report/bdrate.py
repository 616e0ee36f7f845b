"""Bjontegaard delta rate: the mean rate difference of two codecs at equal quality.

Each codec's curve is the natural log of its rate as a function of the quality
metric, interpolated piecewise-cubically through its points (monotone PCHIP, the
Fritsch-Carlson slopes, as in the current Bjontegaard practice: it does not overshoot
as one cubic polynomial through all points can). Both interpolants are integrated
exactly over the quality interval the two curves share; the mean difference of the
log-rates there, ``d``, gives ``BD-rate = exp(d) - 1``.

The direction of the metric needs no flag: the mean of the log-rate over a quality
interval is the same whether higher (PSNR) or lower (LPIPS, DISTS) values are
better, and PCHIP is symmetric under reversing the quality axis. A negative BD-rate
always means the test codec needs fewer bits than the anchor for the same quality.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class BDRateError(ValueError):
    """Curves that cannot be compared (too few points, no shared quality interval)."""


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
    within: tuple[float, float] | None = None,
) -> float:
    """BD-rate of the test curve against the anchor, in percent (negative: fewer bits),
    over the quality interval both curves cover, narrowed to ``within`` if given (a
    band of quality, to see where a saving comes from)."""
    ax, ay = _curve(anchor_rate, anchor_quality, "anchor")
    tx, ty = _curve(test_rate, test_quality, "test")
    low, high = shared_interval(ax, tx)
    if within is not None:
        low, high = max(low, min(within)), min(high, max(within))
    if not high > low:
        band = "" if within is None else f", within {min(within):.4g}..{max(within):.4g}"
        raise BDRateError(
            f"no shared quality interval: anchor {ax[0]:.4g}..{ax[-1]:.4g}, test {tx[0]:.4g}..{tx[-1]:.4g}{band}"
        )
    anchor_mean = _integral(ax, ay, low, high) / (high - low)
    test_mean = _integral(tx, ty, low, high) / (high - low)
    return float(np.expm1(test_mean - anchor_mean) * 100.0)


def bd_rate_or_reason(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
    within: tuple[float, float] | None = None,
) -> tuple[float | None, str]:
    """``bd_rate``, or ``None`` and why when the curves cannot be compared (for tables
    that show every pair)."""
    try:
        return bd_rate(anchor_rate, anchor_quality, test_rate, test_quality, within), ""
    except BDRateError as exc:
        return None, str(exc)


def shared_interval(anchor_quality: Sequence[float], test_quality: Sequence[float]) -> tuple[float, float]:
    """The quality interval both curves cover (empty when the first exceeds the second)."""
    return max(min(anchor_quality), min(test_quality)), min(max(anchor_quality), max(test_quality))


def _curve(rate: Sequence[float], quality: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Quality (sorted, distinct) and log-rate; log-rates of equal qualities are averaged."""
    rate, quality = np.asarray(rate, dtype=float), np.asarray(quality, dtype=float)
    if rate.shape != quality.shape or rate.ndim != 1:
        raise BDRateError(f"{name}: rates and qualities must be two lists of equal length")
    if not (np.isfinite(rate).all() and np.isfinite(quality).all() and (rate > 0).all()):
        raise BDRateError(f"{name}: rates must be positive and qualities finite")
    x, inverse = np.unique(quality, return_inverse=True)
    if len(x) < 2:
        raise BDRateError(f"{name}: needs at least two distinct quality values, got {len(x)}")
    y = np.bincount(inverse, weights=np.log(rate)) / np.bincount(inverse)
    return x, y


def pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Derivatives at the knots of the monotone piecewise-cubic Hermite interpolant."""
    h = np.diff(x)
    delta = np.diff(y) / h
    if len(x) == 2:
        return np.array([delta[0], delta[0]])
    slopes = np.zeros_like(y)
    w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
    same_sign = delta[:-1] * delta[1:] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    slopes[1:-1] = np.where(same_sign, harmonic, 0.0)
    slopes[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    slopes[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return slopes


def _end_slope(h0: float, h1: float, d0: float, d1: float) -> float:
    """One-sided three-point end slope, limited to keep the end interval monotone."""
    slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    if np.sign(slope) != np.sign(d0):
        return 0.0
    if np.sign(d0) != np.sign(d1) and abs(slope) > 3 * abs(d0):
        return 3 * d0
    return slope


def _integral(x: np.ndarray, y: np.ndarray, low: float, high: float) -> float:
    """Exact integral of the PCHIP interpolant of (x, y) over [low, high] within [x0, xn]."""
    slopes = pchip_slopes(x, y)
    return _from_start(x, y, slopes, high) - _from_start(x, y, slopes, low)


def _from_start(x: np.ndarray, y: np.ndarray, slopes: np.ndarray, z: float) -> float:
    """Integral of the interpolant from ``x[0]`` to ``z``, summed segment by segment."""
    total = 0.0
    for k in range(len(x) - 1):
        if z <= x[k]:
            break
        h = x[k + 1] - x[k]
        t = min(1.0, (z - x[k]) / h)
        # Antiderivatives of the four cubic Hermite basis functions, from 0 to t.
        h00 = t**4 / 2 - t**3 + t
        h10 = t**4 / 4 - 2 * t**3 / 3 + t**2 / 2
        h01 = -(t**4) / 2 + t**3
        h11 = t**4 / 4 - t**3 / 3
        total += h * (y[k] * h00 + h * slopes[k] * h10 + y[k + 1] * h01 + h * slopes[k + 1] * h11)
    return total
