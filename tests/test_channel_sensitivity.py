"""Channel sensitivity: what each latent channel's error costs in pixel LPIPS plus
DISTS, measured on real photos, and glc's rate-distortion stage weighted by it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from latent_fixtures import crops, item

from latentpress.codecs import CodecError, get_codec
from latentpress.codecs.glc.train import channel_weights
from latentpress.codecs.hyperprior.training import latent_statistics
from latentpress.models.channel_sensitivity import FLOOR, channel_sensitivity
from latentpress.models.vae import load_vae


def test_sensitivity_is_measured_in_pixels_and_follows_the_noise(latents: list[np.ndarray]) -> None:
    """Weights of mean 1, the same for the same seed; noise twice as large in one
    channel (a spread said twice as large) raises that channel's weight against the
    others; photos too small for the metrics are refused."""
    vae, photos = load_vae("taesd"), crops()
    std = latent_statistics(latents)[1]
    weights = channel_sensitivity(vae, photos, latents, std)
    assert weights.shape == (4,) and weights.mean() == pytest.approx(1) and weights.min() >= FLOOR * 0.99
    np.testing.assert_array_equal(weights, channel_sensitivity(vae, photos, latents, std))
    louder = std.copy()
    louder[0] *= 2
    moved = channel_sensitivity(vae, photos, latents, louder)
    assert moved[0] / moved[1:].mean() > 2 * weights[0] / weights[1:].mean()
    with pytest.raises(ValueError, match="at least 32 pixels"):
        channel_sensitivity(vae, [p[:16, :16] for p in photos], [z[:, :2, :2] for z in latents], std)


def test_glc_weighs_its_channels_by_their_sensitivity(latents: list[np.ndarray]) -> None:
    """The distortion's weights are one over each channel's variance times its
    sensitivity; training with them asks for the photos' pixels, and moves the model."""
    sensitivity = np.array([2.0, 1.0, 0.5, 0.5])
    np.testing.assert_allclose(
        channel_weights(latents, sensitivity), channel_weights(latents) * torch.tensor(sensitivity)
    )
    codec = get_codec("glc")
    params = dataclasses.replace(codec.params("tiny"), channel_weighting="on")
    assert codec.training_pixels(params) == 8 and codec.training_pixels(codec.params("tiny")) == 0
    items = [dataclasses.replace(item(z, f"{i:016x}"), image=photo)
             for i, (z, photo) in enumerate(zip(latents, crops(), strict=True))]  # fmt: skip
    assert codec.train(items, params, steps=5) != codec.train(items, codec.params("tiny"), steps=5)
    with pytest.raises(CodecError, match="channel_weighting: channel sensitivity needs photos"):
        codec.train([item(z) for z in latents], params, steps=5)
    with pytest.raises(CodecError, match="channel_weighting must be one of off, on, auto, got 'yes'"):
        dataclasses.replace(params, channel_weighting="yes").validate()


def test_auto_weighs_the_channels_of_taesd3_only(latents: list[np.ndarray]) -> None:
    """``auto`` (the fast and default presets) weighs 16-channel latents, not 4-channel
    ones: trained on TAESD latents it makes the unweighted model, bit for bit."""
    codec = get_codec("glc")
    auto = dataclasses.replace(codec.params("tiny"), channel_weighting="auto")
    assert [auto.weighs_channels(c) for c in (4, 16)] == [False, True]
    assert [codec.params(p).channel_weighting for p in ("fast", "default")] == ["auto", "auto"]
    assert codec.training_pixels(auto) == 8
    items = [dataclasses.replace(item(z, f"{i:016x}"), image=photo)
             for i, (z, photo) in enumerate(zip(latents, crops(), strict=True))]  # fmt: skip
    assert codec.train(items, auto, steps=5) == codec.train(items, codec.params("tiny"), steps=5)
