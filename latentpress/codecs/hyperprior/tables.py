"""The fixed tables both sides of a GLC stream share: quantization steps, spreads,
and the symbol counts the range coder uses.

A code value is coded as the integer ``s = round((y - mean) / step)``; ``step`` and
the spread ``ratio`` (the standard deviation of ``s``) come from tables indexed by
the part networks' outputs (log2 values rounded to eighths). Each spread has a count
table over ``[-R, R]``: the Gaussian's mass of each integer bin in units of
``2**-16``, the tails folded into the end bins and every count at least 1, so every
symbol in range can be coded. The counts are computed with ``math.erf`` and
``math.exp`` in float64 and rounded, the same on both sides.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

import numpy as np

FRACTION = 8
"""Fractional bits of the fixed-point values of means and decoded code values."""
STEPS_PER_OCTAVE = 8
"""Log2 resolution of the step and spread tables."""
DELTA_LOG2_RANGE = (-4.0, 4.0)
RATIO_LOG2_RANGE = (-6.0, 4.0)
Z_RANGE = 48
"""``z`` is clamped to [-Z_RANGE, Z_RANGE]."""
SPREAD_WIDTH = 6.0
"""A spread's symbols run over +-(SPREAD_WIDTH * ratio + 1); values beyond are clamped."""
MAX_SYMBOL = 128
_TOTAL = 1 << 16


def _log2_grid(low: float, high: float) -> np.ndarray:
    return np.arange(round(low * STEPS_PER_OCTAVE), round(high * STEPS_PER_OCTAVE) + 1) / STEPS_PER_OCTAVE


DELTA_LOG2 = _log2_grid(*DELTA_LOG2_RANGE)
DELTAS = np.round(np.exp2(DELTA_LOG2) * (1 << FRACTION)) / (1 << FRACTION)
"""Quantization steps, each a multiple of ``2**-FRACTION`` (so decoded values stay on
the fixed-point grid)."""
RATIO_LOG2 = _log2_grid(*RATIO_LOG2_RANGE)
RATIOS = np.exp2(RATIO_LOG2)
"""Spreads of the coded integers (their standard deviation)."""


def index_of(log2_fixed: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Table index of log2 values given in fixed point (``2**-FRACTION`` units):
    rounded to ``1 / STEPS_PER_OCTAVE`` in integer arithmetic and clipped."""
    eighths = np.floor((log2_fixed * STEPS_PER_OCTAVE + (1 << (FRACTION - 1))) / (1 << FRACTION))
    offset = round(grid[0] * STEPS_PER_OCTAVE)
    return np.clip(eighths - offset, 0, grid.size - 1).astype(np.int64)


def symbol_range(ratio_index: int) -> int:
    """``R`` of a spread: its symbols run over ``[-R, R]``."""
    return min(MAX_SYMBOL, math.ceil(SPREAD_WIDTH * RATIOS[ratio_index]) + 1)


LIMITS = np.array([symbol_range(i) for i in range(RATIOS.size)])
"""``R`` of every spread."""


@cache
def gaussian_counts(ratio_index: int) -> np.ndarray:
    """Counts of the symbols ``-R..R`` under a Gaussian of std ``RATIOS[ratio_index]``."""
    ratio, limit = float(RATIOS[ratio_index]), symbol_range(ratio_index)
    edges = [(s - 0.5) / (ratio * math.sqrt(2.0)) for s in range(-limit + 1, limit + 1)]
    cdf = np.array([0.0] + [0.5 * (1.0 + math.erf(e)) for e in edges] + [1.0])
    return _counts(np.diff(cdf))


@lru_cache(maxsize=256)
def laplace_counts(loc_fixed: int, scale_index: int) -> np.ndarray:
    """Counts of ``-Z_RANGE..Z_RANGE`` under Laplace(loc_fixed / 2**FRACTION, 2**(scale_index / 8))."""
    loc, scale = loc_fixed / (1 << FRACTION), 2.0 ** (scale_index / STEPS_PER_OCTAVE)

    def cdf(t: float) -> float:
        s = (t - loc) / scale
        return 0.5 * math.exp(s) if s < 0 else 1.0 - 0.5 * math.exp(-s)

    cuts = np.array([0.0] + [cdf(s + 0.5) for s in range(-Z_RANGE, Z_RANGE)] + [1.0])
    return _counts(np.diff(cuts))


def _counts(probabilities: np.ndarray) -> np.ndarray:
    """Integer counts near ``probabilities * 2**16``, each at least 1."""
    return np.maximum(1, np.floor(probabilities * _TOTAL + 0.5)).astype(np.int64)
