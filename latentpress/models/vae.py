"""Latent autoencoders through diffusers (TAESD family, Stable Diffusion VAEs).

Latents are the *raw* latents the decoder takes (``AutoencoderTiny`` ``.latents``,
``AutoencoderKL`` ``latent_dist.mode()``), float32, shape (C, ceil(H/s), ceil(W/s)).
The diffusion-space latent of a model is ``(raw - shift_factor) * scaling_factor``;
both factors are exposed for the record and never applied here.

Images of any size are padded on the bottom and right to a multiple of the stride
by edge replication (repeating the last row and column), which avoids the dark or
mirrored borders zero or reflect padding would make the decoder reproduce; decoding
crops the padding away.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np
import torch

from latentpress.config import get_settings
from latentpress.infra.models import model_id, resolve_model

_CLASSES = ("AutoencoderTiny", "AutoencoderKL")


def _batches(keys: Sequence[tuple[int, ...]], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped by equal key, in chunks of at most ``batch_size``."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    for idx in groups.values():
        for start in range(0, len(idx), batch_size):
            yield idx[start : start + batch_size]


class LatentAutoencoder:
    """A diffusers autoencoder with numpy in and out."""

    def __init__(self, vae: torch.nn.Module, vae_id: str, device: str) -> None:
        config = vae.config
        self.vae = vae.to(device).eval().requires_grad_(False)
        self.vae_id = vae_id
        self.device = torch.device(device)
        self.is_tiny = type(vae).__name__ == "AutoencoderTiny"
        self.stride: int = 2 ** (len(config.block_out_channels) - 1)
        self.latent_channels: int = int(config.latent_channels)
        self.scaling_factor: float = float(config.scaling_factor)
        self.shift_factor: float = float(getattr(config, "shift_factor", None) or 0.0)

    def __repr__(self) -> str:
        return (
            f"LatentAutoencoder({self.vae_id!r}, stride={self.stride}, "
            f"channels={self.latent_channels})"
        )

    def latent_size(self, width: int, height: int) -> tuple[int, int]:
        """Latent (width, height) for an image of the given size."""
        return math.ceil(width / self.stride), math.ceil(height / self.stride)

    def encode(self, images: Sequence[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        """Encode (H, W, 3) uint8 RGB images to float32 latents (C, ceil(H/s), ceil(W/s))."""
        padded = [self._pad(_check_image(img)) for img in images]
        out: list[np.ndarray] = [np.empty(0)] * len(padded)
        with torch.inference_mode():
            for idx in _batches([p.shape for p in padded], batch_size):
                batch = torch.from_numpy(np.stack([padded[i] for i in idx])).to(self.device)
                x = batch.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
                enc = self.vae.encode(x)
                z = enc.latents if self.is_tiny else enc.latent_dist.mode()
                z = z.float().cpu().numpy()
                for j, i in enumerate(idx):
                    out[i] = z[j]
        return out

    def decode(
        self, latents: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]], batch_size: int = 8
    ) -> list[np.ndarray]:
        """Decode latents to (H, W, 3) uint8 images cropped to ``sizes`` (width, height)."""
        if len(latents) != len(sizes):
            raise ValueError(f"{len(latents)} latents but {len(sizes)} sizes")
        for z, (w, h) in zip(latents, sizes, strict=True):
            expected = (self.latent_channels, *self.latent_size(w, h)[::-1])
            if z.shape != expected:
                raise ValueError(
                    f"latent shape {z.shape} does not fit image {w}x{h}: expected {expected}"
                )
        out: list[np.ndarray] = [np.empty(0)] * len(latents)
        with torch.inference_mode():
            for idx in _batches([z.shape for z in latents], batch_size):
                z = torch.from_numpy(np.stack([np.asarray(latents[i], np.float32) for i in idx]))
                x = self.vae.decode(z.to(self.device)).sample
                img = x.float().clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch.uint8)
                img = img.permute(0, 2, 3, 1).cpu().numpy()
                for j, i in enumerate(idx):
                    w, h = sizes[i]
                    out[i] = np.ascontiguousarray(img[j, :h, :w])
        return out

    def _pad(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        ph, pw = -h % self.stride, -w % self.stride
        return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else image


def _check_image(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    return image


def load_vae(name: str = "taesd", device: str | None = None) -> LatentAutoencoder:
    """Load the autoencoder ``name`` (models-folder name, folder or hub id), cached per process.

    The class (``AutoencoderTiny`` or ``AutoencoderKL``) is read from the model's
    ``config.json`` ``_class_name``.
    """
    return _load(resolve_model(name), model_id(name), device or get_settings().device)


@lru_cache(maxsize=8)
def _load(source: str, vae_id: str, device: str) -> LatentAutoencoder:
    import diffusers

    class_name = diffusers.AutoencoderKL.load_config(source).get("_class_name")
    if class_name not in _CLASSES:
        raise ValueError(f"{source}: unsupported class {class_name!r}, not in {_CLASSES}")
    cls = getattr(diffusers, class_name)
    vae = cls.from_pretrained(source, torch_dtype=torch.float32, low_cpu_mem_usage=False)
    return LatentAutoencoder(vae, vae_id, device)
