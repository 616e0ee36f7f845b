"""The ``clric`` codec: a Cool-Chic-style function overfitted to each image's VAE latent.

Encoding fits the function (:mod:`.train`), quantizes it (:mod:`.quantize`) and
writes the bitstream (:mod:`.bitstream`); decoding reads the stream and evaluates
the function. Images of one latent shape can be fitted together
(:meth:`Clric.encode_many`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np
import torch

from latentpress.codecs.base import BatchEncoder, CodecError, CodecInput, DecodeContext, RateControlled
from latentpress.codecs.clric import bitstream, rate
from latentpress.codecs.clric.model import LatentFunction, select
from latentpress.codecs.clric.params import ClricParams
from latentpress.codecs.clric.perception import weight_map
from latentpress.codecs.clric.quantize import quantize
from latentpress.codecs.clric.train import fit

_MAX_SIDE = (1 << 16) - 1


class Clric(BatchEncoder, RateControlled):
    """CLRIC (Ameen, Richter, Kaup): per-image overfitted latent function."""

    def encode(self, item: CodecInput, params: ClricParams) -> bytes:
        return self.encode_many([item], params)[0]

    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        return bitstream.read(data, context.width, context.height).latent()

    def encode_many(self, items: list[CodecInput], params: ClricParams) -> list[bytes]:
        """Encode several images at ``params``; those of one latent shape train together,
        portrait ones transposed to join the landscape ones (the stream says so)."""
        params.validate()
        latents = [_latent(item) for item in items]
        weights = [_weights(item, latent, params) for item, latent in zip(items, latents, strict=True)]
        transposed = [latent.shape[1] > latent.shape[2] for latent in latents]
        latents = [_landscape(z, t) for z, t in zip(latents, transposed, strict=True)]
        weights = [_landscape(w, t) for w, t in zip(weights, transposed, strict=True)]
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, latent in enumerate(latents):
            groups[latent.shape].append(i)
        out: list[bytes] = [b""] * len(items)
        for idx in groups.values():
            stack = np.stack([latents[i] for i in idx])
            maps = None if weights[idx[0]] is None else np.stack([weights[i] for i in idx])
            model = fit(stack, np.full(len(idx), params.quality), params, weights=maps)
            for j, i in enumerate(idx):
                out[i] = _write(select(model, torch.tensor([j])), latents[i], params.quality, transposed[i], weights[i])
        return out

    def encode_at_bpp(
        self, item: CodecInput, params: ClricParams, bpp: float, overhead_bytes: int = 0
    ) -> tuple[bytes, ClricParams]:
        """A stream of ``bpp`` bits per image pixel (with ``overhead_bytes`` more), within 10%.

        Returns the stream and the parameters with the lambda found; ``CodecError``
        if no lambda gets there.
        """
        params.validate()
        latent = _latent(item)
        weights = _weights(item, latent, params)
        maps = None if weights is None else weights[None]
        target = bpp * item.width * item.height - 8 * overhead_bytes
        models: dict[float, LatentFunction] = {}

        def probe(lam: float, start: rate.Probe | None) -> rate.Probe:
            if start is None:
                model = fit(latent[None], np.array([lam]), params, weights=maps)
            else:
                iterations = max(params.iterations // 4, 1)
                model = fit(latent[None], np.array([lam]), params, models[start.lam], iterations, maps)
            models[lam] = model
            payload = _write(model, latent, lam, weights=weights)
            return rate.Probe(lam, 8 * len(payload), payload)

        found = rate.search(probe, target, first=_first_lambda(bpp))
        return found.payload, replace(params, quality=found.lam)


def _write(
    model: LatentFunction, latent: np.ndarray, lam: float, transposed: bool = False, weights: np.ndarray | None = None
) -> bytes:
    try:
        return bitstream.write(quantize(model, latent, lam, transposed, weights))
    except ValueError as exc:  # a symbol range the entropy coder cannot take
        raise CodecError(f"clric cannot code this latent: {exc}") from exc


def _latent(item: CodecInput) -> np.ndarray:
    latent = item.latent
    if latent is None or latent.ndim != 3 or latent.size == 0:
        raise CodecError("clric needs a non-empty (C, h, w) latent")
    channels, height, width = latent.shape
    if channels > 16 or max(height, width) > _MAX_SIDE:
        raise CodecError(f"clric takes latents of at most 16 channels and {_MAX_SIDE} per side, got {latent.shape}")
    latent = np.asarray(latent, dtype=np.float32)
    if not np.all(np.isfinite(latent)):
        raise CodecError("clric latent has non-finite values")
    return latent


def _weights(item: CodecInput, latent: np.ndarray, params: ClricParams) -> np.ndarray | None:
    """The perceptual weight map of ``latent``'s error (None without perceptual weighting)."""
    if params.perceptual_weighting == 0:
        return None
    if not item.vae_id:
        raise CodecError("clric's perceptual weighting needs to know the latent's VAE")
    return weight_map(latent, item.vae_id, params.perceptual_weighting, params.seed)


def _landscape(array: np.ndarray | None, transposed: bool) -> np.ndarray | None:
    """``array`` (C, h, w) with height and width swapped if ``transposed``."""
    return np.ascontiguousarray(array.transpose(0, 2, 1)) if transposed and array is not None else array


def _first_lambda(bpp: float) -> float:
    """A first guess of lambda for ``bpp`` (TAESD on photos: about 0.1 bpp at lambda 1)."""
    return float(np.clip((0.1 / bpp) ** 1.5, rate.LAMBDA_RANGE[0], rate.LAMBDA_RANGE[1]))
