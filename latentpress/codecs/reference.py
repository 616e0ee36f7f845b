"""Reference image codecs through Pillow: JPEG, WebP and AVIF.

Each codec's params dataclass fields are Pillow ``save`` options, so one base class
encodes and decodes all three. Encoded files carry no EXIF, ICC or XMP metadata: only
the bytes needed to decode count towards the rate.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from latentpress.codecs.base import Codec, CodecError, CodecInput, DecodeContext
from latentpress.codecs.registry import register_codec

# Errors Pillow raises on data it cannot decode.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class PillowCodec(Codec):
    """A pixel codec that is one Pillow image format."""

    domain = "pixels"
    pillow_format: ClassVar[str]
    quality_range: ClassVar[tuple[int, int]]
    option_ranges: ClassVar[dict[str, tuple[int, int]]] = {}
    """Integer option name -> allowed (low, high), inclusive."""
    option_choices: ClassVar[dict[str, tuple[Any, ...]]] = {}
    """Option name -> allowed values."""

    def validate(self, params: Any) -> None:
        """Check quality and format options against the allowed ranges."""
        low, high = self.quality_range
        quality = params.quality
        if not (low <= quality <= high) or quality != int(quality):
            raise CodecError(
                f"codec {self.name!r}: quality must be an integer in {low}..{high}, got {quality}"
            )
        for option, (low, high) in self.option_ranges.items():
            value = getattr(params, option)
            if not (isinstance(value, int) and low <= value <= high):
                raise CodecError(
                    f"codec {self.name!r}: {option} must be in {low}..{high}, got {value!r}"
                )
        for option, allowed in self.option_choices.items():
            value = getattr(params, option)
            if value not in allowed:
                raise CodecError(
                    f"codec {self.name!r}: {option} must be one of {allowed}, got {value!r}"
                )

    def encode(self, item: CodecInput, params: Any) -> bytes:
        """Compress ``item.image`` with Pillow, without metadata."""
        self.validate(params)
        image = item.image
        if image is None or image.dtype != np.uint8 or image.shape != (item.height, item.width, 3):
            got = None if image is None else (image.shape, str(image.dtype))
            want = (item.height, item.width, 3)
            raise CodecError(f"codec {self.name!r} needs a {want} uint8 image, got {got}")
        options = dataclasses.asdict(params) | {"quality": int(params.quality)}
        out = io.BytesIO()
        Image.fromarray(image, "RGB").save(out, format=self.pillow_format, **options)
        return out.getvalue()

    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        """Decode to ``(H, W, 3) uint8`` RGB, checking the size before decoding pixels."""
        try:
            with Image.open(io.BytesIO(data), formats=[self.pillow_format]) as img:
                if img.size != (context.width, context.height):
                    raise CodecError(
                        f"codec {self.name!r}: decoded size {img.size[0]}x{img.size[1]} "
                        f"differs from the expected {context.width}x{context.height}"
                    )
                return np.asarray(img.convert("RGB"))
        except CodecError:
            raise
        except _DECODE_ERRORS as error:
            raise CodecError(f"codec {self.name!r} cannot decode this data: {error}") from error


@dataclass(frozen=True)
class JpegParams:
    """libjpeg options; quality 1..100 (above 95 buys little)."""

    quality: float = 75
    subsampling: str = "4:2:0"
    optimize: bool = True
    progressive: bool = False


@register_codec("jpeg")
class JpegCodec(PillowCodec):
    """Baseline JPEG (libjpeg-turbo)."""

    pillow_format = "JPEG"
    quality_range = (1, 100)
    option_choices = {"subsampling": ("4:4:4", "4:2:2", "4:2:0")}
    presets = {
        "fast": JpegParams(optimize=False),
        "default": JpegParams(),
        "best": JpegParams(progressive=True),
    }
    default_qualities = (3, 5, 8, 12, 20, 30, 40, 55)


@dataclass(frozen=True)
class WebpParams:
    """libwebp lossy options; quality 0..100, method 0 (fast) .. 6 (slow, smaller)."""

    quality: float = 80
    method: int = 4


@register_codec("webp")
class WebpCodec(PillowCodec):
    """Lossy WebP (VP8, 4:2:0)."""

    pillow_format = "WEBP"
    quality_range = (0, 100)
    option_ranges = {"method": (0, 6)}
    presets = {
        "fast": WebpParams(method=2),
        "default": WebpParams(method=4),
        "best": WebpParams(method=6),
    }
    default_qualities = (0, 2, 10, 20, 35, 50, 70)


@dataclass(frozen=True)
class AvifParams:
    """libavif/aom options; quality 0..100, speed 0 (slow, smaller) .. 10."""

    quality: float = 75
    speed: int = 6
    subsampling: str = "4:2:0"


@register_codec("avif")
class AvifCodec(PillowCodec):
    """AVIF (AV1 intra) through libavif."""

    pillow_format = "AVIF"
    quality_range = (0, 100)
    option_ranges = {"speed": (0, 10)}
    option_choices = {"subsampling": ("4:4:4", "4:2:2", "4:2:0")}
    presets = {
        "fast": AvifParams(speed=8),
        "default": AvifParams(speed=6),
        "best": AvifParams(speed=2),
    }
    default_qualities = (0, 10, 20, 30, 40, 50, 60)
