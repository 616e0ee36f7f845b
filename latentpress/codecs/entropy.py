"""Entropy coding for every codec: one range coder (``constriction``) and its models.

An :class:`Encoder` appends symbols coded under several models to one stream; a
:class:`Decoder` reads them back in the same order with the same models. The module
functions ``encode_*``/``decode_*`` are one-model shortcuts.

Models:

- categorical: probabilities are ``counts / counts.sum()`` of non-negative integer
  counts, so a decoder given the same counts rebuilds a bit-identical model (the
  division is exact IEEE arithmetic and ``constriction`` quantizes it with integer
  rounding). Every symbol must have a count of at least 1: a zero-count symbol is
  rejected by the encoder rather than coded at a tiny leaked probability; callers that
  approximate counts must floor those of present symbols at 1. An alphabet of one
  symbol costs no bits.
- Laplace: per-symbol location and scale (float64), quantized to integer bins on
  ``[lo, hi]``; every symbol in the range has a nonzero probability. The CDF uses
  ``exp``, so bit-exact decoding is guaranteed on the machine (and library build)
  that encoded; integer parameters are the portable choice.

Stream words are uint32, stored little endian. Malformed input on the decoding side
raises ``CodecError``; bad arguments on the encoding side raise ``ValueError``.
"""

from __future__ import annotations

import numpy as np
from constriction import stream  # a native module: its submodules are attributes

from latentpress.codecs.base import CodecError

MAX_ALPHABET = 1 << 16
"""Largest alphabet (categorical length, or ``hi - lo + 1``) a model may have."""

_MAX_UVARINT_BYTES = 9  # 63 bits


class Encoder:
    """Range encoder; append symbols under any models, then take the bytes."""

    def __init__(self) -> None:
        self._coder = stream.queue.RangeEncoder()

    def categorical(self, symbols: np.ndarray, counts: np.ndarray, offset: int) -> None:
        """Append ``symbols`` (in ``[offset, offset + len(counts))``, each with count >= 1)."""
        counts = _check_counts(counts, ValueError)
        symbols = np.asarray(symbols, dtype=np.int64).ravel() - offset
        if symbols.size == 0:
            return
        if symbols.min() < 0 or symbols.max() >= counts.size:
            raise ValueError(f"symbols outside [{offset}, {offset + counts.size})")
        if np.any(counts[symbols] == 0):
            raise ValueError("a symbol to encode has a zero count")
        if counts.size > 1:
            self._coder.encode(symbols.astype(np.int32), _categorical(counts))

    def laplace(self, symbols: np.ndarray, loc: np.ndarray, scale: np.ndarray, lo: int, hi: int) -> None:
        """Append ``symbols`` in ``[lo, hi]`` under per-symbol Laplace(loc, scale)."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        loc, scale = _laplace_params(loc, scale, lo, hi, symbols.size, ValueError)
        if symbols.size == 0:
            return
        if symbols.min() < lo or symbols.max() > hi:
            raise ValueError(f"symbols outside [{lo}, {hi}]")
        model = stream.model.QuantizedLaplace(lo, hi)
        self._coder.encode(symbols.astype(np.int32), model, loc, scale)

    def to_bytes(self) -> bytes:
        """The coded stream so far."""
        return words_to_bytes(self._coder.get_compressed())


class Decoder:
    """Range decoder over bytes made by :class:`Encoder`."""

    def __init__(self, data: bytes) -> None:
        self._coder = stream.queue.RangeDecoder(bytes_to_words(data))

    def categorical(self, counts: np.ndarray, offset: int, n: int) -> np.ndarray:
        """Next ``n`` symbols under the categorical model of ``counts`` (int64)."""
        counts = _check_counts(counts, CodecError)
        _check_n(n)
        if counts.size == 1 or n == 0:
            return np.full(n, offset, dtype=np.int64)
        return self._decode(_categorical(counts), n) + offset

    def laplace(self, loc: np.ndarray, scale: np.ndarray, lo: int, hi: int, n: int) -> np.ndarray:
        """Next ``n`` symbols under per-symbol Laplace(loc, scale) on ``[lo, hi]`` (int64)."""
        _check_n(n)
        loc, scale = _laplace_params(loc, scale, lo, hi, n, CodecError)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        return self._decode(stream.model.QuantizedLaplace(lo, hi), loc, scale)

    def _decode(self, model: stream.model.Model, *args: object) -> np.ndarray:
        try:
            return self._coder.decode(model, *args).astype(np.int64)
        except AssertionError:  # constriction's signal for data no encoder could make
            raise CodecError("entropy-coded data is invalid (corrupt or truncated)") from None

    def finish(self) -> None:
        """Raise ``CodecError`` if the stream certainly holds more than was decoded."""
        if not self._coder.maybe_exhausted():
            raise CodecError("entropy-coded data has bytes left over after decoding")


def encode_categorical(symbols: np.ndarray, counts: np.ndarray, offset: int) -> bytes:
    """Code ``symbols`` under the categorical model of ``counts`` (see :class:`Encoder`)."""
    encoder = Encoder()
    encoder.categorical(symbols, counts, offset)
    return encoder.to_bytes()


def decode_categorical(data: bytes, counts: np.ndarray, offset: int, n: int) -> np.ndarray:
    """Inverse of :func:`encode_categorical`; checks that all data was used."""
    decoder = Decoder(data)
    symbols = decoder.categorical(counts, offset, n)
    decoder.finish()
    return symbols


def encode_laplace(symbols: np.ndarray, loc: np.ndarray, scale: np.ndarray, lo: int, hi: int) -> bytes:
    """Code ``symbols`` under per-symbol quantized Laplace models on ``[lo, hi]``."""
    encoder = Encoder()
    encoder.laplace(symbols, loc, scale, lo, hi)
    return encoder.to_bytes()


def decode_laplace(data: bytes, loc: np.ndarray, scale: np.ndarray, lo: int, hi: int, n: int) -> np.ndarray:
    """Inverse of :func:`encode_laplace`; checks that all data was used."""
    decoder = Decoder(data)
    symbols = decoder.laplace(loc, scale, lo, hi, n)
    decoder.finish()
    return symbols


def histogram(symbols: np.ndarray) -> tuple[np.ndarray, int]:
    """``(counts, offset)``: counts of each value from ``offset = min`` to ``max``."""
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    if symbols.size == 0:
        raise ValueError("histogram of no symbols")
    offset = int(symbols.min())
    if symbols.max() - offset >= MAX_ALPHABET:
        raise ValueError(f"symbols span more than {MAX_ALPHABET} values")
    return np.bincount(symbols - offset), offset


def words_to_bytes(words: np.ndarray) -> bytes:
    """uint32 coder words as little-endian bytes."""
    return np.asarray(words, dtype=np.uint32).astype("<u4").tobytes()


def bytes_to_words(data: bytes) -> np.ndarray:
    """Little-endian bytes back to uint32 coder words."""
    if len(data) % 4:
        raise CodecError(f"entropy-coded data of {len(data)} bytes is not whole 32-bit words")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def pack_uvarints(values: np.ndarray | list[int]) -> bytes:
    """Non-negative integers (< 2**63) as LEB128 varints: 7 bits a byte, low first."""
    out = bytearray()
    for value in np.asarray(values, dtype=np.int64).ravel().tolist():
        if value < 0:
            raise ValueError(f"uvarint of negative value {value}")
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def unpack_uvarints(data: bytes, count: int, pos: int = 0) -> tuple[np.ndarray, int]:
    """``count`` varints from ``data[pos:]``: ``(int64 values, position after them)``."""
    if count < 0 or count > len(data) - pos:
        raise CodecError(f"expected {count} varints but only {len(data) - pos} bytes remain")
    values = np.empty(count, dtype=np.int64)
    for i in range(count):
        value = shift = 0
        while True:
            if pos >= len(data):
                raise CodecError("truncated varint")
            if shift >= 7 * _MAX_UVARINT_BYTES:
                raise CodecError("varint longer than 9 bytes")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        values[i] = value
    return values, pos


def zigzag(values: np.ndarray | list[int]) -> np.ndarray:
    """Signed to unsigned: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ... (|v| < 2**62)."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values < 0, -2 * values - 1, 2 * values)


