"""Every entry under a source is accounted for: image files are read (GIF's first
frame, HEIC), everything else is recorded with its reason, and no entry (a link loop,
a FIFO, a link to /dev/zero, a name that is not UTF-8) stops or hangs the run."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.infra.collection import read_collection
from latentpress.infra.ledger import read_ledger
from latentpress.infra.listing import list_source

BIN = Path(sys.executable).parent / "latentpress"


@pytest.fixture
def every_kind(tmp_path: Path, kodak_crop: np.ndarray) -> Path:
    """A source with one entry of every kind (see ``EXPECTED``)."""
    from pillow_heif import from_bytes

    src = tmp_path / "source"
    (src / "folder.png").mkdir(parents=True)  # a folder named like an image: searched
    (src / ".thumbnails").mkdir()
    Image.fromarray(kodak_crop[:48, :64]).save(src / "photo.png")
    Image.fromarray(kodak_crop[48:96, :64]).save(src / "folder.png" / "inner.jpg", quality=90)
    frames = [Image.fromarray(kodak_crop[:32, i * 32 : i * 32 + 32]) for i in range(3)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])
    heif = from_bytes(mode="RGB", size=(64, 48), data=np.ascontiguousarray(kodak_crop[48:96, 64:128]).tobytes())
    heif.save(str(src / "phone.heic"), quality=90)
    Image.fromarray(kodak_crop[:16, :16]).save(src / ".hidden.png")
    Image.fromarray(kodak_crop[:16, :16]).save(src / ".thumbnails" / "t.png")
    (src / "notes.txt").write_text("not a photo")
    (src / "drawing.svg").write_text("<svg/>")
    (src / "layers.psd").write_bytes(b"8BPS" + bytes(40))
    os.symlink("loop.png", src / "loop.png")
    os.symlink("missing.png", src / "dangling.png")
    outside = tmp_path / "outside.png"
    Image.fromarray(kodak_crop[:16, :16]).save(outside)
    os.symlink(outside, src / "outside.png")
    os.symlink("/dev/zero", src / "zero.png")
    os.symlink(src / "folder.png", src / "linked-folder")
    os.symlink("photo.png", src / "same.png")  # a link inside the source: read (a duplicate)
    os.mkfifo(src / "pipe.png")
    with open(os.open(os.fsencode(src) + b"/caf\xe9.png", os.O_WRONLY | os.O_CREAT, 0o644), "wb") as handle:
        buffer = io.BytesIO()
        Image.fromarray(kodak_crop[:16, :16]).save(buffer, format="PNG")
        handle.write(buffer.getvalue())
    return src


EXPECTED = {
    "photo.png": ("ok", None),
    "folder.png/inner.jpg": ("ok", None),
    "anim.gif": ("ok", None),
    "phone.heic": ("ok", None),
    "same.png": ("duplicate", "same bytes as"),
    ".hidden.png": ("skipped", "hidden file"),
    ".thumbnails": ("skipped", "hidden folder"),
    "notes.txt": ("skipped", "not an image file (.txt"),
    "drawing.svg": ("skipped", "unsupported image format (.svg)"),
    "layers.psd": ("skipped", "unsupported image format (.psd)"),
    "loop.png": ("skipped", "symbolic link loop"),
    "dangling.png": ("skipped", "dangling symbolic link"),
    "outside.png": ("skipped", "symbolic link out of the source"),
    "zero.png": ("skipped", "symbolic link out of the source"),
    "linked-folder": ("skipped", "symbolic link to a folder"),
    "pipe.png": ("skipped", "not a regular file (a FIFO)"),
    "caf\\xe9.png": ("skipped", "name is not valid UTF-8"),
}


def test_listing_sorts_every_entry(every_kind: Path) -> None:
    listing = list_source(str(every_kind))
    read = {os.path.relpath(url, every_kind) for url in listing.files}
    assert read == {name for name, (status, _) in EXPECTED.items() if status in ("ok", "duplicate")}
    reasons = {s.name: s.reason for s in listing.skipped}
    assert set(reasons) == {name for name, (status, _) in EXPECTED.items() if status == "skipped"}
    for name, reason in reasons.items():
        assert EXPECTED[name][1] in reason, (name, reason)


def test_archive_accounts_for_every_file(every_kind: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    result = subprocess.run([str(BIN), "archive", str(every_kind), str(archive), "--codec", "jpeg@50", "--local"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "4 image(s) ok, 13 not archived" in result.stdout
    items = {item.name: item for item in read_collection(str(archive))}
    assert set(items) == set(EXPECTED)
    for name, (status, reason) in EXPECTED.items():
        assert items[name].status == status, (name, items[name])
        assert reason is None or reason in (items[name].error or ""), (name, items[name].error)
    assert items["anim.gif"].frames == 3 and items["photo.png"].frames is None
    assert "symbolic link loop" in result.stderr and "pipe.png" in result.stderr
    rows = read_ledger(str(archive / "ledger"))
    assert len(rows) == 4 and set(rows["status"]) == {"ok"}


def test_a_read_that_hangs_ends_that_file_in_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from latentpress.pipeline import ingest

    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading blocks until a writer comes
    monkeypatch.setattr(ingest, "READ_SECONDS", 0.5)
    item = ingest.inspect_image(str(tmp_path / "pipe.png"), str(tmp_path))
    assert item.status == "error" and "reading took longer than 0.5 s" in item.error
    with open(os.open(tmp_path / "pipe.png", os.O_WRONLY | os.O_NONBLOCK), "wb"):
        pass  # let the abandoned reader finish
