"""Ingest: listing, content ids, rejected and unreadable files, duplicates, shards,
the collection file."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.infra import storage
from latentpress.infra.collection import Item, content_id, read_items, write_collection
from latentpress.pipeline.ingest import assign_shards, inspect_image, list_images, reusable


def png(value: int, size: tuple[int, int] = (12, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (value, 255 - value, 7)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A small collection: nested folders, a duplicate, broken, hidden and other files."""
    root = tmp_path / "photos"
    (root / "2024" / "summer").mkdir(parents=True)
    (root / "a.png").write_bytes(png(10))
    (root / "2024" / "b.PNG").write_bytes(png(20, (30, 5)))
    (root / "2024" / "summer" / "c.png").write_bytes(png(30))
    (root / "2024" / "summer" / "copy-of-a.png").write_bytes(png(10))
    (root / "broken.jpg").write_bytes(png(40)[:50])
    (root / "empty.webp").write_bytes(b"")
    (root / "notes.txt").write_text("not a photo")
    (root / ".hidden.png").write_bytes(png(50))
    (root / "2024" / ".thumbnails").mkdir()
    (root / "2024" / ".thumbnails" / "b.png").write_bytes(png(60))
    return root


def test_content_id() -> None:
    assert content_id(b"abc") == "ba7816bf8f01cfea"
    assert content_id(png(1)) == content_id(png(1)) != content_id(png(2))


def test_list_images_recursive_by_extension(photos: Path) -> None:
    names = [Path(u).relative_to(photos).as_posix() for u in list_images(str(photos))]
    assert names == [
        "2024/b.PNG",
        "2024/summer/c.png",
        "2024/summer/copy-of-a.png",
        "a.png",
        "broken.jpg",
        "empty.webp",
    ]


def test_inspect_ok_item(photos: Path) -> None:
    item = inspect_image(str(photos / "2024" / "b.PNG"), str(photos))
    data = (photos / "2024" / "b.PNG").read_bytes()
    assert item == Item(
        content_id(data), str(photos / "2024" / "b.PNG"), "2024/b.PNG", 30, 5, len(data), "ok", None, None, metadata=""
    )  # read, and none there


