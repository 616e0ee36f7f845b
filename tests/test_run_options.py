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


FLOW_PROCESS = """
import sys
if __name__ == "__main__":
    from latentpress.cli import main
    from latentpress.infra.cluster import _cuda_devices
    assert _cuda_devices() >= 0
    code = main(sys.argv[1:])
    print("exit", code, "torch", "torch" in sys.modules)
"""


@pytest.mark.e2e
def test_the_flow_process_of_a_glc_run_on_a_dask_cluster_imports_no_torch(photos: Path, tmp_path: Path) -> None:
    """The flow process orchestrates a collection-model codec (trained, coded, measured
    on the workers) without torch, which would cost it about 500 MiB: which path a codec
    takes is decided from the registry, never from its implementation."""
    script = tmp_path / "flow.py"
    script.write_text(FLOW_PROCESS)
    args = ["archive", str(photos), str(tmp_path / "archive"), "--codec", "glc:tiny@2", "--workers", "1"]
    done = subprocess.run([sys.executable, str(script), *args, "--train-steps", "5"], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "exit 0 torch False", done.stdout + done.stderr
    assert set(read_ledger(str(tmp_path / "archive" / "ledger"))["status"]) == {"ok"}
