"""Laduree's small-float weight quantizer and its model bitstream."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest

from latentpress.codecs import CodecError
from latentpress.codecs.laduree.bitstream import (
    ModelRecord,
    pack_model,
    parameter_shapes,
    unpack_model,
)
from latentpress.codecs.laduree.floatq import FloatFormat, from_codes, quantize, to_codes
from latentpress.codecs.laduree.model import Architecture
from latentpress.codecs.laduree.schedule import Schedule

E2M2 = FloatFormat(2, 2)  # exponents -4 .. 3, values 1.00b .. 1.11b times 2**E


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, 1.0),
        (-1.0, -1.0),  # sign kept
        (1.3, 1.25),  # 1.0100110..b -> 1.01b
        (1.99, 1.75),  # truncated, not rounded up to 2
        (-2.9, -2.5),  # 2 * 1.45 -> 2 * 1.01b
        (0.1, 0.09375),  # 2**-4 * 1.6 -> 2**-4 * 1.10b, the smallest normal exponent
        (100.0, 14.0),  # exponent clamped to 3, mantissa saturated: 8 * 1.11b
        (0.01, 0.0625),  # exponent clamped up to -4, sign kept
        (-0.01, -0.0625),
        (0.0, 0.0),
    ],
)
def test_quantizer_matches_hand_computed_values(value: float, expected: float) -> None:
    assert quantize(np.array([value]), E2M2)[0] == np.float32(expected)


def test_fourteen_bit_format_hand_computed() -> None:
    fmt = FloatFormat(5, 8)
    # 0.1 = 2**-4 * 1.6; mantissa floor(0.6 * 256) = 153
    assert quantize(np.array([0.1]), fmt)[0] == np.float32(409 / 4096)
    assert (fmt.min_exponent, fmt.max_exponent, fmt.symbols) == (-32, 31, 65)
    assert quantize(np.array([1e-12, 1e12]), fmt).tolist() == [2.0**-32, 2.0**31 * (2 - 2**-8)]


def test_codes_are_exponent_symbols_and_sign_mantissa_words() -> None:
    symbols, words = to_codes(np.array([0.0, 1.0, -1.5, 0.01]), E2M2)
    # symbol = exponent + 2**e + 1; word = sign << m | mantissa
    assert symbols.tolist() == [0, 5, 5, 1]
    assert words.tolist() == [0b000, 0b110, 0b000]
    assert from_codes(symbols, words, E2M2).tolist() == [0.0, 1.0, -1.5, 0.0625]


def test_quantizer_truncates_toward_zero_within_one_mantissa_step() -> None:
    fmt = FloatFormat(5, 6)
    values = np.random.default_rng(0).normal(0, 0.05, 10_000).astype(np.float32)
    q = quantize(values, fmt)
    assert np.array_equal(quantize(q, fmt), q)  # idempotent
    assert np.all(np.sign(q) == np.sign(values))
    assert np.all(np.abs(q) <= np.abs(values))
    assert np.all(np.abs(values - q) < np.abs(values) * 2.0**-6)
    assert len(np.unique(q)) < len(values) / 4  # really coarser than float32


def _record(shapes: tuple[tuple[int, int], ...], seed: int = 7) -> ModelRecord:
    arch = Architecture(channels=4, patch=2, hidden=16, depth=2, heads=2, index_tokens=3)
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in parameter_shapes(arch):
        values = rng.normal(0, 0.1, shape).astype(np.float32)
        values.flat[0] = 0.0
        values.flat[-1] = -1e9  # saturates
        weights[name] = values
    return ModelRecord(
        arch,
        FloatFormat(5, 8),
        rng.normal(size=4).astype(np.float32),
        rng.uniform(0.5, 2, 4).astype(np.float32),
        seed,
        Schedule(beta_schedule="scaled_linear", steps=25),
        shapes,
        weights,
    )


def test_model_round_trips_with_bit_identical_quantized_weights() -> None:
    record = _record(shapes=((8, 8), (5, 7), (8, 8), (12, 4), (5, 7)))
    data = pack_model(record)
    back = unpack_model(data)
    for name, values in record.weights.items():
        expected = quantize(values, record.number_format)
        assert back.weights[name].dtype == np.float32
        assert np.array_equal(back.weights[name].view(np.uint32), expected.view(np.uint32)), name
    for field in ("architecture", "number_format", "seed", "schedule", "shapes"):
        assert getattr(back, field) == getattr(record, field), field
    assert np.array_equal(back.mean, record.mean) and np.array_equal(back.std, record.std)
    assert pack_model(back) == data
    count = sum(v.size for v in record.weights.values())
    assert 8 * len(data) < 14 * count  # exponents entropy coded: below the nominal 14 bits


def test_one_shape_costs_no_bits_per_image() -> None:
    few, many = _record(((8, 8),) * 3), _record(((8, 8),) * 300)
    assert len(pack_model(many)) == len(pack_model(few))
    assert unpack_model(pack_model(many)).shapes == ((8, 8),) * 300


def test_reader_rejects_truncated_extended_and_unknown_streams() -> None:
    data = pack_model(_record(((8, 8), (4, 6))))
    for cut in list(range(0, 80, 3)) + [len(data) // 2, len(data) - 1]:
        with pytest.raises(CodecError):
            unpack_model(data[:cut])
    with pytest.raises(CodecError, match="follow"):
        unpack_model(data + b"\0")
    with pytest.raises(CodecError, match="version"):
        unpack_model(b"\x02" + data[1:])


def test_reader_rejects_absurd_sizes_before_building() -> None:
    data = pack_model(_record(((8, 8),)))
    huge = bytearray(data)
    struct.pack_into("<HB", huge, 3, 4092, 64)  # hidden, depth
    with pytest.raises(CodecError, match="parameters exceeds"):
        unpack_model(bytes(huge))
    odd = bytearray(data)
    struct.pack_into("<H", odd, 3, 18)  # not a multiple of 4
    with pytest.raises(CodecError, match="architecture"):
        unpack_model(bytes(odd))


def test_writer_rejects_weights_of_the_wrong_shape() -> None:
    record = _record(((8, 8),))
    name = next(iter(record.weights))
    bad = dataclasses.replace(record, weights={**record.weights, name: np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match=name):
        pack_model(bad)
