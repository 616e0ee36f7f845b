"""The container wrapping every stored object: versioned, checksummed sections.

Layout (big endian; see docs/format.md): magic, format version, kind, codec name and
version, VAE id, width, height, section count, CRC32 of the header; then per section
its name, data length, CRC32 (of name, length and data) and the data, so a checksum
covers every byte. The reader checks every length
against the bytes it has before slicing, so bad input never causes a large allocation.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import NoReturn

MAGIC = b"\x89LPC"
FORMAT_VERSION = 1
KINDS = ("image", "model", "metadata")
"""Kind names, in the order of their code in the header (0 image, 1 shared model, 2 an
image's metadata)."""
MAX_SIDE = 1 << 20
MAX_SECTIONS = 64

_NAME = re.compile(r"^[a-z0-9_-]{1,64}\Z")
_U8, _U16, _U32 = struct.Struct(">B"), struct.Struct(">H"), struct.Struct(">I")


class ContainerError(ValueError):
    """A container that cannot be written or read."""


@dataclass(frozen=True)
class Container:
    """One stored object. Image and metadata containers have width and height in
    ``[1, 2**20]``; shared-model containers describe no image and may have them 0."""

    kind: str
    codec: str
    codec_version: int
    vae_id: str
    width: int
    height: int
    sections: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ContainerError(f"unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        if not _NAME.match(self.codec):
            raise ContainerError(f"bad codec name {self.codec!r} (want 1-64 of [a-z0-9_-])")
        if not 0 <= self.codec_version < 1 << 16:
            raise ContainerError(f"codec version {self.codec_version} not in [0, 65535]")
        if len(self.vae_id.encode("utf-8")) > 255:
            raise ContainerError("VAE id longer than 255 UTF-8 bytes")
        low = 0 if self.kind == "model" else 1
        for side, value in (("width", self.width), ("height", self.height)):
            if not low <= value <= MAX_SIDE:
                raise ContainerError(f"{self.kind} {side} {value} not in [{low}, {MAX_SIDE}]")
        if len(self.sections) > MAX_SECTIONS:
            raise ContainerError(f"{len(self.sections)} sections (at most {MAX_SECTIONS})")
        for name, data in self.sections.items():
            if not _NAME.match(name):
                raise ContainerError(f"bad section name {name!r} (want 1-64 of [a-z0-9_-])")
            if not isinstance(data, bytes) or len(data) >= 1 << 32:
                raise ContainerError(f"section {name!r} must be bytes shorter than 4 GiB")


def pack(container: Container) -> bytes:
    """Serialise ``container``."""
    codec = container.codec.encode("ascii")
    vae = container.vae_id.encode("utf-8")
    header = b"".join(
        [
            MAGIC,
            _U16.pack(FORMAT_VERSION),
            _U8.pack(KINDS.index(container.kind)),
            _U8.pack(len(codec)),
            codec,
            _U16.pack(container.codec_version),
            _U8.pack(len(vae)),
            vae,
            _U32.pack(container.width),
            _U32.pack(container.height),
            _U16.pack(len(container.sections)),
        ]
    )
    parts = [header, _U32.pack(zlib.crc32(header))]
    for name, data in container.sections.items():
        prefix = _U8.pack(len(name)) + name.encode("ascii") + _U32.pack(len(data))
        parts += [prefix, _U32.pack(zlib.crc32(data, zlib.crc32(prefix))), data]
    return b"".join(parts)


def unpack(data: bytes, source: str = "") -> Container:
    """Parse and verify a container; ``source`` (a URL or path) names it in errors."""
    reader = _Reader(bytes(data), source)
    if reader.take(len(MAGIC), "magic") != MAGIC:
        reader.fail("not a latentpress container (bad magic bytes)")
    version = reader.u16("format version")
    if version != FORMAT_VERSION:
        reader.fail(f"unknown container format version {version} (this reader knows {FORMAT_VERSION})")
    kind = reader.u8("kind")
    codec = reader.take(reader.u8("codec name length"), "codec name")
    codec_version = reader.u16("codec version")
    vae = reader.take(reader.u8("VAE id length"), "VAE id")
    width, height = reader.u32("width"), reader.u32("height")
    count = reader.u16("section count")
    header_end = reader.pos
    if reader.u32("header checksum") != zlib.crc32(reader.data[:header_end]):
        reader.fail("header checksum mismatch (corrupt header)")
    if kind >= len(KINDS):
        reader.fail(f"unknown kind code {kind}")
    if count > MAX_SECTIONS:
        reader.fail(f"{count} sections (at most {MAX_SECTIONS})")
    sections: dict[str, bytes] = {}
    for _ in range(count):
        start = reader.pos
        name = reader.take(reader.u8("section name length"), "section name").decode("ascii", "replace")
        label = f"section {name!r}"
        length = reader.u32(f"{label} length")
        prefix = reader.data[start : reader.pos]
        checksum = reader.u32(f"{label} checksum")
        body = reader.take(length, f"{label} data")
        if zlib.crc32(body, zlib.crc32(prefix)) != checksum:
            reader.fail(f"{label} checksum mismatch (corrupt data)")
        if name in sections:
            reader.fail(f"duplicate {label}")
        sections[name] = body
    if reader.pos != len(reader.data):
        reader.fail(f"{len(reader.data) - reader.pos} trailing bytes after the last section")
    try:
        vae_id = vae.decode("utf-8")
    except UnicodeDecodeError:
        reader.fail("VAE id is not valid UTF-8")
    try:
        return Container(KINDS[kind], codec.decode("ascii", "replace"), codec_version, vae_id, width, height, sections)
    except ContainerError as exc:
        reader.fail(str(exc))


class _Reader:
    """Bounds-checked cursor over the container bytes."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source or "<bytes>"

    def fail(self, problem: str) -> NoReturn:
        raise ContainerError(f"{self.source}: {problem}")

    def take(self, size: int, what: str) -> bytes:
        if size > len(self.data) - self.pos:
            self.fail(f"truncated: {what} needs {size} bytes at offset {self.pos}, {len(self.data) - self.pos} left")
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def u8(self, what: str) -> int:
        return _U8.unpack(self.take(1, what))[0]

    def u16(self, what: str) -> int:
        return _U16.unpack(self.take(2, what))[0]

    def u32(self, what: str) -> int:
        return _U32.unpack(self.take(4, what))[0]
