"""Metadata kept: EXIF (dates, camera, GPS), ICC, XMP and IPTC read at ingest, stored
once per image, written back by ``restore`` into JPEG, PNG, WebP and AVIF files with
the orientation normalised; bad or oversized metadata is dropped with a reason."""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from latentpress.flows.archive import archive
from latentpress.flows.restore import restore
from latentpress.infra.collection import read_collection
from latentpress.infra.fixity import read as read_fixity
from latentpress.infra.metadata import MAX_BYTES, Metadata, read_metadata, save_options
from latentpress.run import RestoreRun, Run

TAKEN = "2019:07:14 10:22:33"
IPTC = b"\x1c\x02\x00\x00\x02\x00\x04" + b"\x1c\x02\x78\x00\x0bHat, beach."  # version, caption
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'tiff:Orientation="6"><dc:creator>Ann Archivist</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>'
)


def camera_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "EOS 5D", orientation  # make, model, orientation
    exif.get_ifd(0x8769)[0x9003] = TAKEN  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 31.0, 12.5), "E", (13.0, 24.0, 0.0)
    return exif.tobytes()


def app13(iptc: bytes) -> bytes:
    """A Photoshop APP13 segment with IPTC records, as cameras and editors write it."""
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc + b"\x00" * (len(iptc) % 2)
    data = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + struct.pack(">H", len(data) + 2) + data


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, kodak_crop: np.ndarray) -> Path:
    root = tmp_path_factory.mktemp("metadata") / "photos"
    (root / "2019" / "summer").mkdir(parents=True)
    (root / "2020").mkdir()
    photo = Image.fromarray(kodak_crop[:96, :128])  # stored landscape, shown portrait (orientation 6)
    photo.save(
        root / "2019" / "summer" / "beach.jpg",
        quality=95,
        exif=camera_exif(6),
        icc_profile=SRGB,
        xmp=XMP,
        extra=app13(IPTC),
    )
    photo.save(root / "2020" / "plain.png", exif=camera_exif(1), icc_profile=SRGB)
    huge = PngImagePlugin.PngInfo()
    huge.add_itxt("XML:com.adobe.xmp", XMP.replace(b"</x:xmpmeta>", b" " * MAX_BYTES["xmp"] + b"</x:xmpmeta>").decode())
    photo.save(root / "2020" / "bad.png", exif=b"Exif\x00\x00this is no TIFF", pnginfo=huge)
    return root


@pytest.fixture(scope="module")
def archived(collection: Path) -> Path:
    arch = collection.parent / "archive"
    assert archive(Run(str(arch), source=str(collection), codecs=["jpeg@60"])).ok
    return arch


def read_back(path: Path) -> tuple[Image.Image, Metadata]:
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
    return image, read_metadata(image, image)


