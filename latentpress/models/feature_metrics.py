"""LPIPS and DISTS of images of any size, from their networks' feature maps, window by window.

Both metrics reduce feature maps over the whole image: LPIPS averages one distance map
per AlexNet layer, DISTS compares the means, variances and covariance of every VGG16
channel. So instead of averaging per-tile scores, the image is cut into windows
(``models.tiling``: cores of at most ``tile`` pixels, aligned to 16, with ``margin``
pixels of context), each window's feature maps are computed, and only the positions
of each map that belong to the window's core are added into whole-image sums. Every
position of every map is counted once, computed from its real neighbourhood as far
as the margin reaches; an image within one tile gives the networks' own values.

One reference is measured against many distorted images at once: each window's
reference features are computed once (or taken from ``kept``, a store the caller
keeps between calls), then each distorted image's, so the reference side costs one
pass whatever the number of images, and memory stays one window's features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from latentpress.models.tiling import Window, windows

ALIGN = 16
"""Largest stride of both networks: window edges on multiples of it keep every map's
positions where they are in the whole image's maps."""
LPIPS_STRIDES = (4, 8, 16, 16, 16)
DISTS_STRIDES = (1, 1, 2, 4, 8, 16)

Features = list[torch.Tensor]
Kept = Callable[[int, Callable[[], Features]], Features]
"""``kept(window_index, compute)``: a window's reference features, kept from an earlier
call or computed by ``compute()`` now (and perhaps kept)."""


def computed(_: int, compute: Callable[[], Features]) -> Features:
    """A :data:`Kept` that keeps nothing."""
    return compute()


def lpips_tiled(net: torch.nn.Module, reference: np.ndarray, distorted: Sequence[np.ndarray], tile: int, margin: int,
                device: str, kept: Kept = computed) -> list[float]:  # fmt: skip
    """LPIPS (the ``lpips`` package's ``LPIPS`` network ``net``) of each (H, W, 3) uint8
    image of ``distorted`` against ``reference``."""
    height, width = reference.shape[:2]
    sums = np.zeros((len(distorted), len(LPIPS_STRIDES)))
    for index, window in enumerate(windows(height, width, tile, margin, ALIGN)):

        def features(image: np.ndarray, window: Window = window) -> Features:
            return _lpips_features(net, _pixels(image, window, device) / 127.5 - 1.0, window, height, width)

        ref = kept(index, lambda: features(reference))
        for i, image in enumerate(distorted):
            with torch.inference_mode():
                for k, (x, y) in enumerate(zip(ref, features(image), strict=True)):
                    sums[i, k] += float(net.lins[k]((x - y) ** 2).double().sum())
    sizes = _alexnet_sizes(height), _alexnet_sizes(width)
    return [float(sum(total / (h * w) for total, h, w in zip(row, *sizes, strict=True))) for row in sums]


def dists_tiled(net: torch.nn.Module, reference: np.ndarray, distorted: Sequence[np.ndarray], tile: int, margin: int,
                device: str, kept: Kept = computed) -> list[float]:  # fmt: skip
    """DISTS (``DISTS_pytorch``'s network ``net``) of each (H, W, 3) uint8 image of
    ``distorted`` against ``reference``."""
    height, width = reference.shape[:2]
    moments = [[torch.zeros(5, c, dtype=torch.float64) for c in net.chns] for _ in distorted]
    for index, window in enumerate(windows(height, width, tile, margin, ALIGN)):

        def features(image: np.ndarray, window: Window = window) -> Features:
            return _dists_features(net, _pixels(image, window, device) / 255.0, window, height, width)

        ref = kept(index, lambda: _with_moments(features(reference)))
        for i, image in enumerate(distorted):
            with torch.inference_mode():
                for k, y in enumerate(features(image)):
                    x, x_sum, xx_sum = ref[3 * k : 3 * k + 3]
                    moments[i][k] += torch.stack([x_sum, _sum(y), xx_sum, _sum(y * y), _sum(x * y)])
    return [_dists_score(net, image_moments, height, width) for image_moments in moments]


