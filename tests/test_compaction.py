"""``ledger compact``: small parts merged into few, no row lost or repeated, even when
the compaction is killed half-way, and readers see every row once at every moment."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from ledger_rows import ledger_row
from PIL import Image

from latentpress.cli import main
from latentpress.flows.compact import compact_ledger
from latentpress.infra import compaction
from latentpress.infra.compaction import CompactionError, compact
from latentpress.infra.ledger import COMPACT_PREFIX, append_rows, read_ledger
from latentpress.pipeline.verify import verify


def _ledger(root: Path, runs: int = 5) -> str:
    """A ledger of ``runs`` appends of 3 images under two codecs: 2 parts a run."""
    url = str(root / "ledger")
    for run in range(runs):
        rows = [ledger_row(f"{run:02d}{i:014d}", codec, 10 + run, bytes=100 * run + i, lpips=0.01 * i, run_id=f"run{run}")
                for i in range(3) for codec in ("jpeg", "avif")]  # fmt: skip
        append_rows(url, rows, f"run{run}")
    return url


def _parts(url: str) -> list[Path]:
    return sorted(Path(url).glob("codec=*/*.parquet"))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["codec", "image_id", "run_id"], ignore_index=True)


def test_compaction_merges_parts_and_keeps_every_row(tmp_path: Path) -> None:
    url = _ledger(tmp_path)
    before = _sorted(read_ledger(url))
    assert len(_parts(url)) == 10 and len(before) == 30
    done = compact(url)
    assert done.merged == 10 and len(done.written) == 2 and done.rows == 30
    assert [p.name.startswith(COMPACT_PREFIX) for p in _parts(url)] == [True, True]
    pd.testing.assert_frame_equal(_sorted(read_ledger(url)), before)
    folder = pd.read_parquet(url)  # an outside reader of the folder sees the same rows
    assert len(folder) == 30 and set(folder["image_id"]) == set(before["image_id"])
    append_rows(
        url, [ledger_row("ff" * 8, "jpeg", 99, run_id="run9")], "run9"
    )  # appends go on; a second compaction merges them in
    again = compact(url)
    assert again.merged == 2 and len(read_ledger(url)) == 31 and len(_parts(url)) == 2


def test_a_compaction_killed_after_writing_loses_and_repeats_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _ledger(tmp_path)
    before = _sorted(read_ledger(url))

    def killed(fs, path: str) -> None:
        raise KeyboardInterrupt  # the process dies before deleting the parts it merged

    monkeypatch.setattr(compaction, "_delete", killed)
    with pytest.raises(KeyboardInterrupt):
        compact(url)
    monkeypatch.undo()
    assert len(_parts(url)) == 11  # the first new part is there, and every old one
    pd.testing.assert_frame_equal(_sorted(read_ledger(url)), before)  # each row once
    done = compact(url)
    assert done.finished == 5  # the replaced parts of the killed run are removed first
    pd.testing.assert_frame_equal(_sorted(read_ledger(url)), before)
    assert len(_parts(url)) == 2


def test_a_compaction_killed_while_writing_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _ledger(tmp_path)
    parts = _parts(url)

    def killed(url: str, data: bytes) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(compaction.storage, "write_bytes_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        compact(url)
    assert _parts(url) == parts and len(read_ledger(url)) == 30


def test_a_part_that_does_not_read_back_equal_is_removed_and_nothing_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _ledger(tmp_path)
    parts = _parts(url)
    real = pq.read_table
    monkeypatch.setattr(compaction.pq, "read_table", lambda *a, **k: real(*a, **k).slice(1))  # storage lost a row
    with pytest.raises(CompactionError, match="differs from the 5 parts"):
        compact(url)
    assert _parts(url) == parts and len(read_ledger(url)) == 30


@pytest.fixture
def twice_archived(tmp_path: Path, kodak_dir: Path) -> Path:
    (tmp_path / "photos").mkdir()
    for n in (1, 3):
        with Image.open(kodak_dir / f"kodim{n:02d}.png") as img:
            img.convert("RGB").crop((0, 0, 96, 64)).save(tmp_path / "photos" / f"kodim{n:02d}.png")
    for codec in ("jpeg@50", "webp@50"):
        assert main(["archive", str(tmp_path / "photos"), str(tmp_path / "archive"), "--codec", codec, "--local"]) == 0
    return tmp_path / "archive"


def test_compacting_an_archive_ledger_keeps_the_archive_intact(
    twice_archived: Path, capsys: pytest.CaptureFixture
) -> None:
    ledger = str(twice_archived / "ledger")
    append_rows(ledger, [ledger_row("ee" * 8, "jpeg", 51, run_id="extra")], "extra")  # a second jpeg part
    before = _sorted(read_ledger(ledger))
    assert list((twice_archived / "fixity").glob("*.txt"))  # the second run's fixity part
    capsys.readouterr()
    assert main(["ledger", "compact", ledger]) == 0
    assert not list((twice_archived / "fixity").glob("*.txt"))  # folded into manifest-sha256.txt
    assert "2 part(s) merged into 1 (3 rows)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(_sorted(read_ledger(ledger)), before)
    assert verify(str(twice_archived)).intact  # the fixity manifest follows the new parts
    assert compact_ledger(ledger).merged == 0  # nothing left to merge
