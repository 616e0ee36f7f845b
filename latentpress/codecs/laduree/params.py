"""Laduree parameters, presets and the sizes they make, known without torch.

:class:`LadureeParams` is what a user picks (``quality`` is the denoiser's hidden
size); :class:`Architecture`, :class:`Schedule` and :class:`Training` are the parts
written into the model bitstream or used by training.
"""

from __future__ import annotations

from dataclasses import dataclass

from latentpress.codecs.base import CodecError
from latentpress.codecs.laduree.floatq import FloatFormat


@dataclass(frozen=True)
class Architecture:
    """Sizes of one denoiser (written into the model bitstream)."""

    channels: int
    patch: int
    hidden: int
    depth: int
    heads: int
    mlp_ratio: int = 4
    index_tokens: int = 8
    index_frequencies: int = 32

    def check(self) -> None:
        """Raise ``ValueError`` unless the sizes make a network."""
        fields = (
            self.channels,
            self.patch,
            self.hidden,
            self.depth,
            self.heads,
            self.mlp_ratio,
            self.index_tokens,
            self.index_frequencies,
        )
        if min(fields) < 1:
            raise ValueError(f"architecture sizes must be >= 1: {self}")
        if self.hidden % self.heads or self.hidden % 4:
            raise ValueError(f"hidden {self.hidden} must be a multiple of 4 and of heads {self.heads}")


BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
"""Schedules a bitstream may name, by their position (the stored code)."""


@dataclass(frozen=True)
class Schedule:
    """Diffusion schedule and sampler settings (written into the model bitstream)."""

    train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    steps: int = 50

    def check(self) -> None:
        """Raise ``ValueError`` unless diffusers can build this schedule."""
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"unknown beta schedule {self.beta_schedule!r}")
        if not 1 <= self.steps <= self.train_timesteps <= 10000:
            raise ValueError(f"need 1 <= steps {self.steps} <= train timesteps {self.train_timesteps} <= 10000")
        if not 0 < self.beta_start <= self.beta_end < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {self.beta_start}, {self.beta_end}")


@dataclass(frozen=True)
class Training:
    """How long and how fast to train."""

    epochs: int = 50
    min_steps: int = 0
    batch_size: int = 16
    learning_rate: float = 2e-4

    def steps(self, batches_per_epoch: int) -> int:
        """Optimizer steps for a set of ``batches_per_epoch`` batches."""
        return max(self.min_steps, self.epochs * batches_per_epoch)


@dataclass(frozen=True)
class LadureeParams:
    """``quality`` is the denoiser's hidden size (with the weight precision, the rate knob)."""

    quality: float = 108
    depth: int = 12
    heads: int = 6
    patch: int = 2
    exponent_bits: int = 5
    mantissa_bits: int = 8
    epochs: int = 50
    min_steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 2e-4
    sample_steps: int = 50
    seed: int = 0

    @property
    def hidden(self) -> int:
        return int(self.quality)

    def architecture(self, channels: int) -> Architecture:
        return Architecture(channels, self.patch, self.hidden, self.depth, self.heads)

    def number_format(self) -> FloatFormat:
        return FloatFormat(self.exponent_bits, self.mantissa_bits)

    def schedule(self) -> Schedule:
        return Schedule(steps=self.sample_steps)

    def training(self) -> Training:
        return Training(self.epochs, self.min_steps, self.batch_size, self.learning_rate)

    def validate(self) -> None:
        """Raise ``CodecError`` naming the first parameter out of range."""
        if self.quality != self.hidden:
            raise CodecError(f"laduree hidden size must be a whole number, got {self.quality}")
        try:
            self.architecture(channels=4).check()
            self.number_format()
            self.schedule().check()
        except ValueError as err:
            raise CodecError(f"bad laduree parameters: {err}") from None
        if not 4 <= self.hidden <= 4096 or self.depth > 64 or self.patch > 16:
            raise CodecError(
                f"laduree sizes out of range: hidden {self.hidden}, depth {self.depth}, patch {self.patch}"
            )
        if min(self.epochs, self.min_steps) < 0 or self.epochs + self.min_steps == 0:
            raise CodecError("laduree needs epochs or min_steps > 0")
        if self.batch_size < 1 or not self.learning_rate > 0 or not 0 <= self.seed < 1 << 32:
            raise CodecError("laduree needs batch_size >= 1, learning_rate > 0, seed in [0, 2**32)")


PRESETS = {
    "tiny": LadureeParams(
        quality=32, depth=2, heads=2, epochs=0, min_steps=600, batch_size=4, learning_rate=2e-3, sample_steps=10
    ),
    "fast": LadureeParams(depth=6, epochs=20, min_steps=500),
    "default": LadureeParams(),
    "best": LadureeParams(quality=240, mantissa_bits=10, epochs=100, min_steps=4000),
}
