"""Fixity: every writing run records the SHA-256 of every archive object, and
``latentpress verify`` finds flipped bytes, deleted and extra objects, damaged
containers, and (``--decode``) containers that no longer decode."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from latentpress.cli import main
from latentpress.flows.archive import archive
from latentpress.infra.fixity import FIXITY_NAME, PARTS_FOLDER, read, sha256
from latentpress.pipeline.verify import verify
from latentpress.run import Run


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory, kodak_dir: Path) -> Path:
    """A finished archive of three small photos in a folder tree, with webp and latent-q."""
    root = tmp_path_factory.mktemp("fixity")
    photos = root / "photos"
    (photos / "trip").mkdir(parents=True)
    for n, name in ((1, "a.png"), (3, "trip/b.png"), (5, "trip/c.jpg")):
        with Image.open(kodak_dir / f"kodim0{n}.png") as img:
            img.convert("RGB").crop((200, 100, 392, 228)).save(photos / name)
    result = archive(Run(str(root / "archive"), source=str(photos), codecs=["webp@40", "latent-q@1"]))
    assert result.ok, result.errors
    return root / "archive"


@pytest.fixture
def copy(archived: Path, tmp_path: Path) -> Path:
    """A private copy of the archive to damage."""
    out = tmp_path / "archive"
    shutil.copytree(archived, out)
    return out


def test_every_object_is_recorded_in_bagit_manifest_format(archived: Path) -> None:
    digests = read(str(archived))
    stored = sorted(str(p.relative_to(archived)) for p in archived.rglob("*") if p.is_file())
    assert sorted(digests) == [p for p in stored if p != FIXITY_NAME]
    assert {p.split("/")[0] for p in digests} >= {"images", "latents", "ledger", "manifest.json", "collection"}
    for path, digest in digests.items():
        assert sha256((archived / path).read_bytes()) == digest
    lines = (archived / FIXITY_NAME).read_text().splitlines()
    assert lines == sorted(lines, key=lambda line: line[66:]) and all(line[64:66] == "  " for line in lines)
    # the format GNU sha256sum reads: the archive checks without latentpress
    checked = subprocess.run(
        ["sha256sum", "--check", "--strict", "--quiet", FIXITY_NAME], cwd=archived, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_intact_archive_verifies_and_decodes(archived: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["verify", str(archived)]) == 0
    assert "is intact" in capsys.readouterr().out
    result = verify(str(archived), decode=True)
    assert result.intact and result.decoded == 6  # 3 photos x 2 configurations, decoded to pixels


def test_a_flipped_byte_a_deleted_and_an_extra_object_are_named(copy: Path, capsys: pytest.CaptureFixture) -> None:
    container = next((copy / "images" / "webp.default.q40").glob("*.lpc"))
    data = bytearray(container.read_bytes())
    data[len(data) // 2] ^= 0x01
    container.write_bytes(bytes(data))
    part = next((copy / "ledger").rglob("*.parquet"))
    part.unlink()
    (copy / "images" / "notes.txt").write_text("not ours")

    assert main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err
    relative = lambda p: str(p.relative_to(copy))  # noqa: E731
    assert f"damaged: {relative(container)}: SHA-256 differs" in err
    assert f"missing: {relative(part)}" in err
    assert "extra: images/notes.txt" in err
    assert "1 damaged" in err and "1 missing" in err and "1 extra" in err


def test_a_damaged_container_with_a_matching_record_is_named(copy: Path) -> None:
    """A container damaged before it was recorded: its own checksums catch it."""
    container = next((copy / "images" / "latent-q.default.q1").glob("*.lpc"))
    data = bytearray(container.read_bytes())
    data[-3] ^= 0xFF
    container.write_bytes(bytes(data))
    record = (copy / FIXITY_NAME).read_text()
    path = str(container.relative_to(copy))
    old = read(str(copy))[path]
    (copy / FIXITY_NAME).write_text(record.replace(f"{old}  {path}", f"{sha256(bytes(data))}  {path}"))
    result = verify(str(copy))
    assert not result.intact and [p for p, _ in result.fixity.damaged] == [path]


def test_damage_between_runs_stays_visible_after_the_next_run(copy: Path, archived: Path) -> None:
    stats = next((copy / "images" / "webp.default.q40").glob("*.json"))
    stats.write_text(stats.read_text().replace('"encode_seconds"', '"encode_secondz"'))
    hour_ago = time.time() - 3600  # damage keeps the old time (bit rot), or is older than the run
    os.utime(stats, (hour_ago, hour_ago))
    photos = archived.parent / "photos"
    assert archive(
        Run(str(copy), source=str(photos), codecs=["webp@40", "latent-q@1"])
    ).ok  # a rerun records fixity again
    result = verify(str(copy))
    assert [p for p, _ in result.fixity.damaged] == [str(stats.relative_to(copy))]


def test_a_failed_run_records_what_it_wrote(copy: Path, archived: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import latentpress.flows.archive as archive_flow

    finish = archive_flow.finish_compression

    def finish_then_fail(*args, **kwargs) -> None:  # the manifest and containers are written, then the run dies
        finish(*args, **kwargs)
        raise RuntimeError("storage went away")

    monkeypatch.setattr(archive_flow, "finish_compression", finish_then_fail)
    with pytest.raises(RuntimeError, match="storage went away"):
        archive(Run(str(copy), source=str(archived.parent / "photos"), codecs=["webp@20"]))
    assert "webp.default.q20" in (copy / "manifest.json").read_text()
    assert verify(str(copy)).intact  # its new containers and new manifest are neither extra nor damage


def test_a_killed_runs_writes_are_recorded_by_the_run_that_takes_over(copy: Path, archived: Path) -> None:
    killed_at = time.time() - 600  # a run started ten minutes ago, then SIGKILLed: its lease went stale
    lease = {"command": "archive", "host": socket.gethostname() + "-gone", "pid": 1, "token": "0" * 16,
             "started": killed_at, "renewed": killed_at}  # fmt: skip
    (copy / "lease.json").write_text(json.dumps(lease))
    manifest = copy / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"vae"', '"vae" ', 1))  # what the killed run wrote
    os.utime(manifest, (killed_at + 60, killed_at + 60))
    assert archive(Run(str(copy), source=str(archived.parent / "photos"), codecs=["webp@40", "latent-q@1"])).ok
    assert verify(str(copy)).intact and not (copy / "lease.json").exists()


def test_a_no_op_rerun_writes_no_record(copy: Path, archived: Path) -> None:
    record = copy / FIXITY_NAME
    before = (record.read_bytes(), record.stat().st_mtime_ns)
    assert archive(Run(str(copy), source=str(archived.parent / "photos"), codecs=["webp@40", "latent-q@1"])).ok
    assert (record.read_bytes(), record.stat().st_mtime_ns) == before and verify(str(copy)).intact
    assert not (copy / PARTS_FOLDER).exists()


def test_a_run_appends_a_part_with_only_what_it_wrote(copy: Path, archived: Path) -> None:
    record = copy / FIXITY_NAME
    before, earlier = record.read_bytes(), read(str(copy))
    photos = archived.parent / "photos"
    assert archive(Run(str(copy), source=str(photos), codecs=["webp@20"])).ok
    digests = read(str(copy))
    new = [p for p in digests if p.startswith("images/webp.default.q20/")]
    assert len(new) == 6  # three containers and their statistics
    assert record.read_bytes() == before  # the whole record is not rewritten
    [part] = (copy / PARTS_FOLDER).iterdir()
    lines = dict(line.split("  ")[::-1] for line in part.read_text().splitlines())
    assert set(new) <= set(lines) and len(lines) < len(digests) // 2  # the new objects, the manifest, new ledger rows
    assert all(earlier.get(path) != digest for path, digest in lines.items())
    assert verify(str(copy)).intact


def test_parts_fold_into_the_record_and_a_killed_fold_reads_the_same(
    copy: Path, archived: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from latentpress.infra import fixity, storage

    photos = archived.parent / "photos"
    for quality in (20, 30):
        assert archive(Run(str(copy), source=str(photos), codecs=[f"webp@{quality}"])).ok
    assert len(list((copy / PARTS_FOLDER).iterdir())) == 2
    (copy / "ledger" / "notes.txt").write_text("gone soon")
    assert archive(Run(str(copy), source=str(photos), codecs=["webp@20"])).ok  # records the new file in a third part
    (copy / "ledger" / "notes.txt").unlink()
    expected = {p: d for p, d in read(str(copy)).items() if p != "ledger/notes.txt"}

    def killed(url: str) -> None:  # the fold dies after writing the record, before removing a part
        raise OSError("killed")

    monkeypatch.setattr(fixity, "FOLD_PARTS", 4)
    monkeypatch.setattr(storage, "remove", killed)
    with pytest.raises(OSError, match="killed"):
        fixity.record(str(copy), time.time())
    assert read(str(copy)) == expected and len(list((copy / PARTS_FOLDER).iterdir())) == 4
    monkeypatch.undo()
    fixity.record(str(copy), time.time(), fold=True)
    assert not list((copy / PARTS_FOLDER).iterdir()) and read(str(copy)) == expected and verify(str(copy)).intact
    checked = subprocess.run(
        ["sha256sum", "--check", "--strict", "--quiet", FIXITY_NAME], cwd=copy, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_malformed_part_is_named(copy: Path, archived: Path) -> None:
    assert archive(Run(str(copy), source=str(archived.parent / "photos"), codecs=["webp@20"])).ok
    [part] = (copy / PARTS_FOLDER).iterdir()
    part.write_text(part.read_text() + "not a digest  images/x.lpc\n")
    with pytest.raises(ValueError, match=f"{part.name}, line"):
        read(str(copy))


def test_verify_without_a_record_says_which_run_writes_one(copy: Path, capsys: pytest.CaptureFixture) -> None:
    (copy / FIXITY_NAME).unlink()
    assert main(["verify", str(copy)]) == 1
    assert "no fixity record" in capsys.readouterr().err


def test_fixity_on_s3(s3_root: str, archived: Path) -> None:
    """On an object store: modification times are the store's, extra and changed objects are found."""
    from latentpress.infra import storage

    photos = archived.parent / "photos"
    assert archive(Run(s3_root, source=str(photos), codecs=["webp@40"])).ok
    assert archive(Run(s3_root, source=str(photos), codecs=["webp@20"])).ok  # the second run appends a part
    digests = read(s3_root)
    assert len([p for p in digests if p.startswith("images/")]) == 12 and verify(s3_root).intact
    assert len(storage.list_files(f"{s3_root}/{PARTS_FOLDER}")) == 1
    storage.write_bytes_atomic(f"{s3_root}/images/stray.lpc", b"x")
    path = next(p for p in digests if p.endswith(".lpc"))
    storage.write_bytes_atomic(f"{s3_root}/{path}", storage.read_bytes(f"{s3_root}/{path}")[:-1])
    result = verify(s3_root)
    assert result.fixity.extra == ["images/stray.lpc"] and [p for p, _ in result.fixity.damaged] == [path]


