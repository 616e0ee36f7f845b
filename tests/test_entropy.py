"""Entropy coding: exact round trips, rates near the entropy, and rejected input."""

from __future__ import annotations

import numpy as np
import pytest

from latentpress.codecs import entropy
from latentpress.codecs.base import CodecError


def _entropy_bits(symbols: np.ndarray) -> float:
    counts = np.unique(symbols, return_counts=True)[1]
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


@pytest.mark.parametrize("alphabet,offset,seed", [(2, 0, 0), (17, -8, 1), (300, 1000, 2)])
def test_categorical_round_trip(alphabet: int, offset: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(alphabet, 0.5))
    symbols = rng.choice(alphabet, size=5000, p=p) + offset
    counts, low = entropy.histogram(symbols)
    data = entropy.encode_categorical(symbols, counts, low)
    decoded = entropy.decode_categorical(data, counts, low, symbols.size)
    assert decoded.dtype == np.int64
    np.testing.assert_array_equal(decoded, symbols)


def test_categorical_rate_near_empirical_entropy() -> None:
    rng = np.random.default_rng(3)
    symbols = rng.choice(16, size=20000, p=rng.dirichlet(np.ones(16)))
    counts, offset = entropy.histogram(symbols)
    bits = 8 * len(entropy.encode_categorical(symbols, counts, offset))
    ideal = _entropy_bits(symbols)
    assert 0.995 * ideal <= bits <= 1.01 * ideal + 64


def test_categorical_with_zero_counts_inside_the_alphabet() -> None:
    counts = np.array([3, 0, 0, 1, 0, 2])
    symbols = np.array([5, 0, 3, 0, 5, 0]) - 2
    data = entropy.encode_categorical(symbols, counts, -2)
    np.testing.assert_array_equal(entropy.decode_categorical(data, counts, -2, 6), symbols)


def test_single_symbol_alphabet_costs_nothing() -> None:
    symbols = np.full(1000, -7)
    data = entropy.encode_categorical(symbols, np.array([1000]), -7)
    assert data == b""
    np.testing.assert_array_equal(entropy.decode_categorical(data, np.array([1000]), -7, 1000), symbols)


def test_all_equal_symbols_in_a_wide_alphabet_cost_almost_nothing() -> None:
    counts = np.zeros(50, dtype=np.int64)
    counts[49] = 10000
    symbols = np.full(10000, 49)
    data = entropy.encode_categorical(symbols, counts, 0)
    assert len(data) <= 8
    np.testing.assert_array_equal(entropy.decode_categorical(data, counts, 0, 10000), symbols)


def test_extremes_of_the_largest_alphabet() -> None:
    counts = np.ones(entropy.MAX_ALPHABET, dtype=np.int64)
    symbols = np.array([0, entropy.MAX_ALPHABET - 1, 0, 12345]) - 5
    data = entropy.encode_categorical(symbols, counts, -5)
    np.testing.assert_array_equal(entropy.decode_categorical(data, counts, -5, 4), symbols)
    with pytest.raises(ValueError, match="exceeds"):
        entropy.encode_categorical([0], np.ones(entropy.MAX_ALPHABET + 1, dtype=int), 0)
    with pytest.raises(ValueError, match="span"):
        entropy.histogram(np.array([-(2**40), 2**40]))


@pytest.mark.parametrize(
    "symbols,counts,match",
    [
        ([1], [2, 0, 3], "zero count"),
        ([3], [2, 1, 3], "outside"),
        ([-1], [2, 1, 3], "outside"),
        ([0], [], "non-empty"),
        ([0], [0, 0], "all zero"),
        ([0], [1, -1], r"\[0, 2\*\*53\)"),
        ([0], [1.0, 2.0], "integer"),
    ],
)
def test_categorical_encoder_rejects(symbols: list, counts: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        entropy.encode_categorical(np.array(symbols), np.array(counts), 0)


def test_decoder_rejects_leftover_and_partial_words() -> None:
    counts = np.array([5, 3, 8])
    symbols = np.random.default_rng(4).choice(3, size=400)
    data = entropy.encode_categorical(symbols, counts, 0)
    with pytest.raises(CodecError, match="left over"):
        entropy.decode_categorical(data + data, counts, 0, 400)
    with pytest.raises(CodecError, match="32-bit words"):
        entropy.decode_categorical(data[:-1], counts, 0, 400)
    with pytest.raises(CodecError, match="all zero"):
        entropy.decode_categorical(data, np.array([0, 0]), 0, 400)


def test_laplace_round_trip_and_rate() -> None:
    rng = np.random.default_rng(5)
    n, lo, hi = 20000, -40, 40
    loc = rng.normal(0, 8, n)
    scale = rng.uniform(0.05, 6, n)
    symbols = np.clip(np.rint(loc + rng.laplace(0, 1, n) * scale), lo, hi).astype(np.int64)
    data = entropy.encode_laplace(symbols, loc, scale, lo, hi)
    np.testing.assert_array_equal(entropy.decode_laplace(data, loc, scale, lo, hi, n), symbols)

    def cdf(x: np.ndarray) -> np.ndarray:
        z = (x - loc) / scale
        return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))

    upper = np.where(symbols == hi, 1.0, cdf(symbols + 0.5))
    lower = np.where(symbols == lo, 0.0, cdf(symbols - 0.5))
    ideal = float(-np.log2(np.maximum(upper - lower, 2.0**-24)).sum())
    bits = 8 * len(data)
    assert 0.98 * ideal <= bits <= 1.02 * ideal + 64


