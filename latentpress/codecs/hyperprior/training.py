"""What training a hyperprior codec's collection model needs besides its loss: latent
statistics, random crops, the learning-rate schedule, the latent perceptual distance
a loss may add and the crops held aside to check it in pixels."""

from __future__ import annotations

import math

import numpy as np
import torch

from latentpress.models.proxy_check import HELD_CROPS, HeldAside


def latent_statistics(latents: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(C,) mean and standard deviation (at least 1e-3) of each channel across
    ``latents`` ((C, h, w) each)."""
    values = np.concatenate([np.asarray(z, np.float64).reshape(z.shape[0], -1) for z in latents], 1)
    return values.mean(1), np.maximum(values.std(1), 1e-3)


def cosine_learning_rate(optimizer: torch.optim.Optimizer, base: float, step: int, steps: int) -> None:
    """Set ``optimizer``'s rate for ``step`` of ``steps``: a cosine decay from ``base``
    to 2% of it."""
    for group in optimizer.param_groups:
        group["lr"] = max(base * 0.5 * (1 + math.cos(math.pi * step / steps)), base * 0.02)


class Crops:
    """Random square crops of a set of latents, mirrored left-right at random when
    ``mirror``. A VAE latent is not mirror-symmetric (the mirrored latent of a photo
    decodes to LPIPS about 0.3 from the mirrored photo on TAESD, against 0.12 for the
    latent itself), so a mirrored crop is a latent no encoder makes: only a stage
    judged in latent space alone may take them as more data (docs/glc.md)."""

    def __init__(self, latents: list[np.ndarray], size: int, seed: int, mirror: bool = False) -> None:
        self.latents = [_pad_to(np.asarray(z, np.float32), size) for z in latents]
        areas = np.array([z.shape[1] * z.shape[2] for z in self.latents], np.float64)
        self.weights = areas / areas.sum()
        self.size, self.mirror = size, mirror
        self.rng = np.random.default_rng(seed)

    def batch(self, count: int) -> torch.Tensor:
        out = []
        for index in self.rng.choice(len(self.latents), size=count, p=self.weights):
            z = self.latents[index]
            top = self.rng.integers(0, z.shape[1] - self.size + 1)
            left = self.rng.integers(0, z.shape[2] - self.size + 1)
            crop = z[:, top : top + self.size, left : left + self.size]
            if self.mirror and self.rng.random() < 0.5:
                crop = crop[:, :, ::-1]
            out.append(np.ascontiguousarray(crop))
        return torch.from_numpy(np.stack(out))


def _pad_to(latent: np.ndarray, size: int) -> np.ndarray:
    """``latent`` padded (edge values) to at least ``size`` on each side."""
    ph, pw = max(0, size - latent.shape[1]), max(0, size - latent.shape[2])
    return np.pad(latent, ((0, 0), (0, ph), (0, pw)), mode="edge") if ph or pw else latent


def latent_distance(codec: str, vae_name: str, device: str) -> torch.nn.Module:
    """The latent perceptual distance of ``vae_name`` (``models.latent_distance``), or
    ``CodecError`` naming ``codec`` and saying why not."""
    from latentpress.codecs.base import CodecError
    from latentpress.models.latent_distance import LatentDistanceError, load_latent_distance

    try:
        return load_latent_distance(vae_name, device=device)
    except (LatentDistanceError, OSError) as exc:
        raise CodecError(
            f"{codec}'s latent perceptual training needs the VAE {vae_name!r} and its distance: {exc}"
        ) from None


def hold_aside(
    latents: list[np.ndarray], crop: int, seed: int, vae_name: str, device: str = "cpu"
) -> tuple[list[np.ndarray], HeldAside | None]:
    """The latents to train on (the first ones), and ``HELD_CROPS`` crops of side
    ``crop`` from the last sixteenth of ``latents`` (at least one photo) held aside;
    with fewer than four photos nothing is held aside."""
    if len(latents) < 4:
        return latents, None
    count = max(1, len(latents) // 16)
    aside = Crops(latents[-count:], crop, seed).batch(HELD_CROPS)
    return latents[:-count], HeldAside(aside, vae_name, device)
