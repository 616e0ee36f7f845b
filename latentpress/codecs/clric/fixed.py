"""The entropy model in integer arithmetic, shared bit for bit by encoder and decoder.

The ARM's weights are integers ``w`` standing for ``w / 2**shift``; activations are
int64 fixed point with ``FRACTION`` fractional bits; every product and sum is exact
and every rescaling is an arithmetic shift (floor), so the same integers go in and
out whatever the batch or machine. The outputs map to a Laplace location on a
``2**-FRACTION`` grid and a scale from a table indexed by the log-scale rounded to
``1 / LOG_STEPS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentpress.codecs.clric.model import LOG_SCALE_MAX, LOG_SCALE_MIN

FRACTION = 8
"""Fractional bits of activations."""
LOG_STEPS = 16
"""Log-scale steps per unit (natural log)."""
_LOG_LO, _LOG_HI = int(LOG_SCALE_MIN * LOG_STEPS), int(LOG_SCALE_MAX * LOG_STEPS)
SCALES = np.exp(np.arange(_LOG_LO, _LOG_HI + 1) / LOG_STEPS)
"""Laplace scale of each log-scale index (the same table on both sides)."""


@dataclass(frozen=True)
class IntArm:
    """ARM parameters as integers: weights ``(out, in)`` and biases ``(out,)``."""

    weights: tuple[np.ndarray, np.ndarray, np.ndarray]
    biases: tuple[np.ndarray, np.ndarray, np.ndarray]
    weight_shift: int
    bias_shift: int

    def __call__(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour symbols ``(8, n)`` -> Laplace location and scale (float64, ``(n,)``)."""
        x = np.asarray(context, dtype=np.int64) << FRACTION
        (w1, w2, w3), (b1, b2, b3) = self.weights, self.biases
        h1 = np.maximum(self._layer(w1, b1, x), 0)
        h2 = np.maximum(self._layer(w2, b2, h1), 0) + h1
        out = self._layer(w3, b3, h2)
        loc = out[0].astype(np.float64) / (1 << FRACTION)
        index = (out[1] * LOG_STEPS + (1 << (FRACTION - 1))) >> FRACTION
        return loc, SCALES[np.clip(index, _LOG_LO, _LOG_HI) - _LOG_LO]

    def _layer(self, weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``(w @ x + b)`` at the activations' scale: exact sums, one floor shift."""
        bias_at = _shift(bias.astype(np.int64), FRACTION + self.weight_shift - self.bias_shift)
        return (weight.astype(np.int64) @ x + bias_at[:, None]) >> self.weight_shift


def _shift(values: np.ndarray, bits: int) -> np.ndarray:
    return values << bits if bits >= 0 else values >> -bits