def test_ids_stable_across_names_and_roots(photos: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "renamed.png"
    moved.parent.mkdir()
    shutil.copy(photos / "a.png", moved)
    a = inspect_image(str(photos / "a.png"), str(photos))
    b = inspect_image(str(moved), str(moved.parent))
    assert a.image_id == b.image_id and a.name == "a.png" and b.name == "renamed.png"


def test_bad_files_never_raise(photos: Path) -> None:
    broken = inspect_image(str(photos / "broken.jpg"), str(photos))
    assert broken.status == "rejected" and "broken.jpg" in broken.error
    assert broken.image_id == content_id(png(40)[:50]) and broken.nbytes == 50

    empty = inspect_image(str(photos / "empty.webp"), str(photos))
    assert empty.status == "rejected" and "empty file" in empty.error

    gone = inspect_image(str(photos / "vanished.png"), str(photos))  # read again next time
    assert gone.status == "error" and "FileNotFoundError" in gone.error
    assert gone.image_id.startswith("x") and len(gone.image_id) == 16
    assert gone.nbytes == 0 and gone.shard is None


def test_storage_errors_propagate(monkeypatch: pytest.MonkeyPatch, photos: Path) -> None:
    def lost(url: str) -> bytes:
        raise ConnectionError("connection reset")

    monkeypatch.setattr(storage, "read_bytes", lost)
    with pytest.raises(ConnectionError):
        inspect_image(str(photos / "a.png"), str(photos))


def fake(n: int, source: str | None = None, status: str = "ok") -> Item:
    return Item(
        f"{n:016x}", source or f"s3://b/{n}.jpg", f"{n}.jpg", 8, 8, 100, status, None if status == "ok" else "bad", None
    )


def test_shards_sized_sorted_and_deterministic() -> None:
    items = [fake(n) for n in np.random.default_rng(0).permutation(23)]
    out = assign_shards(items, shard_size=5)
    assert [i.image_id for i in out] == sorted(i.image_id for i in items)
    assert [i.shard for i in out] == [n // 5 for n in range(23)]
    assert out == assign_shards(list(reversed(items)), 5)
    assert assign_shards(out, 5) == out


def test_duplicates_and_failures_get_no_shard() -> None:
    kept, copy = fake(1, "s3://b/a.jpg"), fake(1, "s3://b/z.jpg")
    failed = fake(2, status="rejected")
    out = assign_shards([copy, failed, fake(3), kept], shard_size=1)
    by_source = {i.source: i for i in out}
    assert len(out) == 4
    assert by_source["s3://b/a.jpg"].status == "ok" and by_source["s3://b/a.jpg"].shard == 0
    dup = by_source["s3://b/z.jpg"]
    assert dup.status == "duplicate" and dup.shard is None and "s3://b/a.jpg" in dup.error
    assert by_source[failed.source] == failed
    assert [i.shard for i in out if i.status == "ok"] == [0, 1]
    with pytest.raises(ValueError):
        assign_shards(out, 0)


def test_ingest_and_parquet_round_trip(photos: Path, tmp_path: Path) -> None:
    items = assign_shards([inspect_image(u, str(photos)) for u in list_images(str(photos))], 2)
    statuses = sorted(i.status for i in items)
    assert statuses == ["duplicate", "ok", "ok", "ok", "rejected", "rejected"]
    url = str(tmp_path / "archive" / "collection.parquet")
    write_collection(url, items)
    assert read_items(url) == items


def test_collection_on_s3(s3_root: str, photos: Path) -> None:
    root = f"{s3_root}/photos"
    for path in sorted(photos.rglob("*")):
        if path.is_file():
            storage.write_bytes_atomic(f"{root}/{path.relative_to(photos).as_posix()}", path.read_bytes())
    urls = list_images(root)
    assert len(urls) == 6 and all(u.startswith(f"{root}/") for u in urls)
    items = assign_shards([inspect_image(u, root) for u in urls], 2)
    local = assign_shards([inspect_image(u, str(photos)) for u in list_images(str(photos))], 2)
    assert [(i.image_id, i.name, i.status, i.shard) for i in items] == [
        (i.image_id, i.name, i.status, i.shard) for i in local
    ]
    url = f"{s3_root}/archive/collection.parquet"
    write_collection(url, items)
    assert read_items(url) == items


def test_versions_change_with_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"one")
    first = list_images(str(tmp_path))
    os.utime(tmp_path / "a.png", ns=(1_000_000_000, 1_000_000_000))
    (tmp_path / "a.png").write_bytes(b"three")
    second = list_images(str(tmp_path))
    assert list(first) == list(second) and first != second
    assert second[str(tmp_path / "a.png")].startswith("5:")


def test_reusable_keeps_only_unchanged_files() -> None:
    previous = [
        Item("0" * 16, "s3://b/same.jpg", "same.jpg", 8, 8, 3, "ok", None, 0, "3:100", metadata=""),
        Item("1" * 16, "s3://b/changed.jpg", "changed.jpg", 8, 8, 3, "ok", None, 0, "3:100", metadata=""),
        Item("2" * 16, "s3://b/gone.jpg", "gone.jpg", 8, 8, 3, "ok", None, 0, "3:100", metadata=""),
        Item("6" * 16, "s3://b/no-metadata.jpg", "no-metadata.jpg", 8, 8, 3, "ok", None, 0, "3:100"),  # before 0.3
        Item("3" * 16, "s3://b/bad.jpg", "bad.jpg", 0, 0, 3, "rejected", "truncated", None, "3:100"),
        Item("4" * 16, "s3://b/old.jpg", "old.jpg", 8, 8, 3, "ok", None, 0, None),
        Item("x" + "5" * 15, "s3://b/locked.jpg", "locked.jpg", 0, 0, 0, "error", "PermissionError", None, "3:100"),
    ]
    listing = {
        "s3://b/bad.jpg": "3:100",
        "s3://b/changed.jpg": "4:200",
        "s3://b/locked.jpg": "3:100",
        "s3://b/new.jpg": "3:100",
        "s3://b/no-metadata.jpg": "3:100",
        "s3://b/old.jpg": "3:100",
        "s3://b/same.jpg": "3:100",
    }
    kept, todo = reusable(listing, previous)
    assert [i.source for i in kept] == ["s3://b/bad.jpg", "s3://b/same.jpg"]
    assert todo == [
        "s3://b/changed.jpg",
        "s3://b/locked.jpg",
        "s3://b/new.jpg",
        "s3://b/no-metadata.jpg",
        "s3://b/old.jpg",
    ]


def test_collections_of_earlier_versions_read_failed_as_error(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    old = Item("x" + "5" * 15, "/p/a.jpg", "a.jpg", 0, 0, 0, "failed", "cannot read", None, "3:100")
    url = tmp_path / "collection.parquet"
    pq.write_table(pa.Table.from_pylist([old.__dict__]), url)
    assert [i.status for i in read_items(str(url))] == ["error"]
