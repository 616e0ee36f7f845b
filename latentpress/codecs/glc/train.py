"""Training one GLC model on a collection's latents.

Each step draws random latent crops (mirrored at random unless the latent perceptual
distance judges them: ``hyperprior.training.Crops``) and a quality per crop, uniform in
[1, 4]; the loss is bits per image pixel plus lambda times the latent's distortion,
lambda interpolated (log-linearly) between the anchors' ``LAMBDAS``, so that one
model serves every quality and its scalers learn the interpolation. The distortion
is each channel's mean squared error over that channel's variance in the training
latents, summed over channels: a lambda then asks for the same signal-to-noise ratio
per channel of any VAE, whatever its scale or channel count (4 for TAESD, 16 for
TAESD3); given a ``sensitivity`` per channel (what its error costs in pixel LPIPS plus
DISTS, ``models.channel_sensitivity``), each channel's share is weighted by it. The
decoder always sees rounded values (straight-through gradients); the rate is that of
values with uniform noise added, then, for the last ``rounding`` share of steps, of
the rounded values. Adam with a cosine learning-rate decay.
With ``Training.latent_perceptual`` the distortion also counts the latent perceptual
distance (``models.latent_distance``) between the decoded and the original crops,
what LPIPS and DISTS would see of them at a tenth of the decoder's cost; then a
sixteenth of the photos (at least one, from four photos on) is held aside, and every
``CHECK_EVERY`` steps and at the end four crops of them are coded, decoded through
the VAE and measured in pixels beside the distance's prediction
(``models.proxy_check``, reported in ``TrainingStatus.check``), so that a model
learning to fool the proxy shows; with ``Training.distance_refresh``, where prediction
and measurement have drifted apart, the check refits the distance to the codec's own
measured outputs.
With ``Training.adversarial`` a discriminator on latents (``hyperprior.adversarial``)
learns from ``ADVERSARIAL_FROM`` of the steps on to tell the decoded crops from the
originals, and its verdict on the decoded crops, times that weight, joins the
distortion.
Afterwards the exact networks' weights go onto their grids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from latentpress.codecs.glc.model import GlcModel
from latentpress.codecs.glc.params import ANCHORS, LAMBDAS, Architecture, Training
from latentpress.codecs.hyperprior.adversarial import Adversary
from latentpress.codecs.hyperprior.exact import quantize_in_place
from latentpress.codecs.hyperprior.training import (
    Crops,
    cosine_learning_rate,
    hold_aside,
    latent_distance,
    latent_statistics,
)
from latentpress.models.proxy_check import CHECK_EVERY, HELD_CROPS, ProxyCheck

HELD_QUALITIES = torch.linspace(1, ANCHORS, HELD_CROPS)
"""Quality of each held-aside crop at a check."""
ADVERSARIAL_FROM = 0.25
"""Share of the steps after which the discriminator learns and judges (with
``Training.adversarial``): the decoder first learns to reproduce its latents."""


@dataclass(frozen=True)
class Phase:
    """A stretch of training: its steps and whether it rounds (else adds noise)."""

    name: str
    steps: int
    rounding: bool


@dataclass(frozen=True)
class TrainingStatus:
    """What training reports as it goes."""

    step: int
    steps: int
    """All steps of all stages."""
    loss: float
    bpp: float
    """Estimated bits per image pixel of this step's crops (rate-distortion stage)."""
    mse: float
    """The latent's mean squared error (the decoder stage: the pixels', in [-1, 1])."""
    stage: str = "rate-distortion"
    adversarial: float | None = None
    """The discriminator's loss at this step (with ``Training.adversarial``, once it learns)."""
    lpips: float | None = None
    """LPIPS of the decoded crops (perceptual stage)."""
    check: ProxyCheck | None = None
    """The held-aside crops measured in pixels, at a check step."""

    def summary(self) -> str:
        """The figures of this step, for a progress line."""
        if self.lpips is not None:
            domain = "pixel" if self.stage == "decoder" else "latent"
            return f"{self.stage}, LPIPS {self.lpips:.4f}, {domain} MSE {self.mse:.4f}"
        line = f"loss {self.loss:.4f}, about {self.bpp:.3f} bpp, latent MSE {self.mse:.4f}"
        if self.adversarial is not None:
            line += f", discriminator loss {self.adversarial:.3f}"
        if self.check is not None:
            line += f"; {self.check.summary()}"
        return line


