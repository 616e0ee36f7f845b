"""Latent autoencoders (real TAESD weights from the models folder) and model resolution."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from latentpress.infra.model_files import model_id, resolve_model
from latentpress.models.vae import LatentAutoencoder, load_vae


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse)


@pytest.fixture(scope="module")
def taesd() -> LatentAutoencoder:
    return load_vae("taesd")


def test_taesd_properties(taesd: LatentAutoencoder) -> None:
    assert (taesd.vae_id, taesd.stride, taesd.latent_channels) == ("taesd", 8, 4)
    assert (taesd.scaling_factor, taesd.shift_factor) == (1.0, 0.0)
    assert load_vae("taesd") is taesd


@pytest.mark.parametrize("fixture", ["kodak_crop", "smooth_image"])
def test_shapes_round_trip(taesd: LatentAutoencoder, fixture: str, request) -> None:
    image = request.getfixturevalue(fixture)
    h, w = image.shape[:2]
    (z,) = taesd.encode([image])
    assert z.shape == (4, math.ceil(h / 8), math.ceil(w / 8)) and z.dtype == np.float32
    assert np.isfinite(z).all()
    (back,) = taesd.decode([z], [(w, h)])
    assert back.shape == (h, w, 3) and back.dtype == np.uint8


def test_reconstruction_quality(taesd: LatentAutoencoder, kodak_crop: np.ndarray) -> None:
    h, w = kodak_crop.shape[:2]
    back = taesd.decode(taesd.encode([kodak_crop]), [(w, h)])[0]
    assert 20.0 < _psnr(kodak_crop, back) < 40.0


def test_deterministic_and_batch_independent(
    taesd: LatentAutoencoder, kodak_crop: np.ndarray, smooth_image: np.ndarray
) -> None:
    alone = taesd.encode([kodak_crop])[0]
    assert np.array_equal(alone, taesd.encode([kodak_crop])[0])
    flipped = kodak_crop[::-1].copy()
    batched = taesd.encode([kodak_crop, smooth_image, flipped], batch_size=2)
    assert [z.shape[1:] for z in batched] == [(12, 16), (8, 10), (12, 16)]
    np.testing.assert_allclose(batched[0], alone, atol=1e-4)
    np.testing.assert_allclose(batched[2], taesd.encode([flipped])[0], atol=1e-4)


def test_padding_is_edge_replication(taesd: LatentAutoencoder, smooth_image: np.ndarray) -> None:
    padded = np.pad(smooth_image, ((0, 3), (0, 5), (0, 0)), mode="edge")  # 61x75 -> 64x80
    np.testing.assert_allclose(taesd.encode([smooth_image])[0], taesd.encode([padded])[0], atol=1e-5)


def test_decode_rejects_wrong_size(taesd: LatentAutoencoder, kodak_crop: np.ndarray) -> None:
    z = taesd.encode([kodak_crop])
    with pytest.raises(ValueError, match="does not fit"):
        taesd.decode(z, [(128 + 8, 96)])


def test_encode_rejects_non_rgb(taesd: LatentAutoencoder) -> None:
    with pytest.raises(ValueError, match="uint8"):
        taesd.encode([np.zeros((16, 16), np.uint8)])


def test_taesd3_has_16_channels(kodak_crop: np.ndarray) -> None:
    vae = load_vae("taesd3")
    (z,) = vae.encode([kodak_crop])
    assert vae.latent_channels == 16 and z.shape == (16, 12, 16)
    assert _psnr(kodak_crop, vae.decode([z], [(128, 96)])[0]) > 20.0


def test_load_from_folder_path(taesd: LatentAutoencoder, kodak_crop: np.ndarray) -> None:
    folder = os.path.join(os.environ["LATENTPRESS_MODELS"], "taesd")
    vae = load_vae(folder)
    assert vae.vae_id == "taesd"
    np.testing.assert_array_equal(vae.encode([kodak_crop])[0], taesd.encode([kodak_crop])[0])


def test_missing_model_names_setting() -> None:
    with pytest.raises(FileNotFoundError, match="LATENTPRESS_MODELS") as err:
        load_vae("no-such-vae")
    assert "no-such-vae" in str(err.value)


def test_resolution_order(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine").mkdir()
    monkeypatch.setenv("LATENTPRESS_MODELS", str(tmp_path))
    assert resolve_model("mine") == str(tmp_path / "mine")
    assert resolve_model(str(tmp_path / "mine")) == str(tmp_path / "mine")
    assert resolve_model("madebyollin/taesd") == "madebyollin/taesd"
    monkeypatch.delenv("LATENTPRESS_MODELS")
    with pytest.raises(FileNotFoundError, match="LATENTPRESS_MODELS is not set"):
        resolve_model("mine")
    assert resolve_model("owner/repo") == "owner/repo"


def test_model_id(tmp_path) -> None:
    assert model_id("taesd") == "taesd"
    assert model_id("madebyollin/taesdxl") == "madebyollin--taesdxl"
    assert model_id(str(tmp_path / "my-vae") + "/") == "my-vae"
