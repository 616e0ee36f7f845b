"""latent-q: exact quantized round trips, rate ordering, and rejected streams."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from latentpress.codecs import CodecError, CodecInput, DecodeContext, get_codec
from latentpress.codecs.latent_q import LatentQParams

CONTEXT = DecodeContext(width=192, height=128)


@pytest.fixture(scope="module")
def latent() -> np.ndarray:
    """A TAESD-like latent: 4 channels, smooth structure plus Laplacian detail."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:16, 0:24] / 4.0
    base = np.stack([np.sin(x + c) * np.cos(y - c) for c in range(4)])
    return (1.5 * base + rng.laplace(0, 0.4, base.shape)).astype(np.float32)


def _encode(latent: np.ndarray, step: float) -> bytes:
    codec = get_codec("latent-q")
    item = CodecInput("img", CONTEXT.width, CONTEXT.height, latent=latent)
    return codec.encode(item, codec.params(quality=step))


def _expected(latent: np.ndarray, step: float) -> np.ndarray:
    step32 = np.float64(np.float32(step))
    return (np.rint(latent.astype(np.float64) / step32) * step32).astype(np.float32)


def test_registered_with_contract() -> None:
    codec = get_codec("latent-q")
    assert codec.domain == "latent" and codec.quality_name == "step"
    assert codec.params() == LatentQParams(0.5)
    assert codec.params(quality=0.25) == LatentQParams(0.25)


@pytest.mark.parametrize("step", [0.25, 0.5, 1.0, 0.3, 2.0])
def test_round_trip_is_exact_quantization(latent: np.ndarray, step: float) -> None:
    decoded = get_codec("latent-q").decode(_encode(latent, step), CONTEXT)
    assert decoded.dtype == np.float32 and decoded.shape == latent.shape
    np.testing.assert_array_equal(decoded, _expected(latent, step))


def test_float16_and_constant_latents(latent: np.ndarray) -> None:
    half = latent.astype(np.float16)
    decoded = get_codec("latent-q").decode(_encode(half, 0.25), CONTEXT)
    np.testing.assert_array_equal(decoded, _expected(half, 0.25))
    flat = np.full((2, 3, 5), -1.2, dtype=np.float32)
    decoded = get_codec("latent-q").decode(_encode(flat, 0.5), CONTEXT)
    np.testing.assert_array_equal(decoded, np.full((2, 3, 5), -1.0, dtype=np.float32))


def test_larger_step_gives_fewer_bytes(latent: np.ndarray) -> None:
    sizes = [len(_encode(latent, step)) for step in (0.125, 0.25, 0.5, 1.0, 2.0)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)


@pytest.mark.parametrize("step", [0.0, -0.5, float("nan"), float("inf"), 1e-50])
def test_bad_steps_are_rejected(step: float) -> None:
    with pytest.raises(CodecError, match="step"):
        get_codec("latent-q").params(quality=step)


def test_bad_latents_are_rejected(latent: np.ndarray) -> None:
    codec = get_codec("latent-q")
    params = codec.params()
    for bad in (None, latent[0], np.zeros((0, 2, 2), np.float32)):
        with pytest.raises(CodecError, match="latent"):
            codec.encode(CodecInput("img", 8, 8, latent=bad), params)
    nan = latent.copy()
    nan[1, 2, 3] = np.nan
    with pytest.raises(CodecError, match="non-finite"):
        codec.encode(CodecInput("img", 8, 8, latent=nan), params)
    with pytest.raises(CodecError, match="levels"):
        _encode(latent, 1e-5)
    wide = np.array([[[-1000.0, 1000.0]]], dtype=np.float32)
    with pytest.raises(CodecError, match="levels"):  # checked before any histogram
        _encode(wide, 1e-6)


def test_every_truncation_is_rejected(latent: np.ndarray) -> None:
    data = _encode(latent[:, :6, :6], 0.5)
    codec = get_codec("latent-q")
    for size in range(len(data)):
        with pytest.raises(CodecError):
            codec.decode(data[:size], CONTEXT)


def test_trailing_words_are_rejected(latent: np.ndarray) -> None:
    data = _encode(latent, 0.5)
    with pytest.raises(CodecError, match="left over|histogram"):
        get_codec("latent-q").decode(data + data[-8:], CONTEXT)


def test_bit_flips_raise_codec_error_or_decode(latent: np.ndarray) -> None:
    data = _encode(latent[:, :6, :6], 0.5)
    codec = get_codec("latent-q")
    rejected = 0
    for i in range(len(data)):
        corrupt = bytearray(data)
        corrupt[i] ^= 0x41
        try:
            assert codec.decode(bytes(corrupt), CONTEXT).shape == (4, 6, 6)
        except CodecError:
            rejected += 1
    assert rejected > len(data) // 2


def _header(version: int, channels: int, height: int, width: int, step: float) -> bytes:
    return struct.pack("<BHIIf", version, channels, height, width, step)


@pytest.mark.parametrize(
    "header,match",
    [
        (_header(2, 4, 6, 6, 0.5), "version"),
        (_header(1, 4, 6, 6, 0.0), "step"),
        (_header(1, 4, 6, 6, float("nan")), "step"),
        (_header(1, 0, 6, 6, 0.5), "shape"),
        (_header(1, 64, 4096, 4096, 0.5), "shape"),
        (_header(1, 4, 129, 6, 0.5), "larger than the image"),
    ],
)
def test_bad_headers_are_rejected(latent: np.ndarray, header: bytes, match: str) -> None:
    body = _encode(latent[:, :6, :6], 0.5)[len(header) :]
    with pytest.raises(CodecError, match=match):
        get_codec("latent-q").decode(header + body, CONTEXT)


def test_histogram_must_match_the_shape() -> None:
    # one channel of 2x2 whose model claims counts summing to 5
    data = _header(1, 1, 2, 2, 0.5) + bytes([0, 2, 2, 3])
    with pytest.raises(CodecError, match="histogram"):
        get_codec("latent-q").decode(data, CONTEXT)
