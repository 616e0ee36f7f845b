"""The codec contract every codec implements.

A codec turns one image (pixels or its VAE latent) into bytes and back:

- ``encode(item, params) -> bytes``: the codec's own bitstream (the archive wraps it
  in a container);
- ``decode(data, context) -> array``: ``(H, W, 3) uint8`` pixels for codecs whose
  ``domain`` is ``"pixels"``, or the ``(C, h, w) float32`` latent for ``"latent"``
  codecs (the pipeline runs the VAE decoder and crops to the image size).

Codecs that learn one model for a whole shard (``shared = True``) also implement
``fit(items, params) -> SharedFit``: the shared model's bytes (stored once per
shard) and each image's payload; their ``decode`` reads the shared model from
``context.shared_model``.

Parameters are a frozen dataclass per codec with a ``quality`` field (the codec's one
continuous knob: a JPEG quality, a quantization step, a lambda); named presets fill
in the rest.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

Domain = Literal["pixels", "latent"]


@dataclass(frozen=True)
class CodecInput:
    """What a codec may read about one image."""

    image_id: str
    width: int
    height: int
    image: np.ndarray | None = None
    """(H, W, 3) uint8 RGB pixels; set for pixel-domain codecs."""
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
    """The shared model's bytes, for codecs with ``shared = True``."""


@dataclass(frozen=True)
class SharedFit:
    """What a shared-model codec learns from one shard."""

    model: bytes
    """The shared model's own bitstream (stored once, in its own container)."""
    payloads: dict[str, bytes]
    """Image id -> that image's payload (e.g. its index into the model)."""


class CodecError(ValueError):
    """A bitstream or parameter set a codec cannot handle."""


class Codec(ABC):
    """Base class of all codecs; subclasses register with ``@register_codec``."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    domain: ClassVar[Domain]
    presets: ClassVar[dict[str, Any]]
    """Preset name -> params dataclass instance; always has ``"default"``."""
    default_qualities: ClassVar[tuple[float, ...]]
    quality_name: ClassVar[str] = "quality"
    """What the quality knob means for this codec (shown in help and ledgers)."""
    rate_control: ClassVar[bool] = False
    """Whether :meth:`encode_at_bpp` can aim at a size."""
    shared: ClassVar[bool] = False
    """True for codecs that ``fit`` one model per shard instead of ``encode`` per image."""
    batch_encode: ClassVar[bool] = False
    """True for codecs whose :meth:`encode_many` is faster than encoding one by one."""

    def params(self, preset: str = "default", quality: float | None = None) -> Any:
        """Parameters of ``preset`` with the quality knob set (default: the preset's)."""
        if preset not in self.presets:
            known = ", ".join(sorted(self.presets))
            raise CodecError(f"codec {self.name!r} has no preset {preset!r} (known: {known})")
        base = self.presets[preset]
        params = base if quality is None else dataclasses.replace(base, quality=float(quality))
        self.validate(params)
        return params

    def validate(self, params: Any) -> None:
        """Raise ``CodecError`` if ``params`` are out of range (override to check)."""

    @abstractmethod
    def encode(self, item: CodecInput, params: Any) -> bytes:
        """Compress one image into this codec's bitstream."""

    def encode_many(self, items: list[CodecInput], params: Any) -> list[bytes]:
        """Compress several images alike; a ``CodecError`` for one fails them all."""
        return [self.encode(item, params) for item in items]

    def fit(self, items: list[CodecInput], params: Any) -> SharedFit:
        """Learn one shared model for ``items`` (only for ``shared`` codecs)."""
        raise CodecError(f"codec {self.name!r} does not fit shared models")

    def encode_at_bpp(self, item: CodecInput, params: Any, bpp: float, overhead_bytes: int = 0) -> tuple[bytes, Any]:
        """Compress to ``bpp`` bits per image pixel, counting ``overhead_bytes`` of
        packaging too; returns the bitstream and the parameters used (the quality found).

        Only codecs with ``rate_control``; ``CodecError`` when the size cannot be reached.
        """
        raise CodecError(f"codec {self.name!r} has no rate control (no target bpp)")

    @abstractmethod
    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        """Reconstruct pixels or latent from a bitstream made by ``encode``."""
