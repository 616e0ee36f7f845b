"""``restore --layout original``: the collection's folder tree and names back, made
safe against hostile names, in the format asked for; ``--layout ids`` as before."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.flows.archive import archive
from latentpress.flows.restore import restore
from latentpress.infra.collection import append_changes, read_collection
from latentpress.pipeline.restore_names import MAX_PART_BYTES, original_paths, safe_path
from latentpress.run import RestoreRun, Run

HOSTILE = ["../../escape.jpg", "/etc/passwd", "C:\\Windows\\win.ini", "a/../../b.png", "..", "", "CON.jpg",
           "sub/nul.tar.gz", "com1", "x\x00y.png", "tab\there.png", "trailing. ", "q" * 400 + ".jpg",
           "?<>|*:\".png", "a\\..\\..\\c.jpg"]  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_become_safe_relative_paths(name: str, tmp_path: Path) -> None:
    path = safe_path(name, ".png")
    assert path == "" or path.endswith(".png")
    parts = path.split("/") if path else []
    assert all(p and p not in (".", "..") and len(p.encode()) <= MAX_PART_BYTES for p in parts)
    assert not any(c in path for c in '\\:<>|?*"\x00\t')
    assert all(p.split(".")[0].casefold() not in ("con", "nul", "com1") for p in parts)
    assert (tmp_path / path).resolve().is_relative_to(tmp_path.resolve())


def test_collisions_are_resolved_the_same_way_whatever_the_order() -> None:
    names = {"a" * 16: "Photo.jpg", "b" * 16: "photo.png", "c" * 16: "photo.png/inside.jpg",
             "d" * 16: "dir/x.jpg", "e" * 16: "DIR/x.tif", "f" * 16: "../photo.jpg", "0" * 16: "aaaaaaaaaaaaaaaa.jpg"}  # fmt: skip
    paths = original_paths(names, ".png")
    assert len({p.casefold() for p in paths.values()}) == len(names)
    for _ in range(5):  # the manifest's order does not matter
        shuffled = list(names.items())
        random.shuffle(shuffled)
        assert original_paths(dict(shuffled), ".png") == paths
    files = {p.casefold() for p in paths.values()}
    folders = {p.casefold().rsplit("/", n)[0] for p in paths.values() for n in range(1, p.count("/") + 1)}
    assert not files & folders  # no image needs a folder where another is a file
    assert paths["f" * 16] == "photo.png"  # "../photo.jpg" sorts first and keeps the name
    assert paths["a" * 16] == "Photo.aaaaaaaa.png" and paths["b" * 16] == "photo.bbbbbbbb.png"
    assert paths["c" * 16] == "cccccccccccccccc.png"  # its folder "photo.png" is a file
    assert paths["0" * 16] == "aaaaaaaaaaaaaaaa.png"
    assert {paths["d" * 16], paths["e" * 16]} == {"DIR/x.png", "dir/x.dddddddd.png"}


def _collection(folder: Path, kodak_crop: np.ndarray) -> dict[str, np.ndarray]:
    """A small tree of photos: relative name -> pixels."""
    photos = {"top.png": kodak_crop[:64, :64], "trip/day 1/beach.jpg": kodak_crop[32:, :80],
              "trip/day 1/beach.png": kodak_crop[:, 40:], "trip/Day 2/x.webp": kodak_crop[8:72, 8:72]}  # fmt: skip
    for name, pixels in photos.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name, quality=95, lossless=True)
    return photos


@pytest.mark.e2e
def test_the_collection_comes_back_as_it_was(tmp_path: Path, kodak_crop: np.ndarray) -> None:
    photos = tmp_path / "photos"
    sources = _collection(photos, kodak_crop)
    arch = str(tmp_path / "archive")
    assert archive(Run(arch, source=str(photos), codecs=["jpeg@60"])).ok
    out = tmp_path / "out"
    result = restore(RestoreRun(arch, str(out)))
    assert {o.status for o in result.stages["restore"]} == {"ok"}
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    beach = sorted(n for n in written if n.startswith("trip/day 1/"))  # beach.jpg and beach.png: one renamed
    assert len(beach) == 2 and "trip/day 1/beach.png" in beach
    assert re.fullmatch(r"trip/day 1/beach\.[0-9a-f]{8}\.png", next(n for n in beach if n != "trip/day 1/beach.png"))
    assert set(written) == {"restored.csv", "top.png", "trip/Day 2/x.png", *beach}
    for name in ("top.png", "trip/Day 2/x.png"):
        source = next(v for k, v in sources.items() if k.rsplit(".", 1)[0] == name.rsplit(".", 1)[0])
        with Image.open(out / name) as img:
            assert img.format == "PNG" and img.size == source.shape[1::-1]
            assert np.abs(np.asarray(img, np.int16) - source).mean() < 8  # jpeg@60 of that photo

    again = restore(RestoreRun(arch, str(out)))  # a rerun keeps what is there
    assert {o.cached for o in again.stages["restore"]} == {True}

    as_jpeg = restore(RestoreRun(arch, str(tmp_path / "jpeg"), fmt="jpeg"))
    for outcome in as_jpeg.stages["restore"]:
        with Image.open(outcome.path) as img:
            assert img.format == "JPEG" and outcome.path.endswith(".jpg")


@pytest.mark.e2e
def test_hostile_names_in_a_collection_never_leave_the_output_folder(tmp_path: Path, kodak_crop: np.ndarray) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        Image.fromarray(np.roll(kodak_crop, 9 * i, axis=1)[:48, :48]).save(photos / f"p{i}.png")
    arch = tmp_path / "archive"
    assert archive(Run(str(arch), source=str(photos), codecs=["jpeg@60"])).ok
    items = read_collection(str(arch))
    hostile = ["../../escape.png", "/tmp/absolute.png", "NUL.png", "..\\..\\w.png"]
    append_changes(str(arch), items, [replace(i, name=n) for i, n in zip(items, hostile, strict=True)])
    sandbox = tmp_path / "sandbox"
    out = sandbox / "out"
    out.mkdir(parents=True)
    result = restore(RestoreRun(str(arch), str(out)))
    assert [o.status for o in result.stages["restore"]] == ["ok"] * 4
    outside = [p for p in sandbox.rglob("*") if p.is_file() and not p.is_relative_to(out)]
    assert outside == [] and not (tmp_path / "escape.png").exists() and not Path("/tmp/absolute.png").exists()
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert names == ["_NUL.png", "escape.png", "tmp/absolute.png", "w.png"]


@pytest.mark.e2e
def test_the_original_layout_restores_one_configuration(tmp_path: Path, kodak_crop: np.ndarray) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(kodak_crop[:64, :64]).save(photos / "one.png")
    arch = str(tmp_path / "archive")
    assert archive(Run(arch, source=str(photos), codecs=["jpeg@40,80"])).ok
    with pytest.raises(ValueError, match="one configuration per image; choose one"):
        restore(RestoreRun(arch, str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()
    chosen = restore(RestoreRun(arch, str(tmp_path / "out"), configs=["jpeg.default.q80"]))
    assert [(o.status, Path(o.path).name) for o in chosen.stages["restore"]] == [("ok", "one.png")]
    both = restore(RestoreRun(arch, str(tmp_path / "ids"), layout="ids"))
    assert sorted(str(Path(o.path).relative_to(tmp_path / "ids").parent) for o in both.stages["restore"]) == [
        "jpeg.default.q40",
        "jpeg.default.q80",
    ]
