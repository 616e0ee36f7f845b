"""Reference codecs (JPEG, WebP, AVIF and JPEG XL through Pillow)."""

from __future__ import annotations

import dataclasses
import io
import re
import sys

import numpy as np
import pytest
from PIL import Image

from latentpress.codecs import CodecError, CodecInput, DecodeContext, get_codec, parse_codec_spec

NAMES = ["jpeg", "webp", "avif", "jxl"]


def _item(image: np.ndarray) -> CodecInput:
    return CodecInput("test", width=image.shape[1], height=image.shape[0], image=image)


def _context(image: np.ndarray) -> DecodeContext:
    return DecodeContext(width=image.shape[1], height=image.shape[0])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.mark.parametrize("fixture", ["kodak_crop", "smooth_image"])
@pytest.mark.parametrize("name", NAMES)
def test_round_trip_shape_and_determinism(name: str, fixture: str, request: pytest.FixtureRequest) -> None:
    image = request.getfixturevalue(fixture)
    codec = get_codec(name)
    params = codec.params(quality=50)
    data = codec.encode(_item(image), params)
    assert data == codec.encode(_item(image), params)
    out = codec.decode(data, _context(image))
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, codec.decode(data, _context(image)))
    assert _psnr(out, image) > 20


@pytest.mark.parametrize("name", NAMES)
def test_higher_quality_more_bytes_and_psnr(name: str, kodak_crop: np.ndarray) -> None:
    codec = get_codec(name)
    sizes, psnrs = [], []
    for quality in (10, 40, 80):
        data = codec.encode(_item(kodak_crop), codec.params(quality=quality))
        sizes.append(len(data))
        psnrs.append(_psnr(codec.decode(data, _context(kodak_crop)), kodak_crop))
    assert sizes == sorted(set(sizes))
    assert psnrs == sorted(set(psnrs))


@pytest.mark.parametrize("name", NAMES)
def test_default_sweep_has_distinct_rates(name: str, kodak_crop: np.ndarray) -> None:
    codec = get_codec(name)
    sizes = [len(codec.encode(_item(kodak_crop), codec.params(quality=q))) for q in codec.default_qualities]
    assert sizes == sorted(set(sizes))


@pytest.mark.parametrize("preset", ["fast", "default", "best"])
@pytest.mark.parametrize("name", NAMES)
def test_presets_round_trip(name: str, preset: str, smooth_image: np.ndarray) -> None:
    codec = get_codec(name)
    data = codec.encode(_item(smooth_image), codec.params(preset, 60))
    assert codec.decode(data, _context(smooth_image)).shape == smooth_image.shape


@pytest.mark.parametrize("name", NAMES)
def test_no_metadata_in_bitstream(name: str, smooth_image: np.ndarray) -> None:
    codec = get_codec(name)
    with Image.open(io.BytesIO(codec.encode(_item(smooth_image), codec.params()))) as img:
        info = dict(img.info)
    if name == "jxl":  # libjxl describes the codestream's enumerated sRGB by a profile it makes up
        assert info.pop("icc_profile")[4:8] == b"jxl "
    assert not {"exif", "icc_profile", "xmp"} & set(info)


@pytest.mark.parametrize("name", NAMES)
def test_undecodable_data_raises(name: str, kodak_crop: np.ndarray) -> None:
    codec = get_codec(name)
    context = _context(kodak_crop)
    valid = codec.encode(_item(kodak_crop), codec.params())
    other_codec = get_codec("webp" if name == "jpeg" else "jpeg")
    other = other_codec.encode(_item(kodak_crop), other_codec.params())
    for data in (b"", b"not an image at all", valid[: len(valid) // 2], other):
        with pytest.raises(CodecError, match=name):
            codec.decode(data, context)


@pytest.mark.parametrize("name", NAMES)
def test_size_mismatch_raises(name: str, smooth_image: np.ndarray) -> None:
    codec = get_codec(name)
    data = codec.encode(_item(smooth_image), codec.params())
    with pytest.raises(CodecError, match="differs from the expected 76x61"):
        codec.decode(data, DecodeContext(width=76, height=61))
    with pytest.raises(CodecError, match=name):
        codec.encode(CodecInput("x", width=76, height=61, image=smooth_image), codec.params())


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("jpeg", 0),
        ("jpeg", 101),
        ("webp", -1),
        ("webp", 100.5),
        ("avif", 101),
        ("avif", 37.5),
        ("jxl", -1),
        ("jxl", 100.5),
    ],
)
def test_out_of_range_quality_raises(name: str, bad: float) -> None:
    codec = get_codec(name)
    with pytest.raises(CodecError, match=rf"'{name}'.*in \d+\.\.100"):
        codec.params(quality=bad)
    with pytest.raises(CodecError, match=name):
        parse_codec_spec(f"{name}@{bad:g}")


def test_bad_format_option_raises() -> None:
    avif, webp = get_codec("avif"), get_codec("webp")
    with pytest.raises(CodecError, match="subsampling"):
        avif.validate(dataclasses.replace(avif.params(), subsampling="4:1:1"))
    with pytest.raises(CodecError, match="method must be in 0..6"):
        webp.validate(dataclasses.replace(webp.params(), method=7))
    jxl = get_codec("jxl")
    with pytest.raises(CodecError, match="effort must be in 1..9"):
        jxl.validate(dataclasses.replace(jxl.params(), effort=0))


def test_jxl_is_a_bare_codestream_and_names_its_library(smooth_image: np.ndarray) -> None:
    codec = get_codec("jxl")
    data = codec.encode(_item(smooth_image), codec.params())
    assert data[:2] == b"\xff\x0a"  # no ISOBMFF container: only the codestream counts
    assert re.fullmatch(r"pillow-jxl-plugin \d+\.\d+\.\d+, libjxl \d+\.\d+\.\d+", codec.library())


def test_jxl_without_its_plugin_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, smooth_image: np.ndarray
) -> None:
    monkeypatch.setitem(sys.modules, "pillow_jxl", None)  # as if not installed
    codec = get_codec("jxl")
    with pytest.raises(CodecError, match=r"'jxl' needs the pillow-jxl-plugin package .*latentpress\[jxl\]"):
        codec.encode(_item(smooth_image), codec.params())


def test_codec_spec() -> None:
    configs = parse_codec_spec("avif@5,20")
    assert [c.key for c in configs] == ["avif.default.q5", "avif.default.q20"]
    assert configs[1].params() == get_codec("avif").params("default", 20)
    (best,) = parse_codec_spec("webp:best@50")
    assert best.key == "webp.best.q50" and best.params().method == 6
    assert len(parse_codec_spec("jpeg")) == len(get_codec("jpeg").default_qualities)
