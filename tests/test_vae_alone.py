"""``vae``: the latent stored as floats, the VAE's own reconstruction as a reference
line in the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentpress.codecs import CodecError, CodecInput, DecodeContext, get_codec
from latentpress.report.curves import bd_table


def test_the_latent_comes_back_exactly_in_32_bits_and_to_float16_in_16() -> None:
    latent = np.random.default_rng(0).normal(0, 2, (4, 12, 20)).astype(np.float32)
    codec, item, context = get_codec("vae"), CodecInput("x", 160, 96, latent=latent), DecodeContext(160, 96)
    exact = codec.decode(codec.encode(item, codec.params(quality=32)), context)
    np.testing.assert_array_equal(exact, latent)
    data = codec.encode(item, codec.params())
    assert len(data) == 12 + 2 * latent.size  # header and 16-bit floats: 1 bpp for a 4-channel latent of stride 8
    np.testing.assert_array_equal(codec.decode(data, context), latent.astype(np.float16).astype(np.float32))


def test_bad_input_and_bad_streams_are_codec_errors() -> None:
    codec, context = get_codec("vae"), DecodeContext(160, 96)
    with pytest.raises(CodecError, match="16- or 32-bit"):
        codec.params(quality=8)
    with pytest.raises(CodecError, match="non-finite"):
        codec.encode(CodecInput("x", 8, 8, latent=np.full((4, 1, 1), np.nan, np.float32)), codec.params())
    data = codec.encode(CodecInput("x", 160, 96, latent=np.zeros((4, 12, 20), np.float32)), codec.params())
    for bad, why in ((data[:-1], "does not hold"), (data[:5], "shorter than its header"),
                     (data[:1] + b"\x08" + data[2:], "8-bit")):  # fmt: skip
        with pytest.raises(CodecError, match=why):
            codec.decode(bad, context)
    with pytest.raises(CodecError, match="bad vae latent shape"):
        codec.decode(data, DecodeContext(16, 96))  # a latent wider than the image


def test_the_reference_is_left_out_of_bd_rates() -> None:
    points = pd.DataFrame([
        {"curve": c, "codec": c.split(" ")[0], "config_key": f"{c.split(' ')[0]}.default.q{b:g}", "bpp": b, "lpips": l,
         "dists": l, "psnr": 40 - 20 * l, "ms_ssim": 1 - l}
        for c, b, l in [("avif", 0.2, 0.3), ("avif", 0.5, 0.2), ("avif", 1.0, 0.1), ("latent-q (taesd)", 0.1, 0.3),
                        ("latent-q (taesd)", 0.3, 0.2), ("vae (taesd)", 1.0, 0.05)]
    ])  # fmt: skip
    assert list(bd_table(points, "avif")["curve"]) == ["latent-q (taesd)"]
