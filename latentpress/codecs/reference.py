"""Reference image codecs through Pillow: JPEG, WebP, AVIF and JPEG XL.

Each codec's params dataclass fields are Pillow ``save`` options, so one base class
encodes and decodes all four. Encoded files carry no EXIF, ICC or XMP metadata: only
the bytes needed to decode count towards the rate. JPEG XL comes from the
``pillow-jxl-plugin`` package (GPL-3.0; the optional extra ``latentpress[jxl]``),
imported on first use.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import PIL
from PIL import Image, features

from latentpress.codecs.base import CodecError, CodecInput, DecodeContext, ImageEncoder
from latentpress.codecs.registry import CodecInfo, KnobRange, register_codec

# Errors Pillow raises on data it cannot decode.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class PillowCodec(ImageEncoder):
    """A pixel codec that is one Pillow image format."""

    pillow_format: ClassVar[str]
    decode_errors: ClassVar[tuple[type[Exception], ...]] = _DECODE_ERRORS
    """What Pillow (or the format's plugin) raises on data it cannot decode."""
    pillow_feature: ClassVar[str]
    """Pillow's name for the codec library (``PIL.features.version``)."""
    pillow_library: ClassVar[str]

    def plugin(self) -> None:
        """Make sure Pillow can read and write this format (a plugin may need importing)."""

    def encode(self, item: CodecInput, params: Any) -> bytes:
        """Compress ``item.image`` with Pillow, without metadata."""
        params.validate()
        self.plugin()
        image = item.image
        if image is None or image.dtype != np.uint8 or image.shape != (item.height, item.width, 3):
            got = None if image is None else (image.shape, str(image.dtype))
            want = (item.height, item.width, 3)
            raise CodecError(f"codec {self.name!r} needs a {want} uint8 image, got {got}")
        options = dataclasses.asdict(params) | {"quality": int(params.quality)}
        out = io.BytesIO()
        Image.fromarray(image, "RGB").save(out, format=self.pillow_format, **options)
        return out.getvalue()

    def library(self) -> str:
        """Pillow's version and that of the codec library it was built with."""
        version = features.version(self.pillow_feature) or "unknown"
        return f"Pillow {PIL.__version__}, {self.pillow_library} {version}"

    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        """Decode to ``(H, W, 3) uint8`` RGB, checking the size before decoding pixels."""
        self.plugin()
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
        except self.decode_errors as error:
            raise CodecError(f"codec {self.name!r} cannot decode this data: {error}") from error


def _check(
    codec: str,
    params: Any,
    quality: tuple[int, int],
    ranges: dict[str, tuple[int, int]],
    choices: dict[str, tuple[Any, ...]],
) -> None:
    """Raise ``CodecError`` unless the quality is a whole number in ``quality`` and each
    option lies in its range or among its choices."""
    low, high = quality
    if not (low <= params.quality <= high) or params.quality != int(params.quality):
        raise CodecError(f"codec {codec!r}: quality must be an integer in {low}..{high}, got {params.quality}")
    for option, (low, high) in ranges.items():
        value = getattr(params, option)
        if not (isinstance(value, int) and low <= value <= high):
            raise CodecError(f"codec {codec!r}: {option} must be in {low}..{high}, got {value!r}")
    for option, allowed in choices.items():
        value = getattr(params, option)
        if value not in allowed:
            raise CodecError(f"codec {codec!r}: {option} must be one of {allowed}, got {value!r}")


_SUBSAMPLING = ("4:4:4", "4:2:2", "4:2:0")


@dataclass(frozen=True)
class JpegParams:
    """libjpeg options; quality 1..100 (above 95 buys little)."""

    quality: float = 75
    subsampling: str = "4:2:0"
    optimize: bool = True
    progressive: bool = False

    def validate(self) -> None:
        _check("jpeg", self, (1, 100), {}, {"subsampling": _SUBSAMPLING})


@dataclass(frozen=True)
class WebpParams:
    """libwebp lossy options; quality 0..100, method 0 (fast) .. 6 (slow, smaller)."""

    quality: float = 80
    method: int = 4

    def validate(self) -> None:
        _check("webp", self, (0, 100), {"method": (0, 6)}, {})


@dataclass(frozen=True)
class AvifParams:
    """libavif/aom options; quality 0..100, speed 0 (slow, smaller) .. 10."""

    quality: float = 75
    speed: int = 6
    subsampling: str = "4:2:0"

    def validate(self) -> None:
        _check("avif", self, (0, 100), {"speed": (0, 10)}, {"subsampling": _SUBSAMPLING})


@dataclass(frozen=True)
class JxlParams:
    """libjxl lossy options; quality 0..100 (90 is visually lossless), effort 1 (fast) .. 9."""

    quality: float = 75
    effort: int = 7

    def validate(self) -> None:
        _check("jxl", self, (0, 100), {"effort": (1, 9)}, {})


class JpegCodec(PillowCodec):
    """Baseline JPEG (libjpeg-turbo)."""

    pillow_format = "JPEG"
    pillow_feature, pillow_library = "libjpeg_turbo", "libjpeg-turbo"


class WebpCodec(PillowCodec):
    """Lossy WebP (VP8, 4:2:0)."""

    pillow_format = "WEBP"
    pillow_feature, pillow_library = "webp", "libwebp"


class AvifCodec(PillowCodec):
    """AVIF (AV1 intra) through libavif."""

    pillow_format = "AVIF"
    pillow_feature, pillow_library = "avif", "libavif"


class JxlCodec(PillowCodec):
    """JPEG XL (libjxl, VarDCT) through the ``pillow-jxl-plugin`` package; a bare codestream."""

    pillow_format = "JXL"
    decode_errors = (*_DECODE_ERRORS, RuntimeError)  # the plugin's JxlException
    distribution = "pillow-jxl-plugin"

    def plugin(self) -> None:
        try:
            import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)
        except ImportError as error:
            raise CodecError(
                f"codec {self.name!r} needs the {self.distribution} package (GPL-3.0): pip install 'latentpress[jxl]'"
            ) from error

    def library(self) -> str:
        """The plugin's version and that of the libjxl it bundles (from its bill of materials)."""
        self.plugin()
        dist = importlib.metadata.distribution(self.distribution)
        libjxl = "unknown"
        sbom = dist.read_text(f"sboms/{self.distribution}.cyclonedx.json")
        if sbom:
            versions = {c.get("name"): c.get("version") for c in json.loads(sbom).get("components", [])}
            libjxl = versions.get("jpegxl-src") or libjxl
        return f"{self.distribution} {dist.version}, libjxl {libjxl}"


