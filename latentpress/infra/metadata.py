"""A photo's metadata: read at ingest, stored once per image, written back on restore.

Four kinds are kept, as bytes, never interpreted beyond the checks below: EXIF
(capture date, camera, GPS ...; TIFF-structured), the ICC profile, XMP and IPTC-IIM.
Pixels are stored upright, so EXIF and XMP are taken as Pillow's
:func:`PIL.ImageOps.exif_transpose` leaves them: without an orientation ("normal"). A kind that is
too large, malformed, or (ICC) describes other colours than the RGB pixels stored is
dropped, with its reason recorded on the item; it never fails the image.

Stored as ``ARCHIVE/metadata/<image-id>.lpc``: a container of kind ``metadata``
(checksummed sections ``exif``, ``icc``, ``xmp``, ``iptc``, and ``image``, the id).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from PIL import Image, PngImagePlugin

from latentpress.infra.container import Container, ContainerError, pack, unpack

KINDS = ("exif", "icc", "xmp", "iptc")
MAX_BYTES = {"exif": 64 << 10, "icc": 4 << 20, "xmp": 1 << 20, "iptc": 64 << 10}
"""Largest metadata of each kind kept (EXIF and IPTC: what a JPEG segment holds)."""
_EXIF_PREFIX = b"Exif\x00\x00"
_IPTC_RESOURCE = 0x0404
"""Photoshop image resource that holds IPTC-IIM records (JPEG APP13)."""
_JPEG_SEGMENT = 65533
"""Most bytes of one JPEG marker segment's data."""


@dataclass(frozen=True)
class Metadata:
    """The kept metadata of one image (``None``: absent or dropped), and what was dropped."""

    exif: bytes | None = None
    """TIFF-structured EXIF, without the ``Exif\\0\\0`` prefix of a JPEG segment."""
    icc: bytes | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    """kind -> why it was not kept"""

    @property
    def kept(self) -> list[str]:
        return [kind for kind in KINDS if getattr(self, kind) is not None]

    def summary(self) -> str:
        """For the collection file: ``kept: exif, icc; dropped: xmp (why)`` ('' for none)."""
        parts = [f"kept: {', '.join(self.kept)}"] if self.kept else []
        if self.dropped:
            parts.append("dropped: " + ", ".join(f"{kind} ({why})" for kind, why in self.dropped.items()))
        return "; ".join(parts)


def read_metadata(original: Image.Image, upright: Image.Image) -> Metadata:
    """The metadata of a decoded photo: ``original`` as opened, ``upright`` as
    :func:`~PIL.ImageOps.exif_transpose` returned it (orientation normalised)."""
    found = {
        "exif": upright.info.get("exif"),
        "icc": original.info.get("icc_profile"),
        "xmp": upright.info.get("xmp") or upright.info.get("XML:com.adobe.xmp"),
        "iptc": _iptc(original),
    }
    kept, dropped = {}, {}
    for kind, value in found.items():
        if not value:
            continue
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        problem = f"{len(data)} bytes, over the limit of {MAX_BYTES[kind]}" if len(data) > MAX_BYTES[kind] else None
        if problem is None:
            data, problem = _CHECKS[kind](data)
        if problem is None:
            kept[kind] = data
        else:
            dropped[kind] = problem
    return Metadata(**kept, dropped=dropped)


def _exif(data: bytes) -> tuple[bytes, str | None]:
    data = data.removeprefix(_EXIF_PREFIX)
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return data, "not TIFF-structured EXIF"
    try:
        Image.Exif().load(_EXIF_PREFIX + data)
    except Exception as exc:  # noqa: BLE001 - any parse failure drops the EXIF
        return data, f"unreadable EXIF: {exc or type(exc).__name__}"
    return data, None


