"""The GLC networks, read top to bottom: transforms, quality scalers, and one
training forward pass; the entropy model (hyperprior and four-part context) is
:mod:`.prior`'s.

- ``Analysis`` maps a VAE latent ``x`` (C channels) to a code ``y`` (N channels)
  through depth-wise convolution blocks, optionally halving the resolution once;
  ``Synthesis`` maps the decoded code back to a latent for the frozen VAE decoder.
  With ``identity`` both are residuals around a fixed rearrangement (space to depth
  into the code's first C*stride^2 channels, depth to space back) and start at it: a
  learned transform alone has a floor (TAESD3's 16 channels at stride 2 fill all 64
  code channels, and one trained model lost detail even unquantized: latent MSE
  0.025 on kodim05 where plain rounding at 0.54 bpp has 0.021), the rearrangement
  has none.
- ``y`` is scaled per channel by the quality scalers (``q_enc`` at four anchor
  qualities, interpolated) before quantization and unscaled (``q_dec``) after.
- The scaled code is coded by the entropy model, with a learned quantization step
  per value.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from latentpress.codecs.glc.params import ANCHORS, Architecture
from latentpress.codecs.hyperprior.prior import ContextPrior, PriorSizes


class Block(nn.Module):
    """Depth-wise 5x5 convolution, then a point-wise MLP, with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 5, padding=2, groups=channels)
        self.expand = nn.Conv2d(channels, 2 * channels, 1)
        self.project = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(F.gelu(self.expand(self.depthwise(x))))


def _start_at_identity(tail: nn.Conv2d, arch: Architecture) -> int:
    """Code channels the rearranged latent takes (0 without ``identity``); with it,
    ``tail`` starts at zero, so that the transform starts at the rearrangement."""
    if not arch.identity:
        return 0
    nn.init.zeros_(tail.weight)
    nn.init.zeros_(tail.bias)
    return arch.rearranged_channels


class Analysis(nn.Module):
    """VAE latent (C) -> code ``y`` (N), at 1/stride of the latent's resolution."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        n = arch.channels
        self.stride = arch.stride
        self.head = nn.Conv2d(arch.latent_channels, n, 3, padding=1)
        self.fine = nn.Sequential(*[Block(n) for _ in range(arch.blocks)])
        self.down = nn.Conv2d(n, n, 2, stride=2) if arch.stride == 2 else nn.Identity()
        self.coarse = nn.Sequential(*[Block(n) for _ in range(arch.blocks)])
        self.tail = nn.Conv2d(n, n, 1)
        self.moved = _start_at_identity(self.tail, arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tail(self.coarse(self.down(self.fine(self.head(x)))))
        if not self.moved:
            return y
        return y + F.pad(F.pixel_unshuffle(x, self.stride), (0, 0, 0, 0, 0, y.shape[1] - self.moved))


class Synthesis(nn.Module):
    """Decoded code (N) -> VAE latent (C)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        n = arch.channels
        self.head = nn.Conv2d(n, n, 1)
        self.coarse = nn.Sequential(*[Block(n) for _ in range(arch.blocks)])
        self.up = nn.ConvTranspose2d(n, n, 2, stride=2) if arch.stride == 2 else nn.Identity()
        self.fine = nn.Sequential(*[Block(n) for _ in range(arch.blocks)])
        self.stride = arch.stride
        self.tail = nn.Conv2d(n, arch.latent_channels, 3, padding=1)
        self.moved = _start_at_identity(self.tail, arch)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = self.tail(self.fine(self.up(self.coarse(self.head(y)))))
        return x + F.pixel_shuffle(y[:, : self.moved], self.stride) if self.moved else x


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


def prior_sizes(arch: Architecture) -> PriorSizes:
    """The entropy model of a GLC architecture (features 2N wide, learned steps)."""
    return PriorSizes(arch.channels, arch.hyper_channels, 2 * arch.channels, arch.context_channels)


class GlcModel(ContextPrior):
    """All networks of one GLC model: the entropy model's and the transforms."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__(prior_sizes(arch))
        self.arch = arch
        self.analysis = Analysis(arch)
        self.synthesis = Synthesis(arch)
        self.scalers = QualityScalers(arch.channels)

    def forward(self, x: torch.Tensor, quality: torch.Tensor, rounding: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass on latents ``x`` (B, C, h, w) at ``quality`` (B,): the
        reconstructed latents and the bits of each sample (B,) (``rounding``: see
        ``ContextPrior.code_values``)."""
        decoded, bits = self.code(x, quality, rounding)
        return self.synthesis(decoded), bits

    def code(self, x: torch.Tensor, quality: torch.Tensor, rounding: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoded code (unscaled by ``q_dec``, ready for the synthesis) and the bits
        of each sample (see ``forward``)."""
        q_enc, q_dec = self.scalers.at(quality)
        decoded, bits = self.code_values(self.analysis(x) * q_enc, rounding)
        return decoded * q_dec, bits
