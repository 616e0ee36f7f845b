"""What operators of large runs use: fewer metrics, and where a run's time went."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.cli import main
from latentpress.infra.ledger import read_ledger


@pytest.fixture
def photos(tmp_path: Path, kodak_dir: Path) -> Path:
    (tmp_path / "photos").mkdir()
    for n in (2, 4):
        with Image.open(kodak_dir / f"kodim{n:02d}.png") as img:
            img.convert("RGB").crop((0, 0, 80, 64)).save(tmp_path / "photos" / f"kodim{n:02d}.png")
    return tmp_path / "photos"


def test_only_the_metrics_asked_for_are_measured_and_the_ledger_says_which(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    archive = tmp_path / "archive"
    assert (
        main(["archive", str(photos), str(archive), "--codec", "jpeg@50", "--metrics", "psnr,ms-ssim", "--local"]) == 0
    )
    out = capsys.readouterr().out
    assert "2 new ledger row(s) in " in out and "ingest " in out and "compress and evaluate " in out  # time per step
    ledger = read_ledger(str(archive / "ledger"))
    assert list(ledger["metrics"]) == ["psnr,ms_ssim"] * 2
    assert ledger["lpips"].isna().all() and ledger["dists"].isna().all()
    assert np.isfinite(ledger["psnr"]).all() and (ledger["ms_ssim"] > 0.5).all()
    assert main(["archive", str(photos), str(archive), "--codec", "webp@50", "--local"]) == 0  # all four by default
    webp = read_ledger(str(archive / "ledger")).query("codec == 'webp'")
    assert webp["metrics"].isna().all() and webp["lpips"].between(0, 1).all()


def test_an_unknown_metric_is_a_usage_error(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["archive", str(photos), str(tmp_path / "a"), "--codec", "jpeg@50", "--metrics", "psnr,ssim"])
    assert exit_.value.code == 2 and "expected some of lpips, dists, psnr, ms_ssim" in capsys.readouterr().err


def test_the_flow_process_needs_no_torch_to_orchestrate() -> None:
    """Settings, the GPU count of a local cluster and the archive flow's imports leave
    torch out (it would cost the flow process about 500 MiB)."""
    code = (
        "import sys\n"
        "from latentpress.config import get_settings\n"
        "from latentpress.flows import prefect_flows\n"
        "from latentpress.infra.cluster import _cuda_devices\n"
        "assert get_settings().models_dir is not None and _cuda_devices() >= 0\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
