"""CLRIC payload: exact round trips, size close to the model's estimate, rejected streams."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from latentpress.codecs import CodecError
from latentpress.codecs.clric import bitstream
from latentpress.codecs.clric.grid import context_index, grid_size
from latentpress.codecs.clric.model import Architecture
from latentpress.codecs.clric.quantize import QuantizedFunction, grid_bits, group_sizes, weight_bits

ARCH = Architecture(4, 6, 8, grids=(4, 1, 1))


def random_function(arch: Architecture = ARCH, seed: int = 0, spread: float = 1.5) -> QuantizedFunction:
    """Grids and weights drawn from Laplace laws, as a trained function has them."""
    rng = np.random.default_rng(seed)
    grids = np.round(rng.laplace(0, spread, grid_size(arch.shapes))).astype(np.int64)
    values = tuple(np.round(rng.laplace(0, 30, n)).astype(np.int64) for n in group_sizes(arch))
    return QuantizedFunction(arch, grids, (7, 9, 8, 6, 10), values)


def assert_same(a: QuantizedFunction, b: QuantizedFunction) -> None:
    assert a.arch == b.arch and a.shifts == b.shifts
    np.testing.assert_array_equal(a.grids, b.grids)
    for x, y in zip(a.values, b.values, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("seed,spread", [(0, 1.5), (1, 0.3), (2, 20.0)])
def test_round_trip_is_exact(seed: int, spread: float) -> None:
    q = random_function(seed=seed, spread=spread)
    data = bitstream.write(q)
    back = bitstream.read(data, 64, 48)
    assert_same(back, q)
    np.testing.assert_array_equal(back.latent(), q.latent())
    assert bitstream.write(back) == data


def test_transposed_function_round_trip() -> None:
    q = random_function()
    flipped = QuantizedFunction(q.arch, q.grids, q.shifts, q.values, transposed=True)
    back = bitstream.read(bitstream.write(flipped), 48, 64)  # a portrait image
    assert back.transposed
    np.testing.assert_array_equal(back.latent(), q.latent().transpose(0, 2, 1))
    with pytest.raises(CodecError, match="larger than the image"):
        bitstream.read(bitstream.write(flipped), 64, 7)


def test_other_architectures_round_trip() -> None:
    for arch in (
        Architecture(16, 3, 5, grids=(2, 0, 1), arm_width=5, synthesis_width=7),
        Architecture(4, 1, 1, grids=(1,)),
    ):
        q = random_function(arch, seed=3)
        assert_same(bitstream.read(bitstream.write(q), 40, 24), q)


def test_constant_grids_and_weights_cost_no_coded_bits() -> None:
    q = random_function()
    flat = QuantizedFunction(q.arch, np.full_like(q.grids, -2), q.shifts, tuple(np.full_like(v, 3) for v in q.values))
    data = bitstream.write(flat)
    assert len(data) < 40  # header and ranges only
    assert_same(bitstream.read(data, 64, 48), flat)


def test_size_is_close_to_the_estimate() -> None:
    q = random_function(Architecture(4, 24, 32, grids=(4, 1, 1)), seed=4)
    context = np.append(q.grids, 0)[context_index(q.arch.shapes).T]
    estimate = grid_bits(q.arm(), q.grids, context) + sum(weight_bits(v) for v in q.values)
    coded = 8 * len(bitstream.write(q))
    assert estimate < coded < estimate * 1.02 + 400  # range coder words, header and ranges


def test_every_truncation_is_rejected() -> None:
    data = bitstream.write(random_function(Architecture(4, 3, 4, grids=(4, 1))))
    for size in range(len(data)):
        with pytest.raises(CodecError):
            bitstream.read(data[:size], 64, 48)


def test_trailing_words_are_rejected() -> None:
    data = bitstream.write(random_function())
    with pytest.raises(CodecError, match="coded data"):
        bitstream.read(data + data[-8:], 64, 48)


def test_bit_flips_raise_codec_error_or_decode() -> None:
    data = bitstream.write(random_function(Architecture(4, 3, 4, grids=(4, 1))))
    rejected = 0
    for i in range(len(data)):
        corrupt = bytearray(data)
        corrupt[i] ^= 0x41
        try:
            bitstream.read(bytes(corrupt), 64, 48)
        except CodecError:
            rejected += 1
    assert rejected > len(data) // 3


def _header(
    version=1, flags=0, channels=4, height=6, width=8, grids=(4, 1, 1), arm=8, synthesis=16, shifts=(7,) * 5
) -> bytes:
    return struct.pack("<BBBHHB", version, flags, channels, height, width, len(grids)) + bytes(
        [*grids, arm, synthesis, *shifts]
    )


@pytest.mark.parametrize(
    "header,match",
    [
        (_header(version=2), "version"),
        (_header(flags=2), "flags"),
        (_header(flags=1, height=6, width=49), "larger than the image"),
        (_header(grids=()), "levels"),
        (_header(grids=(1,) * 13), "levels"),
        (_header(channels=0), "sizes"),
        (_header(height=49), "larger than the image"),
        (_header(grids=(0, 0, 0)), "architecture"),
        (_header(grids=(17, 1, 1)), "architecture"),
        (_header(shifts=(7, 7, 21, 7, 7)), "architecture"),
        (_header(arm=65), "architecture"),
    ],
)
def test_bad_headers_are_rejected(header: bytes, match: str) -> None:
    body = bitstream.write(random_function())[len(_header()) :]
    with pytest.raises(CodecError, match=match):
        bitstream.read(header + body, 64, 48)


def test_encoder_refuses_symbols_it_cannot_code() -> None:
    q = random_function()
    wide = q.grids.copy()
    wide[:2] = [-40_000, 40_000]
    with pytest.raises(ValueError):
        bitstream.write(QuantizedFunction(q.arch, wide, q.shifts, q.values))
