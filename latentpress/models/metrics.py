"""Image quality metrics: PSNR, MS-SSIM, LPIPS (AlexNet) and DISTS.

LPIPS and DISTS weights come from the configured models folder (``lpips/`` and
``torchvision/``) and the alpha/beta weights the ``DISTS_pytorch`` package ships;
nothing is downloaded and every file is read with ``weights_only=True``. Models are
built once per process and device. DISTS runs at full resolution (no resizing).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from latentpress.config import get_settings
from latentpress.infra.models import resolve_file
from latentpress.models.weights import LPIPS_WEIGHTS, VGG16_WEIGHTS

MIN_SIZE = 32
"""Smallest image side MS-SSIM, LPIPS and DISTS are measured at (LPIPS' AlexNet needs
31 pixels); smaller images get PSNR only."""

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WINDOW, _SIGMA, _PEAK = 11, 1.5, 255.0
_networks_lock = threading.Lock()


def compute_metrics(
    reference: np.ndarray, distorted: np.ndarray, device: str | None = None
) -> dict[str, float]:
    """PSNR, MS-SSIM, LPIPS and DISTS of ``distorted`` against ``reference``.

    Both are (H, W, 3) uint8 RGB arrays of the same shape. Below ``MIN_SIZE`` pixels
    on a side only PSNR is defined; the other three are NaN. ``device`` defaults to
    the configured one.
    """
    for name, img in (("reference", reference), ("distorted", distorted)):
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(
                f"{name} must be an (H, W, 3) uint8 array, got {img.shape} {img.dtype}"
            )
    if reference.shape != distorted.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, distorted {distorted.shape}")
    if min(reference.shape[:2]) < MIN_SIZE:
        nan = float("nan")
        return {"psnr": psnr(reference, distorted), "ms_ssim": nan, "lpips": nan, "dists": nan}
    device = device or get_settings().device
    lpips_net, dists_net = _networks(device)
    ref, dist = _to_tensor(reference, device), _to_tensor(distorted, device)
    with torch.inference_mode():
        ms = ms_ssim(ref, dist)
        lp = lpips_net(ref / 127.5 - 1.0, dist / 127.5 - 1.0)
        ds = dists_net(ref / 255.0, dist / 255.0)
    return {
        "psnr": psnr(reference, distorted),
        "ms_ssim": float(ms.item()),
        "lpips": float(lp.item()),
        "dists": float(ds.item()),
    }


def warm_up(device: str | None = None) -> None:
    """Load the LPIPS and DISTS networks and run them once on a small image, so that
    the first real measurement does not wait for them."""
    image = np.zeros((MIN_SIZE * 2, MIN_SIZE * 2, 3), np.uint8)
    compute_metrics(image, image, device)


def _networks(device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The LPIPS and DISTS networks on ``device``, each built once per process. Builds
    are serialised: a warm-up thread and a task asking together wait for one build,
    and DISTS's build patches a module-level name (see ``_dists_model``)."""
    with _networks_lock:
        return _lpips_model(device), _dists_model(device)


def lpips_network(device: str | None = None) -> torch.nn.Module:
    """The LPIPS (AlexNet) network on ``device`` (built once per process), for training
    with a perceptual loss: inputs in [-1, 1], gradients flow to them."""
    with _networks_lock:
        return _lpips_model(device or get_settings().device)


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB of uint8 images (peak 255) over all pixels and channels; ``inf`` if equal."""
    mse = float(np.mean((reference.astype(np.float64) - distorted.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(_PEAK**2 / mse))


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli, Bovik 2003) of (N, C, H, W) images in [0, 255].

    Gaussian window 11, sigma 1.5, valid filtering, K1=0.01, K2=0.03, data range
    255, 2x2 average downsampling (odd sides replicate their last row or column);
    computed per channel and averaged over channels, giving shape (N,). Negative
    factors are clamped to 0 before the fractional powers. Images too
    small for 5 scales (the coarsest scale must hold a whole window: 161 pixels for
    5) use as many scales as fit, with the leading weights renormalised to sum to 1.
    """
    scales = _num_scales(*x.shape[-2:])
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum()
    window = _gaussian_window(x.shape[1], x.dtype, x.device)
    factors = []
    for scale in range(scales):
        ssim, cs = _ssim(x, y, window)
        if scale < scales - 1:
            factors.append(cs)
            x, y = _downsample(x), _downsample(y)
    factors.append(ssim)
    values = torch.stack(factors).clamp_min(0.0) ** weights[:, None, None]
    return values.prod(0).mean(1)


