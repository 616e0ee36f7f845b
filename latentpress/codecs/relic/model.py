"""The relic networks, read top to bottom: the denoiser, the parameter network, and
one training pass of the whole codec.

- Latents are normalised per channel by the training set's mean and standard
  deviation (stored with the model): the diffusion schedule assumes unit variance.
- ``Denoiser``: a small diffusers ``UNet2DModel`` predicting the noise of ``x_t`` at a
  continuous time ``t`` (:mod:`.schedule`).
- ``ParameterNet`` P(y, quality): stride-2 convolutions, SiLU between them, one output
  per parameter mean-pooled to a scalar each: a log2 scale and a shift per channel
  and the time ``t`` (a sigmoid). The quality enters as an extra input channel, and
  the log2 scales start from the high-rate optimum: each quality step quadruples
  lambda, which halves the best quantization step (adds 1 to the log2 scale).
- ``RelicModel``: the code ``w = (y - shift) * 2**log_scale`` goes through the
  hyperprior entropy model (shared with ``glc``) with a unit quantization step, so the decoded latent ``y_hat =
  w_hat * 2**-log_scale + shift`` is ``y`` plus quantization noise; read as the noisy
  sample ``sqrt(alpha_bar(t)) * y_hat`` of the diffusion at ``t``, the denoiser takes
  it back towards a clean latent.
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from torch import nn

from latentpress.codecs.hyperprior.prior import ContextPrior, PriorSizes
from latentpress.codecs.relic import schedule
from latentpress.codecs.relic.params import LAMBDA_STEP, QUALITY_RANGE, Architecture

UNET_MULTIPLE = 4
"""The denoiser halves the resolution twice: inputs are padded to multiples of this."""


class Denoiser(nn.Module):
    """Noise prediction for normalised latents at continuous times ``t`` in [0, 1]."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.unet = UNet2DModel(
            sample_size=32, in_channels=arch.latent_channels, out_channels=arch.latent_channels,
            layers_per_block=1, block_out_channels=arch.unet_channels, norm_num_groups=8,
            down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        )  # fmt: skip

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise of ``x_t`` (B, C, H, W) at times ``t`` (B,)."""
        h, w = x_t.shape[2:]
        ph, pw = -h % UNET_MULTIPLE, -w % UNET_MULTIPLE
        padded = F.pad(x_t, (0, pw, 0, ph), mode="replicate") if ph or pw else x_t
        eps = self.unet(padded, t * schedule.TIMESTEP_SCALE).sample
        return eps[..., :h, :w]

    def x0(self, y_hat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One step: the clean latent predicted from ``y_hat`` read as the sample at ``t``."""
        x_t = schedule.alpha_bar(t).sqrt().reshape(-1, 1, 1, 1) * y_hat
        return schedule.predict_x0(x_t, self(x_t, t), t)


class ParameterNet(nn.Module):
    """P(y, quality) -> per-channel log2 scale and shift, and the time t."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        c = arch.latent_channels
        widths = (c + 1, *arch.parameter_channels)
        self.levels = nn.ModuleList([nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in pairwise(widths)])
        self.out = nn.Conv2d(widths[-1], 2 * c + 1, 1)
        with torch.no_grad():
            self.out.bias[:c] = 1.0  # quality 1 starts at a step of half a standard deviation
            self.out.bias[-1] = -2.0  # and a small t

    def trunk(self, y: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """(B, F, h', w') features of normalised latents ``y`` at ``quality`` (B,), before
        the last layer."""
        knob = (quality - sum(QUALITY_RANGE) / 2) / ((QUALITY_RANGE[1] - QUALITY_RANGE[0]) / 2)
        x = torch.cat([y, knob.reshape(-1, 1, 1, 1).expand(-1, 1, *y.shape[2:])], 1)
        for level in self.levels:
            x = F.silu(level(x))
        return x

    def features(self, y: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """(B, F) the trunk's features mean-pooled: each output is the last layer (a 1x1
        convolution, linear) of these."""
        return self.trunk(y, quality).mean((2, 3))

    def forward(self, y: torch.Tensor, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C) log2 scales, (B, C) shifts and (B,) times of normalised latents ``y``."""
        out = self.out(self.trunk(y, quality)).mean((2, 3))
        c = y.shape[1]
        base = 0.5 * math.log2(LAMBDA_STEP) * (quality - QUALITY_RANGE[0])
        return out[:, :c] + base[:, None], out[:, c : 2 * c], torch.sigmoid(out[:, -1]) * schedule.T_MAX


def prior_sizes(arch: Architecture) -> PriorSizes:
    """The entropy model of the code: C channels, a unit quantization step."""
    return PriorSizes(arch.latent_channels, arch.hyper_channels, arch.feature_channels, arch.context_channels,
                      learned_step=False)  # fmt: skip


class RelicModel(ContextPrior):
    """All networks of one relic model, and the latent statistics it normalises by."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__(prior_sizes(arch))
        self.arch = arch
        self.denoiser = Denoiser(arch)
        self.parameter_net = ParameterNet(arch)
        self.register_buffer("latent_mean", torch.zeros(arch.latent_channels))
        self.register_buffer("latent_std", torch.ones(arch.latent_channels))

    def normalise(self, latent: torch.Tensor) -> torch.Tensor:
        return (latent - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def denormalise(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.latent_std[:, None, None] + self.latent_mean[:, None, None]

    def forward(
        self, y: torch.Tensor, quality: torch.Tensor, rounding: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass on normalised latents ``y`` (B, C, h, w) at ``quality`` (B,): the
        one-step clean prediction, the bits of each sample (B,) and the times (B,)."""
        log_scale, shift, t = self.parameter_net(y, quality)
        scale = torch.exp2(log_scale)[..., None, None]
        decoded, bits = self.code_values((y - shift[..., None, None]) * scale, rounding)
        y_hat = decoded / scale + shift[..., None, None]
        return self.denoiser.x0(y_hat, t), bits, t