def unzigzag(values: np.ndarray) -> np.ndarray:
    """Inverse of :func:`zigzag`."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values & 1, -(values >> 1) - 1, values >> 1)


def _categorical(counts: np.ndarray) -> stream.model.Categorical:
    return stream.model.Categorical(counts / counts.sum(), perfect=False)


def _check_counts(counts: np.ndarray, error: type[ValueError]) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0 or not np.issubdtype(counts.dtype, np.integer):
        raise error("counts must be a non-empty 1-D integer array")
    if counts.size > MAX_ALPHABET:
        raise error(f"alphabet of {counts.size} symbols exceeds {MAX_ALPHABET}")
    if counts.min() < 0 or counts.max() >= 1 << 53:
        raise error("counts must be in [0, 2**53)")
    if counts.sum() == 0:
        raise error("counts are all zero")
    return counts.astype(np.int64)


def _check_n(n: int) -> None:
    if n < 0:
        raise CodecError(f"negative symbol count {n}")


def _laplace_params(
    loc: np.ndarray, scale: np.ndarray, lo: int, hi: int, n: int, error: type[ValueError]
) -> tuple[np.ndarray, np.ndarray]:
    if not lo <= hi or hi - lo + 1 > MAX_ALPHABET or lo < -(1 << 31) or hi >= 1 << 31:
        raise error(f"bad Laplace range [{lo}, {hi}] (at most {MAX_ALPHABET} int32 values)")
    try:
        loc = np.broadcast_to(np.asarray(loc, dtype=np.float64), (n,))
        scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (n,))
    except ValueError:
        raise error(f"Laplace parameters do not match {n} symbols") from None
    if not np.all(np.isfinite(loc)) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise error("Laplace loc must be finite and scale finite and > 0")
    return np.ascontiguousarray(loc), np.ascontiguousarray(scale)
