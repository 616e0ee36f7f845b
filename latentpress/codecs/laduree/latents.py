"""Between VAE latents and the denoiser: rescaling and padding to whole patches.

Latents are rescaled per channel to mean 0 and standard deviation ``TARGET_STD`` =
1/3 (Unicorn finds this far better than unit variance: the noise then dominates
for more of the schedule, so more of the training teaches the index-to-image
mapping). Latents whose sides are not patch multiples are padded on the bottom and
right by edge replication and cropped after sampling.
"""

from __future__ import annotations

import numpy as np

TARGET_STD = 1.0 / 3.0


def statistics(latents: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over every position of every latent (float32)."""
    values = np.concatenate([np.asarray(z, np.float64).reshape(z.shape[0], -1) for z in latents], 1)
    mean, std = values.mean(axis=1), values.std(axis=1)
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def rescale(latent: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """A raw (C, h, w) latent in the denoiser's space (float32)."""
    scale = np.float32(TARGET_STD) / std
    return (np.asarray(latent, np.float32) - mean[:, None, None]) * scale[:, None, None]


def unscale(latent: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rescale` (float32)."""
    scale = std / np.float32(TARGET_STD)
    return np.asarray(latent, np.float32) * scale[:, None, None] + mean[:, None, None]


def padded_shape(height: int, width: int, patch: int) -> tuple[int, int]:
    """The latent size rounded up to whole patches."""
    return -(-height // patch) * patch, -(-width // patch) * patch


def pad(latent: np.ndarray, patch: int) -> np.ndarray:
    """Pad a (C, h, w) latent to whole patches by repeating its last row and column."""
    height, width = latent.shape[1:]
    ph, pw = padded_shape(height, width, patch)
    return np.pad(latent, ((0, 0), (0, ph - height), (0, pw - width)), mode="edge")
