"""Side-by-side crops: the original and every curve's decoded image at a similar rate.

For each chosen image the target rate is the median bpp of the anchor's points on
that image (of all its points when the anchor is absent); each curve shows its
setting nearest to that rate (in log bpp). The crop is the most detailed window of
the original (largest sum of absolute pixel differences), where artefacts show.
Decoding reads the archive's stored containers, exactly as ``restore`` does.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentpress.infra import storage
from latentpress.infra.images import decode_image, encode_png
from latentpress.infra.layout import IMAGE_ID, ArchiveLayout, read_manifest
from latentpress.pipeline.decode import StoredAt, decode_container

CROP_SIZE = 192


@dataclass(frozen=True)
class Tile:
    """One picture of a crop set: a PNG, or the reason there is none."""

    key: str
    """Short path-safe name: ``original`` or the configuration key."""
    title: str
    caption: str
    png: bytes | None
    error: str = ""
    difference: bytes | None = None
    """PNG of the difference from the original (``difference_map``), for decoded tiles."""


@dataclass(frozen=True)
class CropSet:
    """The crops of one image: where they come from and the tiles in order."""

    image_id: str
    source: str
    box: tuple[int, int, int, int]
    """Top, left, height, width of the crop in the original."""
    tiles: list[Tile]


def crop_sets(rows: pd.DataFrame, images: list[str], archive: str, anchor: str, count: int) -> list[CropSet]:
    """Crop sets of the first ``count`` of ``images`` (raises FileNotFoundError without an archive)."""
    vae_name = read_manifest(archive)["vae"]
    layout = ArchiveLayout(archive)
    sets = []
    for image_id in [i for i in images if IMAGE_ID.fullmatch(str(i))][:count]:  # ids name files: only well-formed ones
        mine = rows[rows["image_id"] == image_id]
        source = str(mine["source"].iloc[0])
        width, height = int(mine["width"].iloc[0]), int(mine["height"].iloc[0])
        reference = None
        try:
            original = decode_image(storage.read_bytes(source), posixpath.basename(source))
            box = detail_window(original, CROP_SIZE)
            reference = _cut(original, box)
            tiles = [Tile("original", "original", f"{width}x{height}", encode_png(reference))]
        except (OSError, ValueError) as error:
            box = _centre_window(height, width, CROP_SIZE)
            tiles = [Tile("original", "original", source, None, f"{type(error).__name__}: {error}")]
        for row in nearest_rows(mine, anchor).itertuples(index=False):
            tiles.append(_decoded_tile(layout, row, vae_name, box, reference))
        sets.append(CropSet(image_id, source, box, tiles))
    return sets


def nearest_rows(rows: pd.DataFrame, anchor: str) -> pd.DataFrame:
    """Per curve, the row of one image whose bpp is nearest the target rate."""
    reference = rows[rows["curve"] == anchor] if (rows["curve"] == anchor).any() else rows
    target = math.log(float(reference["bpp"].median()))
    distance = (np.log(rows["bpp"].astype(float)) - target).abs()
    nearest = rows.assign(distance=distance).sort_values(["curve", "distance"])
    return nearest.drop_duplicates("curve").drop(columns="distance").reset_index(drop=True)


def _decoded_tile(
    layout: ArchiveLayout, row: Any, vae_name: str, box: tuple[int, int, int, int], reference: np.ndarray | None
) -> Tile:
    """The crop of one ledger row's stored image, decoded as ``restore`` does, and its
    difference from the original's crop ``reference`` (if there is one)."""
    caption = f"q {row.quality:g}, {row.bpp:.3f} bpp, LPIPS {row.lpips:.3f}"
    try:
        url = layout.image(row.config_key, row.image_id)
        stored = StoredAt(url, row.image_id, row.config_key, (int(row.width), int(row.height)))
        pixels, _ = decode_container(storage.read_bytes(url), vae_name, layout.root, stored)
    except (OSError, ValueError, KeyError) as error:  # missing object, bad bytes, unknown codec
        return Tile(row.config_key, row.curve, caption, None, f"{type(error).__name__}: {error}")
    crop = _cut(pixels, box)
    difference = encode_png(difference_map(reference, crop)) if reference is not None else None
    return Tile(row.config_key, row.curve, caption, encode_png(crop), difference=difference)


DIFFERENCE_GAIN = 4
"""How much a difference map magnifies the differences (a grey level of 64 is black)."""


def difference_map(original: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """White where the pixels agree, darker the more any channel differs (times ``DIFFERENCE_GAIN``)."""
    gap = np.abs(original.astype(np.int16) - decoded.astype(np.int16)).max(axis=2)
    shade = 255 - np.clip(gap * DIFFERENCE_GAIN, 0, 255).astype(np.uint8)
    return np.repeat(shade[..., None], 3, axis=2)


def detail_window(image: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """The ``size`` square (or the whole side, if smaller) with the most detail."""
    height, width = image.shape[:2]
    h, w = min(size, height), min(size, width)
    grey = image.astype(np.float32).mean(axis=2)
    energy = np.zeros_like(grey)
    energy[:, 1:] += np.abs(np.diff(grey, axis=1))
    energy[1:, :] += np.abs(np.diff(grey, axis=0))
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(1, min(h, w) // 4)
    tops = np.unique(np.r_[np.arange(0, height - h + 1, step), height - h])
    lefts = np.unique(np.r_[np.arange(0, width - w + 1, step), width - w])
    t, l = np.meshgrid(tops, lefts, indexing="ij")
    sums = integral[t + h, l + w] - integral[t, l + w] - integral[t + h, l] + integral[t, l]
    best = np.unravel_index(np.argmax(sums), sums.shape)
    return int(t[best]), int(l[best]), h, w


def _centre_window(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    h, w = min(size, height), min(size, width)
    return (height - h) // 2, (width - w) // 2, h, w


def _cut(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    top, left, h, w = box
    return np.ascontiguousarray(image[top : top + h, left : left + w])
