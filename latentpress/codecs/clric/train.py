"""Overfitting latent functions to VAE latents: noise, then rounding; candidates, then one.

All images given to :func:`fit` share one latent shape and train side by side as
the models of one :class:`~.model.LatentFunction` (each with its own lambda); the
loss is the sum of the models' losses, so each model's gradients are its own.
"""

from __future__ import annotations

import math

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
) -> LatentFunction:
    """Fit one latent function per latent ``(n, C, h, w)`` at ``lambdas`` ``(n,)``.

    With ``start`` (one model per latent), skip the warm-up and fine-tune it for
    ``iterations`` (default ``params.iterations``) instead.
    """
    target = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))
    n, channels, height, width = target.shape
    lam = torch.as_tensor(np.asarray(lambdas, dtype=np.float32))
    generator = torch.Generator().manual_seed(params.seed)
    if start is None:
        arch = Architecture(
            channels, height, width, params.grid_counts(channels), synthesis_width=params.synthesis_width
        )
        candidates = params.warmup[0][0] if params.warmup else 1
        model = LatentFunction(arch, n * candidates, generator)
        for keep, steps in params.warmup:
            model, candidates = _best(model, target, lam, candidates, keep), keep
            _train(
                model,
                target.repeat_interleave(keep, 0),
                lam.repeat_interleave(keep),
                steps,
                params.learning_rate,
                0,
                0,
                generator,
            )
        model = _best(model, target, lam, candidates, 1)
    else:
        model = select(start, torch.arange(start.models))
    main = params.iterations if iterations is None else iterations
    rounding = round(params.rounding * main / params.iterations)
    _train(model, target, lam, main, params.learning_rate, main, rounding, generator)
    return model


def _train(
    model: LatentFunction,
    target: torch.Tensor,
    lam: torch.Tensor,
    steps: int,
    lr: float,
    decay: int,
    rounding: int,
    generator: torch.Generator,
) -> None:
    """``steps`` Adam steps; cosine decay over them if ``decay``; rounding for the last ``rounding``."""
    if steps == 0:
        return
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    for step in range(steps):
        if decay:
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / decay))
        mode: Quantization = "ste" if step >= steps - rounding else "noise"
        loss_backward(model, target, lam, mode, generator)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def _best(model: LatentFunction, target: torch.Tensor, lam: torch.Tensor, candidates: int, keep: int) -> LatentFunction:
    """The ``keep`` models of least rounded loss among each image's ``candidates``."""
    if keep == candidates:
        return model
    n = target.shape[0]
    with torch.no_grad():
        loss = losses(model, target.repeat_interleave(candidates, 0), lam.repeat_interleave(candidates)).reshape(
            n, candidates
        )
    order = torch.argsort(loss, dim=1, stable=True)[:, :keep]
    return select(model, (order + candidates * torch.arange(n)[:, None]).ravel())