def test_a_bag_export_validates_with_the_bagit_library(archived: Path, tmp_path: Path) -> None:
    import bagit

    out = tmp_path / "bag"
    assert main(["bag", str(archived), str(out)]) == 0
    bag = bagit.Bag(str(out))
    bag.validate()  # structure, Payload-Oxum, completeness and every digest, by the Library of Congress's tool
    assert bag.info["Bag-Software-Agent"].startswith("latentpress") and "sha256" in bag.algorithms
    assert set(bag.payload_files()) == {f"data/{p}" for p in read(str(archived))} | {f"data/{FIXITY_NAME}"}
    assert verify(str(out / "data")).intact  # the payload is the archive, with its own record
    part = next((out / "data" / "ledger").rglob("*.parquet"))
    part.write_bytes(part.read_bytes()[:-1])
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(out)).validate()


def test_a_damaged_archive_is_not_exported(copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stats = next((copy / "images" / "latent-q.default.q1").glob("*.json"))
    stats.write_text(stats.read_text() + " ")
    assert main(["bag", str(copy), str(tmp_path / "bag")]) == 1
    assert f"{stats.relative_to(copy)} does not match its recorded SHA-256" in capsys.readouterr().err
    assert not (tmp_path / "bag" / "bagit.txt").exists()


def test_the_verify_flow_fails_a_damaged_archive_and_names_the_problem(copy: Path) -> None:
    from latentpress.flows.prefect_flows import verify_flow
    from latentpress.pipeline.verify import ArchiveNotIntact

    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    logger = logging.getLogger("latentpress.flows")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert verify_flow.fn(str(copy))["checked"] == len(read(str(copy)))
        assert logged[-1].endswith(f"is intact: {len(read(str(copy)))} object(s) match their SHA-256")
        (copy / "images" / "stray.lpc").write_bytes(b"x")
        state = verify_flow.fn(str(copy))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert state.is_failed() and "NOT intact: 1 extra" in state.message
    assert isinstance(state.data, ArchiveNotIntact)
    assert "extra: images/stray.lpc: stored, not in the fixity record" in logged


def test_whatever_a_decoder_raises_names_the_container(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import latentpress.pipeline.verify as verifying

    def wrong_shape(data: bytes, *args: object) -> None:
        raise ValueError("latent of shape (4, 2, 2) for an image of 192x128")

    monkeypatch.setattr(verifying, "decode_container", wrong_shape)
    result = verify(str(copy), decode=True)
    assert result.decoded == 0 and len(result.undecodable) == 6
    assert all(path.endswith(".lpc") and why == "ValueError: latent of shape (4, 2, 2) for an image of 192x128"
               for path, why in result.undecodable)  # fmt: skip
    assert "6 undecodable" in result.summary(str(copy))
