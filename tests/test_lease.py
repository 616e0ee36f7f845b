"""Two runs on one archive: the second is refused while the first holds the lease, so
no ledger row is ever written twice; a lease left by a killed run is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.infra import storage
from latentpress.infra.lease import ArchiveBusy, _create, archive_lease
from latentpress.infra.ledger import read_ledger

BIN = Path(sys.executable).parent / "latentpress"


@pytest.fixture
def photos(tmp_path: Path, kodak_crop: np.ndarray) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.roll(kodak_crop, 7 * i, axis=1)[:64, :64]).save(folder / f"p{i}.png")
    return folder


def holder(pid: int, renewed: float) -> str:
    return json.dumps({"command": "archive", "host": socket.gethostname(), "pid": pid, "token": "0" * 16,
                       "started": renewed, "renewed": renewed})  # fmt: skip


def test_two_runs_at_once_write_each_row_once(photos: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    command = [str(BIN), "archive", str(photos), str(archive), "--codec", "jpeg@50", "--local"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    assert sorted(code for code, _, _ in results) in ([0, 0], [0, 1]), results
    for code, _, err in results:
        if code == 1:
            assert "is in use by a 'archive' run" in err and err.count("\n") == 1, err
    rows = read_ledger(str(archive / "ledger"))
    assert len(rows) == 6 and rows["image_id"].is_unique
    assert not (archive / "lease.json").exists()


def test_a_live_holder_refuses_and_a_dead_one_is_taken_over(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    lease = archive / "lease.json"
    lease.write_text(holder(os.getppid(), time.time()))  # a live process of this host, renewed now
    with pytest.raises(ArchiveBusy, match=f"in use by a 'archive' run \\(process {os.getppid()} on"):
        with archive_lease(str(archive), "evaluate"):
            pass
    assert json.loads(lease.read_text())["pid"] == os.getppid()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lease.write_text(holder(dead.pid, time.time()))
    with archive_lease(str(archive), "evaluate"):
        assert json.loads(lease.read_text())["pid"] == os.getpid()
        with archive_lease(str(archive), "ingest"):  # the same process again: reentrant
            pass
        assert lease.exists()
    assert not lease.exists()

    lease.write_text(holder(os.getppid(), time.time() - 3600))  # not renewed for an hour: stale
    with archive_lease(str(archive), "evaluate"):
        assert json.loads(lease.read_text())["pid"] == os.getpid()


def test_lease_on_s3(s3_root: str) -> None:
    url = f"{s3_root}/lease.json"
    with archive_lease(s3_root, "archive"):
        assert json.loads(storage.read_bytes(url))["pid"] == os.getpid()
        assert not _create(url, b"{}")  # the conditional PUT refuses to replace it
    assert not storage.exists(url)
    storage.write_bytes_atomic(url, holder(os.getppid(), time.time()).encode())
    with pytest.raises(ArchiveBusy, match="in use"):
        with archive_lease(s3_root, "archive"):
            pass
