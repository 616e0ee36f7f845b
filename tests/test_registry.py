"""The codec registry: what each codec is, known without its implementation; abilities
as classes, so a codec carries only the methods it can do."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from latentpress.codecs import (
    CODECS,
    BatchEncoder,
    CodecError,
    CodecInfo,
    CollectionModelCodec,
    ImageEncoder,
    RateControlled,
    ShardModelCodec,
    get_codec,
    register_codec,
)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_every_codec_matches_its_registered_information(name: str) -> None:
    info, codec = CODECS[name], get_codec(name)
    assert codec.info is info and codec.name == name and codec.domain == info.domain
    assert info.rate_control == isinstance(codec, RateControlled)
    assert info.collection_model == isinstance(codec, CollectionModelCodec) == (info.coding == "collection-model")
    assert isinstance(codec, ShardModelCodec) == (info.coding == "shard-model") == (not info.per_image)
    assert isinstance(codec, BatchEncoder) == (info.coding == "batch")
    assert isinstance(codec, ImageEncoder) == (info.coding in ("image", "batch"))
    ways = [isinstance(codec, ability) for ability in (ImageEncoder, ShardModelCodec, CollectionModelCodec)]
    assert sum(ways) == 1  # one way to encode
    assert info.better in ("higher", "lower") and info.default_qualities and "default" in info.presets
    for preset in info.presets:
        for quality in info.default_qualities:
            assert info.params(preset, quality).quality == quality


def test_abilities() -> None:
    assert isinstance(get_codec("clric"), BatchEncoder) and isinstance(get_codec("clric"), RateControlled)
    assert not isinstance(get_codec("avif"), BatchEncoder) and not isinstance(get_codec("latent-q"), RateControlled)
    assert isinstance(get_codec("laduree"), ShardModelCodec) and not hasattr(get_codec("laduree"), "encode")


def test_a_name_is_taken_once_and_needs_a_default_preset() -> None:
    @dataclasses.dataclass(frozen=True)
    class Params:
        quality: float = 1.0

    avif = CODECS["avif"]
    with pytest.raises(ValueError, match="already registered"):
        register_codec(dataclasses.replace(avif, summary="another avif"))
    with pytest.raises(ValueError, match="no 'default' preset"):
        register_codec(CodecInfo("x-test", "", "pixels", {"fast": Params()}, (1.0,), "quality", "higher", "nowhere:X"))
    with pytest.raises(KeyError, match="unknown codec 'nope'"):
        get_codec("nope")
    with pytest.raises(CodecError, match="no preset 'turbo'"):
        avif.params("turbo")


def test_registering_imports_no_implementation() -> None:
    code = "import sys, latentpress.codecs; print(sorted(m for m in ('torch', 'diffusers') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_codec_version_is_its_payload_format_version() -> None:
    from latentpress.codecs.clric import bitstream as clric_bytes
    from latentpress.codecs.glc import bitstream as glc_bytes
    from latentpress.codecs.relic import bitstream as relic_bytes

    assert get_codec("glc").version == CODECS["glc"].version == glc_bytes.PAYLOAD_VERSION
    assert get_codec("relic").version == CODECS["relic"].version == relic_bytes.PAYLOAD_VERSION
    assert get_codec("clric").version == CODECS["clric"].version == clric_bytes.VERSION


def test_a_codec_declaring_abilities_its_class_lacks_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Params:
        quality: float = 1.0

    for cls, coding in ((BatchEncoder, "image"), (ShardModelCodec, "collection-model"), (ImageEncoder, "batch")):
        info = CodecInfo(
            "x-wrong", "", "latent", {"default": Params()}, (1.0,), "quality", "higher", cls, coding=coding
        )
        with pytest.raises(ValueError, match=f"declares coding '{coding}'"):
            register_codec(info)
    assert "x-wrong" not in CODECS


def test_an_option_added_later_leaves_fingerprints_alone_until_used(monkeypatch) -> None:
    """A parameter field added after fingerprints began (``ADDED``) is left out of a
    configuration's fingerprint while it holds its default: glc's presets as 0.6.0 had
    them keep the fingerprints their ledger rows had then, and the option counts once
    set (glc's ``fast`` and ``default`` set ``decoder_steps`` since 0.7.0 and
    ``channel_weighting`` since 0.9.0)."""
    from latentpress.codecs.glc.params import PRESETS
    from latentpress.codecs.spec import CodecConfig, params_meaning

    now = CodecConfig("glc", "default", 2.0).fingerprint()
    for preset in ("default", "fast"):
        monkeypatch.setitem(
            PRESETS, preset, dataclasses.replace(PRESETS[preset], decoder_steps=0, channel_weighting="off")
        )
    assert CodecConfig("glc", "default", 2.0).fingerprint() == "c9a5bd7c0857e49f"  # as written by 0.6.0
    assert CodecConfig("glc", "fast", 0.2, "lpips").fingerprint() == "c5ff08056406e822"
    assert now != "c9a5bd7c0857e49f"  # the preset whose meaning changed has a new fingerprint
    plain = get_codec("glc").params("default")
    assert "adversarial" not in params_meaning(plain)
    assert params_meaning(dataclasses.replace(plain, adversarial=0.1))["adversarial"] == 0.1
    assert params_meaning(plain)["latent_perceptual"] == 0.0  # fields from before keep counting
