"""Image quality metrics: PSNR, MS-SSIM, LPIPS (AlexNet) and DISTS.

LPIPS and DISTS weights come from the configured models folder (``lpips/`` and
``torchvision/``) and the alpha/beta weights the ``DISTS_pytorch`` package ships;
nothing is downloaded and every file is read with ``weights_only=True``. Models are
built once per process and device. DISTS runs at full resolution (no resizing).

Memory is bounded at any image size: PSNR and MS-SSIM are computed in strips of rows
and equal their whole-image values (up to float rounding); LPIPS and DISTS are
computed whole for images whose sides are at most ``PERCEPTUAL_TILE`` pixels, and
for larger ones window by window, adding each window's share of the networks'
feature maps into whole-image sums (``models.feature_metrics``;
``docs/large-photos.md`` measures the difference from whole-image values).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from latentpress.config import get_settings
from latentpress.infra.model_files import resolve_file
from latentpress.models.feature_metrics import dists_tiled, lpips_tiled
from latentpress.models.weights import LPIPS_WEIGHTS, VGG16_WEIGHTS

METRIC_NAMES = ("psnr", "ms_ssim", "lpips", "dists")
MIN_SIZE = 32
"""Smallest image side MS-SSIM, LPIPS and DISTS are measured at (LPIPS' AlexNet needs
31 pixels); smaller images get PSNR only."""

PERCEPTUAL_TILE = 768
"""Largest core LPIPS and DISTS see at once: windows of up to 768 + 2 * 64 pixels a
side. Measured on a 6 MP photo: 2.6 GiB peak for the whole metric stage (1,024-pixel
cores: 3.8 GiB), in the same time."""
PERCEPTUAL_MARGIN = 64
"""Context around each window's core, in pixels (a multiple of 16)."""
STRIP_PIXELS = 1 << 20
"""Pixels per strip of rows in PSNR and MS-SSIM (about 150 MB of float32 maps and
filter outputs; 4 MP strips cost 700 MB at no gain in speed)."""

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WINDOW, _SIGMA, _PEAK = 11, 1.5, 255.0
_networks_lock = threading.Lock()


def compute_metrics(reference: np.ndarray, distorted: np.ndarray, device: str | None = None) -> dict[str, float]:
    """PSNR, MS-SSIM, LPIPS and DISTS of ``distorted`` against ``reference``.

    Both are (H, W, 3) uint8 RGB arrays of the same shape. Below ``MIN_SIZE`` pixels
    on a side only PSNR is defined; the other three are NaN. ``device`` defaults to
    the configured one.
    """
    return Reference(reference, device).measure([distorted])[0]


def metric(name: str, reference: np.ndarray, distorted: np.ndarray, device: str | None = None) -> float:
    """One of ``psnr``, ``ms_ssim``, ``lpips``, ``dists`` as :func:`compute_metrics` gives
    it, computing only that one."""
    return Reference(reference, device).measure([distorted], (name,))[0][name]


@dataclass
class KeepBudget:
    """Bytes of reference features that may still be kept, shared by the references
    that draw on it."""

    bytes_left: int

    def take(self, size: int) -> bool:
        """Whether ``size`` more bytes may be kept (they are then counted)."""
        if size > self.bytes_left:
            return False
        self.bytes_left -= size
        return True


class Reference:
    """An original, to measure distorted versions of it against.

    The original's side of LPIPS and DISTS (its networks' feature maps, window by
    window) is computed once for all the images of a :meth:`measure` call, and kept
    for later calls while ``budget`` allows (a quality search measures one probe at a
    time). Values equal :func:`compute_metrics`'s.
    """

    def __init__(self, image: np.ndarray, device: str | None = None, budget: KeepBudget | None = None) -> None:
        _check_image("reference", image)
        self.image = image
        self.device = device or get_settings().device
        self.budget = budget
        self._kept: dict[tuple[str, int], list[torch.Tensor]] = {}
        self.kept_bytes = 0

    def measure(self, distorted: Sequence[np.ndarray], names: Sequence[str] = METRIC_NAMES) -> list[dict[str, float]]:
        """``names`` (default all four) of each image of ``distorted``, in order."""
        unknown = [name for name in names if name not in METRIC_NAMES]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r} (known: {', '.join(METRIC_NAMES)})")
        for image in distorted:
            _check_pair(self.image, image)
        values: dict[str, list[float]] = {}
        for name in names:
            if name == "psnr":
                values[name] = [psnr(self.image, image) for image in distorted]
            elif min(self.image.shape[:2]) < MIN_SIZE:
                values[name] = [float("nan")] * len(distorted)
            elif name == "ms_ssim":
                values[name] = [ms_ssim_image(self.image, image, self.device) for image in distorted]
            else:
                values[name] = self._perceptual(name, distorted)
        return [{name: values[name][i] for name in names} for i in range(len(distorted))]

    def release(self) -> None:
        """Drop the kept features, giving their bytes back to the budget."""
        if self.budget is not None:
            self.budget.bytes_left += self.kept_bytes
        self._kept.clear()
        self.kept_bytes = 0

    def _perceptual(self, name: str, distorted: Sequence[np.ndarray]) -> list[float]:
        lpips_net, dists_net = _networks(self.device)
        tiled, net = (lpips_tiled, lpips_net) if name == "lpips" else (dists_tiled, dists_net)

        def kept(index: int, compute: Callable[[], list[torch.Tensor]]) -> list[torch.Tensor]:
            features = self._kept.get((name, index))
            if features is None:
                features = compute()
                size = sum(f.nbytes for f in features)
                if self.budget is not None and self.budget.take(size):
                    self._kept[name, index] = features
                    self.kept_bytes += size
            return features

        return tiled(net, self.image, distorted, PERCEPTUAL_TILE, PERCEPTUAL_MARGIN, self.device, kept)


