"""Typed settings read from the environment.

Every setting has one environment variable, so that Dask workers started elsewhere
see the same configuration as the command that submitted the work.

- ``LATENTPRESS_MODELS``: folder holding pretrained models by name (``taesd/``,
  ``lpips/``, ``torchvision/`` ...). Unset: names resolve as hub ids only.
- ``LATENTPRESS_DEVICE``: torch device for models (default: ``cuda`` when available,
  else ``cpu``).

Object-storage options (endpoint, credentials) come from fsspec's own configuration,
for example ``FSSPEC_S3_ENDPOINT_URL`` and the usual ``AWS_*`` variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_VAE = "taesd"
DEFAULT_SHARD_SIZE = 64
"""Images per shard: the unit of a shared (per-shard) model."""
DEFAULT_BATCH_SIZE = 16
"""Images per task."""
LOCAL_MAX_IMAGES = 32
"""Jobs of at most this many images (times configurations for ``restore``) run in the
command's own process unless a cluster or a Prefect server is asked for: starting a
Prefect server and a local Dask cluster costs 10 to 60 s on a small machine, about
what a cluster of two workers saves on 32 images of a cheap codec."""

RESTORE_LAYOUTS = ("original", "ids")
"""``restore`` layouts: the collection's own tree and names, or one folder per configuration."""
OUTPUT_FORMATS = {
    "png": (".png", {"format": "PNG"}),
    "jpeg": (".jpg", {"format": "JPEG", "quality": 95, "subsampling": 0}),
    "webp": (".webp", {"format": "WEBP", "lossless": True}),
    "avif": (".avif", {"format": "AVIF", "quality": 90, "subsampling": "4:4:4"}),
}
"""Formats ``restore`` writes: file extension and Pillow save options (PNG and WebP
lossless; JPEG and AVIF at high quality with full chroma)."""
MODELS_ENV = "LATENTPRESS_MODELS"
DEVICE_ENV = "LATENTPRESS_DEVICE"


@dataclass(frozen=True)
class Settings:
    """Process-wide settings."""

    models_dir: str | None
    configured_device: str | None = None

    @property
    def device(self) -> str:
        """``LATENTPRESS_DEVICE``, else ``cuda`` where torch sees a GPU, else ``cpu`` (torch
        is imported only when this is asked for: a flow process that only orchestrates
        never loads it)."""
        return self.configured_device or _default_device()


@lru_cache(maxsize=1)
def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; call where needed)."""
    return Settings(models_dir=os.environ.get(MODELS_ENV) or None, configured_device=os.environ.get(DEVICE_ENV) or None)
