"""The clric codec: contract, exact decoding, rate ordering, rate control, golden stream."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from latentpress.codecs import (
    BatchEncoder,
    CodecConfig,
    CodecError,
    CodecInput,
    DecodeContext,
    RateControlled,
    get_codec,
    parse_codec_spec,
)
from latentpress.codecs.clric import PRESETS, bitstream, rate
from latentpress.codecs.clric.model import select
from latentpress.codecs.clric.quantize import quantize
from latentpress.codecs.clric.train import fit
from latentpress.codecs.spec import with_target_bpp
from latentpress.infra.layout import check_config_key, pack_image, unpack_image

TINY = dataclasses.replace(
    PRESETS["fast"], quality=0.1, warmup=((2, 20),), iterations=250, rounding=25, learning_rate=0.03
)
WIDTH, HEIGHT = 128, 96
GOLDEN = Path(__file__).parent / "golden" / "clric_v1.lpc"


@pytest.fixture(scope="module")
def latent() -> np.ndarray:
    """A TAESD-like 4x12x16 latent: smooth structure and Laplacian detail."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:12, 0:16] / 3.0
    base = np.stack([np.sin(x + c) * np.cos(y - c) for c in range(4)])
    return (base + rng.laplace(0, 0.2, base.shape)).astype(np.float32)


def _item(latent: np.ndarray) -> CodecInput:
    return CodecInput("img", WIDTH, HEIGHT, latent=latent, vae_id="taesd")