def _check_pair(reference: np.ndarray, distorted: np.ndarray) -> None:
    """``ValueError`` unless both are (H, W, 3) uint8 arrays of one shape."""
    _check_image("distorted", distorted)
    if reference.shape != distorted.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, distorted {distorted.shape}")


def _check_image(name: str, image: np.ndarray) -> None:
    """``ValueError`` unless ``image`` is an (H, W, 3) uint8 array."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 array, got {image.shape} {image.dtype}")


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
    squared = 0.0
    for rows in _strips(reference.shape[0], reference.shape[1], 0):
        squared += float(np.sum((reference[rows].astype(np.float64) - distorted[rows]) ** 2))
    mse = squared / reference.size
    return float("inf") if mse == 0 else 10.0 * float(np.log10(_PEAK**2 / mse))


def ms_ssim_image(reference: np.ndarray, distorted: np.ndarray, device: str = "cpu") -> float:
    """:func:`ms_ssim` of two (H, W, 3) uint8 images, computed in strips of rows so that
    memory stays bounded at any size; equal to the whole-image value up to float rounding."""
    scales = _num_scales(*reference.shape[:2])
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales], np.float64)
    weights /= weights.sum()
    window = _gaussian_window(3, torch.float32, torch.device(device))
    x, y, factors = reference, distorted, []
    for scale in range(scales):
        ssim, cs = _ssim_in_strips(x, y, window)
        if scale < scales - 1:
            factors.append(cs)
            x, y = _downsample_image(x), _downsample_image(y)
    factors.append(ssim)
    return float(np.mean(np.prod(np.clip(np.stack(factors), 0.0, None) ** weights[:, None], 0)))


def _strips(height: int, width: int, overlap: int) -> list[slice]:
    """Row ranges of about ``STRIP_PIXELS`` pixels covering ``height`` rows, each
    reaching ``overlap`` rows into the next one."""
    rows = max(1, STRIP_PIXELS // width - overlap)
    return [slice(top, min(height, top + rows + overlap)) for top in range(0, max(1, height - overlap), rows)]


def _ssim_in_strips(x: np.ndarray, y: np.ndarray, window: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean SSIM and contrast-structure term (3,) of (H, W, 3) images, over
    strips that overlap by the window, so that every valid position counts once."""
    height, width = x.shape[:2]
    sums = np.zeros((2, 3))
    for rows in _strips(height, width, _WINDOW - 1):
        with torch.inference_mode():
            ssim_map, cs_map = _ssim_maps(
                _to_tensor(x[rows], window.device), _to_tensor(y[rows], window.device), window
            )
            sums += torch.stack([ssim_map.sum((0, 2, 3)), cs_map.sum((0, 2, 3))]).double().cpu().numpy()
    count = (height - _WINDOW + 1) * (width - _WINDOW + 1)
    return sums[0] / count, sums[1] / count


def _downsample_image(image: np.ndarray) -> np.ndarray:
    """2x2 average of an (H, W, 3) image as float32 (odd sides replicate their last row
    or column), in strips of rows."""
    height, width = image.shape[:2]
    if height % 2 or width % 2:
        image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    half_h, half_w = image.shape[0] // 2, image.shape[1] // 2
    out = np.empty((half_h, half_w, 3), np.float32)
    for rows in _strips(half_h, half_w, 0):
        block = image[2 * rows.start : 2 * rows.stop].astype(np.float32)
        out[rows] = block.reshape(-1, 2, half_w, 2, 3).sum((1, 3), dtype=np.float32) / 4
    return out


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


def _ssim(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean SSIM and contrast-structure term, each (N, C)."""
    ssim_map, cs_map = _ssim_maps(x, y, window)
    return ssim_map.mean((2, 3)), cs_map.mean((2, 3))


def _ssim_maps(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and contrast-structure maps (N, C, H - 10, W - 10): valid filtering."""
    c1, c2 = (0.01 * _PEAK) ** 2, (0.03 * _PEAK) ** 2
    stacked = torch.cat([x, y, x * x, y * y, x * y], 1)
    groups = stacked.shape[1]
    stacked = F.conv2d(stacked, window.repeat(5, 1, 1, 1), groups=groups)
    stacked = F.conv2d(stacked, window.transpose(2, 3).repeat(5, 1, 1, 1), groups=groups)
    mu_x, mu_y, xx, yy, xy = stacked.chunk(5, 1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map, cs_map


def _downsample(x: torch.Tensor) -> torch.Tensor:
    pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return F.avg_pool2d(x, 2)


def _to_tensor(image: np.ndarray, device: str | torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 (or float32) -> (1, 3, H, W) float32 in [0, 255] on ``device``."""
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
    return model.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)


def _dists_weights_file() -> Path:
    """The alpha/beta file DISTS_pytorch ships: in its package folder or at ``sys.prefix``."""
    from DISTS_pytorch import DISTS_pt

    candidates = [Path(DISTS_pt.__file__).parent / "weights.pt", Path(sys.prefix) / "weights.pt"]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(map(os.fspath, candidates))
    raise FileNotFoundError(f"DISTS_pytorch weights.pt not found; looked in {looked}")
