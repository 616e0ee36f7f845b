"""Weight quantization: integer grids and weights, with the step searched per module.

Parameters fall into ``GROUPS`` of (module, kind); each group's values are integers
``v`` standing for ``v / 2**shift``. As in Cool-Chic, each group's shift is chosen in
turn (earlier groups already quantized, later ones still float) to minimise
``D + lambda * R``, R counting the grid and the weight bits, estimated with the
Laplace models the bitstream uses. Power-of-two steps keep the ARM in exact integer
arithmetic (:mod:`.fixed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from latentpress.codecs.clric.fixed import IntArm
from latentpress.codecs.clric.grid import CONTEXT, context_index
from latentpress.codecs.clric.model import IMAGE_PIXELS_PER_LATENT, KERNEL, Architecture, LatentFunction, select
from latentpress.codecs.clric.threads import single_thread

GROUPS: tuple[tuple[str, str], ...] = (
    ("arm", "weight"), ("arm", "bias"), ("upsampler", "weight"), ("synthesis", "weight"), ("synthesis", "bias"),
)  # fmt: skip
"""Parameter groups with one quantization step each, in bitstream order."""
MAX_SHIFT = 20
"""Finest step is ``2**-MAX_SHIFT``."""
_SCALE_STEPS = 8
"""Weight models' Laplace scales are ``2 ** (e / _SCALE_STEPS)`` for an integer ``e``."""


@dataclass(frozen=True)
class QuantizedFunction:
    """Everything the bitstream holds: architecture, integer grids and weights."""

    arch: Architecture
    grids: np.ndarray
    """int64 (N,) grid values, level after level, row-major."""
    shifts: tuple[int, ...]
    """Per group of ``GROUPS``: values are ``integer / 2**shift``."""
    values: tuple[np.ndarray, ...]
    """Per group: int64 values of its tensors, flattened and concatenated in order."""
    transposed: bool = False
    """The function describes the latent transposed (height and width swapped)."""

    def arm(self) -> IntArm:
        """The integer entropy model."""
        a, c = self.arch.arm_width, CONTEXT
        w, b = self.values[0], self.values[1]
        weights = (w[: a * c].reshape(a, c), w[a * c : a * c + a * a].reshape(a, a), w[a * c + a * a :].reshape(2, a))
        biases = (b[:a], b[a : 2 * a], b[2 * a :])
        return IntArm(weights, biases, self.shifts[0], self.shifts[1])

    def model(self) -> LatentFunction:
        """A float :class:`LatentFunction` (one model) with these grids and weights."""
        model = LatentFunction(self.arch, 1)
        with torch.no_grad():
            model.grids.copy_(torch.from_numpy(self.grids.astype(np.float32))[None])
            for group, shift, values in zip(GROUPS, self.shifts, self.values, strict=True):
                _assign(group_parameters(model, group), values.astype(np.float64) / 2.0**shift)
        return model

    @single_thread
    def latent(self) -> np.ndarray:
        """The decoded latent (C, h, w) float32."""
        with torch.no_grad():
            latent = self.model().synthesize(torch.from_numpy(self.grids.astype(np.float32))[None])[0].numpy()
        return np.ascontiguousarray(latent.transpose(0, 2, 1)) if self.transposed else latent


def group_parameters(model: LatentFunction, group: tuple[str, str]) -> list[torch.nn.Parameter]:
    """The parameters of ``group`` in definition order (weights: ``w*``, ``kernel``; biases ``b*``)."""
    module, kind = group
    prefixes = ("b",) if kind == "bias" else ("w", "kernel")
    return [p for name, p in getattr(model, module).named_parameters() if name.startswith(prefixes)]


def group_sizes(arch: Architecture) -> tuple[int, ...]:
    """Number of values in each group of ``GROUPS`` for ``arch`` (no model is built)."""
    a, s, c, features = arch.arm_width, arch.synthesis_width, arch.channels, sum(arch.grids)
    return (a * CONTEXT + a * a + 2 * a, 2 * a + 2, KERNEL, features * s + s * c + 18 * c * c, s + 3 * c)


def weight_scale_exponent(values: np.ndarray) -> int:
    """``e`` of the weight model's Laplace scale ``2 ** (e / 8)``: the mean magnitude."""
    mean = max(float(np.abs(values).mean()), 2.0**-8)
    return int(np.round(_SCALE_STEPS * np.log2(mean)))


def weight_scale(exponent: int) -> float:
    """Laplace scale of weight-model exponent ``exponent``."""
    return float(np.exp2(exponent / _SCALE_STEPS))