def test_registered_with_contract() -> None:
    codec = get_codec("clric")
    assert codec.domain == "latent" and codec.quality_name == "lambda" and codec.info.rate_control
    assert isinstance(codec, RateControlled) and isinstance(codec, BatchEncoder)
    assert set(codec.presets) == {"fast", "default", "best"}
    paper = codec.params("default")
    assert paper.warmup == ((5, 400), (2, 400)) and paper.iterations == 13_100 and paper.total_iterations == 15_900
    assert paper.learning_rate == 1e-2 and paper.grid_counts(4) == (4, 1, 1, 1, 1, 1, 1)
    assert codec.params("fast", 0.5).quality == 0.5
    assert all(codec.params("fast", q) for q in codec.default_qualities)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"quality": 0.0}, "lambda"),
        ({"quality": math.nan}, "lambda"),
        ({"grids": (1,) * 13}, "grids"),
        ({"grids": (17,)}, "grids"),
        ({"synthesis_width": 0}, "synthesis_width"),
        ({"warmup": ((2, 10), (3, 10))}, "warmup"),
        ({"rounding": 2000}, "rounding"),
        ({"learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_bad_params_are_rejected(change: dict, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        get_codec("clric").validate(dataclasses.replace(TINY, **change))


def test_bad_latents_are_rejected(latent: np.ndarray) -> None:
    codec = get_codec("clric")
    for bad in (None, latent[0], np.zeros((17, 4, 4), np.float32), np.zeros((0, 4, 4), np.float32)):
        with pytest.raises(CodecError, match="latent"):
            codec.encode(_item(bad), TINY)
    nan = latent.copy()
    nan[0, 1, 2] = np.nan
    with pytest.raises(CodecError, match="non-finite"):
        codec.encode(_item(nan), TINY)


def test_decoder_reproduces_the_encoder_latent_through_the_container(latent: np.ndarray) -> None:
    model = fit(latent[None], np.array([0.1]), TINY)
    q = quantize(model, latent, 0.1)
    payload = bitstream.write(q)
    data = pack_image(
        codec="clric",
        codec_version=1,
        config={"codec": "clric", "preset": "fast", "quality": 0.1},
        payload=payload,
        width=WIDTH,
        height=HEIGHT,
        vae_id="taesd",
        image_id="0123456789abcdef",
    )
    container, _ = unpack_image(data)
    decoded = get_codec("clric").decode(container.sections["payload"], DecodeContext(WIDTH, HEIGHT, "taesd"))
    assert decoded.dtype == np.float32 and decoded.shape == latent.shape
    np.testing.assert_array_equal(decoded, q.latent())
    assert float(np.mean((decoded - latent) ** 2)) < 0.35 * float(latent.var())  # it learned the latent


def test_larger_lambda_gives_fewer_bits_and_more_distortion(latent: np.ndarray) -> None:
    codec = get_codec("clric")
    lambdas = [0.01, 1.0, 10.0]
    payloads = [codec.encode(_item(latent), dataclasses.replace(TINY, quality=lam)) for lam in lambdas]
    sizes = [len(p) for p in payloads]
    errors = [float(np.mean((codec.decode(p, DecodeContext(WIDTH, HEIGHT)) - latent) ** 2)) for p in payloads]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    assert errors == sorted(errors)


def test_images_of_one_shape_train_together(latent: np.ndarray) -> None:
    portrait = np.ascontiguousarray(latent[:, ::-1, :].transpose(0, 2, 1))
    odd = latent[:, :9, :13]
    codec = get_codec("clric")
    together = codec.encode_many([_item(latent), _item(odd), _item(portrait)], TINY)
    assert together[1] == codec.encode(_item(odd), TINY)  # alone in its shape group: same run
    assert [bitstream.read(p, WIDTH, WIDTH).transposed for p in together] == [False, False, True]
    for payload, original in zip(together, (latent, odd, portrait), strict=True):
        decoded = codec.decode(payload, DecodeContext(WIDTH, HEIGHT))
        assert decoded.shape == original.shape
        assert float(np.mean((decoded - original) ** 2)) < 0.35 * float(original.var())
    both = fit(np.stack([latent, portrait.transpose(0, 2, 1)]), np.full(2, TINY.quality), TINY)
    assert both.models == 2 and select(both, torch.tensor([1])).models == 1


def test_encode_at_bpp_lands_within_ten_percent(latent: np.ndarray) -> None:
    codec = get_codec("clric")
    target, overhead = 0.3, 100
    payload, used = codec.encode_at_bpp(_item(latent), TINY, target, overhead_bytes=overhead)
    bpp = 8 * (len(payload) + overhead) / (WIDTH * HEIGHT)
    assert abs(bpp - target) <= 0.1 * target
    assert used.quality != TINY.quality and dataclasses.replace(used, quality=TINY.quality) == TINY
    assert codec.decode(payload, DecodeContext(WIDTH, HEIGHT)).shape == latent.shape


def test_encode_at_bpp_says_when_it_cannot(latent: np.ndarray) -> None:
    with pytest.raises(CodecError, match="cannot reach"):
        get_codec("clric").encode_at_bpp(_item(latent), TINY, 30.0)
    with pytest.raises(CodecError, match="no room"):
        get_codec("clric").encode_at_bpp(_item(latent), TINY, 0.01, overhead_bytes=1000)
    assert not isinstance(get_codec("latent-q"), RateControlled)
    with pytest.raises(ValueError, match="no rate control"):
        parse_codec_spec("latent-q@bpp0.1")


def _probe_curve(bits_of: callable) -> tuple[callable, list[float]]:
    tried: list[float] = []

    def probe(lam: float, nearest: rate.Probe | None) -> rate.Probe:
        assert (nearest is None) == (not tried)
        tried.append(lam)
        return rate.Probe(lam, int(bits_of(lam)), b"")

    return probe, tried


@pytest.mark.parametrize("target", [300.0, 1000.0, 5000.0, 20000.0])
def test_rate_search_converges_on_a_monotone_curve(target: float) -> None:
    probe, tried = _probe_curve(lambda lam: 2000 * lam**-0.4 if lam < 3 else 2000 * 3**-0.4 * (lam / 3) ** -2)
    found = rate.search(probe, target, first=1.0)
    assert abs(found.bits - target) <= 0.1 * target and len(tried) <= rate.MAX_PROBES


def test_rate_search_reports_the_closest_when_out_of_range() -> None:
    probe, tried = _probe_curve(lambda lam: min(5000.0, 1000 / lam))
    with pytest.raises(CodecError, match="closest 5000 bits"):
        rate.search(probe, 1e6, first=1.0)
    assert min(tried) == rate.LAMBDA_RANGE[0]


def test_target_bpp_configurations() -> None:
    configs = parse_codec_spec("clric:fast@0.5,bpp0.1")
    assert [c.key for c in configs] == ["clric.fast.q0.5", "clric.fast.bpp0.1"]
    assert configs[1].params() == PRESETS["fast"] and all(check_config_key(c.key) for c in configs)
    for config in configs:
        assert CodecConfig.from_dict(config.to_dict()) == config
    assert configs[0].to_dict() == {"codec": "clric", "preset": "fast", "quality": 0.5}
    assert CodecConfig.from_dict({"codec": "avif", "preset": "default", "quality": 20}).key == "avif.default.q20"
    with pytest.raises(ValueError, match="rate control"):
        parse_codec_spec("avif@bpp0.1")
    with pytest.raises(ValueError, match="target bpp"):
        parse_codec_spec("clric@bpp0")
    assert with_target_bpp(["avif@20", "clric:fast", "clric@1"], [0.1, 0.2]) == [
        "avif@20",
        "clric:fast@bpp0.1,bpp0.2",
        "clric@1,bpp0.1,bpp0.2",
    ]
    with pytest.raises(ValueError, match="rate control"):
        with_target_bpp(["avif@20"], [0.1])


def test_cli_target_bpp_option() -> None:
    from latentpress.cli import _configs, build_parser

    parser = build_parser()
    args = parser.parse_args(
        ["compress", "arch", "--codec", "avif@20", "--codec", "clric:fast", "--target-bpp", "0.1,0.2"]
    )
    assert [c.key for c in _configs(args)] == ["avif.default.q20", "clric.fast.bpp0.1", "clric.fast.bpp0.2"]
    assert args.codec == ["avif@20", "clric:fast@bpp0.1,bpp0.2"]
    assert [c.key for c in _configs(parser.parse_args(["compress", "arch", "--codec", "clric@1"]))] == [
        "clric.default.q1"
    ]
    for bad in ("0", "x", "0.1,-1"):
        with pytest.raises(SystemExit):
            parser.parse_args(["archive", "src", "arch", "--codec", "clric", "--target-bpp", bad])


# The golden file: a 128x96 image container (VAE "taesd") whose clric version-1 payload
# is a function fitted to the `latent` fixture with TINY at lambda 0.1.
GOLDEN_GRIDS_SHA256 = "209c727469a666b1fe28bc7fc70eab477d5d6094a177b742730fd2da33d1d5f8"
GOLDEN_LATENT = {(0, 0, 0): 0.25689203, (3, 11, 15): 0.8173653, (1, 5, 7): 0.35989246, (2, 0, 15): -0.43639377}


def test_golden_stream_still_decodes() -> None:
    container, config = unpack_image(GOLDEN.read_bytes(), source=str(GOLDEN))
    assert (container.codec, container.codec_version, container.width, container.height) == ("clric", 1, WIDTH, HEIGHT)
    assert config == {"codec": "clric", "preset": "fast", "quality": 0.1}
    payload = container.sections["payload"]
    q = bitstream.read(payload, WIDTH, HEIGHT)
    assert hashlib.sha256(q.grids.astype("<i8").tobytes()).hexdigest() == GOLDEN_GRIDS_SHA256
    assert bitstream.write(q) == payload
    latent = get_codec("clric").decode(payload, DecodeContext(WIDTH, HEIGHT, "taesd"))
    assert latent.shape == (4, 12, 16)
    for index, value in GOLDEN_LATENT.items():
        assert latent[index] == pytest.approx(value, abs=1e-5)
