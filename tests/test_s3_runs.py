"""Archive runs on S3 through the real command: the nightly "add the new photos" run
reads the ledger the earlier run wrote and adds only the new rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from latentpress.infra.ledger import read_ledger

BIN = Path(sys.executable).parent / "latentpress"


def archive(source: Path, target: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "archive", str(source), target, "--codec", "jpeg@50", "--local"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_second_run_on_s3_adds_the_new_photo(kodak_dir: Path, tmp_path: Path, s3_root: str) -> None:
    photo = np.asarray(Image.open(kodak_dir / "kodim01.png").convert("RGB"))
    source = tmp_path / "photos"
    source.mkdir()
    for i in range(2):
        Image.fromarray(photo[64 * i : 64 * i + 64, :64]).save(source / f"a{i}.png")
    first = archive(source, s3_root)
    assert first.returncode == 0, first.stderr
    Image.fromarray(photo[200:264, 200:264]).save(source / "new.png")
    second = archive(source, s3_root)
    assert second.returncode == 0, second.stderr
    assert "1 new ledger row" in second.stdout
    rows = read_ledger(f"{s3_root}/ledger")
    assert len(rows) == 3 and rows["image_id"].is_unique
    assert (rows["status"] == "ok").all() and pd.notna(rows["lpips"]).all()
