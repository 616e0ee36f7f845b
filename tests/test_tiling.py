"""Tiles with context: the cores partition the plane, and a network whose receptive
field the margin covers gives exactly its untiled output; the VAE's tiled coding stays
close to its untiled coding on a real photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentpress.models.metrics import compute_metrics
from latentpress.models.tiling import spread_windows, windows


@pytest.mark.parametrize(("height", "width", "tile", "margin", "unit"),
                         [(37, 100, 16, 4, 1), (64, 64, 64, 8, 8), (1000, 24, 256, 64, 8), (5, 5, 1, 0, 1)])  # fmt: skip
def test_cores_partition_the_plane(height: int, width: int, tile: int, margin: int, unit: int) -> None:
    covered = np.zeros((height, width), np.int64)
    for w in windows(height, width, tile, margin, unit):
        covered[w.core()] += 1
        assert w.top == max(0, w.core_top - margin) and w.bottom == min(height, w.core_bottom + margin)
        assert w.left == max(0, w.core_left - margin) and w.right == min(width, w.core_right + margin)
        for edge in (w.core_top, w.core_left):
            assert edge % unit == 0
        assert w.core_bottom - w.core_top <= tile + unit and w.core_right - w.core_left <= tile + unit
    assert (covered == 1).all()


def test_a_plane_within_one_tile_is_one_window() -> None:
    (only,) = windows(48, 30, 64, 16)
    assert (only.top, only.left, only.bottom, only.right) == (0, 0, 48, 30)


def test_bad_tilings_are_refused() -> None:
    with pytest.raises(ValueError, match="multiples of 8"):
        windows(64, 64, 20, 8, 8)
    with pytest.raises(ValueError, match="bad tiling"):
        windows(0, 64, 16, 0)


def test_spread_windows_sample_the_whole_plane() -> None:
    """Four cores on a Kodak-sized latent: inside the plane, one in each quadrant,
    disjoint, with their margins clipped at the borders; on a small plane they shrink
    to it and are given once."""
    spread = spread_windows(64, 96, 32, 2, 2)
    assert len(spread) == 4
    covered = np.zeros((64, 96), np.int64)
    for w, (top, left) in zip(spread, ((0, 0), (0, 48), (32, 0), (32, 48)), strict=True):
        assert (w.core_bottom - w.core_top, w.core_right - w.core_left) == (32, 32)
        assert top <= w.core_top < top + 32 and left <= w.core_left < left + 32
        assert w.top == max(0, w.core_top - 2) and w.bottom == min(64, w.core_bottom + 2)
        covered[w.core()] += 1
    assert covered.max() == 1
    (only,) = spread_windows(20, 30, 32, 2, 2)
    assert only.core() == (slice(0, 20), slice(0, 30)) and only.window() == only.core()
    with pytest.raises(ValueError, match="bad sampling"):
        spread_windows(20, 30, 0, 2, 2)


def test_margin_covering_the_receptive_field_gives_the_untiled_output() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 4, 3, padding=1))  # fmt: skip
    x = torch.randn(1, 3, 70, 90)
    with torch.no_grad():
        whole = net(x)
        for margin, exact in ((8, True), (0, False)):
            out = torch.zeros_like(whole)
            for w in windows(70, 90, 24, margin, unit=2):
                part = net(x[(..., *w.window())])
                out[(..., *w.core(0.5))] = part[(..., *w.core_in_window(0.5))]
            assert torch.allclose(out, whole, atol=1e-5) == exact


def test_tiled_vae_coding_is_close_to_untiled(kodak_dir) -> None:
    from PIL import Image

    from latentpress.models.vae import load_vae

    vae = load_vae("taesd")
    with Image.open(kodak_dir / "kodim05.png") as img:
        image = np.asarray(img.convert("RGB"))[:256, :384].copy()
    whole_latent = vae.encode([image])[0]
    whole = vae.decode([whole_latent], [(384, 256)])[0]
    saved = vae.tile
    try:
        vae.tile = 128  # six tiles, each with the default margin
        latent = vae.encode([image])[0]
        decoded = vae.decode([whole_latent], [(384, 256)])[0]
    finally:
        vae.tile = saved
    assert latent.shape == whole_latent.shape and decoded.shape == whole.shape
    assert np.sqrt(np.mean((latent - whole_latent) ** 2)) < 0.002 * whole_latent.std()
    assert np.abs(decoded.astype(int) - whole).max() <= 2
    assert compute_metrics(whole, decoded)["lpips"] < 0.001