def test_ingest_keeps_what_is_good_and_says_what_it_dropped(archived: Path) -> None:
    items = {item.name: item for item in read_collection(str(archived))}
    assert items["2019/summer/beach.jpg"].metadata == "kept: exif, icc, xmp, iptc"
    assert (items["2019/summer/beach.jpg"].width, items["2019/summer/beach.jpg"].height) == (96, 128)  # upright
    assert items["2020/plain.png"].metadata == "kept: exif, icc"
    bad = items["2020/bad.png"]
    assert bad.status == "ok" and bad.metadata.startswith("dropped: ")
    assert (
        "exif (not TIFF-structured EXIF)" in bad.metadata
        and "xmp (" in bad.metadata
        and "over the limit" in bad.metadata
    )
    stored = [p for p in read_fixity(str(archived)) if p.startswith("metadata/")]
    assert sorted(stored) == sorted(
        f"metadata/{items[n].image_id}.lpc" for n in ("2019/summer/beach.jpg", "2020/plain.png")
    )


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_restore_writes_the_metadata_back(archived: Path, tmp_path: Path, fmt: str) -> None:
    result = restore(RestoreRun(str(archived), str(tmp_path / "out"), fmt=fmt))
    assert {o.status for o in result.stages["restore"]} == {"ok"}
    ext = {"jpeg": "jpg"}.get(fmt, fmt)
    image, meta = read_back(tmp_path / "out" / "2019" / "summer" / f"beach.{ext}")
    assert image.size == (96, 128)
    exif = image.getexif()
    assert (exif[0x010F], exif[0x0110]) == ("Canon", "EOS 5D") and exif.get(0x0112, 1) == 1  # upright now
    assert exif.get_ifd(0x8769)[0x9003] == TAKEN
    gps = exif.get_ifd(0x8825)
    assert gps[1] == "N" and [float(v) for v in gps[2]] == [52.0, 31.0, 12.5] and gps[3] == "E"
    assert meta.icc == SRGB
    assert meta.xmp is not None and b"<dc:creator>Ann Archivist</dc:creator>" in meta.xmp
    assert not re.search(rb"tiff:Orientation(=\"|>)[2-8]", meta.xmp)  # a viewer must not turn it again
    assert meta.iptc == (IPTC if fmt == "jpeg" else None)  # only JPEG carries IPTC-IIM
    plain, plain_meta = read_back(tmp_path / "out" / "2020" / f"plain.{ext}")
    assert plain_meta.icc == SRGB and plain.getexif()[0x010F] == "Canon" and plain_meta.xmp is None
    _, none = read_back(tmp_path / "out" / "2020" / f"bad.{ext}")
    assert none.kept == []


def test_an_icc_profile_for_other_colours_is_dropped() -> None:
    cmyk = bytearray(SRGB)
    cmyk[16:20] = b"CMYK"
    image = Image.new("RGB", (8, 8))
    image.info["icc_profile"] = bytes(cmyk)
    meta = read_metadata(image, image)
    assert meta.icc is None and "CMYK" in meta.dropped["icc"]


def test_a_damaged_metadata_object_restores_the_image_without_it(archived: Path, tmp_path: Path) -> None:
    import shutil

    arch = tmp_path / "archive"
    shutil.copytree(archived, arch)
    stored = next((arch / "metadata").glob("*.lpc"))
    stored.write_bytes(stored.read_bytes()[:-2] + b"\x00\x00")
    result = restore(RestoreRun(str(arch), str(tmp_path / "out")))
    outcome = next(o for o in result.stages["restore"] if o.image_id == stored.stem)
    assert outcome.status == "ok" and "restored without its metadata" in outcome.reason
    assert "restored without its metadata" in (tmp_path / "out" / "restored.csv").read_text()


def test_jpeg_segments_bound_what_a_jpeg_carries() -> None:
    big = Metadata(exif=b"II*\x00" + b"\x00" * 70_000, xmp=b"<x:xmpmeta>" + b" " * 70_000, iptc=b"\x1c" * 70_000)
    assert save_options(big, "JPEG").keys() <= {"extra"} and save_options(big, "JPEG").get("extra", b"") == b""
    assert {"exif", "xmp"} <= save_options(big, "WEBP").keys()


def test_images_archived_before_metadata_was_kept_are_read_once_more(
    archived: Path, collection: Path, tmp_path: Path, monkeypatch
) -> None:
    import shutil
    from dataclasses import replace

    from latentpress.flows.ingest import ingest
    from latentpress.infra.collection import write_collection

    arch = tmp_path / "archive"
    shutil.copytree(archived, arch)
    shutil.rmtree(arch / "metadata")
    earlier = [replace(item, metadata=None) for item in read_collection(str(arch))]
    shutil.rmtree(arch / "collection")
    write_collection(str(arch / "collection.parquet"), earlier)  # as 0.2 wrote it: one file
    items = {item.name: item for item in ingest(Run(str(arch), source=str(collection)))}
    assert items["2019/summer/beach.jpg"].metadata == "kept: exif, icc, xmp, iptc"
    assert len(list((arch / "metadata").glob("*.lpc"))) == 2
    monkeypatch.setattr("latentpress.pipeline.ingest.read_image", lambda *a: pytest.fail("read again"))
    again = ingest(Run(str(arch), source=str(collection)))  # now nothing is read again
    assert {item.name: item for item in again} == items
