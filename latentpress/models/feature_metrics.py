"""LPIPS and DISTS of images of any size, from their networks' feature maps, window by window.

Both metrics reduce feature maps over the whole image: LPIPS averages one distance map
per AlexNet layer, DISTS compares the means, variances and covariance of every VGG16
channel. So instead of averaging per-tile scores, the image is cut into windows
(``models.tiling``: cores of at most ``tile`` pixels, aligned to 16, with ``margin``
pixels of context), each window's feature maps are computed, and only the positions
of each map that belong to the window's core are added into whole-image sums. Every
position of every map is counted once, computed from its real neighbourhood as far
as the margin reaches; an image within one tile gives the networks' own values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from latentpress.models.tiling import Window, windows

ALIGN = 16
"""Largest stride of both networks: window edges on multiples of it keep every map's
positions where they are in the whole image's maps."""
LPIPS_STRIDES = (4, 8, 16, 16, 16)
DISTS_STRIDES = (1, 1, 2, 4, 8, 16)


def lpips_tiled(net: torch.nn.Module, reference: np.ndarray, distorted: np.ndarray, tile: int, margin: int,
                device: str) -> float:  # fmt: skip
    """LPIPS (the ``lpips`` package's ``LPIPS`` network ``net``) of (H, W, 3) uint8 images."""
    from lpips import normalize_tensor

    height, width = reference.shape[:2]
    sums = np.zeros(len(LPIPS_STRIDES))
    for window, ref, dist in _window_pairs(reference, distorted, tile, margin, device, lambda x: x / 127.5 - 1.0):
        features = [net.net.forward(net.scaling_layer(x)) for x in (ref, dist)]
        for k, stride in enumerate(LPIPS_STRIDES):
            distance = net.lins[k]((normalize_tensor(features[0][k]) - normalize_tensor(features[1][k])) ** 2)
            sums[k] += float(distance[(..., *_core_positions(window, stride, height, width))].double().sum())
    sizes = _alexnet_sizes(height), _alexnet_sizes(width)
    return float(sum(total / (h * w) for total, h, w in zip(sums, *sizes, strict=True)))


def dists_tiled(net: torch.nn.Module, reference: np.ndarray, distorted: np.ndarray, tile: int, margin: int,
                device: str) -> float:  # fmt: skip
    """DISTS (``DISTS_pytorch``'s network ``net``) of (H, W, 3) uint8 images."""
    height, width = reference.shape[:2]
    moments: list[torch.Tensor] = [torch.zeros(5, c, dtype=torch.float64) for c in net.chns]
    for window, ref, dist in _window_pairs(reference, distorted, tile, margin, device, lambda x: x / 255.0):
        features = net.forward_once(ref), net.forward_once(dist)
        for k, stride in enumerate(DISTS_STRIDES):
            x, y = (f[k][(0, ..., *_core_positions(window, stride, height, width))].double().flatten(1) for f in features)
            moments[k] += torch.stack([x.sum(1), y.sum(1), (x * x).sum(1), (y * y).sum(1), (x * y).sum(1)]).cpu()
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


def _window_pairs(reference: np.ndarray, distorted: np.ndarray, tile: int, margin: int, device: str,
                  scale: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[tuple[Window, torch.Tensor, torch.Tensor]]:  # fmt: skip
    """Each window with both images' pixels in it, as scaled (1, 3, h, w) float tensors."""
    for window in windows(*reference.shape[:2], tile, margin, ALIGN):
        pair = [torch.from_numpy(np.ascontiguousarray(a[window.window()], np.float32)).permute(2, 0, 1)[None]
                for a in (reference, distorted)]  # fmt: skip
        with torch.inference_mode():
            yield window, scale(pair[0].to(device)), scale(pair[1].to(device))


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
