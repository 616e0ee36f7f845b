"""Weight quantization to small floats: sign, clamped exponent, truncated mantissa.

A float format ``(e, m)`` keeps the sign, an exponent clamped to ``[-2**e, 2**e - 1]``
and ``m`` mantissa bits after the implicit leading one, truncated (rounded toward
zero). Magnitudes above the largest value saturate to ``2**(2**e - 1) * (2 - 2**-m)``;
non-zero magnitudes below ``2**-2**e`` become ``2**-2**e`` (the exponent is clamped,
the sign kept); zero stays zero.

A quantized value is a pair of codes: an *exponent symbol* (``0`` for zero, else
``exponent + 2**e + 1``, so ``1 .. 2**(e+1)``) and, for non-zero values, a
*sign-mantissa* word ``sign << m | mantissa``. All values are exact in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_EXPONENT_BITS = 6
MAX_MANTISSA_BITS = 23


@dataclass(frozen=True)
class FloatFormat:
    """A ``(1 + e + m)``-bit float: ``e`` exponent bits, ``m`` mantissa bits."""

    exponent_bits: int
    mantissa_bits: int

    def __post_init__(self) -> None:
        if not 1 <= self.exponent_bits <= MAX_EXPONENT_BITS:
            raise ValueError(f"exponent bits must be in [1, {MAX_EXPONENT_BITS}]")
        if not 0 <= self.mantissa_bits <= MAX_MANTISSA_BITS:
            raise ValueError(f"mantissa bits must be in [0, {MAX_MANTISSA_BITS}]")

    @property
    def min_exponent(self) -> int:
        return -(1 << self.exponent_bits)

    @property
    def max_exponent(self) -> int:
        return (1 << self.exponent_bits) - 1

    @property
    def symbols(self) -> int:
        """Size of the exponent-symbol alphabet (zero and every exponent)."""
        return (2 << self.exponent_bits) + 1


def to_codes(values: np.ndarray, fmt: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
    """Quantize finite ``values``: (exponent symbols, sign-mantissa words of the non-zeros).

    Both int64, flat; the words follow the order of the non-zero values.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError("cannot quantize non-finite values")
    nonzero = values != 0
    magnitude = np.abs(values[nonzero])
    _, exp = np.frexp(magnitude)  # magnitude = f * 2**exp with f in [0.5, 1)
    exponent = np.clip(exp.astype(np.int64) - 1, fmt.min_exponent, fmt.max_exponent)
    fraction = np.ldexp(magnitude, -exponent) - 1.0  # in [0, 1) unless clamped
    top = (1 << fmt.mantissa_bits) - 1
    mantissa = np.clip(np.floor(np.ldexp(fraction, fmt.mantissa_bits)), 0, top).astype(np.int64)
    symbols = np.zeros(values.size, dtype=np.int64)
    symbols[nonzero] = exponent - fmt.min_exponent + 1
    sign = (values[nonzero] < 0).astype(np.int64)
    return symbols, sign << fmt.mantissa_bits | mantissa


def from_codes(symbols: np.ndarray, words: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Float32 values of the codes made by :func:`to_codes` (flat)."""
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    words = np.asarray(words, dtype=np.int64).ravel()
    nonzero = symbols != 0
    if words.size != np.count_nonzero(nonzero):
        raise ValueError(f"{words.size} sign-mantissa words for {np.count_nonzero(nonzero)} values")
    exponent = symbols[nonzero] + fmt.min_exponent - 1
    mantissa = words & ((1 << fmt.mantissa_bits) - 1)
    magnitude = np.ldexp(1.0 + np.ldexp(mantissa.astype(np.float64), -fmt.mantissa_bits), exponent)
    values = np.zeros(symbols.size, dtype=np.float64)
    values[nonzero] = np.where(words >> fmt.mantissa_bits, -magnitude, magnitude)
    return values.astype(np.float32)


def quantize(values: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """``values`` rounded to the format, float32, same shape (idempotent)."""
    values = np.asarray(values)
    return from_codes(*to_codes(values, fmt), fmt).reshape(values.shape)
