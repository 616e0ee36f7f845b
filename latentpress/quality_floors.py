"""Quality floors: ``lpips<=0.15``, ``dists<=0.1``, ``psnr>=32``, ``ms_ssim>=0.95``.

A floor says how good every photo must at least be; it drives both the choice among
stored configurations (``pipeline.selection``) and the per-image search of a codec's
knob (``pipeline.quality_search``). Kept free of heavy imports: codec specs parse it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

METRICS = {"lpips": "<=", "dists": "<=", "psnr": ">=", "ms_ssim": ">="}
"""Metrics a floor can use, and the comparison that means "at least this good"."""
_TARGET = re.compile(r"\s*([a-z_-]+)\s*(<=|>=)\s*([0-9.eE+-]+)\s*")


@dataclass(frozen=True)
class QualityTarget:
    """``metric`` at most (LPIPS, DISTS) or at least (PSNR, MS-SSIM) ``bound``."""

    metric: str
    bound: float

    def __str__(self) -> str:
        return f"{self.metric}{METRICS[self.metric]}{self.bound:g}"

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric] == ">="

    def meets(self, values: Any) -> Any:
        """Whether ``values`` (a number, an array or a Series) meet the floor (NaN never does)."""
        return values >= self.bound if self.higher_is_better else values <= self.bound


def parse_target(text: str) -> QualityTarget:
    """``lpips<=0.15``, ``dists<=0.1``, ``psnr>=32``, ``ms_ssim>=0.95`` (``ms-ssim`` too)."""
    match = _TARGET.fullmatch(text)
    metric = match[1].replace("-", "_") if match else None
    if match is None or metric not in METRICS or match[2] != METRICS[metric]:
        wanted = ", ".join(f"{m}{op}X" for m, op in METRICS.items())
        raise ValueError(f"quality target {text!r} is not one of {wanted}")
    try:
        bound = float(match[3])
    except ValueError:
        raise ValueError(f"quality target {text!r}: {match[3]!r} is not a number") from None
    return checked(QualityTarget(metric, bound), text)


def checked(target: QualityTarget, text: str) -> QualityTarget:
    """``target`` if its bound can be met by some image, else ``ValueError`` quoting ``text``."""
    if not math.isfinite(target.bound) or target.bound < 0:
        raise ValueError(f"quality target {text!r}: the bound must be a finite number >= 0")
    if target.metric == "ms_ssim" and target.bound > 1:
        raise ValueError(f"quality target {text!r}: MS-SSIM is at most 1")
    return target
