"""The entropy model of a code ``y`` (N channels), shared by ``glc`` and ``relic``:
a hyperprior and a four-part spatial context.

- ``HyperAnalysis`` summarises ``y`` as ``z`` (a quarter of its size on each side),
  coded under a learned per-channel Laplace prior; ``HyperSynthesis`` turns ``z``
  back into features at the code's resolution.
- ``y`` is coded in four parts (the four positions of each 2x2 block, in a fixed
  order). For each part a ``PartNet`` predicts, from the hyperprior features and the
  parts already decoded, the mean, the spread and (when the prior learns it) the
  quantization step of every value of that part; else the step is 1.

``HyperSynthesis`` and the ``PartNet``\\ s use only convolutions and a leaky ReLU of
slope 1/8, so that :mod:`.exact` can evaluate them in integer arithmetic: encoder and
decoder then derive bit-identical coding parameters on any thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from latentpress.codecs.hyperprior.tables import DELTA_LOG2_RANGE, RATIO_LOG2_RANGE, Z_RANGE

LEAK = 0.125
"""Slope of the leaky ReLU of the networks that :mod:`.exact` evaluates."""
PARTS = ((0, 0), (1, 1), (0, 1), (1, 0))
"""(row, column) offset in each 2x2 block of the code's four parts, in coding order."""


@dataclass(frozen=True)
class PriorSizes:
    """Sizes of one entropy model."""

    channels: int
    """N: channels of the code."""
    hyper_channels: int
    """Channels of ``z``."""
    feature_channels: int
    """Channels of the hyperprior features each part network reads."""
    context_channels: int
    """Width of each part network."""
    learned_step: bool = True
    """Whether the part networks predict each value's quantization step (else 1)."""


class HyperAnalysis(nn.Module):
    """Code (N) -> ``z`` (hyper channels), a quarter of the size on each side."""

    def __init__(self, sizes: PriorSizes) -> None:
        super().__init__()
        self.first = nn.Conv2d(sizes.channels, sizes.hyper_channels, 3, stride=2, padding=1)
        self.second = nn.Conv2d(sizes.hyper_channels, sizes.hyper_channels, 3, stride=2, padding=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.second(F.leaky_relu(self.first(y), LEAK))


class HyperSynthesis(nn.Module):
    """``z`` -> features at four times its size (cropped to the code's size by the caller)."""

    def __init__(self, sizes: PriorSizes) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            nn.ConvTranspose2d(sizes.hyper_channels, sizes.hyper_channels, 2, stride=2),
            nn.ConvTranspose2d(sizes.hyper_channels, sizes.feature_channels, 2, stride=2),
            nn.Conv2d(sizes.feature_channels, sizes.feature_channels, 1),
        ])  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = F.leaky_relu(x, LEAK)
        return x


