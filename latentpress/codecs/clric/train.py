"""Overfitting latent functions to VAE latents: noise, then rounding; candidates, then one.

All images given to :func:`fit` share one latent shape and train side by side as
the models of one :class:`~.model.LatentFunction` (each with its own lambda); the
loss is the sum of the models' losses, so each model's gradients are its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from latentpress.codecs.clric.loss import loss_backward, losses
from latentpress.codecs.clric.model import Architecture, LatentFunction, Quantization, select
from latentpress.codecs.clric.params import ClricParams
from latentpress.codecs.clric.threads import single_thread


@single_thread
def fit(
    latents: np.ndarray,
    lambdas: np.ndarray,
    params: ClricParams,
    start: LatentFunction | None = None,
    iterations: int | None = None,
    weights: np.ndarray | None = None,
) -> LatentFunction:
    """Fit one latent function per latent ``(n, C, h, w)`` at ``lambdas`` ``(n,)``.

    With ``start`` (one model per latent), skip the warm-up and fine-tune it for
    ``iterations`` (default ``params.iterations``) instead. ``weights`` ``(n, C, h, w)``:
    each latent's perceptual weight map on its error (None: plain MSE).
    """
    target = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))
    n, channels, height, width = target.shape
    lam = torch.as_tensor(np.asarray(lambdas, dtype=np.float32))
    weight = None if weights is None else torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32))
    goal = Goal(target, lam, weight)
    generator = torch.Generator().manual_seed(params.seed)
    if start is None:
        arch = Architecture(
            channels, height, width, params.grid_counts(channels), synthesis_width=params.synthesis_width
        )
        candidates = params.warmup[0][0] if params.warmup else 1
        model = LatentFunction(arch, n * candidates, generator)
        for keep, steps in params.warmup:
            model, candidates = _best(model, goal, candidates, keep), keep
            _train(model, goal.repeated(keep), steps, Schedule(params.learning_rate), generator)
        model = _best(model, goal, candidates, 1)
    else:
        model = select(start, torch.arange(start.models))
    main = params.iterations if iterations is None else iterations
    rounding = round(params.rounding * main / params.iterations)
    _train(model, goal, main, Schedule(params.learning_rate, main, rounding), generator)
    return model


@dataclass(frozen=True)
class Goal:
    """What the models fit: latents ``(M, C, h, w)``, their lambdas ``(M,)`` and weight
    maps (None: plain MSE)."""

    target: torch.Tensor
    lam: torch.Tensor
    weights: torch.Tensor | None = None

    def repeated(self, times: int) -> Goal:
        """Each latent's goal ``times`` over (for its candidates)."""
        weights = None if self.weights is None else self.weights.repeat_interleave(times, 0)
        return Goal(self.target.repeat_interleave(times, 0), self.lam.repeat_interleave(times), weights)


@dataclass(frozen=True)
class Schedule:
    """Adam's learning rate, a cosine decay over ``decay`` steps (0: none), and the
    last ``rounding`` steps with true rounding."""

    lr: float
    decay: int = 0
    rounding: int = 0


def _train(model: LatentFunction, goal: Goal, steps: int, schedule: Schedule, generator: torch.Generator) -> None:
    """``steps`` Adam steps toward ``goal`` on ``schedule``."""
    if steps == 0:
        return
    lr = schedule.lr
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    for step in range(steps):
        if schedule.decay:
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / schedule.decay))
        mode: Quantization = "ste" if step >= steps - schedule.rounding else "noise"
        loss_backward(model, goal.target, goal.lam, mode, generator, goal.weights)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def _best(model: LatentFunction, goal: Goal, candidates: int, keep: int) -> LatentFunction:
    """The ``keep`` models of least rounded loss among each image's ``candidates``."""
    if keep == candidates:
        return model
    n = goal.target.shape[0]
    every = goal.repeated(candidates)
    with torch.no_grad():
        loss = losses(model, every.target, every.lam, weights=every.weights).reshape(n, candidates)
    order = torch.argsort(loss, dim=1, stable=True)[:, :keep]
    return select(model, (order + candidates * torch.arange(n)[:, None]).ravel())
