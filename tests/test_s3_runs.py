"""Archive runs on S3: the nightly "add the new photos" run reads what earlier runs
wrote and adds only what is new, in-process and on Dask alike, and the archive
verifies intact after every run.

On Dask, workers write containers, ledger parts and collection parts while the flow
process lists and reads the same folders; a listing cached in the flow process must
never hide them (it once made every run that added a photo fail while recording
fixity)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import KODAK
from PIL import Image

from latentpress.flows.archive import archive
from latentpress.flows.results import RunResult
from latentpress.infra import storage
from latentpress.infra.layout import ArchiveLayout
from latentpress.infra.ledger import read_ledger
from latentpress.pipeline.verify import verify
from latentpress.run import Run

BIN = Path(sys.executable).parent / "latentpress"


def run_archive_command(source: Path, target: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "archive", str(source), target, "--codec", "jpeg@50", "--local"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def crop(top: int, left: int) -> Image.Image:
    with Image.open(KODAK / "kodim01.png") as img:
        return Image.fromarray(np.asarray(img.convert("RGB"))[top : top + 64, left : left + 64])


def test_second_run_of_the_command_on_s3_adds_the_new_photo(tmp_path: Path, s3_root: str) -> None:
    source = tmp_path / "photos"
    source.mkdir()
    for i in range(2):
        crop(64 * i, 0).save(source / f"a{i}.png")
    first = run_archive_command(source, s3_root)
    assert first.returncode == 0, first.stderr
    crop(200, 200).save(source / "new.png")
    second = run_archive_command(source, s3_root)
    assert second.returncode == 0, second.stderr
    assert "1 new ledger row" in second.stdout
    rows = read_ledger(f"{s3_root}/ledger")
    assert len(rows) == 3 and rows["image_id"].is_unique
    assert (rows["status"] == "ok").all() and pd.notna(rows["lpips"]).all()


@pytest.fixture(params=["in-process", "dask"])
def run(request: pytest.FixtureRequest) -> Callable[[Run], RunResult]:
    """``archive`` in this process, or the archive flow on the tests' Dask cluster."""
    if request.param == "in-process":
        return archive
    from latentpress.flows.prefect_flows import archive_flow

    cluster = request.getfixturevalue("cluster")
    return lambda run: archive_flow(dataclasses.replace(run, cluster=cluster))


def test_incremental_runs_on_s3(run: Callable[[Run], RunResult], tmp_path: Path, s3_root: str) -> None:
    source = tmp_path / "photos"
    source.mkdir()
    archive_url = f"{s3_root}/archive"
    ledger = f"{archive_url}/ledger"

    def archived(codecs: list[str], new_rows: int) -> None:
        result = run(Run(archive_url, source=str(source), codecs=codecs, metrics=("psnr",)))
        assert result.ok and result.new_rows == new_rows, result.errors
        check = verify(archive_url)
        assert check.intact, check.problems()

    for i in range(2):
        crop(64 * i, 0).save(source / f"a{i}.png")
    archived(["jpeg@50"], 2)
    crop(200, 200).save(source / "new.png")  # the nightly run: one photo more
    archived(["jpeg@50"], 1)
    archived(["jpeg@50"], 0)  # nothing new: nothing done
    archived(["jpeg@50", "webp@40"], 3)  # a configuration more
    lost = ArchiveLayout(archive_url).image("webp.default.q40", read_ledger(ledger)["image_id"].iloc[0])
    storage.remove(lost)  # made again by the next run, which records it anew
    archived(["jpeg@50", "webp@40"], 0)
    assert storage.exists(lost)
    crop(300, 300).save(source / "a0.png")  # a photo edited in place: a new image
    (source / "new.png").unlink()  # and one deleted from the source
    archived(["jpeg@50", "webp@40"], 2)
    rows = read_ledger(ledger)
    assert len(rows) == 8 and not rows.duplicated(["image_id", "config_key"]).any()
