"""Regenerating one latent from its index: seeded noise, then DDIM over the schedule."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDIMScheduler

from latentpress.codecs.laduree.model import Denoiser


def initial_noise(seed: int, index: int, shape: tuple[int, ...]) -> np.ndarray:
    """The starting noise of image ``index``: float32 N(0, 1), a function of (seed, index) only."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))
    return rng.standard_normal(shape, dtype=np.float32)


@torch.inference_mode()
def generate(net: Denoiser, scheduler: DDIMScheduler, seed: int, index: int, shape: tuple[int, int]) -> np.ndarray:
    """The (C, H, W) latent (denoiser space) of ``index`` at the padded ``shape``."""
    device = next(net.parameters()).device
    noise = initial_noise(seed, index, (1, net.arch.channels, *shape))
    x = torch.from_numpy(noise).to(device)
    label = torch.tensor([index], device=device)
    for t in scheduler.timesteps:
        x0 = net(x, t.reshape(1).to(device), label)
        x = scheduler.step(x0, t, x).prev_sample
    return x[0].float().cpu().numpy()
