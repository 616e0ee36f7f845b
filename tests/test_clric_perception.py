"""clric's perceptual weighting: weight maps that say where the latent distance sees an
error, and fits that spend their accuracy there."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from latent_fixtures import item

from latentpress.codecs import CodecError, DecodeContext, get_codec
from latentpress.codecs.clric import PRESETS
from latentpress.codecs.clric.perception import weight_map
from latentpress.codecs.clric.train import fit
from latentpress.models.latent_distance import shipped_latent_distance

TINY = dataclasses.replace(PRESETS["fast"], quality=0.1, warmup=((2, 20),), iterations=250, rounding=25,
                           learning_rate=0.03)  # fmt: skip


def test_a_weight_map_has_mean_one_and_no_free_error(test_latent: np.ndarray) -> None:
    weights = weight_map(test_latent, "taesd", 1.0)
    assert weights.shape == test_latent.shape and weights.dtype == np.float32
    assert weights.mean() == pytest.approx(1.0, abs=1e-5) and weights.min() > 0
    assert weights.max() > 1.5 * weights.min()  # a real photo is not equally sensitive everywhere
    assert np.allclose(weight_map(test_latent, "taesd", 0.0), 1.0)  # exponent 0: the plain MSE
    half = weight_map(test_latent, "taesd", 0.5)
    assert np.ptp(np.log(half)) < np.ptp(np.log(weights))  # a smaller exponent flattens it


def test_errors_where_the_map_is_high_cost_the_distance_more(test_latent: np.ndarray) -> None:
    """The same small error put where the map is highest, then where it is lowest: the
    latent distance (LPIPS plus DISTS) is larger for the first."""
    weights = weight_map(test_latent, "taesd", 1.0)
    order = np.argsort(weights.ravel())
    rng = np.random.default_rng(0)
    distance = shipped_latent_distance("taesd")
    y = torch.from_numpy(test_latent)[None]

    def cost(positions: np.ndarray) -> float:
        error = np.zeros(test_latent.size, np.float32)
        error[positions] = rng.choice([-0.3, 0.3], positions.size)
        with torch.no_grad():
            return distance(y + torch.from_numpy(error.reshape(test_latent.shape))[None], y, "both").item()

    tenth = order.size // 10
    assert cost(order[-tenth:]) > 1.5 * cost(order[:tenth])


def test_a_weighted_fit_is_more_accurate_where_the_weights_are(test_latent: np.ndarray) -> None:
    left = np.ones_like(test_latent)
    left[:, :, : test_latent.shape[2] // 2] = 10.0
    left /= left.mean()
    halves = slice(None, test_latent.shape[2] // 2), slice(test_latent.shape[2] // 2, None)

    def error_ratio(weights: np.ndarray | None) -> float:
        model = fit(test_latent[None], np.array([TINY.quality]), TINY, weights=None if weights is None else left[None])
        with torch.no_grad():
            error = (model(mode="round")[0][0] - torch.from_numpy(test_latent)).square()
        return float(error[:, :, halves[0]].mean() / error[:, :, halves[1]].mean())

    assert error_ratio(left) < 0.7 * error_ratio(None)


def test_a_perceptually_weighted_stream_decodes_to_its_latent(test_latent: np.ndarray) -> None:
    codec = get_codec("clric")
    params = dataclasses.replace(TINY, perceptual_weighting=1.0)
    data = codec.encode(item(test_latent), params)
    context = DecodeContext(test_latent.shape[2] * 8, test_latent.shape[1] * 8, "taesd")
    decoded = codec.decode(data, context)
    assert decoded.shape == test_latent.shape
    assert np.mean((decoded - test_latent) ** 2) < np.mean(test_latent**2)  # it describes the latent


def test_weighting_needs_the_latents_vae_and_a_range(test_latent: np.ndarray) -> None:
    codec = get_codec("clric")
    params = dataclasses.replace(TINY, perceptual_weighting=1.0)
    anonymous = dataclasses.replace(item(test_latent), vae_id=None)
    with pytest.raises(CodecError, match="VAE"):
        codec.encode(anonymous, params)
    with pytest.raises(CodecError, match="perceptual_weighting"):
        codec.encode(item(test_latent), dataclasses.replace(TINY, perceptual_weighting=3.0))
