"""The GLC networks, read top to bottom: transforms, hyperprior, four-part context,
quality scalers, and one training forward pass.

- ``Analysis`` maps a VAE latent ``x`` (C channels) to a code ``y`` (N channels)
  through depth-wise convolution blocks, optionally halving the resolution once;
  ``Synthesis`` maps the decoded code back to a latent for the frozen VAE decoder.
- ``y`` is scaled per channel by the quality scalers (``q_enc`` at four anchor
  qualities, interpolated) before quantization and unscaled (``q_dec``) after.
- ``HyperAnalysis`` summarises the scaled code as ``z`` (a quarter of its size on
  each side), coded under a learned per-channel Laplace prior; ``HyperSynthesis``
  turns ``z`` back into features at the code's resolution.
- ``y`` is coded in four parts (the four positions of each 2x2 block, in a fixed
  order). For each part a ``PartNet`` predicts, from the hyperprior features and the
  parts already decoded, the mean, the quantization step and the spread of every
  value of that part.

``HyperSynthesis`` and the ``PartNet``\\ s use only convolutions and a leaky ReLU of
slope 1/8, so that :mod:`.exact` can evaluate them in integer arithmetic: encoder and
decoder then derive bit-identical coding parameters on any thread count.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from latentpress.codecs.glc.params import ANCHORS, Architecture
from latentpress.codecs.glc.tables import DELTA_LOG2_RANGE, RATIO_LOG2_RANGE, Z_RANGE

LEAK = 0.125
"""Slope of the leaky ReLU of the networks that :mod:`.exact` evaluates."""
PARTS = ((0, 0), (1, 1), (0, 1), (1, 0))
"""(row, column) offset in each 2x2 block of the code's four parts, in coding order."""


class Block(nn.Module):
    """Depth-wise 5x5 convolution, then a point-wise MLP, with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 5, padding=2, groups=channels)
        self.expand = nn.Conv2d(channels, 2 * channels, 1)
        self.project = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(F.gelu(self.expand(self.depthwise(x))))


class Analysis(nn.Module):
    """VAE latent (C) -> code ``y`` (N), at 1/stride of the latent's resolution."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        n = arch.channels
        self.head = nn.Conv2d(arch.latent_channels, n, 3, padding=1)
        self.fine = nn.Sequential(*[Block(n) for _ in range(arch.blocks)])
        self.down = nn.Conv2d(n, n, 2, stride=2) if arch.stride == 2 else nn.Identity()
        self.coarse = nn.Sequential(*[Block(n) for _ in range(arch.blocks)])
        self.tail = nn.Conv2d(n, n, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.coarse(self.down(self.fine(self.head(x)))))


