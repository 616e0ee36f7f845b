"""Decoding: stored container bytes back to pixels (for evaluate, restore and reports)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from latentpress.codecs import CodecConfig, CodecError, DecodeContext, codec_info, get_codec
from latentpress.infra import storage
from latentpress.infra.container import Container, ContainerError
from latentpress.infra.images import pixel_limit
from latentpress.infra.layout import ArchiveLayout, unpack_image, unpack_model
from latentpress.pipeline.outcomes import describe

if TYPE_CHECKING:
    from latentpress.models.vae import DecoderWeights


@lru_cache(maxsize=4)
def shared_model(url: str) -> tuple[bytes, int, int]:
    """A shared model's bitstream, its container's size and how many images share it
    (read and verified once per process)."""
    data = storage.read_bytes(url)
    container, config = unpack_model(data, source=url)
    try:
        images = int(config["images"])
    except (KeyError, TypeError, ValueError):
        raise ContainerError(f"{url}: model configuration without a number of images") from None
    return container.sections["model"], len(data), images


def shared_model_url(container: Container, config: dict, archive: str) -> str | None:
    """Where the model an image container names is stored (None if it names none): a
    collection model by codec, preset and VAE, a shard model by configuration."""
    if "shared" not in container.sections:
        return None
    model = container.sections["shared"].decode("ascii")
    settings = CodecConfig.from_dict(config)
    if codec_info(container.codec).collection_model:
        return ArchiveLayout(archive).model(settings.name, settings.preset, container.vae_id, model)
    return ArchiveLayout(archive).shared(settings.key, model)


@dataclass(frozen=True)
class StoredAt:
    """Where a container was found (``source``, for messages) and so what it must hold:
    image ``image_id`` under configuration ``config_key``, of ``size`` (width, height as
    ingested); None: not checked."""

    source: str = ""
    image_id: str | None = None
    config_key: str | None = None
    size: tuple[int, int] | None = None


def decode_container(
    data: bytes,
    vae_name: str,
    archive: str,
    stored: StoredAt | None = None,
    known: tuple[bytes, np.ndarray] | None = None,
) -> tuple[np.ndarray, Container]:
    """Pixels (H, W, 3) uint8 of a stored image container, and the container.

    A container of another image, configuration or size than ``stored`` says (if given) is
    refused, so a few bytes cannot declare a huge picture for a small image. Images
    over the ingest limit (``infra.images.pixel_limit``) are refused before anything
    is allocated; whatever a codec raises on the payload becomes a ``CodecError``
    naming ``stored.source``. Latent codecs' output goes through the VAE decoder
    ``vae_name`` and is cropped to the image size recorded in the container; a shared
    model named by the container is read from ``archive``. ``known``: a payload this
    process decoded already and its pixels, returned instead of decoding again when
    the container's payload is that one, byte for byte (after every check above).
    """
    stored = stored or StoredAt()
    source, config_key, size = stored.source, stored.config_key, stored.size
    container, config = unpack_image(data, source=source, image_id=stored.image_id)
    try:
        codec = get_codec(container.codec)
        key = CodecConfig.from_dict(config).key
    except (KeyError, TypeError, ValueError) as exc:
        raise ContainerError(f"{source}: {describe(exc)}") from None
    if config_key is not None and key != config_key:
        raise ContainerError(f"{source}: holds configuration {key}, not {config_key}")
    if size is not None and (container.width, container.height) != tuple(size):
        raise ContainerError(f"{source}: declares a {container.width}x{container.height} image, but the image "
                             f"is {size[0]}x{size[1]}")  # fmt: skip
    if container.width * container.height > (limit := pixel_limit()):
        raise ContainerError(f"{source}: declares a {container.width}x{container.height} image, over the limit "
                             f"of {limit} pixels")  # fmt: skip
    if container.codec_version != codec.version:
        raise ContainerError(
            f"{source}: made by {container.codec} version {container.codec_version}, "
            f"this latentpress decodes version {codec.version}"
        )
    model_url = shared_model_url(container, config, archive)
    try:
        model = shared_model(model_url)[0] if model_url else None
    except FileNotFoundError:
        raise ContainerError(f"{source}: names the model {model_url}, which the archive does not hold") from None
    if known is not None and known[0] == container.sections["payload"]:
        return known[1], container
    context = DecodeContext(container.width, container.height, container.vae_id or None, model)
    try:
        decoded = codec.decode(container.sections["payload"], context)
    except CodecError as exc:
        raise CodecError(f"{source}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a library's error on bad bytes is a bad payload
        raise CodecError(f"{source}: {container.codec} payload does not decode: {describe(exc)}") from exc
    if codec.domain == "pixels":
        return decoded, container
    size = (container.width, container.height)
    weights = codec.vae_decoder(container.sections["payload"], context)
    return latent_pixels(decoded, vae_name, container.vae_id, size, source, weights), container


def latent_pixels(
    latent: np.ndarray,
    vae_name: str,
    vae_id: str,
    size: tuple[int, int],
    source: str = "",
    weights: DecoderWeights | None = None,
) -> np.ndarray:
    """Pixels (H, W, 3) uint8 of a decoded latent of VAE ``vae_id``, through the VAE
    decoder ``vae_name`` (``ContainerError`` if that is another VAE) with ``weights``
    where the codec gives its own, cropped to ``size``."""
    from latentpress.models.vae import load_vae

    vae = load_vae(vae_name)
    if vae.vae_id != vae_id:
        raise ContainerError(f"{source}: latent of VAE {vae_id!r}, but {vae.vae_id!r} was given")
    try:
        decoder = vae.with_decoder(weights)
    except ValueError as exc:
        raise ContainerError(f"{source}: the model's decoder does not fit VAE {vae_id!r}: {exc}") from None
    return decoder.decode([latent], [size])[0]
