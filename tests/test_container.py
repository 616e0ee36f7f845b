"""Container format: round trips, every rejection rule, and the golden file."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from latentpress.codecs import DecodeContext, get_codec
from latentpress.infra.container import (
    FORMAT_VERSION,
    MAGIC,
    Container,
    ContainerError,
    pack,
    unpack,
)

GOLDEN = Path(__file__).parent / "golden" / "latent_q_v1.lpc"

# The golden file holds a 40x24 image container (VAE "taesd") whose payload is the
# latent-q stream, at step 0.5, of the (4, 3, 5) latent
# ((arange(60) * 37) % 23 - 11) / 7. It was written once and must keep decoding to
# these quantization indices (the decoded latent is 0.5 times them).
GOLDEN_INDICES = [
    [[-3, 1, -2, 2, 0], [-3, 1, -1, 3, 0], [-3, 1, -1, 3, 0]],
    [[-2, 2, -1, 3, 1], [-2, 2, -1, -3, 1], [-2, 2, 0, -3, 1]],
    [[-1, 3, 0, -3, 1], [-1, 3, 0, -2, 2], [-1, 3, 1, -2, 2]],
    [[-1, -3, 1, -2, 2], [0, -3, 1, -1, 3], [0, -3, 1, -1, 3]],
]


def _sample() -> Container:
    return Container(
        "image", "latent-q", 1, "taesd", 768, 512, {"config": b'{"quality": 0.5}', "payload": bytes(range(256)) * 3}
    )


def _raw(
    *,
    magic: bytes = MAGIC,
    version: int = FORMAT_VERSION,
    kind: int = 0,
    codec: bytes = b"latent-q",
    vae: bytes = b"taesd",
    width: int = 64,
    height: int = 48,
    sections: list[tuple[bytes, bytes]] | None = None,
    count: int | None = None,
) -> bytes:
    """Container bytes with free field values and valid checksums."""
    sections = [(b"payload", b"xyz")] if sections is None else sections
    header = (
        magic
        + struct.pack(">HBB", version, kind, len(codec))
        + codec
        + struct.pack(">HB", 1, len(vae))
        + vae
        + struct.pack(">IIH", width, height, len(sections) if count is None else count)
    )
    out = header + struct.pack(">I", zlib.crc32(header))
    for name, data in sections:
        prefix = bytes([len(name)]) + name + struct.pack(">I", len(data))
        out += prefix + struct.pack(">I", zlib.crc32(prefix + data)) + data
    return out


def test_round_trip() -> None:
    container = _sample()
    data = pack(container)
    assert data.startswith(MAGIC)
    assert unpack(data) == container
    assert list(unpack(data).sections) == ["config", "payload"]


def test_round_trip_of_model_container_and_edge_values() -> None:
    container = Container("model", "a_b-9", 65535, "vae ü", 0, 0, {"model": b""})
    assert unpack(pack(container)) == container
    empty = Container("image", "x", 0, "", 1, 2**20, {})
    assert unpack(pack(empty)) == empty


def test_raw_helper_matches_writer() -> None:
    expected = Container("image", "latent-q", 1, "taesd", 64, 48, {"payload": b"xyz"})
    assert _raw() == pack(expected)


@pytest.mark.parametrize(
    "data,match",
    [
        (_raw(magic=b"\x89PNG"), "bad magic"),
        (b"", "truncated"),
        (_raw(version=2), "unknown container format version 2"),
        (_raw(kind=3), "unknown kind"),
        (_raw(codec=b""), "bad codec name"),
        (_raw(codec=b"Bad Name"), "bad codec name"),
        (_raw(vae=b"\xff\xfe"), "not valid UTF-8"),
        (_raw(codec=b"\xe9t\xe9"), "bad codec name"),
        (_raw(width=0), "width 0"),
        (_raw(height=2**20 + 1), "height"),
        (_raw(count=65), "65 sections"),
        (_raw(count=2), "truncated"),
        (_raw(sections=[(b"a", b"1"), (b"a", b"2")]), "duplicate section 'a'"),
        (_raw(sections=[(b"Bad!", b"1")]), "bad section name"),
        (_raw() + b"\x00", "1 trailing bytes"),
    ],
)
def test_reader_rejects(data: bytes, match: str) -> None:
    with pytest.raises(ContainerError, match=match) as info:
        unpack(data, source="s3://bucket/x.lpc")
    assert str(info.value).startswith("s3://bucket/x.lpc: ")


def test_section_length_beyond_the_data_is_rejected_without_allocating() -> None:
    good = _raw()
    header_end = len(good) - (1 + 7 + 8 + 3)
    name_end = header_end + 1 + 7
    bad = good[:name_end] + struct.pack(">I", 2**32 - 1) + good[name_end + 4 :]
    with pytest.raises(ContainerError, match="section 'payload' data needs 4294967295 bytes"):
        unpack(bad)


def test_header_checksum_is_checked() -> None:
    data = bytearray(pack(_sample()))
    data[len(MAGIC) + 4] ^= 0x01  # a letter of the codec name
    with pytest.raises(ContainerError, match="header checksum"):
        unpack(bytes(data))


def test_section_checksum_is_checked() -> None:
    data = bytearray(pack(_sample()))
    data[-10] ^= 0x80
    with pytest.raises(ContainerError, match="section 'payload' checksum"):
        unpack(bytes(data), "x.lpc")


def test_every_truncation_is_rejected() -> None:
    data = pack(_sample())
    for size in range(len(data)):
        with pytest.raises(ContainerError, match="truncated"):
            unpack(data[:size])


def test_every_bit_flip_is_rejected() -> None:
    data = pack(Container("image", "c", 1, "v", 9, 9, {"p": b"ab"}))
    for i in range(len(data)):
        for bit in range(8):
            corrupt = bytearray(data)
            corrupt[i] ^= 1 << bit
            with pytest.raises(ContainerError):
                unpack(bytes(corrupt))


@pytest.mark.parametrize(
    "fields,match",
    [
        (dict(kind="picture"), "unknown kind"),
        (dict(codec="x" * 65), "bad codec name"),
        (dict(codec_version=70000), "codec version"),
        (dict(vae_id="v" * 256), "VAE id"),
        (dict(width=0), "width"),
        (dict(height=2**20 + 1), "height"),
        (dict(sections={f"s{i}": b"" for i in range(65)}), "sections"),
        (dict(sections={"": b""}), "section name"),
        (dict(sections={"p": "text"}), "bytes"),
    ],
)
def test_writer_rejects_invalid_containers(fields: dict, match: str) -> None:
    base = dict(kind="image", codec="c", codec_version=1, vae_id="", width=1, height=1, sections={})
    with pytest.raises(ContainerError, match=match):
        Container(**{**base, **fields})


def test_golden_file_still_decodes() -> None:
    data = GOLDEN.read_bytes()
    container = unpack(data, str(GOLDEN))
    assert (container.kind, container.codec, container.codec_version) == ("image", "latent-q", 1)
    assert (container.vae_id, container.width, container.height) == ("taesd", 40, 24)
    assert json.loads(container.sections["config"]) == {"codec": "latent-q", "preset": "default", "quality": 0.5}
    context = DecodeContext(container.width, container.height, container.vae_id)
    latent = get_codec(container.codec).decode(container.sections["payload"], context)
    expected = np.array(GOLDEN_INDICES, dtype=np.float32) * np.float32(0.5)
    assert latent.dtype == np.float32
    np.testing.assert_array_equal(latent, expected)
    assert pack(container) == data
