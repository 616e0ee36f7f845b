"""Real latents for the collection-model codecs' tests (glc, relic)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import KODAK
from PIL import Image

from latentpress.codecs import CodecInput


def crops(size: int = 128) -> list[np.ndarray]:
    """Crops of four real photos (kodim01, 02, 04, 05)."""
    out = []
    for name in ("kodim01.png", "kodim02.png", "kodim04.png", "kodim05.png"):
        with Image.open(KODAK / name) as img:
            out.append(np.asarray(img.convert("RGB"))[100 : 100 + size, 200 : 200 + size].copy())
    return out


def odd_photo() -> np.ndarray:
    """A 96x80 crop of kodim03 (a latent of 10x12: odd sizes after a stride of 2)."""
    with Image.open(KODAK / "kodim03.png") as img:
        return np.asarray(img.convert("RGB"))[200:280, 300:396].copy()


def item(latent: np.ndarray, image_id: str = "0123456789abcdef") -> CodecInput:
    """A TAESD codec input of ``latent`` (the image 8 times its size)."""
    return CodecInput(image_id, latent.shape[2] * 8, latent.shape[1] * 8, latent=latent, vae_id="taesd")


@pytest.fixture(scope="module")
def latents() -> list[np.ndarray]:
    """TAESD latents of ``crops()``."""
    from latentpress.models.vae import load_vae

    return load_vae("taesd").encode(crops())


@pytest.fixture(scope="module")
def test_latent() -> np.ndarray:
    """The TAESD latent of ``odd_photo()``."""
    from latentpress.models.vae import load_vae

    return load_vae("taesd").encode([odd_photo()])[0]


@pytest.fixture(scope="module")
def photo_items() -> list[CodecInput]:
    """Four real photos of 96x96 pixels (scikit-image's) with their TAESD latents: what
    a decoder tuning trains on."""
    import skimage.data

    from latentpress.models.vae import load_vae

    vae = load_vae("taesd")
    photos = [np.ascontiguousarray(getattr(skimage.data, name)()[64:160, 64:160, :3]) for name in
              ("astronaut", "coffee", "chelsea", "rocket")]  # fmt: skip
    return [CodecInput(f"p{i}", 96, 96, p, vae.encode([p])[0], vae.vae_id) for i, p in enumerate(photos)]