class PartNet(nn.Module):
    """Hyperprior features and the decoded parts so far (N, zero elsewhere) -> mean,
    log2 spread and, if learned, log2 step of every code value (2N or 3N)."""

    def __init__(self, sizes: PriorSizes, first: bool) -> None:
        super().__init__()
        n, m = sizes.channels, sizes.context_channels
        self.context = None if first else nn.Conv2d(n, m, 3, padding=1)
        self.hidden = nn.Conv2d(sizes.feature_channels + (0 if first else m), m, 1)
        self.out = nn.Conv2d(m, (3 if sizes.learned_step else 2) * n, 1)

    def forward(self, features: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
        x = features if self.context is None else torch.cat([features, self.context(decoded)], 1)
        return self.out(F.leaky_relu(self.hidden(x), LEAK))


def split_outputs(out: torch.Tensor, learned_step: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """A part network's output as mean, log2 step (``None`` when not learned) and log2 spread."""
    if learned_step:
        mean, log_delta, log_ratio = out.chunk(3, 1)
        return mean, log_delta, log_ratio
    mean, log_ratio = out.chunk(2, 1)
    return mean, None, log_ratio


class ContextPrior(nn.Module):
    """The entropy model's networks and the prior of ``z``. Subclasses (the codecs'
    models) add their transforms beside them; the state-dict names stay
    ``hyper_analysis.*``, ``hyper_synthesis.*``, ``parts.*``, ``z_loc`` and ``z_log_scale``."""

    def __init__(self, sizes: PriorSizes) -> None:
        super().__init__()
        self.sizes = sizes
        self.hyper_analysis = HyperAnalysis(sizes)
        self.hyper_synthesis = HyperSynthesis(sizes)
        self.parts = nn.ModuleList([PartNet(sizes, first=k == 0) for k in range(len(PARTS))])
        self.z_loc = nn.Parameter(torch.zeros(sizes.hyper_channels))
        self.z_log_scale = nn.Parameter(torch.zeros(sizes.hyper_channels))

    def code_values(self, y: torch.Tensor, rounding: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass of the entropy model on ``y`` (B, N, h, w): the decoded code
        and the bits of each sample (B,). What the decoder sees is always rounded
        (straight-through gradients); the bits are those of the rounded values when
        ``rounding``, else of the values with uniform noise added."""
        z_rate, z = (v.clamp(-Z_RANGE, Z_RANGE) for v in quantize(self.hyper_analysis(y), rounding))
        bits = laplace_bits(z_rate, self.z_loc[:, None, None], self.z_log_scale[:, None, None].exp()).sum((1, 2, 3))
        features = self.hyper_synthesis(z)[..., : y.shape[2], : y.shape[3]]
        decoded = torch.zeros_like(y)
        for k, net in enumerate(self.parts):
            mask = part_mask(k, y.shape[2], y.shape[3], y.device)
            mean, log_delta, log_ratio = split_outputs(net(features, decoded), self.sizes.learned_step)
            delta = 1.0 if log_delta is None else torch.exp2(bound(log_delta, *DELTA_LOG2_RANGE))
            ratio = torch.exp2(bound(log_ratio, *RATIO_LOG2_RANGE))
            u_rate, u = quantize((y - mean) / delta, rounding)
            bits = bits + (gaussian_bits(u_rate, ratio) * mask).sum((1, 2, 3))
            decoded = decoded + mask * (mean + delta * u)
        return decoded, bits


class _Bound(torch.autograd.Function):
    """Clamp whose gradient still flows where it points back into the range."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, low: float, high: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return x.clamp(low, high)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        # Gradient descent moves x by -grad: keep it unless that leads further out.
        stuck = ((x < ctx.low) & (grad > 0)) | ((x > ctx.high) & (grad < 0))
        return grad.masked_fill(stuck, 0.0), None, None


def bound(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``x`` clamped to [low, high] in the forward pass. A plain clamp has no gradient
    outside its range, so a spread or step pushed past a bound by one bad step stays
    there for good (a training run at a high learning rate froze its rate so); here
    the gradient still brings it back."""
    return _Bound.apply(x, low, high)


def quantize(x: torch.Tensor, rounding: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` quantized twice: for its rate (rounded when ``rounding``, else with
    uniform noise in [-0.5, 0.5), whose bits are smooth in ``x``) and for the decoder
    (rounded, with straight-through gradients: what the decoder will see)."""
    rounded = x + (torch.round(x) - x).detach()
    return (rounded if rounding else x + torch.rand_like(x) - 0.5), rounded


def part_mask(k: int, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(1, 1, h, w) float mask of the positions of part ``k``."""
    rows = (torch.arange(height, device=device) % 2 == PARTS[k][0])[:, None]
    cols = (torch.arange(width, device=device) % 2 == PARTS[k][1])[None, :]
    return (rows & cols).float()[None, None]


def gaussian_bits(u: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Bits of integers near ``u`` under a zero-mean Gaussian of std ``ratio``,
    discretized to unit bins."""
    upper = torch.special.ndtr((u + 0.5) / ratio)
    lower = torch.special.ndtr((u - 0.5) / ratio)
    return -torch.log2((upper - lower).clamp_min(1e-9))


def laplace_bits(z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Bits of integers near ``z`` under Laplace(loc, scale), discretized to unit bins."""

    def cdf(t: torch.Tensor) -> torch.Tensor:
        s = (t - loc) / scale
        return torch.where(s < 0, 0.5 * torch.exp(s.clamp(max=0)), 1 - 0.5 * torch.exp(-s.clamp(min=0)))

    return -torch.log2((cdf(z + 0.5) - cdf(z - 0.5)).clamp_min(1e-9))
