"""The laduree codec: fit one model on a few real crops, regenerate each from its index;
golden files that must keep decoding.

Regenerate the golden files (after a deliberate format change) with
``LATENTPRESS_REGENERATE_GOLDEN=1 pytest tests/test_laduree.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentpress.codecs import (
    CodecError,
    CodecInput,
    DecodeContext,
    ImageEncoder,
    ShardModelCodec,
    SharedFit,
    get_codec,
)
from latentpress.codecs.laduree import codec as laduree
from latentpress.codecs.laduree.bitstream import pack_model, unpack_model
from latentpress.infra.layout import pack_image, unpack_image
from latentpress.models.metrics import compute_metrics
from latentpress.models.vae import load_vae

SIZE = 64
PHOTOS = ("kodim01.png", "kodim02.png", "kodim03.png", "kodim04.png")
GOLDEN = Path(__file__).parent / "golden"
GOLDEN_MODEL, GOLDEN_IMAGE = GOLDEN / "laduree_model_v1.lpm", GOLDEN / "laduree_v1.lpc"
GOLDEN_LATENT = {(0, 0, 0): 1.6497430, (3, 7, 5): 1.7597022, (1, 4, 6): 2.5132570, (2, 0, 7): 0.51492274}
"""Decoded values of the golden stream at a few positions (printed by a regeneration)."""


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models train much faster on one thread on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def crops(kodak_dir: Path) -> list[np.ndarray]:
    """Four 64x64 crops of different real photos."""
    out = []
    for name in PHOTOS:
        with Image.open(kodak_dir / name) as img:
            out.append(np.asarray(img.convert("RGB"))[100 : 100 + SIZE, 200 : 200 + SIZE].copy())
    return out


@pytest.fixture(scope="module")
def items(crops: list[np.ndarray]) -> list[CodecInput]:
    latents = load_vae("taesd").encode(crops)
    return [CodecInput(f"img{i}", SIZE, SIZE, latent=z, vae_id="taesd") for i, z in enumerate(latents)]


@pytest.fixture(scope="module")
def fitted(items: list[CodecInput]) -> SharedFit:
    codec = get_codec("laduree")
    return codec.fit(items, codec.params("tiny"))


def _decode(fit: SharedFit, image_id: str, size: int = SIZE) -> np.ndarray:
    context = DecodeContext(size, size, "taesd", shared_model=fit.model)
    return get_codec("laduree").decode(fit.payloads[image_id], context)


def test_each_latent_is_regenerated_closest_from_its_own_index(items: list[CodecInput], fitted: SharedFit) -> None:
    decoded = [_decode(fitted, item.image_id) for item in items]
    for z in decoded:
        assert z.dtype == np.float32 and z.shape == items[0].latent.shape
    mse = np.array([[np.mean((d - item.latent) ** 2) for item in items] for d in decoded])
    assert np.array_equal(mse.argmin(axis=1), np.arange(len(items))), mse
    assert np.all(np.diag(mse) < 0.5 * np.var([item.latent for item in items]))


def test_regenerated_image_is_perceptually_closest_to_its_own_crop(crops: list[np.ndarray], fitted: SharedFit) -> None:
    image = load_vae("taesd").decode([_decode(fitted, "img2")], [(SIZE, SIZE)])[0]
    lpips = [compute_metrics(crop, image)["lpips"] for crop in crops]
    assert int(np.argmin(lpips)) == 2, lpips


def test_payload_is_the_index_in_whole_bytes(items: list[CodecInput], fitted: SharedFit) -> None:
    assert fitted.payloads == {item.image_id: bytes([i]) for i, item in enumerate(items)}
    assert unpack_model(fitted.model).shapes == ((SIZE // 8, SIZE // 8),) * len(items)


@pytest.mark.parametrize(("count", "size"), [(1, 0), (2, 1), (256, 1), (257, 2), (1 << 16, 2)])
def test_index_payload_sizes(count: int, size: int) -> None:
    for index in {0, count // 2, count - 1}:
        data = laduree.pack_index(index, count)
        assert len(data) == size
        assert laduree.unpack_index(data, count) == index


def test_bad_payloads_are_rejected() -> None:
    with pytest.raises(CodecError, match="expected 1"):
        laduree.unpack_index(b"\0\0", 4)
    with pytest.raises(CodecError, match="outside"):
        laduree.unpack_index(b"\x04", 4)


def test_model_bytes_round_trip_exactly(fitted: SharedFit) -> None:
    assert pack_model(unpack_model(fitted.model)) == fitted.model


def test_decoding_is_deterministic_and_builds_the_model_once(fitted: SharedFit) -> None:
    first = _decode(fitted, "img1")
    assert np.array_equal(_decode(fitted, "img1"), first)
    copy = bytes(bytearray(fitted.model))
    assert laduree.load_model(copy) is laduree.load_model(fitted.model)
    fresh = laduree.LoadedModel(unpack_model(copy), "cpu")
    assert fresh is not laduree.load_model(copy)
    assert np.array_equal(fresh.latent(1), first)
    assert not np.array_equal(fresh.latent(0), first)


def test_golden_model_and_stream_keep_decoding(fitted: SharedFit) -> None:
    """A model and a container written by laduree 1 decode to the values they decoded
    to when written (the decoder runs through diffusers: an upgrade that changed its
    arithmetic would show here)."""
    if os.environ.get("LATENTPRESS_REGENERATE_GOLDEN"):
        GOLDEN_MODEL.write_bytes(fitted.model)
        config = {"codec": "laduree", "preset": "tiny", "quality": get_codec("laduree").params("tiny").quality}
        GOLDEN_IMAGE.write_bytes(pack_image(codec="laduree", codec_version=1, config=config,
                                            payload=fitted.payloads["img2"], width=SIZE, height=SIZE, vae_id="taesd",
                                            image_id="0123456789abcdef",
                                            shared_model=hashlib.sha256(fitted.model).hexdigest()[:16]))  # fmt: skip
        decoded = _decode(fitted, "img2")
        positions = [(0, 0, 0), (3, 7, 5), (1, 4, 6), (2, 0, 7)]
        pytest.skip("golden files written; GOLDEN_LATENT = " + repr({k: float(decoded[k]) for k in positions}))
    container, config = unpack_image(GOLDEN_IMAGE.read_bytes(), source=str(GOLDEN_IMAGE))
    model = GOLDEN_MODEL.read_bytes()
    assert container.codec == "laduree" and container.codec_version == get_codec("laduree").version == 1
    assert container.sections["shared"].decode() == hashlib.sha256(model).hexdigest()[:16]
    decoded = get_codec("laduree").decode(container.sections["payload"], DecodeContext(SIZE, SIZE, "taesd", model))
    assert decoded.shape == (4, SIZE // 8, SIZE // 8) and config["preset"] == "tiny"
    for index, value in GOLDEN_LATENT.items():
        assert decoded[index] == pytest.approx(value, abs=1e-5), index


def test_images_of_different_sizes_share_a_model() -> None:
    rng = np.random.default_rng(0)
    shapes = [(4, 8, 8), (4, 5, 7), (4, 8, 8)]
    items = [
        CodecInput(f"m{i}", 8 * s[2], 8 * s[1], latent=rng.normal(size=s).astype(np.float32))
        for i, s in enumerate(shapes)
    ]
    codec = get_codec("laduree")
    fit = codec.fit(items, dataclasses.replace(codec.params("tiny"), min_steps=3))
    for item in items:
        context = DecodeContext(item.width, item.height, shared_model=fit.model)
        assert codec.decode(fit.payloads[item.image_id], context).shape == item.latent.shape
    with pytest.raises(CodecError, match="larger than the image"):
        codec.decode(fit.payloads["m0"], DecodeContext(7, 7, shared_model=fit.model))


def test_codec_contract() -> None:
    codec = get_codec("laduree")
    assert isinstance(codec, ShardModelCodec) and not isinstance(codec, ImageEncoder)
    assert codec.domain == "latent" and codec.quality_name == "hidden"
    assert {"tiny", "fast", "default", "best"} <= set(codec.presets)
    assert codec.params("default").depth == 12
    assert codec.params(quality=240).hidden == 240
    for bad in (100, 108.5, 0):  # 6 heads: the hidden size must be a multiple of 12
        with pytest.raises(CodecError):
            codec.params(quality=bad)
    assert not hasattr(codec, "encode")  # it only fits shard models
    with pytest.raises(CodecError, match="shared model"):
        codec.decode(b"", DecodeContext(8, 8))


@pytest.mark.parametrize(
    ("latents", "ids", "match"),
    [
        ([], [], "1 to"),
        ([None], ["a"], "non-empty"),
        ([np.zeros((4, 2, 2)), np.zeros((3, 2, 2))], ["a", "b"], "channel"),
        ([np.zeros((4, 2, 2))] * 2, ["a", "a"], "duplicate"),
        ([np.full((4, 2, 2), np.nan)], ["a"], "non-finite"),
    ],
)
def test_fit_rejects_bad_items(latents: list, ids: list[str], match: str) -> None:
    items = [CodecInput(i, 16, 16, latent=z) for i, z in zip(ids, latents, strict=True)]
    codec = get_codec("laduree")
    with pytest.raises(CodecError, match=match):
        codec.fit(items, codec.params("tiny"))
