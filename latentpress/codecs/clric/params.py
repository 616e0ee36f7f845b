"""CLRIC parameters: the quality knob (lambda), network sizes and the training schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass

from latentpress.codecs.base import CodecError


@dataclass(frozen=True)
class ClricParams:
    """One CLRIC configuration.

    ``quality`` is lambda in ``D + lambda * R`` (D: latent MSE, R: bits per image
    pixel); larger lambda, fewer bits. Training runs ``warmup`` stages of
    ``(models kept, iterations)`` (the first stage's count is the number of random
    initialisations tried per image; each later stage keeps the best of the previous
    one), then ``iterations`` more with the best model, the last ``rounding``
    iterations of which use true rounding (straight-through gradients).
    """

    quality: float = 1.0
    grids: tuple[int, ...] | None = None
    """2-D grids per level; ``None``: one per latent channel at full resolution, then
    one at each of 6 coarser levels."""
    synthesis_width: int = 16
    warmup: tuple[tuple[int, int], ...] = ((5, 400), (2, 400))
    iterations: int = 13_100
    rounding: int = 1_000
    learning_rate: float = 1e-2
    seed: int = 0
    perceptual_weighting: float = 0.0
    """Exponent of the perceptual weight map on the latent error (``.perception``):
    0 is the plain MSE, 1 weights each error by what the latent distance sees."""

    def grid_counts(self, channels: int) -> tuple[int, ...]:
        """Grids per level for a latent of ``channels`` channels."""
        return self.grids if self.grids is not None else (channels,) + (1,) * 6

    @property
    def total_iterations(self) -> int:
        """Model-iterations per image (every candidate counted)."""
        return sum(models * its for models, its in self.warmup) + self.iterations

    def validate(self) -> None:
        """Raise ``CodecError`` naming the first field out of range."""
        if not (math.isfinite(self.quality) and 0 < self.quality <= 100):
            raise CodecError(f"clric lambda must be in (0, 100], got {self.quality}")
        grids = self.grid_counts(1)
        if not (1 <= len(grids) <= 12 and all(0 <= g <= 16 for g in grids) and sum(grids) >= 1):
            raise CodecError(f"clric grids must give 0..16 grids at each of 1..12 levels, got {self.grids}")
        if not 1 <= self.synthesis_width <= 255:
            raise CodecError(f"clric synthesis_width must be in 1..255, got {self.synthesis_width}")
        counts = [models for models, _ in self.warmup]
        if any(m < 1 or i < 0 for m, i in self.warmup) or counts != sorted(counts, reverse=True):
            raise CodecError(f"clric warmup stages must keep non-increasing model counts >= 1: {self.warmup}")
        if self.iterations < 1 or not 0 <= self.rounding <= self.iterations:
            raise CodecError(
                f"clric needs iterations >= 1 and 0 <= rounding <= iterations, got "
                f"{self.iterations} and {self.rounding}"
            )
        if not (math.isfinite(self.perceptual_weighting) and 0 <= self.perceptual_weighting <= 2):
            raise CodecError(f"clric perceptual_weighting must be in [0, 2], got {self.perceptual_weighting}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise CodecError(f"clric learning_rate must be > 0, got {self.learning_rate}")


PRESETS: dict[str, ClricParams] = {
    "fast": ClricParams(warmup=((2, 100),), iterations=1_500, rounding=150),
    "default": ClricParams(),
    "best": ClricParams(synthesis_width=32, warmup=((5, 400), (2, 400)), iterations=30_000, rounding=2_000),
}
"""``default`` is the paper's schedule: 5 x 400 + 2 x 400 + 13,100 = 15,900 iterations."""
