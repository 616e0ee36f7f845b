"""The crops collection models train on are latents an encoder made: windows of the
training latents (and of their photos' pixels at the same place), not mirrored unless
a latent-only stage asks, since a VAE latent is not mirror-symmetric."""

from __future__ import annotations

import numpy as np
from latent_fixtures import crops

from latentpress.codecs.hyperprior.training import Crops
from latentpress.codecs.tuned_decoder.tuning import PixelCrops
from latentpress.models.metrics import compute_metrics
from latentpress.models.vae import load_vae


def window_of(crop: np.ndarray, sources: list[np.ndarray]) -> tuple[int, int, int] | None:
    """(source, top, left) of the window of ``sources`` that equals ``crop``, if any."""
    n = crop.shape[1]
    for index, z in enumerate(sources):
        for top in range(z.shape[1] - n + 1):
            for left in range(z.shape[2] - n + 1):
                if np.array_equal(z[:, top : top + n, left : left + n], crop):
                    return index, top, left
    return None


def test_a_mirrored_latent_is_not_the_latent_of_the_mirrored_photo() -> None:
    vae = load_vae("taesd")
    photo = crops(128)[0]
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    latent, of_mirrored = vae.encode([photo, mirrored])
    drawn = vae.decode([latent, np.ascontiguousarray(latent[:, :, ::-1])], [(128, 128)] * 2)
    own, flipped = compute_metrics(photo, drawn[0])["lpips"], compute_metrics(mirrored, drawn[1])["lpips"]
    assert flipped > own + 0.05  # why training never mirrors a latent
    assert not np.allclose(of_mirrored, latent[:, :, ::-1], atol=0.1)


def test_latent_crops_are_windows_of_the_training_latents() -> None:
    rng = np.random.default_rng(0)
    latents = [rng.normal(size=(4, 12, 10)).astype(np.float32) for _ in range(3)]
    for crop in Crops(latents, 6, seed=1).batch(40).numpy():
        assert window_of(crop, latents) is not None
    # glc's rate-distortion stage asks for mirrored crops as more latent-space data
    mirrored = Crops(latents, 6, seed=1, mirror=True).batch(40).numpy()
    assert any(
        window_of(crop, latents) is None and window_of(crop[:, :, ::-1], latents) is not None for crop in mirrored
    )


def test_pixel_crops_pair_a_latent_window_with_its_own_pixels() -> None:
    rng = np.random.default_rng(0)
    latents = [rng.normal(size=(4, 12, 10)).astype(np.float32) for _ in range(3)]
    images = [rng.integers(0, 256, size=(96, 80, 3), dtype=np.uint8) for _ in range(3)]
    latent_crops, pixel_crops = PixelCrops(list(zip(latents, images, strict=True)), 8, 6, seed=1).batch(40)
    for latent, pixels in zip(latent_crops.numpy(), pixel_crops.numpy(), strict=True):
        found = window_of(latent, latents)
        assert found is not None
        index, top, left = found
        expected = images[index][top * 8 : (top + 6) * 8, left * 8 : (left + 6) * 8]
        np.testing.assert_array_equal(np.round((pixels.transpose(1, 2, 0) + 1) * 127.5), expected)
