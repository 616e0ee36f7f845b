"""The diffusion schedule as continuous functions of t in [0, 1], so that t can be
learned: relic's parameter network predicts the timestep whose noise level matches an
image's quantization noise, and training must send gradients into it. diffusers'
schedulers index by integer timestep, so the schedule is written here.

Cosine schedule (Nichol and Dhariwal): ``alpha_bar(t) = f(t) / f(0)`` with
``f(t) = cos^2(pi/2 * (t + s) / (1 + s))``, ``s = 0.008``; ``x_t = sqrt(alpha_bar) x_0 +
sqrt(1 - alpha_bar) eps``. t is kept in ``[0, T_MAX]`` so that ``alpha_bar`` stays
above zero. The denoiser sees ``1000 * t`` as its timestep.
"""

from __future__ import annotations

import math

import torch

OFFSET = 0.008
T_MAX = 0.995
"""Largest t used: alpha_bar(T_MAX) is about 1e-4."""
TIMESTEP_SCALE = 1000.0
"""The denoiser's timestep for t (``UNet2DModel`` embeds it like an integer step)."""


def alpha_bar(t: torch.Tensor) -> torch.Tensor:
    """Share of the signal's variance left at time ``t`` (1 at t = 0, falling)."""
    t = t.clamp(0.0, T_MAX)
    angle = (t + OFFSET) / (1 + OFFSET) * (math.pi / 2)
    return (torch.cos(angle) / math.cos(OFFSET / (1 + OFFSET) * math.pi / 2)) ** 2


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample ``values`` (shape (B,) or scalar) broadcast over ``like`` (B, C, H, W)."""
    return values.reshape(-1, *([1] * (like.dim() - 1))) if values.dim() else values


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x_t`` for clean ``x0``, standard normal ``noise`` and times ``t`` (one per sample)."""
    a = _expand(alpha_bar(t), x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The clean sample implied by ``x_t`` and a noise prediction ``eps`` at ``t``."""
    a = _expand(alpha_bar(t), x_t)
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
    """One deterministic DDIM step (eta = 0) from ``t`` to the earlier ``t_next``."""
    x0 = predict_x0(x_t, eps, t)
    a_next = _expand(alpha_bar(t_next), x_t)
    return a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps


def noise_std(t: torch.Tensor) -> torch.Tensor:
    """Standard deviation of the noise in ``x_t / sqrt(alpha_bar)``: how far a sample at
    ``t`` is from its clean value, on the clean value's scale."""
    a = alpha_bar(t)
    return ((1 - a) / a).sqrt()


def times(t_start: float, steps: int) -> list[float]:
    """``steps + 1`` times from ``t_start`` down to 0, evenly spaced (the DDIM path)."""
    if steps < 1 or not 0.0 <= t_start <= T_MAX:
        raise ValueError(f"need steps >= 1 and t_start in [0, {T_MAX}], got {steps}, {t_start}")
    return [t_start * (1 - i / steps) for i in range(steps + 1)]
