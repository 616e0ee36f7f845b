"""The latent function: grids, autoregressive entropy model, upsampling, synthesis.

Every module holds ``M`` independent models side by side (a leading model axis on
every parameter), so that several candidates, lambdas or images of one latent shape
train in one process with one optimizer step; model ``m`` never sees model ``n``.

- Grids: 2-D grids at up to 12 levels of resolution (see :mod:`.grid`), one flat
  vector per model; values are integers once quantized (step 1).
- ARM: per grid value, 8 causal neighbours -> 8 -> 8 (residual) -> 2 outputs, the
  location and log-scale of a Laplace model of the value.
- Upsampling: a separable transposed convolution (stride 2) with one learnable
  8-tap kernel shared by all levels, initialised to bicubic, applied coarse to fine.
- Synthesis: 1x1 (grids -> width, ReLU), 1x1 (width -> C), then two 3x3 layers
  (C -> C, ReLU; C -> C) added back to their input: the VAE latent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentpress.codecs.clric.grid import CONTEXT, context_index, grid_shapes, grid_size

LOG_SCALE_MIN, LOG_SCALE_MAX = -4.0, 5.0
"""Range of the ARM's log-scale output (Laplace scale 0.018 .. 148)."""
PROB_FLOOR = 2.0**-16
"""Smallest probability the training rate assigns to a value."""
KERNEL = 8
"""Upsampling kernel size."""
BLOCK = 16
"""Inputs per block when a long axis is upsampled block by block."""
IMAGE_PIXELS_PER_LATENT = 64
"""Image pixels per latent position (the VAE's stride is 8)."""

Quantization = Literal["noise", "ste", "round"]


@dataclass(frozen=True)
class Architecture:
    """Sizes of one latent function (written into every bitstream).

    ``grids[k]`` is the number of 2-D grids at level ``k`` (resolution ``1 / 2**k`` of
    the latent); the paper has one grid at each of 7 levels.
    """

    channels: int
    height: int
    width: int
    grids: tuple[int, ...] = (1,) * 7
    arm_width: int = 8
    synthesis_width: int = 16

    @property
    def level_shapes(self) -> tuple[tuple[int, int], ...]:
        return grid_shapes(self.height, self.width, len(self.grids))

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """Shape of every 2-D grid, level after level."""
        return tuple(shape for shape, count in zip(self.level_shapes, self.grids, strict=True) for _ in range(count))

    def macs_per_latent(self) -> float:
        """Multiply-accumulates per latent position to decode (ARM, upsampling, synthesis)."""
        a, s, c, features = self.arm_width, self.synthesis_width, self.channels, sum(self.grids)
        arm = grid_size(self.shapes) * (CONTEXT * a + a * a + a * 2)
        # level k+1 features (all coarser grids) go up to level k: separable, 4 taps per output
        levels = self.level_shapes
        ups = sum(
            4 * sum(self.grids[k + 1 :]) * (levels[k + 1][0] + levels[k][0]) * levels[k][1]
            for k in range(len(levels) - 1)
        )
        synthesis = self.height * self.width * (features * s + s * c + 2 * 9 * c * c)
        return (arm + ups + synthesis) / (self.height * self.width)


