"""The codec contract: what every codec does, and the abilities some codecs add.

Every codec decodes: ``decode(data, context) -> array`` gives ``(H, W, 3) uint8``
pixels for codecs whose domain is ``"pixels"``, or the ``(C, h, w) float32`` latent
for ``"latent"`` codecs (the pipeline runs the VAE decoder and crops to the image
size). How a codec encodes is one of its abilities, each a small abstract class:

- :class:`ImageEncoder`: ``encode(item, params) -> bytes``, one image at a time;
- :class:`BatchEncoder`: also ``encode_many(items, params)``, faster than one by one;
- :class:`RateControlled`: also ``encode_at_bpp(item, params, bpp)``, aims at a size;
- :class:`ShardModelCodec`: ``fit(items, params) -> SharedFit``, one model learned
  for a shard of images, whose per-image payloads come out of the fit; its
  ``decode`` reads the model from ``context.shared_model``;
- :class:`CollectionModelCodec`: ``train(items, params) -> model``, one model
  learned from a sample of a collection, then ``encode(item, params, model)`` for
  any image of it (photos added later too); its ``decode`` reads the model from
  ``context.shared_model``.

A codec implements only what it can, and no codec carries a method that only raises.
What a codec is (name, domain, presets, quality knob, and which of these abilities it
has: ``coding`` and ``rate_control``) is its
:class:`~latentpress.codecs.registry.CodecInfo`, registered without importing the
implementation; the pipeline decides by it (``tests/test_registry.py`` checks that
every implementation has the abilities its information declares).

Parameters are a frozen dataclass per codec with a ``quality`` field (the codec's one
continuous knob: a JPEG quality, a quantization step, a lambda) and a ``validate()``
method; named presets fill in the rest.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from latentpress.codecs.registry import CodecInfo
    from latentpress.models.vae import DecoderWeights

Domain = Literal["pixels", "latent"]


ADDED = "added"
"""Metadata key of a parameter field added after ledger fingerprints began (its value:
the release that added it). At its default such a field does what the codec did before
it existed, so the fingerprint leaves it out (``spec.params_meaning``)."""


class CodecError(ValueError):
    """A bitstream, an input or a parameter set a codec cannot handle."""


def check_loss_weights(codec: str, params: Any, names: tuple[str, ...]) -> None:
    """Raise ``CodecError`` naming the first of the fields ``names`` of ``params`` that
    is not a finite number >= 0, or a ``distance_refresh`` set without the
    ``latent_perceptual`` weight whose distance it refreshes."""
    for name in names:
        weight = getattr(params, name)
        if not (math.isfinite(weight) and weight >= 0):
            raise CodecError(f"{codec} {name} must be >= 0 (a finite weight), got {weight}")
    if getattr(params, "distance_refresh", 0) and not params.latent_perceptual:
        raise CodecError(f"{codec} distance_refresh refreshes the latent distance: set latent_perceptual too")


@dataclass(frozen=True)
class CodecInput:
    """What a codec may read about one image."""

    image_id: str
    width: int
    height: int
    image: np.ndarray | None = None
    """(H, W, 3) uint8 RGB pixels; set where ``Codec.reads_pixels``."""
    latent: np.ndarray | None = None
    """(C, h, w) float32 VAE latent of the image padded to the VAE stride."""
    vae_id: str | None = None


@dataclass(frozen=True)
class DecodeContext:
    """What a decoder knows besides the bitstream (from the container header)."""

    width: int
    height: int
    vae_id: str | None = None
    shared_model: bytes | None = None
    """The shared model's bytes, for a :class:`ShardModelCodec`."""


@dataclass(frozen=True)
class SharedFit:
    """What a shard-model codec learns from one shard."""

    model: bytes
    """The shared model's own bitstream (stored once, in its own container)."""
    payloads: dict[str, bytes]
    """Image id -> that image's payload (e.g. its index into the model)."""


