"""Reading one image safely: bytes in, oriented 8-bit RGB out, or a clear error.

Whatever the file holds (greyscale, 16-bit, palette, CMYK, alpha, EXIF rotation,
several frames), :func:`decode_image` returns what a viewer shows as an
``(H, W, 3)`` uint8 array:

- EXIF orientation is applied, so width and height are those of the upright image
  (an EXIF block too broken to read is ignored: it is metadata, not the picture);
- 16-bit and 32-bit integer samples are scaled from 0..65535 to 0..255 (rounded, not
  clipped); float samples are taken as 0..1;
- transparency is composited on white;
- multi-frame files (animated GIF and WebP, multi-page TIFF, MPO, HEIC bursts) give
  their first frame (:func:`count_frames` says how many there are);
- HEIC and HEIF photos (as phones write them) are read through ``pillow-heif``.

Only the formats named by :data:`IMAGE_EXTENSIONS` are tried, whatever the file is
called, so a file cannot make Pillow run a plugin we never meant to use (EPS, for
one, starts Ghostscript). The whole file is decoded, so truncated files fail; images
larger than ``max_pixels`` are refused from their header, before decoding.
"""

from __future__ import annotations

import io
import os
import posixpath
import warnings
from functools import cache

import numpy as np
from PIL import Image, ImageOps

from latentpress.config import OUTPUT_FORMATS
from latentpress.infra.metadata import Metadata, read_metadata, save_options

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp", "avif", "gif", "heic", "heif"})

# Pillow formats those extensions name (its JPEG reader also returns multi-picture
# MPO files from cameras; HEIF is pillow-heif's, registered on first use).
FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "AVIF", "GIF", "HEIF")

MAX_PIXELS = 100_000_000
"""Default pixel limit: 100 megapixels (a 12,000 x 8,000 photo); larger files are
recorded as too large. ``LATENTPRESS_MAX_MEGAPIXELS`` changes it, up to
``PILLOW_CEILING``."""
PILLOW_CEILING = 2 * (2**28 // 3)
"""Pillow refuses images over twice its ``MAX_IMAGE_PIXELS`` (about 179 megapixels)."""
MAX_MEGAPIXELS_ENV = "LATENTPRESS_MAX_MEGAPIXELS"


def pixel_limit() -> int:
    """The configured pixel limit (``LATENTPRESS_MAX_MEGAPIXELS``, default ``MAX_PIXELS``)."""
    value = os.environ.get(MAX_MEGAPIXELS_ENV)
    if not value:
        return MAX_PIXELS
    try:
        pixels = round(float(value) * 1_000_000)
    except ValueError:
        raise ValueError(f"{MAX_MEGAPIXELS_ENV} must be a number of megapixels, got {value!r}") from None
    if not 1 <= pixels <= PILLOW_CEILING:
        raise ValueError(f"{MAX_MEGAPIXELS_ENV} must be in (0, {PILLOW_CEILING / 1e6:.0f}], got {value!r}")
    return pixels


_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


class ImageError(ValueError):
    """A file that is not a usable image; ``reason`` says why in a few words."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def has_image_extension(name: str) -> bool:
    """Whether ``name`` ends with one of :data:`IMAGE_EXTENSIONS` (any case)."""
    ext = posixpath.splitext(name)[1]
    return ext[1:].lower() in IMAGE_EXTENSIONS


def decode_image(data: bytes, name: str, max_pixels: int | None = None) -> np.ndarray:
    """Decode ``data`` to an upright ``(H, W, 3)`` uint8 RGB array.

    ``name`` only labels errors. Raises :class:`ImageError` for anything that is not
    a complete, supported image of at most ``max_pixels`` pixels (default: the
    configured limit, :func:`pixel_limit`).
    """
    return _decode(data, name, max_pixels, with_metadata=False)[0]


def read_image(data: bytes, name: str, max_pixels: int | None = None) -> tuple[np.ndarray, Metadata]:
    """:func:`decode_image`, and the photo's metadata (``infra.metadata``)."""
    return _decode(data, name, max_pixels, with_metadata=True)


def _decode(data: bytes, name: str, max_pixels: int | None, with_metadata: bool) -> tuple[np.ndarray, Metadata]:
    """The upright pixels and, if asked (else none), the metadata."""
    if not data:
        raise ImageError(name, "empty file")
    limit = pixel_limit() if max_pixels is None else max_pixels
    _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is ours
            img = Image.open(io.BytesIO(data), formats=FORMATS)
        with img:
            width, height = img.size
            if width * height > limit:
                raise ImageError(
                    name,
                    f"image too large: {width}x{height} = {width * height} pixels exceeds the limit of {limit}",
                )
            img.load()
            try:
                upright = ImageOps.exif_transpose(img)
            except Exception:  # noqa: BLE001 - unreadable EXIF: pixels as stored, the EXIF dropped
                upright = img
            return _to_rgb8(upright), read_metadata(img, upright) if with_metadata else Metadata()
    except ImageError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageError(name, "not a supported image (JPEG, PNG, WebP, TIFF, BMP, AVIF, GIF, HEIC)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(name, f"image too large: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure means bad input bytes
        raise ImageError(name, f"cannot decode: {exc or type(exc).__name__}") from exc


def count_frames(data: bytes) -> int:
    """Frames (or pages) of a readable image file: 1 for a still image."""
    _register_heif()
    with Image.open(io.BytesIO(data), formats=FORMATS) as img:
        return int(getattr(img, "n_frames", 1))


@cache
def _register_heif() -> None:
    """Teach Pillow HEIC and HEIF (once per process)."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow mode as 8-bit RGB (see the module docstring for the rules)."""
    if img.mode.startswith("I"):  # I;16 variants and 32-bit I
        wide = np.clip(np.asarray(img), 0, 65535).astype(np.uint32)
        grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        grey = np.rint(np.clip(np.asarray(img), 0.0, 1.0) * 255.0).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA")).astype(np.uint16)
        rgb, alpha = rgba[..., :3], rgba[..., 3:]
        out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
        return out.astype(np.uint8)
    return np.array(img.convert("RGB"))


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of an ``(H, W, 3)`` uint8 RGB array."""
    return encode_image(image, "png")


def output_format(fmt: str) -> tuple[str, dict]:
    """File extension and Pillow save options of an output format (``config.OUTPUT_FORMATS``)."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r} (known: {', '.join(OUTPUT_FORMATS)})")
    return OUTPUT_FORMATS[fmt]


def encode_image(image: np.ndarray, fmt: str, metadata: Metadata | None = None) -> bytes:
    """Bytes of an ``(H, W, 3)`` uint8 RGB array in output format ``fmt``, carrying
    ``metadata`` as far as the format can."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
    options = output_format(fmt)[1]
    if metadata is not None:
        options = options | save_options(metadata, options["format"])
    out = io.BytesIO()
    Image.fromarray(image).save(out, **options)
    return out.getvalue()
