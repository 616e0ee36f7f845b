"""Training one denoiser on one set of latents (x0 prediction, MSE, Adam, step decay).

Every step draws one batch of same-shape latents, a uniform timestep per latent and
Gaussian noise, noises the latents with the schedule and regresses the clean latents.
The learning rate halves at each fifth of training (Unicorn: 50 epochs, halving
every 10). An epoch is one pass over the set in batches; ``min_steps`` keeps tiny
sets, where an epoch is a step or two, from being under-trained.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from latentpress.codecs.laduree.model import Denoiser
from latentpress.codecs.laduree.params import Architecture, Schedule, Training
from latentpress.codecs.laduree.schedule import make_scheduler

log = logging.getLogger(__name__)


def train(
    latents: list[np.ndarray],
    arch: Architecture,
    schedule: Schedule,
    training: Training,
    seed: int,
    device: str,
) -> Denoiser:
    """A denoiser fitted to ``latents`` (rescaled, padded to whole patches), index = position."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Denoiser(arch, seed)
    net.to(device).train()
    groups = _groups(latents, device)
    per_epoch = sum(math.ceil(len(idx) / training.batch_size) for _, idx in groups)
    steps = training.steps(per_epoch)
    optimizer = torch.optim.Adam(net.parameters(), lr=training.learning_rate)
    decay = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, steps // 5), gamma=0.5)
    scheduler = make_scheduler(schedule)
    generator = torch.Generator(device).manual_seed(seed)
    batches = _batches(groups, training.batch_size, np.random.default_rng(seed))
    for step in range(steps):
        x0, index = next(batches)
        t = torch.randint(0, schedule.train_timesteps, (len(index),), device=device, generator=generator)
        noise = torch.randn(x0.shape, device=device, generator=generator)
        loss = F.mse_loss(net(scheduler.add_noise(x0, noise, t), t, index), x0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        decay.step()
        if step % 100 == 0 or step == steps - 1:
            log.info("laduree step %d/%d loss %.5f", step + 1, steps, loss.item())
    return net.eval()


def _groups(latents: list[np.ndarray], device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Latents stacked by shape, with their indices, on ``device``."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, z in enumerate(latents):
        by_shape.setdefault(z.shape, []).append(i)
    return [
        (torch.from_numpy(np.stack([latents[i] for i in idx])).to(device), torch.tensor(idx, device=device))
        for idx in by_shape.values()
    ]


def _batches(
    groups: list[tuple[torch.Tensor, torch.Tensor]], size: int, rng: np.random.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless epochs: each group shuffled and cut into batches, batches in random order."""
    while True:
        epoch = []
        for g, (_, idx) in enumerate(groups):
            order = rng.permutation(len(idx))
            epoch += [(g, order[i : i + size]) for i in range(0, len(order), size)]
        for k in rng.permutation(len(epoch)):
            g, rows = epoch[k]
            rows = torch.from_numpy(rows).to(groups[g][0].device)
            yield groups[g][0][rows], groups[g][1][rows]