def phases(training: Training) -> list[Phase]:
    """Noise, then rounding for the last ``training.rounding`` share of the steps."""
    rounding = min(training.steps, round(training.steps * training.rounding))
    return [Phase("noise", training.steps - rounding, False), Phase("rounding", rounding, True)]


def channel_weights(latents: list[np.ndarray], sensitivity: np.ndarray | None = None) -> torch.Tensor:
    """(C,) one over each channel's variance across ``latents``, times its ``sensitivity``
    if given."""
    weights = latent_statistics(latents)[1] ** -2
    return torch.from_numpy(weights * sensitivity if sensitivity is not None else weights).float()


def distortion(x_hat: torch.Tensor, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B,) the channels' mean squared errors of each sample, weighted and summed."""
    return (((x_hat - x) ** 2).mean((2, 3)) * weights).sum(1)


def lambdas(quality: torch.Tensor) -> torch.Tensor:
    """Lambda of each quality in [1, ANCHORS], log-linear between the anchors."""
    logs = torch.log(torch.tensor(LAMBDAS, dtype=torch.float32))
    position = (quality - 1).clamp(0, ANCHORS - 1)
    low = position.floor().clamp(max=ANCHORS - 2).long()
    return torch.lerp(logs[low], logs[low + 1], position - low).exp()


def train(
    latents: list[np.ndarray],
    arch: Architecture,
    training: Training,
    device: str = "cpu",
    progress: Callable[[TrainingStatus], None] | None = None,
    report_every: int = 50,
    total_steps: int | None = None,
    vae_name: str = "",
    sensitivity: np.ndarray | None = None,
) -> GlcModel:
    """A model trained on ``latents`` ((C, h, w) each) of the VAE ``vae_name``, its
    exact networks quantized; the distortion weighs each channel by its ``sensitivity``
    (C,) if given."""
    perceptual = latent_distance("glc", vae_name, device) if training.latent_perceptual else None
    held = None
    if perceptual is not None:
        latents, held = hold_aside(latents, training.crop, training.seed + 1, vae_name, device)
    torch.manual_seed(training.seed)
    model = GlcModel(arch).to(device).train()
    crops = Crops(latents, training.crop, training.seed, mirror=perceptual is None)  # judged in latent space alone
    weights = channel_weights(latents, sensitivity).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.learning_rate)
    adversary = Adversary(latents, device=device) if training.adversarial else None
    judged_from = round(training.steps * ADVERSARIAL_FROM)
    pixels = 64 * training.crop * training.crop
    step = 0
    for phase in phases(training):
        for _ in range(phase.steps):
            cosine_learning_rate(optimizer, training.learning_rate, step, training.steps)
            x = crops.batch(training.batch_size).to(device)
            quality = 1 + (ANCHORS - 1) * torch.rand(training.batch_size, device=device)
            x_hat, bits = model(x, quality, phase.rounding)
            bpp = bits / pixels
            damage = distortion(x_hat, x, weights)
            if perceptual is not None:
                damage = damage + training.latent_perceptual * perceptual(x_hat, x, "both")
            judged = adversary is not None and step >= judged_from
            if judged:
                damage = damage + training.adversarial * adversary.codec_loss(x_hat)
            loss = (bpp + lambdas(quality).to(device) * damage).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            verdict = adversary.update(x, x_hat) if judged else None
            step += 1
            check = None
            if held is not None and (step % CHECK_EVERY == 0 or step == training.steps):
                with torch.no_grad():
                    decoded, _ = model(held.crops, HELD_QUALITIES.to(device), True)
                check = held.check(step, decoded, perceptual, training.distance_refresh)
            if progress is not None and (step % report_every == 0 or step == training.steps or check is not None):
                progress(TrainingStatus(step, total_steps or training.steps, loss.item(), bpp.mean().item(),
                                        ((x_hat - x) ** 2).mean().item(), check=check,
                                        adversarial=verdict))  # fmt: skip
    quantize_in_place(model)
    return model.cpu().eval().requires_grad_(False)
