"""A short last stage of training that makes decoded images look right.

The code is fixed (rounded, as the coder will have it) and only the synthesis learns:
its latents go through the frozen VAE decoder, and the loss is the latent's mean
squared error plus ``weight`` times LPIPS between that image and the VAE's decoding
of the original latent. The rate does not change; what the synthesis draws from the
same bits does. A forward and backward pass through the TAESD decoder costs about
9 s of CPU for 8 crops of 256 pixels, so this stage works on 128-pixel crops and
runs a few hundred steps at most.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from latentpress.codecs.base import CodecError
from latentpress.codecs.glc.model import GlcModel
from latentpress.codecs.glc.params import ANCHORS


@dataclass(frozen=True)
class PerceptualStage:
    """How the perceptual stage trains."""

    steps: int
    crop: int = 16
    """Latent crop side (16: 128 image pixels)."""
    batch_size: int = 8
    learning_rate: float = 1e-4
    weight: float = 1.0
    """Weight of LPIPS against the latent MSE."""
    seed: int = 1


def finetune(
    model: GlcModel,
    latents: list[np.ndarray],
    vae_name: str,
    stage: PerceptualStage,
    device: str = "cpu",
    progress: Callable[[int, float, float], None] | None = None,
) -> None:
    """Train ``model``'s synthesis in place for ``stage.steps`` steps; ``progress(step,
    lpips, mse)`` now and then."""
    from latentpress.codecs.hyperprior.training import Crops
    from latentpress.models.metrics import lpips_network
    from latentpress.models.vae import load_vae

    try:
        vae = load_vae(vae_name, device).vae
    except (OSError, ValueError) as exc:
        raise CodecError(f"glc's perceptual stage needs the VAE {vae_name!r}: {exc}") from None
    lpips = lpips_network(device)
    crops = Crops(latents, stage.crop, stage.seed)
    torch.manual_seed(stage.seed)
    model.synthesis.requires_grad_(True)
    optimizer = torch.optim.Adam(model.synthesis.parameters(), lr=stage.learning_rate)
    model.train()
    for step in range(1, stage.steps + 1):
        x = crops.batch(stage.batch_size).to(device)
        quality = 1 + (ANCHORS - 1) * torch.rand(stage.batch_size, device=device)
        with torch.no_grad():
            decoded, _ = model.code(x, quality, rounding=True)
            reference = vae.decode(x).sample.clamp(-1, 1)
        x_hat = model.synthesis(decoded)
        image = vae.decode(x_hat).sample.clamp(-1, 1)
        distance = lpips(image, reference).mean()
        mse = ((x_hat - x) ** 2).mean()
        loss = mse + stage.weight * distance
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None and (step % 10 == 0 or step == stage.steps):
            progress(step, distance.item(), mse.item())
    model.eval().requires_grad_(False)