register_codec(
    CodecInfo(
        name="jpeg",
        summary="JPEG through Pillow (libjpeg-turbo), reference",
        domain="pixels",
        presets={"fast": JpegParams(optimize=False), "default": JpegParams(), "best": JpegParams(progressive=True)},
        default_qualities=(3, 5, 8, 12, 20, 30, 40, 55),
        knob="quality",
        better="higher",
        implementation=JpegCodec,
        search=KnobRange(1, 95),
    )
)
register_codec(
    CodecInfo(
        name="webp",
        summary="lossy WebP through Pillow (libwebp), reference",
        domain="pixels",
        presets={"fast": WebpParams(method=2), "default": WebpParams(method=4), "best": WebpParams(method=6)},
        default_qualities=(0, 2, 10, 20, 35, 50, 70),
        knob="quality",
        better="higher",
        implementation=WebpCodec,
        search=KnobRange(0, 100),
    )
)
register_codec(
    CodecInfo(
        name="avif",
        summary="AVIF through Pillow (libavif, AV1 intra), reference",
        domain="pixels",
        presets={"fast": AvifParams(speed=8), "default": AvifParams(speed=6), "best": AvifParams(speed=2)},
        default_qualities=(0, 10, 20, 30, 40, 50, 60),
        knob="quality",
        better="higher",
        implementation=AvifCodec,
        search=KnobRange(0, 100),
    )
)
register_codec(
    CodecInfo(
        name="jxl",
        summary="JPEG XL through pillow-jxl-plugin (libjxl), reference",
        domain="pixels",
        presets={"fast": JxlParams(effort=3), "default": JxlParams(effort=7), "best": JxlParams(effort=9)},
        default_qualities=(0, 10, 20, 30, 45, 60, 75, 85),
        knob="quality",
        better="higher",
        implementation=JxlCodec,
        search=KnobRange(0, 95),
    )
)