class Codec(ABC):
    """What every codec is and does: its registered information, and decoding."""

    def __init__(self, info: CodecInfo) -> None:
        self.info = info

    @property
    def version(self) -> int:
        """Version of the codec's bitstream, written into every container (its
        registered ``CodecInfo.version``)."""
        return self.info.version

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def domain(self) -> Domain:
        return self.info.domain

    @property
    def presets(self) -> dict[str, Any]:
        return self.info.presets

    @property
    def default_qualities(self) -> tuple[float, ...]:
        return self.info.default_qualities

    @property
    def quality_name(self) -> str:
        return self.info.knob

    def params(self, preset: str = "default", quality: float | None = None) -> Any:
        """Parameters of ``preset`` with the quality knob set (default: the preset's)."""
        return self.info.params(preset, quality)

    def validate(self, params: Any) -> None:
        """Raise ``CodecError`` if ``params`` are out of range."""
        validate = getattr(params, "validate", None)
        if validate is not None:
            validate()

    def reads_pixels(self, params: Any) -> bool:
        """Whether encoding with ``params`` needs the image's pixels (``CodecInput.image``):
        a pixel codec's always, a latent codec's where it judges its choices in pixels."""
        return self.domain == "pixels"

    def library(self) -> str | None:
        """The outside library that does the coding and its version, for the ledger
        (``None`` for latentpress's own codecs: ``code_version`` says theirs)."""
        return None

    @abstractmethod
    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        """Reconstruct pixels or latent from this codec's bitstream."""

    def vae_decoder(self, data: bytes, context: DecodeContext) -> DecoderWeights | None:
        """For a latent codec: the VAE decoder weights its latent of ``data`` is drawn
        with (a collection model's tuned decoder); ``None``: the VAE's own."""
        return None


class ImageEncoder(Codec):
    """A codec that compresses each image on its own."""

    @abstractmethod
    def encode(self, item: CodecInput, params: Any) -> bytes:
        """Compress one image into this codec's bitstream."""


class BatchEncoder(ImageEncoder):
    """An image encoder that is faster on several images at once."""

    @abstractmethod
    def encode_many(self, items: list[CodecInput], params: Any) -> list[bytes]:
        """Compress several images alike; a ``CodecError`` for one fails them all."""


class RateControlled(ImageEncoder):
    """An image encoder that can aim at a size in bits per pixel."""

    @abstractmethod
    def encode_at_bpp(self, item: CodecInput, params: Any, bpp: float, overhead_bytes: int = 0) -> tuple[bytes, Any]:
        """Compress to ``bpp`` bits per image pixel, counting ``overhead_bytes`` of
        packaging too; the bitstream and the parameters used (the quality found).
        ``CodecError`` when the size cannot be reached."""


class ShardModelCodec(Codec):
    """A codec that learns one model per shard; each image's payload refers to it."""

    @abstractmethod
    def fit(self, items: list[CodecInput], params: Any) -> SharedFit:
        """Learn one shared model for ``items`` and each image's payload."""

    def refusal(self, item: CodecInput, params: Any) -> str | None:
        """Why ``item`` cannot join a shard's fit (its image is then rejected alone), or
        None if it can."""
        return None


class CollectionModelCodec(Codec):
    """A codec whose images are coded against one model learned from a collection."""

    @abstractmethod
    def train(
        self,
        items: list[CodecInput],
        params: Any,
        steps: int | None = None,
        progress: Callable[[Any], None] | None = None,
    ) -> bytes:
        """The model's bytes, learned from ``items`` (``steps``: instead of the
        preset's; ``progress`` is called now and then with the training's status: an
        object with ``step``, ``steps`` and ``summary()``, a line of its figures)."""

    def training_pixels(self, params: Any) -> int:
        """How many of the images given to ``train`` (the first ones) it needs the
        pixels of (``CodecInput.image``) besides their latents; 0 by default."""
        return 0

    @abstractmethod
    def encode(self, item: CodecInput, params: Any, model: bytes) -> bytes:
        """Compress one image against the model ``model`` (bytes from ``train``)."""
