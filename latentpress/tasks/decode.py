"""Decoding stored containers back to pixels (shared by evaluate and restore)."""

from __future__ import annotations

import numpy as np

from latentpress.codecs import DecodeContext, get_codec
from latentpress.infra.archive import unpack_image
from latentpress.infra.container import Container
from latentpress.models.vae import load_vae


def decode_container(data: bytes, vae_name: str, source: str = "") -> tuple[np.ndarray, Container]:
    """Pixels (H, W, 3) uint8 of a stored image container, and the container.

    Latent codecs' output goes through the VAE decoder ``vae_name`` and is cropped to
    the image size recorded in the container.
    """
    container, _ = unpack_image(data, source=source)
    codec = get_codec(container.codec)
    if container.codec_version != codec.version:
        raise ValueError(
            f"{source}: made by {container.codec} version {container.codec_version}, "
            f"this latentpress decodes version {codec.version}"
        )
    context = DecodeContext(container.width, container.height, container.vae_id or None)
    decoded = codec.decode(container.sections["payload"], context)
    if codec.domain == "pixels":
        return decoded, container
    vae = load_vae(vae_name)
    if vae.vae_id != container.vae_id:
        raise ValueError(f"{source}: latent of VAE {container.vae_id!r}, but {vae.vae_id!r} was given")
    return vae.decode([decoded], [(container.width, container.height)])[0], container
