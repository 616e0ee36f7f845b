"""Geometry of the multi-resolution latent grids: shapes, causal contexts, coding order.

The grids of one image are stored as one flat vector, grid after grid (level after
level), each in row-major order. A level-``k`` grid has shape
``(ceil(h / 2**k), ceil(w / 2**k))`` for a VAE latent of ``h x w``.

Every value is predicted from 8 causal neighbours in its own grid (``OFFSETS``,
zero outside the grid). All offsets ``(dy, dx)`` satisfy ``3*dy + dx < 0``, so the
positions of one *wavefront* ``t = 3*i + j`` never depend on each other: a decoder
decodes a whole wavefront, across all levels, at once.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

OFFSETS: tuple[tuple[int, int], ...] = (
    (0, -1), (0, -2), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (-2, 0),
)  # fmt: skip
"""Causal neighbours (dy, dx) of the entropy model's context, in input order."""

CONTEXT = len(OFFSETS)


def grid_shapes(height: int, width: int, levels: int) -> tuple[tuple[int, int], ...]:
    """Grid shapes of the ``levels`` levels for a latent of ``height x width``."""
    return tuple((math.ceil(height / 2**k), math.ceil(width / 2**k)) for k in range(levels))


def grid_size(shapes: tuple[tuple[int, int], ...]) -> int:
    """Number of values in all grids together."""
    return sum(h * w for h, w in shapes)


@lru_cache(maxsize=32)
def context_index(shapes: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(N, 8) int64 indices into the flat grids of each value's neighbours.

    A neighbour outside its grid has index ``N``: callers append one zero to the
    flat vector so that it reads as 0.
    """
    total = grid_size(shapes)
    out, start = [], 0
    for h, w in shapes:
        i, j = np.mgrid[0:h, 0:w]
        i, j = i.ravel(), j.ravel()
        columns = []
        for dy, dx in OFFSETS:
            y, x = i + dy, j + dx
            inside = (y >= 0) & (x >= 0) & (x < w)
            columns.append(np.where(inside, start + y * w + x, total))
        out.append(np.stack(columns, 1))
        start += h * w
    index = np.concatenate(out).astype(np.int64)
    index.setflags(write=False)
    return index


@lru_cache(maxsize=32)
def wavefronts(shapes: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, ...]:
    """Flat positions grouped by wavefront ``3*i + j`` over all grids: the coding order."""
    position, wave, start = [], [], 0
    for h, w in shapes:
        i, j = np.mgrid[0:h, 0:w]
        position.append(start + (i * w + j).ravel())
        wave.append((3 * i + j).ravel())
        start += h * w
    position, wave = np.concatenate(position), np.concatenate(wave)
    order = np.lexsort((position, wave))
    bounds = np.flatnonzero(np.diff(wave[order])) + 1
    groups = tuple(np.split(position[order], bounds))
    for group in groups:
        group.setflags(write=False)
    return groups


def coding_order(shapes: tuple[tuple[int, int], ...]) -> np.ndarray:
    """All flat positions in the order they are coded (wavefront after wavefront)."""
    return np.concatenate(wavefronts(shapes))