def _icc(data: bytes) -> tuple[bytes, str | None]:
    if len(data) < 128 or data[36:40] != b"acsp" or struct.unpack(">I", data[:4])[0] != len(data):
        return data, "not an ICC profile (bad header)"
    if data[16:20] != b"RGB ":
        return data, f"an ICC profile for {data[16:20].decode('latin-1').strip()} colours; pixels are stored as RGB"
    return data, None


def _xmp(data: bytes) -> tuple[bytes, str | None]:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data, "XMP that is not UTF-8"
    if b"<x:xmpmeta" not in data and b"<rdf:RDF" not in data:
        return data, "not an XMP packet"
    return data, None


def _iptc_check(data: bytes) -> tuple[bytes, str | None]:
    if data[:1] != b"\x1c":
        return data, "not IPTC-IIM records"
    return data, None


_CHECKS = {"exif": _exif, "icc": _icc, "xmp": _xmp, "iptc": _iptc_check}


def _iptc(image: Image.Image) -> bytes | None:
    """Raw IPTC-IIM records of a JPEG (Photoshop APP13) or a TIFF (tag 33723)."""
    resources = image.info.get("photoshop")
    if isinstance(resources, dict) and isinstance(resources.get(_IPTC_RESOURCE), bytes):
        return resources[_IPTC_RESOURCE]
    tags = getattr(image, "tag_v2", None)
    value = tags.get(33723) if tags is not None else None
    if isinstance(value, bytes):
        return value
    if isinstance(value, tuple) and all(isinstance(v, int) and 0 <= v < 256 for v in value):
        return bytes(value)
    return None


def pack_metadata(metadata: Metadata, image_id: str, width: int, height: int) -> bytes:
    """The metadata object of an image."""
    sections = {kind: getattr(metadata, kind) for kind in metadata.kept} | {"image": image_id.encode()}
    return pack(Container("metadata", "metadata", 1, "", width, height, sections))


def unpack_metadata(data: bytes, source: str, image_id: str) -> Metadata:
    """The metadata in a stored object; ``ContainerError`` if it is damaged or another image's."""
    container = unpack(data, source)
    if container.kind != "metadata" or container.sections.get("image") != image_id.encode():
        raise ContainerError(f"{source}: not the metadata of image {image_id}")
    return Metadata(**{kind: container.sections[kind] for kind in KINDS if kind in container.sections})


def save_options(metadata: Metadata, pillow_format: str) -> dict:
    """Pillow ``save`` options that write ``metadata`` into a file of ``pillow_format``
    (JPEG, PNG, WEBP, AVIF), as far as the format carries it: IPTC only in JPEG, and
    XMP or EXIF in JPEG only when they fit one segment."""
    options: dict = {}
    if metadata.icc is not None:
        options["icc_profile"] = metadata.icc
    if metadata.exif is not None and (pillow_format != "JPEG" or len(metadata.exif) + 6 <= _JPEG_SEGMENT):
        options["exif"] = _EXIF_PREFIX + metadata.exif
    xmp = metadata.xmp
    if xmp is not None and pillow_format == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"))
        options["pnginfo"] = info
    elif xmp is not None and (pillow_format != "JPEG" or len(xmp) + 29 <= _JPEG_SEGMENT):
        options["xmp"] = xmp
    if metadata.iptc is not None and pillow_format == "JPEG":
        options["extra"] = _app13(metadata.iptc)
    return options


def _app13(iptc: bytes) -> bytes:
    """A JPEG APP13 segment holding ``iptc`` as Photoshop resource 0x0404."""
    body = iptc + b"\x00" * (len(iptc) % 2)  # resource data is padded to even length
    resource = b"8BIM" + struct.pack(">H", _IPTC_RESOURCE) + b"\x00\x00" + struct.pack(">I", len(iptc)) + body
    data = b"Photoshop 3.0\x00" + resource
    if len(data) > _JPEG_SEGMENT:
        return b""
    return b"\xff\xed" + struct.pack(">H", len(data) + 2) + data