def _dists_score(net: torch.nn.Module, moments: list[torch.Tensor], height: int, width: int) -> float:
    """DISTS from each stage's per-channel sums of x, y, x², y² and xy over the image."""
    alpha, beta = net.alpha.double().cpu(), net.beta.double().cpu()
    total = alpha.sum() + beta.sum()
    alphas, betas = torch.split(alpha / total, net.chns, dim=1), torch.split(beta / total, net.chns, dim=1)
    score = 0.0
    for k, stride in enumerate(DISTS_STRIDES):
        count = -(-height // stride) * -(-width // stride)
        x_mean, y_mean, xx, yy, xy = moments[k] / count
        x_var, y_var, cov = xx - x_mean**2, yy - y_mean**2, xy - x_mean * y_mean
        s1 = (2 * x_mean * y_mean + 1e-6) / (x_mean**2 + y_mean**2 + 1e-6)
        s2 = (2 * cov + 1e-6) / (x_var + y_var + 1e-6)
        score += float((alphas[k].flatten() * s1).sum() + (betas[k].flatten() * s2).sum())
    return 1.0 - score


def _lpips_features(net: torch.nn.Module, x: torch.Tensor, window: Window, height: int, width: int) -> Features:
    """AlexNet's five feature maps of ``x`` (in [-1, 1]), normalised over channels, at the
    positions of the window's core."""
    from lpips import normalize_tensor

    with torch.inference_mode():
        maps = net.net.forward(net.scaling_layer(x))
        return [normalize_tensor(m)[(..., *_core_positions(window, s, height, width))]
                for m, s in zip(maps, LPIPS_STRIDES, strict=True)]  # fmt: skip


def _dists_features(net: torch.nn.Module, x: torch.Tensor, window: Window, height: int, width: int) -> Features:
    """DISTS's six stages of ``x`` (in [0, 1]) at the positions of the window's core,
    each (channels, positions) float32. The network runs channels-last (15% faster
    on a CPU; DISTS moves by about 1e-7)."""
    with torch.inference_mode():
        maps = net.forward_once(x.contiguous(memory_format=torch.channels_last))
        return [m[(0, ..., *_core_positions(window, s, height, width))].flatten(1)
                for m, s in zip(maps, DISTS_STRIDES, strict=True)]  # fmt: skip


def _with_moments(features: Features) -> Features:
    """Each stage's features followed by their per-channel sums of x and x²."""
    with torch.inference_mode():
        return [part for x in features for part in (x, _sum(x), _sum(x * x))]


def _sum(values: torch.Tensor) -> torch.Tensor:
    """Per-channel sums of (channels, positions) float32 values, accumulated in float64
    (products are rounded to float32 first: 1e-9 from DISTS in float64 throughout, at
    60% of its cost)."""
    return torch.sum(values, 1, dtype=torch.float64)


def _pixels(image: np.ndarray, window: Window, device: str) -> torch.Tensor:
    """The window's pixels of an (H, W, 3) uint8 image as a (1, 3, h, w) float32 tensor."""
    pixels = torch.from_numpy(np.ascontiguousarray(image[window.window()], np.float32)).permute(2, 0, 1)[None]
    return pixels.to(device)


def _core_positions(window: Window, stride: int, height: int, width: int) -> tuple[slice, slice]:
    """Positions of a map of ``stride`` that belong to the window's core, in the
    window's map (a core at the image's end takes the map's last positions too)."""
    return (_core_range(window.top, window.core_top, window.core_bottom, height, stride),
            _core_range(window.left, window.core_left, window.core_right, width, stride))  # fmt: skip


def _core_range(start: int, core_start: int, core_end: int, size: int, stride: int) -> slice:
    end = None if core_end == size else (core_end - start) // stride
    return slice((core_start - start) // stride, end)


def _alexnet_sizes(side: int) -> list[int]:
    """Map sizes of LPIPS's five AlexNet layers along an image side (conv 11/4 padded 2,
    then 3/2 max pools before the second and third)."""
    first = (side + 4 - 11) // 4 + 1
    second = (first - 3) // 2 + 1
    third = (second - 3) // 2 + 1
    return [first, second, third, third, third]
