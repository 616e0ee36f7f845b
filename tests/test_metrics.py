"""Image quality metrics with the real LPIPS / DISTS weights from the models folder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from latentpress.models import metrics
from latentpress.models.metrics import compute_metrics

LPIPS_PKG = Path(__import__("lpips").__file__).parent


def _noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def _expected_psnr_clipped(image: np.ndarray, sigma: float) -> float:
    """Closed-form PSNR of ``clip(x + N(0, sigma^2), 0, 255)`` against x (rounding adds 1/12)."""

    def cdf(z: float) -> float:
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))

    def pdf(z: float) -> float:
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    counts = np.bincount(image.ravel(), minlength=256)
    mse = 0.0
    for v, n in enumerate(counts):
        if n:
            a, b = -v / sigma, (255 - v) / sigma  # clip bounds in units of sigma
            inside = cdf(b) - cdf(a) + a * pdf(a) - b * pdf(b)
            tails = a * a * cdf(a) + b * b * (1 - cdf(b))
            mse += n * (sigma**2 * (inside + tails) + 1 / 12)
    return 10 * math.log10(255**2 / (mse / image.size))


def test_identical_images(kodak_crop: np.ndarray) -> None:
    m = compute_metrics(kodak_crop, kodak_crop.copy())
    assert set(m) == {"psnr", "ms_ssim", "lpips", "dists"}
    assert m["psnr"] == math.inf
    assert m["ms_ssim"] == pytest.approx(1.0, abs=1e-6)
    assert abs(m["lpips"]) < 1e-6
    assert abs(m["dists"]) < 1e-5


def test_noise_ordering_and_psnr(kodak_crop: np.ndarray) -> None:
    low, high = _noisy(kodak_crop, 10), _noisy(kodak_crop, 30)
    m_low, m_high = compute_metrics(kodak_crop, low), compute_metrics(kodak_crop, high)
    assert m_low["psnr"] == pytest.approx(20 * math.log10(255 / 10), abs=0.5)  # 28.1 dB
    # At sigma 30 clipping at 0 and 255 removes part of the noise: compare with the
    # closed form that accounts for it (18.6 dB without clipping).
    assert m_high["psnr"] == pytest.approx(_expected_psnr_clipped(kodak_crop, 30), abs=0.15)
    assert m_low["psnr"] == pytest.approx(_expected_psnr_clipped(kodak_crop, 10), abs=0.15)
    assert 0 < m_high["ms_ssim"] < m_low["ms_ssim"] < 1
    assert 0 < m_low["lpips"] < m_high["lpips"]
    assert 0 < m_low["dists"] < m_high["dists"]


def test_lpips_heads_match_package_release() -> None:
    shipped = torch.load(
        LPIPS_PKG / "weights" / "v0.1" / "alex.pth", map_location="cpu", weights_only=True
    )
    state = metrics._lpips_model("cpu").state_dict()
    for key, value in shipped.items():
        assert torch.equal(state[key], value), key


def test_ms_ssim_scales() -> None:
    assert [metrics._num_scales(s, 500) for s in (11, 20, 21, 160, 161, 512)] == [1, 1, 2, 4, 5, 5]
    with pytest.raises(ValueError, match="window"):
        metrics._num_scales(10, 100)


def test_ms_ssim_symmetric_and_bounded(smooth_image: np.ndarray) -> None:
    x = torch.from_numpy(smooth_image.astype(np.float32)).permute(2, 0, 1)[None]
    y = x.flip(-1)
    xy, yx = metrics.ms_ssim(x, y), metrics.ms_ssim(y, x)
    assert torch.allclose(xy, yx) and 0 <= xy.item() < 1


def test_dists_grows_with_blur(kodak_crop: np.ndarray) -> None:
    from PIL import Image, ImageFilter

    img = Image.fromarray(kodak_crop)
    values = [
        compute_metrics(kodak_crop, np.asarray(img.filter(ImageFilter.GaussianBlur(r))))["dists"]
        for r in (0.5, 1.5, 3.0)
    ]
    assert values == sorted(values) and values[0] > 0


def test_mismatched_shapes(kodak_crop: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"\(96, 128, 3\).*\(96, 120, 3\)"):
        compute_metrics(kodak_crop, kodak_crop[:, :120])


def test_tiny_images_get_psnr_only(kodak_crop: np.ndarray) -> None:
    side = metrics.MIN_SIZE
    noisy = np.clip(kodak_crop[:side, :side].astype(int) + 4, 0, 255).astype(np.uint8)
    tiny = compute_metrics(kodak_crop[: side - 1, :side], noisy[: side - 1])
    assert tiny["psnr"] == pytest.approx(metrics.psnr(kodak_crop[: side - 1, :side], noisy[: side - 1]))
    assert 30 < tiny["psnr"] < 40 and all(math.isnan(tiny[k]) for k in ("ms_ssim", "lpips", "dists"))
    at_limit = compute_metrics(kodak_crop[:side, :side], noisy)
    assert all(math.isfinite(v) for v in at_limit.values()) and at_limit["lpips"] > 0


def test_rejects_non_uint8(kodak_crop: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        compute_metrics(kodak_crop.astype(np.float32), kodak_crop.astype(np.float32))
