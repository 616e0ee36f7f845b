"""A quality floor per photo: ``--target-quality`` keeps, for every image, the smallest
stored configuration whose measured quality meets the floor; restore follows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from latentpress.cli import main
from latentpress.flows.restore import restore
from latentpress.infra.layout import ArchiveLayout
from latentpress.infra.ledger import latest_rows, read_ledger
from latentpress.pipeline.decode import decode_container
from latentpress.pipeline.selection import read_selection, select
from latentpress.pipeline.verify import verify
from latentpress.quality_floors import parse_target
from latentpress.run import RestoreRun


def test_targets_parse_and_bad_ones_say_what_is_accepted() -> None:
    assert str(parse_target("lpips<=0.15")) == "lpips<=0.15" and parse_target(" ms-ssim >= 0.95").metric == "ms_ssim"
    assert parse_target("psnr>=32").bound == 32.0
    for bad in ("lpips>=0.1", "psnr<=30", "ssim>=0.9", "lpips<=", "lpips<=-1", "lpips<=nan", "ms_ssim>=1.5"):
        with pytest.raises(ValueError, match="quality target"):
            parse_target(bad)


def _rows(values: dict[tuple[str, str], tuple[int, float, float]]) -> pd.DataFrame:
    """Ledger rows: (image, config) -> (bytes, lpips, psnr) of a 100x80 image."""
    return pd.DataFrame([
        {"image_id": i, "config_key": k, "codec": k.split(".")[0], "status": "ok", "width": 100, "height": 80,
         "bytes": b, "bpp": 8 * b / 8000, "lpips": lp, "psnr": ps, "timestamp": pd.Timestamp("2026-01-01", tz="UTC")}
        for (i, k), (b, lp, ps) in values.items()
    ])  # fmt: skip


def test_the_smallest_passing_configuration_or_the_best_one() -> None:
    ledger = _rows({
        ("a", "jpeg.default.q20"): (300, 0.30, 27.0), ("a", "jpeg.default.q50"): (500, 0.12, 31.0),
        ("a", "avif.default.q30"): (400, 0.14, 30.0),
        ("b", "jpeg.default.q20"): (300, 0.40, 24.0), ("b", "jpeg.default.q50"): (500, 0.25, 26.0),
    })  # fmt: skip
    chosen = select(ledger, parse_target("lpips<=0.15")).set_index("image_id")
    assert chosen.loc["a", "config_key"] == "avif.default.q30" and chosen.loc["a", "meets"]
    assert chosen.loc["b", "config_key"] == "jpeg.default.q50" and not chosen.loc["b", "meets"]  # best it has
    by_psnr = select(ledger, parse_target("psnr>=30.5")).set_index("image_id")
    assert by_psnr.loc["a", "config_key"] == "jpeg.default.q50" and by_psnr.loc["b", "value"] == 26.0
    only_jpeg = select(ledger, parse_target("lpips<=0.15"), ["jpeg.default.q20", "jpeg.default.q50"])
    assert list(only_jpeg["config_key"]) == ["jpeg.default.q50", "jpeg.default.q50"]


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory, kodak_dir: Path) -> Path:
    """Real crops, smooth to busy, archived at three JPEG qualities and one WebP."""
    root = tmp_path_factory.mktemp("selection")
    (root / "photos" / "set").mkdir(parents=True)
    for n, box in (
        (3, (0, 0, 160, 128)),
        (1, (300, 200, 460, 328)),
        (6, (100, 100, 260, 228)),
        (5, (400, 50, 560, 178)),
    ):
        with Image.open(kodak_dir / f"kodim{n:02d}.png") as img:
            img.convert("RGB").crop(box).save(root / "photos" / "set" / f"kodim{n:02d}.png")
    assert main(["archive", str(root / "photos"), str(root / "archive"), "--codec", "jpeg@15,40,85",
                 "--codec", "webp@50", "--target-quality", "lpips<=0.2"]) == 0  # fmt: skip
    return root / "archive"


def test_select_picks_the_smallest_passing_configuration_on_real_crops(archived: Path) -> None:
    ledger = latest_rows(read_ledger(str(archived / "ledger")))
    lpips = ledger.pivot(index="image_id", columns="config_key", values="lpips")
    floor = float(np.median(lpips.to_numpy()))  # some images pass with few bits, others need more
    assert main(["select", str(archived), "--target-quality", f"lpips<={floor}"]) == 0
    target, chosen = read_selection(ArchiveLayout(str(archived)).selection)
    assert str(target) == f"lpips<={floor:g}" and len(chosen) == 4
    sizes = ledger.pivot(index="image_id", columns="config_key", values="bytes")
    for row in chosen.itertuples():
        passing = lpips.loc[row.image_id] <= float(f"{floor:g}")
        if passing.any():
            assert row.meets and row.config_key == sizes.loc[row.image_id][passing].idxmin()
        else:
            assert not row.meets and row.config_key == lpips.loc[row.image_id].idxmin()
    assert chosen["config_key"].nunique() >= 2  # a choice per image, not one for all
    assert verify(str(archived)).intact  # the selection is an archive object with its own digest
    assert verify(str(archived), decode=True).decoded == 4  # --decode: the selected container of each image


def test_restore_follows_the_selection(archived: Path, tmp_path: Path) -> None:
    _, chosen = read_selection(ArchiveLayout(str(archived)).selection)
    result = restore(
        RestoreRun(str(archived), str(tmp_path / "out"))
    )  # the original layout, one configuration per image
    outcomes = {o.image_id: o for o in result.stages["restore"]}
    assert {o.status for o in outcomes.values()} == {"ok"} and len(outcomes) == 4
    for row in chosen.itertuples():
        assert outcomes[row.image_id].config_key == row.config_key
        data = (archived / "images" / row.config_key / f"{row.image_id}.lpc").read_bytes()
        expected, _ = decode_container(data, "taesd", str(archived))
        np.testing.assert_array_equal(np.asarray(Image.open(outcomes[row.image_id].path)), expected)
    assert sorted(p.name for p in (tmp_path / "out" / "set").iterdir()) == [f"kodim{n:02d}.png" for n in (1, 3, 5, 6)]


def test_ledger_summary_shows_the_size_under_the_selection(archived: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["ledger", "summary", str(archived / "ledger")]) == 0
    out = capsys.readouterr().out
    assert "under the selection for lpips<=" in out and "4 image(s)" in out and "below the floor" in out


def test_a_bad_target_is_a_usage_error(archived: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["select", str(archived), "--target-quality", "lpips>=0.1"])
    assert exit_.value.code == 2 and "quality target 'lpips>=0.1'" in capsys.readouterr().err
