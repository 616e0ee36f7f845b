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
    shipped = torch.load(LPIPS_PKG / "weights" / "v0.1" / "alex.pth", map_location="cpu", weights_only=True)
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


@pytest.mark.parametrize("strip_pixels", [1 << 22, 4000])
def test_ms_ssim_in_strips_equals_the_whole_image_value(kodak_dir, strip_pixels: int, monkeypatch) -> None:
    from PIL import Image, ImageFilter

    with Image.open(kodak_dir / "kodim05.png") as img:
        photo = img.convert("RGB").crop((0, 0, 301, 187))  # odd sides: replicated rows and columns
        reference, blurred = np.asarray(photo), np.asarray(photo.filter(ImageFilter.GaussianBlur(1.5)))
    whole = float(metrics.ms_ssim(metrics._to_tensor(reference, "cpu"), metrics._to_tensor(blurred, "cpu"))[0])
    monkeypatch.setattr(metrics, "STRIP_PIXELS", strip_pixels)
    assert metrics.ms_ssim_image(reference, blurred) == pytest.approx(whole, abs=1e-6)
    assert 0.5 < whole < 0.99


def test_psnr_in_strips_equals_the_direct_value(kodak_crop: np.ndarray, monkeypatch) -> None:
    noisy = np.clip(kodak_crop + np.random.default_rng(0).normal(0, 5, kodak_crop.shape), 0, 255).astype(np.uint8)
    direct = 10 * np.log10(255**2 / np.mean((kodak_crop.astype(np.float64) - noisy) ** 2))
    monkeypatch.setattr(metrics, "STRIP_PIXELS", 500)
    assert metrics.psnr(kodak_crop, noisy) == pytest.approx(direct, abs=1e-9)


def test_tiled_lpips_and_dists_stay_close_to_whole_image_values(kodak_dir, monkeypatch) -> None:
    from PIL import Image, ImageFilter

    with Image.open(kodak_dir / "kodim03.png") as img:
        reference = np.asarray(img.convert("RGB"))
        blurred = np.asarray(img.convert("RGB").filter(ImageFilter.GaussianBlur(2)))
    whole = compute_metrics(reference, blurred)
    lpips_net, dists_net = metrics._networks("cpu")
    ref, dist = metrics._to_tensor(reference, "cpu"), metrics._to_tensor(blurred, "cpu")
    with torch.inference_mode():  # the packages' own whole-image values
        assert whole["lpips"] == pytest.approx(float(lpips_net(ref / 127.5 - 1, dist / 127.5 - 1)), abs=1e-5)
        assert whole["dists"] == pytest.approx(float(dists_net(ref / 255, dist / 255)), abs=1e-5)
    monkeypatch.setattr(metrics, "PERCEPTUAL_TILE", 256)  # six windows
    tiled = compute_metrics(reference, blurred)
    assert tiled["lpips"] == pytest.approx(whole["lpips"], abs=0.002)
    assert tiled["dists"] == pytest.approx(whole["dists"], abs=0.002)
    assert tiled["ms_ssim"] == pytest.approx(whole["ms_ssim"], abs=1e-6)
    assert tiled["lpips"] != whole["lpips"]  # the windows were really used


# Values the code of 3e7fef8 gave (each metric of one pair at a time, DISTS in float64
# throughout), for a 400x300 crop of kodim03 against distortions numpy makes the same
# everywhere: one window (tile 768) and twelve (tile 128).
MEASURED_BEFORE = {
    ("noise8", 768): (30.184727196098574, 0.9412202723185473, 0.1669301463323593, 0.1631332398898251),
    ("blocks4", 768): (26.561430888869637, 0.9418436531153306, 0.2501431173922499, 0.25989163217731936),
    ("noise8", 128): (30.184727196098574, 0.9412202723185473, 0.16701550398479437, 0.16384336495786356),
    ("blocks4", 128): (26.561430888869637, 0.9418436531153306, 0.25026032104904883, 0.26086178934667736),
}


@pytest.mark.parametrize("tile", [768, 128])
def test_one_reference_for_many_images_gives_the_values_measured_before(kodak_dir, monkeypatch, tile) -> None:
    from PIL import Image

    with Image.open(kodak_dir / "kodim03.png") as img:
        reference = np.asarray(img.convert("RGB"))[:300, :400].copy()
    distorted = {
        "noise8": np.clip(reference + np.random.default_rng(0).normal(0, 8, reference.shape).round(), 0, 255).astype(np.uint8),
        "blocks4": reference.reshape(75, 4, 100, 4, 3).mean((1, 3)).round().astype(np.uint8).repeat(4, 0).repeat(4, 1),
    }  # fmt: skip
    monkeypatch.setattr(metrics, "PERCEPTUAL_TILE", tile)
    measured = metrics.Reference(reference).measure(list(distorted.values()))
    for name, values in zip(distorted, measured, strict=True):
        expected = dict(zip(metrics.METRIC_NAMES, MEASURED_BEFORE[name, tile], strict=True))
        assert values == pytest.approx(expected, abs=1e-6)


def test_a_reference_keeps_its_features_within_its_budget(kodak_crop: np.ndarray, monkeypatch) -> None:
    from latentpress.models import feature_metrics

    passes = []
    real = feature_metrics._lpips_features
    monkeypatch.setattr(feature_metrics, "_lpips_features", lambda *a: passes.append(1) or real(*a))
    probes = [_noisy(kodak_crop, sigma) for sigma in (4, 8, 16)]
    budget = metrics.KeepBudget(1 << 30)
    kept = metrics.Reference(kodak_crop, budget=budget)
    values = [kept.measure([probe], ("lpips",))[0]["lpips"] for probe in probes]
    assert len(passes) == 1 + 3 and kept.kept_bytes > 0 and budget.bytes_left == (1 << 30) - kept.kept_bytes
    assert values == [compute_metrics(kodak_crop, probe)["lpips"] for probe in probes]
    passes.clear()
    tight = metrics.Reference(kodak_crop, budget=metrics.KeepBudget(1000))
    for probe in probes:  # no room: the original's side is computed again each time
        tight.measure([probe], ("lpips",))
    assert len(passes) == 2 * 3 and tight.kept_bytes == 0
    kept.release()
    assert budget.bytes_left == 1 << 30 and kept.kept_bytes == 0


@pytest.mark.parametrize("quality", [10, 40, 85])
def test_ms_ssim_agrees_with_pytorch_msssim_on_a_real_photo(kodak_dir: Path, quality: int) -> None:
    """An outside implementation (pytorch_msssim, same constants and valid filtering)
    gives the same MS-SSIM on a whole Kodak photo under JPEG at three qualities; at
    768x512 every scale has even sides, where both downsample the same way."""
    import io

    from PIL import Image
    from pytorch_msssim import ms_ssim as outside

    with Image.open(kodak_dir / "kodim05.png") as img:
        photo = np.asarray(img.convert("RGB"))
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=quality)
    distorted = np.asarray(Image.open(buffer).convert("RGB"))
    x, y = (torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None] for a in (photo, distorted))
    reference = outside(x, y, data_range=255, size_average=False, win_size=11, win_sigma=1.5).item()
    assert 0.5 < reference < 1.0
    assert metrics.ms_ssim(x, y).item() == pytest.approx(reference, abs=1e-5)
    assert compute_metrics(photo, distorted)["ms_ssim"] == pytest.approx(reference, abs=1e-5)
