"""Relic's scale fit: shifts that even out what a bit buys in each channel, applied to
the parameter network's log2 scales alone, on real photos held out of training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from latent_fixtures import crops, item

from latentpress.codecs import CodecError, DecodeContext, get_codec
from latentpress.codecs.relic import bitstream
from latentpress.codecs.relic.codec import LoadedModel
from latentpress.codecs.relic.params import ScaleFit
from latentpress.codecs.relic.scale_fit import Slopes, shifts


def slopes(rows: list[list[float]]) -> Slopes:
    n = len(rows)
    return Slopes(np.array(rows, dtype=float), np.ones(n), np.ones(n))


def test_the_shifts_bring_every_channel_to_the_same_slope() -> None:
    fit = ScaleFit()
    moved = shifts(slopes([[4.0, 1.0, 2.0], [0.4, 0.1, 0.2]]), fit)  # the same ratios at two rates
    np.testing.assert_allclose(moved, [0.5, -0.5, 0.0], atol=1e-12)  # (log2 of 4, 1, 2 less their mean) / 2
    np.testing.assert_allclose(np.array([4.0, 1.0, 2.0]) * 2 ** (-2 * moved), 2.0)  # the high-rate model: all at 2
    assert abs(moved.sum()) < 1e-12  # bits move between channels
    assert np.array_equal(shifts(slopes([[4.0, 1.0, 2.0], [-1.0, -2.0, 0.0]]), fit), moved)  # nothing bought: left out
    assert np.all(shifts(slopes([[-1.0, -2.0, 0.0]]), fit) == 0)
    capped = shifts(slopes([[1000.0, 1.0, 1.0]]), fit)
    assert capped[0] == fit.max_shift and capped[1] == capped[2] < 0
    floored = shifts(slopes([[1.0, -5.0, 1.0]]), fit)  # a slope under the floor counts as the floor
    np.testing.assert_allclose(floored, shifts(slopes([[1.0, fit.floor, 1.0]]), fit))


def test_training_shifts_the_log_scales_alone(latents: list[np.ndarray]) -> None:
    """The same training with and without the scale fit gives the same model but for
    P's log2 scale biases, moved by shifts that sum to zero; the fitted model codes
    and decodes, and a finer step of a channel costs bits."""
    codec = get_codec("relic")
    params = dataclasses.replace(codec.params("tiny"), time_fit_photos=2)
    items = [dataclasses.replace(item(z, f"{i:016x}"), image=photo)
             for i, (z, photo) in enumerate(zip(latents, crops(), strict=True))]  # fmt: skip
    statuses = []
    fitted = codec.train(items, dataclasses.replace(params, scale_fit=True), progress=statuses.append)
    assert [(s.step, s.steps) for s in statuses if s.stage == "scales"] == [(1, 1)]
    before = bitstream.unpack_model(codec.train(items, params))[0]
    after = bitstream.unpack_model(fitted)[0]
    channels = latents[0].shape[0]
    for (name, a), b in zip(before.state_dict().items(), after.state_dict().values(), strict=True):
        if name == "parameter_net.out.bias":
            assert torch.equal(a[channels:], b[channels:])
            moved = (b - a)[:channels]
            assert float(moved.abs().max()) > 0 and abs(float(moved.sum())) < 4e-3  # P is stored in float16
        else:
            assert torch.equal(a, b), name
    payload = codec.encode(items[0], codec.params("tiny", 2.0), fitted)
    decoded = codec.decode(payload, DecodeContext(128, 128, "taesd", fitted))
    assert decoded.shape == latents[0].shape and np.all(np.isfinite(decoded))
    loaded = LoadedModel(after)
    side = loaded.side_info(latents[0], 2.0)
    for channel in range(channels):
        finer = side.log_scales.copy()
        finer[channel] += 16
        assert len(loaded.code_with(latents[0], dataclasses.replace(side, log_scales=finer))[0]) > len(
            loaded.code_with(latents[0], side)[0]
        )


def test_the_scale_fit_needs_held_out_photos() -> None:
    params = dataclasses.replace(get_codec("relic").params("tiny"), scale_fit=True)
    with pytest.raises(CodecError, match="scale_fit .* time_fit_photos"):
        params.validate()
    with pytest.raises(CodecError, match="scale_fit must be true or false"):
        dataclasses.replace(params, time_fit_photos=1, scale_fit=2).validate()
    dataclasses.replace(params, time_fit_photos=1).validate()
