"""The collection in append-only parts: a rerun writes only what changed, a crash while
writing loses and repeats nothing, shards once given stay, and the manifest no longer
grows with the collection."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.flows.archive import archive
from latentpress.flows.ingest import ingest
from latentpress.infra import collection
from latentpress.infra.collection import (
    Item,
    append_changes,
    archived_items,
    collection_parts,
    read_collection,
    write_collection,
)
from latentpress.pipeline.ingest import assign_shards
from latentpress.run import Run


def fake(n: int, source: str | None = None) -> Item:
    return Item(f"{n:016x}", source or f"s3://b/{n:03d}.jpg", f"{n:03d}.jpg", 8, 8, 100, "ok", None, None)


def test_photos_added_later_keep_earlier_shards_and_fill_the_last() -> None:
    first = assign_shards([fake(n) for n in range(0, 20, 2)], shard_size=4)  # 10 photos: shards 0, 0, ... 2
    assert [i.shard for i in first] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    later = assign_shards(first + [fake(n) for n in (1, 3, 5, 7)], 4, previous=first)  # ids sort between them
    shards = {i.image_id: i.shard for i in later}
    assert all(shards[i.image_id] == i.shard for i in first)  # nobody moved
    assert sorted(shards[fake(n).image_id] for n in (1, 3, 5, 7)) == [2, 2, 3, 3]  # shard 2 filled, then a new one
    assert assign_shards(later, 4, previous=later) == later
    copy = replace(first[0], source="s3://a/copy.jpg")  # sorts before the kept one
    moved = assign_shards([copy] + first, 4, previous=first)
    assert moved[:-1] == first and moved[-1].status == "duplicate"  # a later copy does not take its place


def test_a_rerun_appends_only_what_changed(tmp_path: Path) -> None:
    arch = str(tmp_path / "archive")
    items = [fake(n) for n in range(5)]
    assert append_changes(arch, [], items) is not None
    assert append_changes(arch, items, items) is None  # nothing changed: nothing written
    changed = [replace(items[0], name="renamed.jpg")] + items[1:4] + [fake(9)]  # one renamed, one gone, one new
    part = append_changes(arch, read_collection(arch), changed)
    written = collection.read_items(part)
    assert sorted(i.source for i in written) == sorted([items[0].source, items[4].source, fake(9).source])
    assert next(i for i in written if i.source == items[4].source).status == "removed"
    assert read_collection(arch) == sorted(changed, key=lambda i: (i.shard or 0, i.image_id))
    assert len(collection_parts(arch)) == 2


def test_a_collection_of_one_file_is_read_first(tmp_path: Path) -> None:
    arch = tmp_path / "archive"
    old = [fake(n) for n in range(3)]
    write_collection(str(arch / "collection.parquet"), old)  # as archives before 0.3 hold it
    assert read_collection(str(arch)) == old
    append_changes(str(arch), old, old[:2])
    assert read_collection(str(arch)) == old[:2]


def test_a_malformed_id_in_a_part_is_refused_by_name(tmp_path: Path) -> None:
    arch = tmp_path / "archive"
    append_changes(str(arch), [], [replace(fake(1), image_id="../../../etc")])
    with pytest.raises(ValueError, match=r"collection/part-.*malformed image id '../../../etc'"):
        read_collection(str(arch))


def _photos(folder: Path, kodak_crop: np.ndarray, count: int, start: int = 0) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(start, start + count):
        Image.fromarray(np.roll(kodak_crop, 7 * i, axis=0)[:40, :48]).save(folder / f"p{i}.png")


def test_an_ingest_killed_while_writing_its_part_loses_and_repeats_nothing(
    tmp_path: Path, kodak_crop: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos, arch = tmp_path / "photos", str(tmp_path / "archive")
    _photos(photos, kodak_crop, 4)
    first = ingest(Run(arch, source=str(photos), shard_size=2))
    _photos(photos, kodak_crop, 2, start=4)

    def killed(url: str, data: bytes) -> None:
        raise KeyboardInterrupt  # the process dies before the part is in place

    monkeypatch.setattr(collection.storage, "write_bytes_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest(Run(arch, source=str(photos), shard_size=2))
    monkeypatch.undo()
    assert read_collection(arch) == first and len(collection_parts(arch)) == 1
    again = ingest(Run(arch, source=str(photos), shard_size=2))
    assert len(again) == 6 and len({i.source for i in again}) == 6 and read_collection(arch) == again
    assert {i.image_id: i.shard for i in first}.items() <= {i.image_id: i.shard for i in again}.items()
    assert len(collection_parts(arch)) == 2
    assert (
        ingest(Run(arch, source=str(photos), shard_size=2)) == again and len(collection_parts(arch)) == 2
    )  # no-op: no part


def test_the_manifest_lists_no_images(tmp_path: Path, kodak_crop: np.ndarray) -> None:
    photos, arch = tmp_path / "photos", tmp_path / "archive"
    _photos(photos, kodak_crop, 3)
    assert archive(Run(str(arch), source=str(photos), codecs=["jpeg@50"])).ok
    manifest = json.loads((arch / "manifest.json").read_text())
    assert manifest["format"] == 2 and "items" not in manifest
    assert len(archived_items(str(arch))) == 3
