"""The latent perceptual distance: zero for identical latents, growing with damage on
a real photo, differentiable into what made the latent, refreshed to fit measured
pairs, and its weights file loads while foreign bytes are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save

from latentpress.models.latent_distance import (
    FORMAT,
    SCALE_BOUNDS,
    TAPS,
    TARGETS,
    WEIGHTS_FOLDER,
    Calibration,
    LatentDistance,
    LatentDistanceError,
    load_latent_distance,
    weights_file,
)
from latentpress.models.metrics import metric
from latentpress.models.vae import load_vae


@pytest.fixture(scope="module")
def latent(kodak_crop: np.ndarray) -> torch.Tensor:
    """The TAESD latent of a real 128x96 crop, (1, 4, 12, 16)."""
    return torch.from_numpy(load_vae("taesd").encode([kodak_crop])[0])[None]


@pytest.fixture(scope="module")
def distance() -> LatentDistance:
    """The package's calibrated distance for TAESD."""
    return load_latent_distance("taesd")


def test_zero_for_identical_latents(distance: LatentDistance, latent: torch.Tensor) -> None:
    for target in (*TARGETS, "both"):
        assert distance(latent, latent.clone(), target).item() == 0.0


def test_grows_with_quantization_of_a_real_photo(distance: LatentDistance, latent: torch.Tensor) -> None:
    scale = latent.std()
    steps = [0.1, 0.3, 0.9]
    for target in TARGETS:
        values = [distance(torch.round(latent / (k * scale)) * (k * scale), latent, target).item() for k in steps]
        assert 0 < values[0] < values[1] < values[2], (target, values)


def test_its_gradient_reaches_what_made_the_latent(distance: LatentDistance, latent: torch.Tensor) -> None:
    offset = torch.zeros_like(latent, requires_grad=True)  # stands in for a codec's parameters
    noisy = latent + 0.2 * latent.std() * torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    reference = [f.detach() for f in distance.features(latent)]  # the reference side, computed once
    distance(noisy + offset, reference, "both").sum().backward()
    assert offset.grad is not None and torch.isfinite(offset.grad).all() and offset.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in distance.parameters())  # the decoder stays frozen


def test_a_refresh_fits_pixel_measurements_of_a_real_photo(latent: torch.Tensor, kodak_crop: np.ndarray) -> None:
    distance = load_latent_distance("taesd")  # its own copy: a refresh changes it
    scale, noise = latent.std(), torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    damaged = torch.cat([torch.round(latent / (k * scale)) * (k * scale) for k in (0.2, 0.5, 1.0)]
                        + [latent + k * scale * noise for k in (0.1, 0.3)] + [torch.roll(latent, 1, 3)])  # fmt: skip
    vae, size = load_vae("taesd"), kodak_crop.shape[1::-1]
    reference = vae.decode([latent[0].numpy()], [size])[0]
    images = vae.decode(list(damaged.numpy()), [size] * len(damaged))
    measured = {t: torch.tensor([metric(t, reference, image) for image in images]) for t in TARGETS}
    with torch.no_grad():
        terms = distance.channel_terms(damaged, distance.features(latent))
    before = {t: (distance.weigh(terms, t) / measured[t] - 1).pow(2).sum().item() for t in TARGETS}
    scales = distance.refresh(terms, measured)
    for target in TARGETS:
        assert len(scales[target]) == len(TAPS) and all(SCALE_BOUNDS[0] <= f <= SCALE_BOUNDS[1] for f in scales[target])
        after = (distance.weigh(terms, target) / measured[target] - 1).pow(2).sum().item()
        assert after <= before[target] * (1 + 1e-6)  # the loaded weights (all scales 1) are one candidate
    assert distance.calibration.record["refreshed"] == {"pairs": len(damaged), "tap_scales": scales}
    assert torch.equal(distance.calibrated.weights["lpips"], load_latent_distance("taesd").calibration.weights["lpips"])
    again = Calibration.from_bytes(distance.calibration.to_bytes(), "refreshed")
    assert torch.equal(again.weights["dists"], distance.weights_dists)
    # pixels that cost twice what it predicts double it; a hundred times, it stops at its bound
    doubled = distance.refresh(terms, {t: 2 * terms @ distance.calibrated.weights[t] for t in TARGETS})
    assert all(f == pytest.approx(2, rel=1e-4) for f in doubled["lpips"] + doubled["dists"])
    bounded = distance.refresh(terms, {"lpips": 100 * terms @ distance.calibrated.weights["lpips"]})
    assert bounded["lpips"] == pytest.approx([SCALE_BOUNDS[1]] * len(TAPS))


@pytest.mark.parametrize("vae", sorted(p.stem for p in WEIGHTS_FOLDER.glob("*.safetensors")))
def test_the_shipped_weights_load_with_their_record(vae: str) -> None:
    calibration = load_latent_distance(vae).calibration
    assert calibration.vae_id == vae and calibration.taps == TAPS
    assert all((w >= 0).all() and w.sum() > 0 for w in calibration.weights.values())
    record = calibration.record
    assert not set(record["calibration_photos"]) & set(record["held_out_photos"])
    assert all(not p.startswith(("kodim03", "kodim04", "kodim05", "kodim06")) for p in record["calibration_photos"])
    again = Calibration.from_bytes(calibration.to_bytes(), "round trip")
    assert all(torch.equal(again.weights[t], calibration.weights[t]) for t in TARGETS)


def _file(metadata: dict[str, str], weights: dict[str, torch.Tensor]) -> bytes:
    return save(weights, metadata)


GOOD = {"format": FORMAT, "version": "1", "vae_id": "taesd", "taps": json.dumps(list(TAPS))}
ONES = {t: torch.ones(64 * len(TAPS)) for t in TARGETS}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00" * 3, "not a safetensors file"),
        (b"not a weights file at all, just text", "not a safetensors file"),
        (_file({"format": "something-else", "version": "1"}, ONES), "not a latentpress latent distance"),
        (_file(GOOD | {"version": "99"}, ONES), "not a latentpress latent distance"),
        (_file(GOOD | {"taps": "[1, "}, ONES), "malformed metadata"),
        (_file(GOOD, {"lpips": torch.ones(192)}), "expected weight vectors"),
        (_file(GOOD, {"lpips": torch.ones(192), "dists": -torch.ones(192)}), "non-negative"),
        (_file(GOOD, {"lpips": torch.full((192,), float("nan")), "dists": torch.ones(192)}), "non-negative"),
    ],
)
def test_foreign_bytes_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(LatentDistanceError, match=message):
        Calibration.from_bytes(data, "weights.safetensors")


def test_weights_of_another_shape_or_vae_are_refused(tmp_path, monkeypatch) -> None:
    decoder = load_vae("taesd").vae.decoder
    short = Calibration("taesd", TAPS, {t: torch.ones(10) for t in TARGETS}, {})
    with pytest.raises(LatentDistanceError, match="entries"):
        LatentDistance(decoder, short)
    other = tmp_path / "taesd3.safetensors"
    other.write_bytes(Calibration("taesd3", TAPS, ONES, {}).to_bytes())
    with pytest.raises(LatentDistanceError, match="calibrated for VAE 'taesd3'"):
        load_latent_distance("taesd", str(other))
    monkeypatch.setattr("latentpress.models.latent_distance.WEIGHTS_FOLDER", tmp_path)
    assert not weights_file("taesdxl").exists()
    with pytest.raises(LatentDistanceError, match="no calibrated latent distance"):
        load_latent_distance("taesdxl")