class Arm(nn.Module):
    """Autoregressive entropy model: Laplace location and log-scale from 8 neighbours."""

    def __init__(self, models: int, width: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.w1 = nn.Parameter(_uniform((models, width, CONTEXT), CONTEXT, generator))
        self.b1 = nn.Parameter(torch.zeros(models, width, 1))
        self.w2 = nn.Parameter(_uniform((models, width, width), width, generator))
        self.b2 = nn.Parameter(torch.zeros(models, width, 1))
        self.w3 = nn.Parameter(torch.zeros(models, 2, width))
        self.b3 = nn.Parameter(torch.zeros(models, 2, 1))

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, 8, N) neighbours -> location and clamped log-scale, each (M, N)."""
        h1 = torch.relu(torch.baddbmm(self.b1, self.w1, context))
        h2 = torch.relu(torch.baddbmm(self.b2, self.w2, h1)) + h1
        out = torch.baddbmm(self.b3, self.w3, h2)
        return out[:, 0], out[:, 1].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)


class Upsampler(nn.Module):
    """Coarse-to-fine 2x upsampling: a separable transposed convolution (stride 2) with
    one learnable 8-tap kernel, edges replicated.

    Each level step is a product with a matrix per axis built from the kernel, which
    is much faster on a CPU than a depthwise transposed convolution. An axis of at
    most ``2 * BLOCK`` inputs uses its whole ``(n_out, n_in)`` matrix; a longer one is
    cut into blocks of ``BLOCK`` inputs (plus 2 of context on each side) that share
    one ``(2 * BLOCK, BLOCK + 4)`` matrix, so the cost per output stays constant
    instead of growing with the side.
    """

    def __init__(self, models: int, shapes: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.from_numpy(bicubic_taps()).float().expand(models, KERNEL).clone())
        self.shapes = shapes
        self.sizes = [(shapes[k + 1][a], shapes[k][a]) for k in range(len(shapes) - 1) for a in (0, 1)]
        taps = [upsampling_taps(n_in, n_out) for n_in, n_out in self.sizes if n_in <= 2 * BLOCK] + [block_taps()]
        self.register_buffer(
            "taps", torch.from_numpy(np.concatenate([t.reshape(KERNEL, -1) for t in taps], 1)).float(), persistent=False
        )

    def matrices(self) -> list[torch.Tensor]:
        """Per level step and axis (finest step first, rows then columns), the matrix
        (M, n_out, n_in), or the block matrix (M, 2 * BLOCK, BLOCK + 4) for a long axis."""
        flat = self.kernel @ self.taps
        block = flat[:, -2 * BLOCK * (BLOCK + 4) :].reshape(-1, 2 * BLOCK, BLOCK + 4)
        out, start = [], 0
        for n_in, n_out in self.sizes:
            if n_in > 2 * BLOCK:
                out.append(block)
                continue
            out.append(flat[:, start : start + n_out * n_in].reshape(-1, n_out, n_in))
            start += n_out * n_in
        return out

    def forward(self, grids: list[torch.Tensor]) -> torch.Tensor:
        """Levels (M, c_k, h_k, w_k), finest first -> (M, sum c_k, h_0, w_0) features.

        Works in (M, h, c, w) layout, where both products are plain batched matmuls.
        """
        matrices = self.matrices()
        models = self.kernel.shape[0]
        x = grids[-1].transpose(1, 2)
        for k in range(len(grids) - 2, -1, -1):
            (h_out, w_out), (_, h, c, w) = self.shapes[k], x.shape
            y = _upsample_rows(matrices[2 * k], x.reshape(models, h, c * w), h_out).reshape(models, -1, w)
            y = _upsample_columns(matrices[2 * k + 1], y, w_out).reshape(models, h_out, c, w_out)
            x = torch.cat([grids[k].transpose(1, 2), y], 2)
        return x.transpose(1, 2)


def _upsample_rows(matrix: torch.Tensor, x: torch.Tensor, n_out: int) -> torch.Tensor:
    """(M, n_in, R) -> (M, n_out, R) by a whole or a block matrix."""
    if x.shape[1] <= 2 * BLOCK:
        return torch.bmm(matrix, x)
    models, n_in, rest = x.shape
    windows = _padded(x, 1).unfold(1, BLOCK + 4, BLOCK)  # (M, blocks, R, BLOCK + 4)
    blocks = windows.shape[1]
    y = torch.bmm(matrix, windows.permute(0, 3, 1, 2).reshape(models, BLOCK + 4, blocks * rest))
    return y.reshape(models, 2 * BLOCK, blocks, rest).transpose(1, 2).reshape(models, -1, rest)[:, :n_out]


def _upsample_columns(matrix: torch.Tensor, x: torch.Tensor, n_out: int) -> torch.Tensor:
    """(M, R, n_in) -> (M, R, n_out) by a whole or a block matrix."""
    if x.shape[2] <= 2 * BLOCK:
        return torch.bmm(x, matrix.transpose(1, 2))
    models, rest, _ = x.shape
    windows = _padded(x, 2).unfold(2, BLOCK + 4, BLOCK)  # (M, R, blocks, BLOCK + 4)
    y = torch.bmm(windows.reshape(models, -1, BLOCK + 4), matrix.transpose(1, 2))
    return y.reshape(models, rest, -1)[:, :, :n_out]


def _padded(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` with 2 edge values replicated before and enough after along ``dim`` for
    whole blocks of ``BLOCK`` inputs with 2 of context on each side."""
    n = x.shape[dim]
    after = -(-n // BLOCK) * BLOCK - n + 2

    def edge(index: int, count: int) -> torch.Tensor:
        return x.narrow(dim, index, 1).expand(*(count if d == dim else -1 for d in range(x.dim())))

    return torch.cat([edge(0, 2), x, edge(n - 1, after)], dim)


def block_taps() -> np.ndarray:
    """(8, 2 * BLOCK, BLOCK + 4) 0/1: which kernel tap links padded input ``q`` of a
    block to its output ``j`` (``j + 7 - 2 q``, the stride-2 transposed convolution)."""
    taps = np.zeros((KERNEL, 2 * BLOCK, BLOCK + 4))
    for j in range(2 * BLOCK):
        for q in range(BLOCK + 4):
            if 0 <= j + 7 - 2 * q < KERNEL:
                taps[j + 7 - 2 * q, j, q] = 1
    return taps


def bicubic_taps(size: int = KERNEL) -> np.ndarray:
    """The 1-D kernel of 2x bicubic (a = -0.75) upsampling as a transposed convolution."""
    t = np.abs((np.arange(size) - (size - 1) / 2) / 2)
    a = -0.75
    k = np.where(t <= 1, (a + 2) * t**3 - (a + 3) * t**2 + 1, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a)
    return np.where(t < 2, k, 0.0)


def upsampling_taps(n_in: int, n_out: int) -> np.ndarray:
    """(8, n_out, n_in) 0/1 counts: which kernel tap links input ``i`` to output ``j``.

    Output ``j`` of the stride-2 transposed convolution is ``sum_i x[i] k[j + 3 - 2 i]``
    over the input extended by 2 replicated values on each side.
    """
    taps = np.zeros((KERNEL, n_out, n_in))
    for j in range(n_out):
        for p in range(-2, n_in + 2):
            t = j + 3 - 2 * p
            if 0 <= t < KERNEL:
                taps[t, j, min(max(p, 0), n_in - 1)] += 1
    return taps


class Synthesis(nn.Module):
    """Features (M, F, h, w) -> latent (M, C, h, w)."""

    HALO = 2
    """Rows of context on each side that an output row depends on (two 3x3 layers)."""

    def __init__(
        self, models: int, features: int, width: int, channels: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.w1 = nn.Parameter(_uniform((models, width, features), features, generator))
        self.b1 = nn.Parameter(torch.zeros(models, width, 1))
        self.w2 = nn.Parameter(_uniform((models, channels, width), width, generator))
        self.b2 = nn.Parameter(torch.zeros(models, channels, 1))
        self.w3 = nn.Parameter(_uniform((models, channels, channels, 3, 3), 9 * channels, generator))
        self.b3 = nn.Parameter(torch.zeros(models, channels))
        self.w4 = nn.Parameter(torch.zeros(models, channels, channels, 3, 3))
        self.b4 = nn.Parameter(torch.zeros(models, channels))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        models, count, h, w = features.shape
        x = torch.relu(torch.baddbmm(self.b1, self.w1, features.reshape(models, count, h * w)))
        x = torch.baddbmm(self.b2, self.w2, x).reshape(1, -1, h, w)
        x = x.contiguous(memory_format=torch.channels_last)  # 3x3 convolutions twice as fast on CPUs
        y = torch.relu(self._conv3(x, self.w3, self.b3))
        return (x + self._conv3(y, self.w4, self.b4)).reshape(models, -1, h, w)

    @staticmethod
    def _conv3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        models = weight.shape[0]
        x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        return F.conv2d(x, weight.flatten(0, 1), bias.flatten(), groups=models)


class LatentFunction(nn.Module):
    """``M`` latent functions of one architecture: grids plus the three networks."""

    def __init__(self, arch: Architecture, models: int = 1, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.arch = arch
        self.shapes = arch.shapes
        self.grids = nn.Parameter(torch.zeros(models, grid_size(self.shapes)))
        self.arm = Arm(models, arch.arm_width, generator)
        self.upsampler = Upsampler(models, arch.level_shapes)
        self.synthesis = Synthesis(models, sum(arch.grids), arch.synthesis_width, arch.channels, generator)
        self.register_buffer("context", torch.from_numpy(context_index(self.shapes).T.ravel().copy()), persistent=False)

    @property
    def models(self) -> int:
        return self.grids.shape[0]

    def quantize(self, mode: Quantization, generator: torch.Generator | None = None) -> torch.Tensor:
        """Grid values with uniform noise, straight-through rounding, or rounded."""
        if mode == "noise":
            return self.grids + (torch.rand(self.grids.shape, generator=generator) - 0.5)
        if mode == "ste":
            return self.grids + (torch.round(self.grids) - self.grids).detach()
        return torch.round(self.grids)

    def bits(self, values: torch.Tensor) -> torch.Tensor:
        """Rate in bits (M,) of the quantized grid values under the ARM."""
        padded = torch.cat([values, values.new_zeros(values.shape[0], 1)], 1)
        context = padded.index_select(1, self.context).reshape(values.shape[0], CONTEXT, -1)
        loc, log_scale = self.arm(context)
        return laplace_bits(values, loc, log_scale).sum(1)

    def features(self, values: torch.Tensor) -> torch.Tensor:
        """Every level's grids upsampled to the latent's size (M, F, h, w), from values (M, N)."""
        levels, start = [], 0
        for count, (h, w) in zip(self.arch.grids, self.arch.level_shapes, strict=True):
            levels.append(values[:, start : start + count * h * w].reshape(-1, count, h, w))
            start += count * h * w
        return self.upsampler(levels)

    def synthesize(self, values: torch.Tensor) -> torch.Tensor:
        """Latent (M, C, h, w) from quantized grid values (M, N)."""
        return self.synthesis(self.features(values))

    def forward(
        self, mode: Quantization, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(latent (M, C, h, w), bits (M,))`` with the grids quantized by ``mode``."""
        values = self.quantize(mode, generator)
        return self.synthesize(values), self.bits(values)


def laplace_bits(x: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """-log2 of the probability of the unit bin around ``x`` under Laplace(loc, exp(log_scale)).

    Probabilities are floored at ``PROB_FLOOR``; the gradient is hand-written (one
    fused pass instead of some forty autograd nodes, the hot spot of training).
    """
    return _LaplaceBits.apply(x, loc, log_scale)


class _LaplaceBits(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        inv = torch.exp(-log_scale)
        z = (x - loc) * inv
        upper, lower = z + 0.5 * inv, z - 0.5 * inv
        e_up, e_lo = torch.exp(-upper.abs()), torch.exp(-lower.abs())
        one_side = (lower >= 0) | (upper <= 0)
        # both bounds on one side of loc: difference of tails, else one minus both tails
        prob = torch.where(one_side, 0.5 * (e_lo - e_up).abs(), 1 - 0.5 * (e_up + e_lo))
        floored = prob < PROB_FLOOR
        ctx.save_for_backward(inv, upper, lower, e_up, e_lo, prob, floored)
        return -torch.log2(prob.clamp_min(PROB_FLOOR))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inv, upper, lower, e_up, e_lo, prob, floored = ctx.saved_tensors
        g = torch.where(floored, 0.0, grad / (-prob * math.log(2.0)))  # d bits / d prob
        d_x = g * 0.5 * (e_up - e_lo) * inv
        d_log_scale = g * 0.5 * (lower * e_lo - upper * e_up)
        return d_x, -d_x, d_log_scale


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator | None) -> torch.Tensor:
    bound = 1.0 / fan_in**0.5
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


def select(model: LatentFunction, index: torch.Tensor) -> LatentFunction:
    """A new :class:`LatentFunction` holding copies of models ``index`` of ``model``."""
    out = LatentFunction(model.arch, len(index))
    with torch.no_grad():
        for new, old in zip(out.parameters(), model.parameters(), strict=True):
            new.copy_(old[index])
    return out
