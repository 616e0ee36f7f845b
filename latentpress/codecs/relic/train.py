"""Training one relic model on a collection's latents, in two stages.

1. The denoiser: noise prediction on random normalised latent crops at times
   ``T_MAX * u**2``, ``u`` uniform (the cosine schedule of :mod:`.schedule`): every
   time is seen, the small ones most, since the codec starts denoising from the
   level of its quantization noise, rarely beyond t = 0.4.
2. The codec, with the denoiser frozen: the parameter network and the entropy model
   learn bpp + lambda * distortion, lambda drawn per crop from the quality range
   (:func:`.params.lambda_of`). The distortion is the squared error of the denoiser's
   one-step clean prediction at the predicted t, summed over the (unit-variance)
   channels: the supplement's single x0 step in place of the whole chain, so
   gradients reach t through the continuous schedule. With
   ``Training.latent_perceptual`` the distortion also counts the latent perceptual
   distance between that prediction and the crop (both back in the VAE's scale):
   what LPIPS and DISTS see, which the squared error, favouring a blurred mean and so
   too large a t, does not; then a sixteenth of the photos is held out of this stage
   and checked in pixels every ``CHECK_EVERY`` steps (``models.proxy_check``, as glc does),
   and with ``Training.distance_refresh`` a distance drifted from the measured values
   is refitted to them. The rate is that of noisy values, then of rounded ones for
   the last ``rounding`` share of steps.

Adam with a cosine learning-rate decay in both; afterwards the exact networks'
weights go onto their grids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from latentpress.codecs.hyperprior.exact import quantize_in_place
from latentpress.codecs.hyperprior.training import (
    Crops,
    cosine_learning_rate,
    hold_aside,
    latent_distance,
    latent_statistics,
)
from latentpress.codecs.relic import schedule
from latentpress.codecs.relic.model import RelicModel
from latentpress.codecs.relic.params import QUALITY_RANGE, Architecture, Training, lambda_of
from latentpress.models.proxy_check import CHECK_EVERY, HELD_CROPS, ProxyCheck

HELD_QUALITIES = torch.linspace(*QUALITY_RANGE, HELD_CROPS)
"""Quality of each held-aside crop at a check."""


@dataclass(frozen=True)
class TrainingStatus:
    """What training reports as it goes."""

    step: int
    steps: int
    """All steps of both stages."""
    stage: str
    """``denoiser``, ``codec``, ``time`` (the time fit: ``step`` of ``steps`` photos
    measured, :mod:`.time_fit`) or ``decoder`` (the VAE decoder's tuning: ``step`` of
    ``steps`` of it, ``loss`` its pixel LPIPS)."""
    loss: float
    bpp: float = float("nan")
    """Estimated bits per image pixel of this step's crops (codec stage)."""
    t: float = float("nan")
    """Mean predicted time of this step's crops (codec stage)."""
    check: ProxyCheck | None = None
    """The held-aside crops measured in pixels, at a check step (codec stage)."""

    def summary(self) -> str:
        """The figures of this step, for a progress line."""
        if self.stage == "time":
            return "time fit, photos decoded and measured"
        if self.stage == "decoder":
            return f"VAE decoder tuning, pixel LPIPS {self.loss:.4f}"
        if self.stage == "denoiser":
            return f"denoiser, noise MSE {self.loss:.4f}"
        line = f"codec, loss {self.loss:.4f}, about {self.bpp:.3f} bpp, mean t {self.t:.3f}"
        return line if self.check is None else f"{line}; {self.check.summary()}"


def train(
    latents: list[np.ndarray],
    arch: Architecture,
    training: Training,
    device: str = "cpu",
    progress: Callable[[TrainingStatus], None] | None = None,
    report_every: int = 50,
    vae_name: str = "",
) -> RelicModel:
    """A model trained on ``latents`` ((C, h, w) each) of the VAE ``vae_name``, its
    exact networks quantized."""
    perceptual = latent_distance("relic", vae_name, device) if training.latent_perceptual else None
    torch.manual_seed(training.seed)
    model = RelicModel(arch)
    mean, std = latent_statistics(latents)
    model.latent_mean.copy_(torch.from_numpy(mean).float())
    model.latent_std.copy_(torch.from_numpy(std).float())
    model = model.to(device).train()
    normalised = [((np.asarray(z, np.float64) - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
                  for z in latents]  # fmt: skip
    crops = Crops(normalised, training.crop, training.seed, mirror=True)  # judged in latent space alone
    total = training.denoiser_steps + training.coder_steps

    def report(step: int, stage: str, loss: torch.Tensor, check: ProxyCheck | None = None, **extra: float) -> None:
        if progress is not None and (
            step % report_every == 0 or step in (training.denoiser_steps, total) or check is not None
        ):
            progress(TrainingStatus(step, total, stage, loss.item(), check=check, **extra))

    denoiser = model.denoiser
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=training.denoiser_learning_rate)
    for step in range(training.denoiser_steps):
        cosine_learning_rate(optimizer, training.denoiser_learning_rate, step, training.denoiser_steps)
        x0 = crops.batch(training.batch_size).to(device)
        t = torch.rand(training.batch_size, device=device) ** 2 * schedule.T_MAX
        noise = torch.randn_like(x0)
        loss = ((denoiser(schedule.add_noise(x0, noise, t), t) - noise) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        report(step + 1, "denoiser", loss)
    denoiser.requires_grad_(False).eval()

    held = None
    if perceptual is not None:  # photos the codec stage never sees, checked in pixels
        kept, held = hold_aside(latents, training.crop, training.seed + 1, vae_name, device)
        crops = Crops(normalised[: len(kept)], training.crop, training.seed)
    coder = [p for name, p in model.named_parameters() if not name.startswith("denoiser.")]
    optimizer = torch.optim.Adam(coder, lr=training.learning_rate)
    pixels = 64 * training.crop * training.crop
    scale, shift = model.latent_std[None, :, None, None], model.latent_mean[None, :, None, None]
    rounding_from = training.coder_steps - round(training.coder_steps * training.rounding)
    for step in range(training.coder_steps):
        cosine_learning_rate(optimizer, training.learning_rate, step, training.coder_steps)
        y = crops.batch(training.batch_size).to(device)
        quality = QUALITY_RANGE[0] + (QUALITY_RANGE[1] - QUALITY_RANGE[0]) * torch.rand(
            training.batch_size, device=device
        )
        x0, bits, t = model(y, quality, rounding=step >= rounding_from)
        bpp = bits / pixels
        damage = ((x0 - y) ** 2).mean((2, 3)).sum(1)
        if perceptual is not None:
            damage = damage + training.latent_perceptual * perceptual(x0 * scale + shift, y * scale + shift, "both")
        loss = (bpp + lambda_of(quality) * damage).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(coder, 5.0)
        optimizer.step()
        check = None
        if held is not None and ((step + 1) % CHECK_EVERY == 0 or step + 1 == training.coder_steps):
            with torch.no_grad():
                held_x0, _, _ = model((held.crops - shift) / scale, HELD_QUALITIES.to(device), rounding=True)
            check = held.check(step + 1, held_x0 * scale + shift, perceptual, training.distance_refresh)
        report(training.denoiser_steps + step + 1, "codec", loss, check, bpp=bpp.mean().item(), t=t.mean().item())
    quantize_in_place(model)
    return model.cpu().eval().requires_grad_(False)