class Synthesis(nn.Module):
    """Decoded code (N) -> VAE latent (C)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        n = arch.channels
        self.head = nn.Conv2d(n, n, 1)
        self.coarse = nn.Sequential(*[Block(n) for _ in range(arch.blocks)])
        self.up = nn.ConvTranspose2d(n, n, 2, stride=2) if arch.stride == 2 else nn.Identity()
        self.fine = nn.Sequential(*[Block(n) for _ in range(arch.blocks)])
        self.tail = nn.Conv2d(n, arch.latent_channels, 3, padding=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.tail(self.fine(self.up(self.coarse(self.head(y)))))


class HyperAnalysis(nn.Module):
    """Scaled code (N) -> ``z`` (hyper channels), a quarter of the size on each side."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.first = nn.Conv2d(arch.channels, arch.hyper_channels, 3, stride=2, padding=1)
        self.second = nn.Conv2d(arch.hyper_channels, arch.hyper_channels, 3, stride=2, padding=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.second(F.leaky_relu(self.first(y), LEAK))


class HyperSynthesis(nn.Module):
    """``z`` -> features (2N) at four times its size (cropped to the code's size)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            nn.ConvTranspose2d(arch.hyper_channels, arch.hyper_channels, 2, stride=2),
            nn.ConvTranspose2d(arch.hyper_channels, 2 * arch.channels, 2, stride=2),
            nn.Conv2d(2 * arch.channels, 2 * arch.channels, 1),
        ])  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = F.leaky_relu(x, LEAK)
        return x


class PartNet(nn.Module):
    """Hyperprior features (2N) and the decoded parts so far (N, zero elsewhere) ->
    mean, log2 step and log2 spread of every code value (3N)."""

    def __init__(self, arch: Architecture, first: bool) -> None:
        super().__init__()
        n, m = arch.channels, arch.context_channels
        self.context = None if first else nn.Conv2d(n, m, 3, padding=1)
        self.hidden = nn.Conv2d(2 * n + (0 if first else m), m, 1)
        self.out = nn.Conv2d(m, 3 * n, 1)

    def forward(self, features: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
        x = features if self.context is None else torch.cat([features, self.context(decoded)], 1)
        return self.out(F.leaky_relu(self.hidden(x), LEAK))


class QualityScalers(nn.Module):
    """Per-channel scale of the code before quantization (``q_enc``) and after
    (``q_dec``) at ``ANCHORS`` qualities; ``q_enc`` grows with the anchor, so more
    quality means finer quantization."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.base = nn.Parameter(torch.zeros(channels))
        self.steps = nn.Parameter(torch.full((ANCHORS - 1, channels), math.log(math.expm1(math.log(2.0)))))
        self.decoder_offset = nn.Parameter(torch.zeros(ANCHORS, channels))

    def log_scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ANCHORS, N) log ``q_enc`` and log ``q_dec``."""
        log_enc = torch.cat([self.base[None], self.base[None] + torch.cumsum(F.softplus(self.steps), 0)])
        return log_enc, -log_enc + self.decoder_offset

    def at(self, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q_enc`` and ``q_dec`` (B, N, 1, 1) at qualities in [1, ANCHORS] (B,),
        interpolated between anchors in the log domain."""
        log_enc, log_dec = self.log_scales()
        position = (quality - 1).clamp(0, ANCHORS - 1)
        low = position.floor().clamp(max=ANCHORS - 2).long()
        frac = (position - low)[:, None]
        enc = torch.lerp(log_enc[low], log_enc[low + 1], frac).exp()
        dec = torch.lerp(log_dec[low], log_dec[low + 1], frac).exp()
        return enc[..., None, None], dec[..., None, None]


class GlcModel(nn.Module):
    """All networks of one GLC model, and the prior of ``z``."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.analysis = Analysis(arch)
        self.synthesis = Synthesis(arch)
        self.hyper_analysis = HyperAnalysis(arch)
        self.hyper_synthesis = HyperSynthesis(arch)
        self.parts = nn.ModuleList([PartNet(arch, first=k == 0) for k in range(len(PARTS))])
        self.scalers = QualityScalers(arch.channels)
        self.z_loc = nn.Parameter(torch.zeros(arch.hyper_channels))
        self.z_log_scale = nn.Parameter(torch.zeros(arch.hyper_channels))

    def forward(self, x: torch.Tensor, quality: torch.Tensor, rounding: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass on latents ``x`` (B, C, h, w) at ``quality`` (B,): the
        reconstructed latents and the bits of each sample (B,). ``rounding``: round
        with straight-through gradients, else add uniform noise."""
        decoded, bits = self.code(x, quality, rounding)
        return self.synthesis(decoded), bits

    def code(self, x: torch.Tensor, quality: torch.Tensor, rounding: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoded code (unscaled by ``q_dec``, ready for the synthesis) and the bits
        of each sample (see ``forward``)."""
        q_enc, q_dec = self.scalers.at(quality)
        y = self.analysis(x) * q_enc
        z = quantize(self.hyper_analysis(y), rounding).clamp(-Z_RANGE, Z_RANGE)
        bits = laplace_bits(z, self.z_loc[:, None, None], self.z_log_scale[:, None, None].exp()).sum((1, 2, 3))
        features = self.hyper_synthesis(z)[..., : y.shape[2], : y.shape[3]]
        decoded = torch.zeros_like(y)
        for k, net in enumerate(self.parts):
            mask = part_mask(k, y.shape[2], y.shape[3], y.device)
            mean, log_delta, log_ratio = net(features, decoded).chunk(3, 1)
            delta = torch.exp2(log_delta.clamp(*DELTA_LOG2_RANGE))
            ratio = torch.exp2(log_ratio.clamp(*RATIO_LOG2_RANGE))
            u = quantize((y - mean) / delta, rounding)
            bits = bits + (gaussian_bits(u, ratio) * mask).sum((1, 2, 3))
            decoded = decoded + mask * (mean + delta * u)
        return decoded * q_dec, bits


def quantize(x: torch.Tensor, rounding: bool) -> torch.Tensor:
    """``x`` rounded (straight-through gradient) or with uniform noise in [-0.5, 0.5)."""
    if rounding:
        return x + (torch.round(x) - x).detach()
    return x + torch.rand_like(x) - 0.5


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