def test_laplace_extremes_of_range_with_far_parameters() -> None:
    symbols = np.array([-3, 3, -3, 3, 0])
    loc = np.array([1e6, -1e6, 3.0, -3.0, 0.0])
    scale = np.array([1e-9, 1e-9, 0.01, 0.01, 1e9])
    data = entropy.encode_laplace(symbols, loc, scale, -3, 3)
    np.testing.assert_array_equal(entropy.decode_laplace(data, loc, scale, -3, 3, 5), symbols)


def test_laplace_scalar_parameters_broadcast() -> None:
    symbols = np.array([0, 1, -1, 0, 0, 2])
    data = entropy.encode_laplace(symbols, 0.0, 1.0, -2, 2)
    np.testing.assert_array_equal(entropy.decode_laplace(data, 0.0, 1.0, -2, 2, 6), symbols)


@pytest.mark.parametrize(
    "symbols,loc,scale,lo,hi,match",
    [
        ([0, 5], 0.0, 1.0, -4, 4, "outside"),
        ([0], 0.0, 0.0, -4, 4, "scale"),
        ([0], np.nan, 1.0, -4, 4, "finite"),
        ([0], 0.0, np.inf, -4, 4, "finite"),
        ([0], 0.0, 1.0, 4, -4, "range"),
        ([0], 0.0, 1.0, 0, entropy.MAX_ALPHABET, "range"),
        ([0, 1], [0.0, 0.0, 0.0], 1.0, -4, 4, "match"),
    ],
)
def test_laplace_encoder_rejects(symbols, loc, scale, lo, hi, match) -> None:
    with pytest.raises(ValueError, match=match):
        entropy.encode_laplace(np.array(symbols), loc, scale, lo, hi)


def test_several_models_share_one_stream() -> None:
    rng = np.random.default_rng(6)
    a = rng.integers(0, 5, 300)
    b = rng.integers(-9, 10, 200)
    counts, offset = entropy.histogram(a)
    encoder = entropy.Encoder()
    encoder.categorical(a, counts, offset)
    encoder.laplace(b, 0.5, 4.0, -9, 9)
    decoder = entropy.Decoder(encoder.to_bytes())
    np.testing.assert_array_equal(decoder.categorical(counts, offset, 300), a)
    np.testing.assert_array_equal(decoder.laplace(0.5, 4.0, -9, 9, 200), b)
    decoder.finish()


def test_garbage_never_escapes_as_another_error() -> None:
    rng = np.random.default_rng(7)
    counts = np.array([1, 1000, 1, 5])
    for _ in range(50):
        data = rng.integers(0, 256, 4 * int(rng.integers(1, 8)), dtype=np.uint8).tobytes()
        try:
            entropy.decode_categorical(data, counts, 0, 200)
        except CodecError:
            pass


def test_uvarints_round_trip() -> None:
    values = np.array([0, 1, 127, 128, 300, 2**32, 2**63 - 1], dtype=np.int64)
    data = entropy.pack_uvarints(values)
    assert len(data) == 1 + 1 + 1 + 2 + 2 + 5 + 9
    decoded, pos = entropy.unpack_uvarints(data + b"\xff", len(values))
    np.testing.assert_array_equal(decoded, values)
    assert pos == len(data)


def test_uvarints_reject() -> None:
    with pytest.raises(ValueError, match="negative"):
        entropy.pack_uvarints([-1])
    with pytest.raises(CodecError, match="truncated"):
        entropy.unpack_uvarints(b"\x80\x80", 2)
    with pytest.raises(CodecError, match="longer than 9"):
        entropy.unpack_uvarints(b"\xff" * 10 + b"\x01", 1)
    with pytest.raises(CodecError, match="remain"):
        entropy.unpack_uvarints(b"\x01\x01", 3)


def test_zigzag_round_trip() -> None:
    values = np.array([0, -1, 1, -2, 2, -(2**61), 2**61])
    mapped = entropy.zigzag(values)
    np.testing.assert_array_equal(mapped[:5], [0, 1, 2, 3, 4])
    assert mapped.min() >= 0
    np.testing.assert_array_equal(entropy.unzigzag(mapped), values)


def test_words_to_bytes_is_little_endian() -> None:
    words = np.array([0x01020304, 0xFFFFFFFF], dtype=np.uint32)
    data = entropy.words_to_bytes(words)
    assert data == b"\x04\x03\x02\x01\xff\xff\xff\xff"
    np.testing.assert_array_equal(entropy.bytes_to_words(data), words)
