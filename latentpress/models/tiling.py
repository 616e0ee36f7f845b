"""Tiles with context: run a convolutional network on a large array piece by piece.

A plane of ``height`` x ``width`` is cut into a grid of equal *cores*; each core is
processed inside a *window* that adds up to ``margin`` of context on every side
(clipped at the borders), and only the core's part of the window's output is kept.
The kept parts tile the output exactly, without blending. When the margin covers the
network's receptive field the result equals the untiled one (up to float rounding);
a smaller margin trades a small difference at core borders for less work. Memory is
bounded by one window, whatever the plane's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """One piece of the plane, in input units: the window processed and the core kept."""

    top: int
    left: int
    bottom: int
    right: int
    """The window, ``[top, bottom) x [left, right)``."""
    core_top: int
    core_left: int
    core_bottom: int
    core_right: int
    """The core, inside the window."""

    def window(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def core(self, scale: float = 1) -> tuple[slice, slice]:
        """The core in output units (``scale`` output units per input unit)."""
        return (slice(round(self.core_top * scale), round(self.core_bottom * scale)),
                slice(round(self.core_left * scale), round(self.core_right * scale)))  # fmt: skip

    def core_in_window(self, scale: float = 1) -> tuple[slice, slice]:
        """The core's place in the window's output (``scale`` output units per input unit)."""
        top, left = self.core_top - self.top, self.core_left - self.left
        return (slice(round(top * scale), round((top + self.core_bottom - self.core_top) * scale)),
                slice(round(left * scale), round((left + self.core_right - self.core_left) * scale)))  # fmt: skip


def windows(height: int, width: int, tile: int, margin: int, unit: int = 1) -> list[Window]:
    """Windows covering a ``height`` x ``width`` plane: ``ceil(side / tile)`` cores along
    each side, as equal as ``unit`` allows (every core edge is a multiple of ``unit``,
    so that a network of stride ``unit`` maps it to whole output cells), each with up
    to ``margin`` of context. A plane no larger than ``tile`` is one window."""
    if min(height, width, tile, unit) < 1 or margin < 0:
        raise ValueError(f"bad tiling: {height}x{width}, tile {tile}, margin {margin}, unit {unit}")
    if tile % unit or margin % unit:
        raise ValueError(f"tile {tile} and margin {margin} must be multiples of {unit}")
    rows, cols = _cuts(height, tile, unit), _cuts(width, tile, unit)
    out = []
    for top, bottom in zip(rows, rows[1:]):  # noqa: B905 - consecutive pairs
        for left, right in zip(cols, cols[1:]):  # noqa: B905
            out.append(Window(max(0, top - margin), max(0, left - margin), min(height, bottom + margin),
                              min(width, right + margin), top, left, bottom, right))  # fmt: skip
    return out


def _cuts(size: int, tile: int, unit: int) -> list[int]:
    """Edges of ``ceil(size / tile)`` near-equal cores of ``size``, on multiples of ``unit``."""
    count = math.ceil(size / tile)
    cells = math.ceil(size / unit)
    edges = [min(size, unit * round(cells * k / count)) for k in range(count + 1)]
    return sorted(set(edges))


def spread_windows(height: int, width: int, core: int, per_side: int, margin: int) -> list[Window]:
    """``per_side`` x ``per_side`` cores of ``core`` x ``core`` (less where the plane is
    smaller) centred on an even grid over the plane, each with up to ``margin`` of
    context: samples of a plane too large to process whole. Cores may overlap on a
    plane smaller than ``per_side * core``; identical ones are given once."""
    if min(height, width, core, per_side) < 1 or margin < 0:
        raise ValueError(f"bad sampling: {height}x{width}, core {core}, {per_side} a side, margin {margin}")
    ch, cw = min(core, height), min(core, width)
    out: list[Window] = []
    for i in range(per_side):
        for j in range(per_side):
            top = min(max(round((i + 0.5) * height / per_side) - ch // 2, 0), height - ch)
            left = min(max(round((j + 0.5) * width / per_side) - cw // 2, 0), width - cw)
            window = Window(max(0, top - margin), max(0, left - margin), min(height, top + ch + margin),
                            min(width, left + cw + margin), top, left, top + ch, left + cw)  # fmt: skip
            if window not in out:
                out.append(window)
    return out
