"""The training loss ``D + lambda * R``, and one step's gradients computed piece by piece.

The loss is a sum over positions: the entropy model's bits over grid values, the
synthesis error over latent rows. Computing it over the whole latent at once makes
every intermediate tensor as large as the latent, and past a few megapixels these
no longer fit the CPU's cache, so each step costs more per pixel the larger the photo.
Here the entropy model runs over chunks of grid values and the synthesis over bands
of latent rows (with the rows of context its 3x3 layers need); the gradients of the
chunks are gathered and sent back once through the quantization and the upsampling.
The gradients are the whole-latent ones up to float rounding.
"""

from __future__ import annotations

import torch

from latentpress.codecs.clric.grid import CONTEXT
from latentpress.codecs.clric.model import (
    IMAGE_PIXELS_PER_LATENT,
    LatentFunction,
    Quantization,
    Synthesis,
    laplace_bits,
)

CHUNK_VALUES = 131_072
"""Grid values or latent positions per piece, over all models (a few MB of tensors);
a latent that fits in one piece is computed whole."""


def losses(
    model: LatentFunction,
    target: torch.Tensor,
    lam: torch.Tensor,
    mode: Quantization = "round",
    generator: torch.Generator | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-model ``D + lambda * R`` (latent MSE, weighted by ``weights`` where given;
    bits per image pixel), in one graph."""
    latent, bits = model(mode, generator)
    return distortion(latent, target, weights) + _rate_weight(lam, target) * bits


def distortion(latent: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Per-model mean squared error (M,), each position's weighted by ``weights`` (a
    perceptual weight map of mean 1, ``.perception``) where given."""
    error = (latent - target).square()
    return (error if weights is None else error * weights).mean((1, 2, 3))


def loss_backward(
    model: LatentFunction,
    target: torch.Tensor,
    lam: torch.Tensor,
    mode: Quantization,
    generator: torch.Generator | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Accumulate the gradients of the summed losses into ``model``; per-model loss (M,)."""
    models, _, height, width = target.shape
    chunk = max(CHUNK_VALUES // models, 1)
    if model.grids.shape[1] <= chunk and height * width <= chunk:
        loss = losses(model, target, lam, mode, generator, weights)
        loss.sum().backward()
        return loss.detach()
    values = model.quantize(mode, generator)
    features = model.features(values)
    rate = _rate_weight(lam, target)
    bits, grad_values = _bits_backward(model, values.detach(), rate, chunk)
    error, grad_features = _synthesis_backward(model, features.detach(), target, max(chunk // width, 1), weights)
    torch.autograd.backward([features, values], [grad_features, grad_values])
    return error + bits


def _rate_weight(lam: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lambda per bit of the grids: ``lambda`` over the image's pixels."""
    return lam / (IMAGE_PIXELS_PER_LATENT * target.shape[2] * target.shape[3])


def _bits_backward(
    model: LatentFunction, values: torch.Tensor, rate: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bits weighted by ``rate`` (M,) and their gradient with respect to ``values`` (M, N)."""
    models, count = values.shape
    padded = torch.cat([values, values.new_zeros(models, 1)], 1)
    index = model.context.view(CONTEXT, count)
    grad = torch.zeros_like(padded)
    total = values.new_zeros(models)
    for start in range(0, count, chunk):
        stop = min(start + chunk, count)
        positions = index[:, start:stop].reshape(-1)
        context = padded.index_select(1, positions).requires_grad_()
        x = values[:, start:stop].requires_grad_()
        loc, log_scale = model.arm(context.view(models, CONTEXT, -1))
        bits = laplace_bits(x, loc, log_scale).sum(1) * rate
        bits.sum().backward()
        grad.index_add_(1, positions, context.grad)
        grad[:, start:stop] += x.grad
        total += bits.detach()
    return total, grad[:, :count]


def _synthesis_backward(
    model: LatentFunction, features: torch.Tensor, target: torch.Tensor, rows: int, weights: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (weighted) latent MSE (M,) and its gradient with respect to ``features`` (M, F, h, w)."""
    height = target.shape[2]
    scale = 1.0 / target[0].numel()
    grad = torch.zeros_like(features)
    total = features.new_zeros(target.shape[0])
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        first, last = max(top - Synthesis.HALO, 0), min(bottom + Synthesis.HALO, height)
        band = features[:, :, first:last].requires_grad_()
        latent = model.synthesis(band)[:, :, top - first : bottom - first]
        error = (latent - target[:, :, top:bottom]).square()
        if weights is not None:
            error = error * weights[:, :, top:bottom]
        mse = error.sum((1, 2, 3)) * scale
        mse.sum().backward()
        grad[:, :, first:last] += band.grad
        total += mse.detach()
    return total, grad