def _num_scales(height: int, width: int) -> int:
    if min(height, width) < _WINDOW:
        raise ValueError(f"image {height}x{width} smaller than the {_WINDOW}-pixel SSIM window")
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS):
        height, width = -(-height // 2), -(-width // 2)
        if min(height, width) < _WINDOW:
            break
        scales += 1
    return scales


def _gaussian_window(channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    coords = torch.arange(_WINDOW, dtype=dtype, device=device) - (_WINDOW - 1) / 2
    g = torch.exp(-(coords**2) / (2 * _SIGMA**2))
    return (g / g.sum()).repeat(channels, 1, 1, 1)


def _ssim(
    x: torch.Tensor, y: torch.Tensor, window: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean SSIM and contrast-structure term, each (N, C)."""
    c1, c2 = (0.01 * _PEAK) ** 2, (0.03 * _PEAK) ** 2
    stacked = torch.cat([x, y, x * x, y * y, x * y], 1)
    groups = stacked.shape[1]
    stacked = F.conv2d(stacked, window.repeat(5, 1, 1, 1), groups=groups)
    stacked = F.conv2d(stacked, window.transpose(2, 3).repeat(5, 1, 1, 1), groups=groups)
    mu_x, mu_y, xx, yy, xy = stacked.chunk(5, 1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.mean((2, 3)), cs_map.mean((2, 3))


def _downsample(x: torch.Tensor) -> torch.Tensor:
    pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return F.avg_pool2d(x, 2)


def _to_tensor(image: np.ndarray, device: str) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 255] on ``device``."""
    return torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None].to(device)


@lru_cache(maxsize=4)
def _lpips_model(device: str) -> torch.nn.Module:
    """LPIPS v0.1 (AlexNet) with backbone and heads from the models folder."""
    import lpips

    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained`
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False)
    state = torch.load(resolve_file(LPIPS_WEIGHTS), map_location="cpu", weights_only=True)
    result = model.load_state_dict(state, strict=False)
    unexpected_missing = [k for k in result.missing_keys if not k.startswith("lins.")]
    if unexpected_missing or result.unexpected_keys:
        raise RuntimeError(
            f"{LPIPS_WEIGHTS} does not match lpips.LPIPS(net='alex'): missing "
            f"{unexpected_missing}, unexpected {result.unexpected_keys}"
        )
    return model.eval().requires_grad_(False).to(device)


@lru_cache(maxsize=4)
def _dists_model(device: str) -> torch.nn.Module:
    """DISTS with its VGG16 backbone from the models folder and the package's alpha/beta."""
    from DISTS_pytorch import DISTS_pt
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"])
    state = torch.load(resolve_file(VGG16_WEIGHTS), map_location="cpu", weights_only=True)
    state = {k.removeprefix("features."): v for k, v in state.items()}
    features.load_state_dict(state, strict=True)
    offline_models = SimpleNamespace(vgg16=lambda **_: SimpleNamespace(features=features))
    # DISTS reads the module-level name `models` while it builds (callers hold _networks_lock).
    saved, DISTS_pt.models = DISTS_pt.models, offline_models
    try:
        model = DISTS_pt.DISTS(load_weights=False)
    finally:
        DISTS_pt.models = saved
    weights = torch.load(_dists_weights_file(), map_location="cpu", weights_only=True)
    model.alpha.data.copy_(weights["alpha"])
    model.beta.data.copy_(weights["beta"])
    return model.eval().requires_grad_(False).to(device)


def _dists_weights_file() -> Path:
    """The alpha/beta file DISTS_pytorch ships: in its package folder or at ``sys.prefix``."""
    from DISTS_pytorch import DISTS_pt

    candidates = [Path(DISTS_pt.__file__).parent / "weights.pt", Path(sys.prefix) / "weights.pt"]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(map(os.fspath, candidates))
    raise FileNotFoundError(f"DISTS_pytorch weights.pt not found; looked in {looked}")