@single_thread
def quantize(
    model: LatentFunction, target: np.ndarray, lam: float, transposed: bool = False, weights: np.ndarray | None = None
) -> QuantizedFunction:
    """Round the grids of ``model`` (its first model) and quantize its weights for ``lam``.

    ``target`` is the latent the model was fitted to (the transposed latent if
    ``transposed``), ``weights`` the weight map of its error it was fitted with.
    """
    arch = model.arch
    work = select(model, torch.tensor([0]))
    with torch.no_grad():
        work.grids.copy_(torch.round(work.grids))
    grids = work.grids[0].detach().numpy().astype(np.int64)
    context = np.append(grids, 0)[context_index(arch.shapes).T]
    pixels = IMAGE_PIXELS_PER_LATENT * arch.height * arch.width
    y = torch.from_numpy(np.asarray(target, dtype=np.float32))
    weight = None if weights is None else torch.from_numpy(np.asarray(weights, dtype=np.float32))
    fine_bias = np.round(_flat(group_parameters(work, GROUPS[1])) * 2.0**MAX_SHIFT).astype(np.int64)
    shifts: list[int] = []
    values: list[np.ndarray] = []
    for group in GROUPS:
        params = group_parameters(work, group)
        floats = _flat(params)
        best: tuple[float, int, np.ndarray] | None = None
        for shift in range(MAX_SHIFT + 1):
            ints = np.round(floats * 2.0**shift).astype(np.int64)
            if group[0] == "arm":  # weights first, with the bias at the finest step
                pair = (
                    ((ints, fine_bias), (shift, MAX_SHIFT))
                    if group[1] == "weight"
                    else ((values[0], ints), (shifts[0], shift))
                )
                loss = lam * (weight_bits(ints) + grid_bits(_arm(arch, *pair), grids, context)) / pixels
            else:
                _assign(params, ints / 2.0**shift)
                loss = _error(work, y, weight) + lam * weight_bits(ints) / pixels
            if best is None or loss < best[0]:
                best = (loss, shift, ints)
        _, shift, ints = best
        _assign(params, ints / 2.0**shift)
        shifts.append(shift)
        values.append(ints)
    return QuantizedFunction(arch, grids, tuple(shifts), tuple(values), transposed)


def grid_bits(arm: IntArm, grids: np.ndarray, context: np.ndarray) -> float:
    """Estimated bits of the grid values under the integer ARM."""
    loc, scale = arm(context)
    return float(laplace_bits(grids, loc, scale).sum())


def weight_bits(values: np.ndarray) -> float:
    """Estimated bits of one group's integer values under its zero-mean Laplace model."""
    if values.size == 0 or values.min() == values.max():
        return 0.0
    return float(laplace_bits(values, 0.0, weight_scale(weight_scale_exponent(values))).sum())


def laplace_bits(x: np.ndarray, loc: np.ndarray | float, scale: np.ndarray | float) -> np.ndarray:
    """-log2 probability of the unit bin around integer ``x`` (float64, floored at 2**-24)."""
    z = (np.asarray(x, dtype=np.float64) - loc) / scale
    half = 0.5 / np.asarray(scale, dtype=np.float64)
    upper, lower = z + half, z - half
    e_up, e_lo = np.exp(-np.abs(upper)), np.exp(-np.abs(lower))
    one_side = (lower >= 0) | (upper <= 0)
    prob = np.where(one_side, 0.5 * np.abs(e_lo - e_up), 1 - 0.5 * (e_up + e_lo))
    return -np.log2(np.maximum(prob, 2.0**-24))


def _arm(arch: Architecture, values: tuple[np.ndarray, np.ndarray], shifts: tuple[int, int]) -> IntArm:
    return QuantizedFunction(arch, np.zeros(0, np.int64), shifts, values).arm()


def _error(model: LatentFunction, target: torch.Tensor, weights: torch.Tensor | None) -> float:
    """The (weighted) mean squared error of the model's latent."""
    with torch.no_grad():
        error = (model.synthesize(model.grids)[0] - target).square()
        return float((error if weights is None else error * weights).mean())


def _flat(params: list[torch.nn.Parameter]) -> np.ndarray:
    return torch.cat([p[0].detach().reshape(-1) for p in params]).double().numpy()


def _assign(params: list[torch.nn.Parameter], flat: np.ndarray) -> None:
    """Write a flat vector of values into the first model of ``params``, in order."""
    start = 0
    with torch.no_grad():
        for p in params:
            n = p[0].numel()
            p[0].copy_(torch.from_numpy(np.asarray(flat[start : start + n], dtype=np.float32)).reshape(p[0].shape))
            start += n
