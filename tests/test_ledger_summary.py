"""`ledger summary --by/--format`: groupings computed by hand, and the command's output."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ledger_rows import ledger_row

from latentpress.infra.ledger import append_rows, read_ledger, summarize

BIN = Path(sys.executable).parent / "latentpress"

ROWS = [
    ledger_row("a", "jpeg", 20, bpp=0.2, lpips=0.4, shard=0),
    ledger_row("b", "jpeg", 20, bpp=0.4, lpips=0.2, shard=1),
    ledger_row("a", "jpeg", 60, bpp=1.0, lpips=0.1, shard=0),
    ledger_row("b", "jpeg", 60, status="rejected", bpp=None, lpips=None, error="boom", shard=1),
    ledger_row("a", "latent-q", 0.5, vae_id="taesd", bpp=0.1, lpips=0.3, shard=0),
    ledger_row("b", "latent-q", 0.5, vae_id="taesdxl", bpp=0.3, lpips=0.5, shard=1),
    ledger_row("a", "latent-q", 1, vae_id="taesd", bpp=0.05, lpips=0.6, shard=0),
]


def test_summary_by_codec() -> None:
    out = summarize(pd.DataFrame(ROWS), by="codec")
    assert list(out.columns[:3]) == ["codec", "preset", "images"]
    jpeg, latent = out.iloc[0], out.iloc[1]
    assert (jpeg["codec"], jpeg["images"], jpeg["rejected"]) == ("jpeg", 2, 1)
    assert jpeg["bpp"] == pytest.approx((0.2 + 0.4 + 1.0) / 3) and jpeg["lpips"] == pytest.approx(0.7 / 3)
    assert (latent["codec"], latent["images"], latent["rejected"]) == ("latent-q", 2, 0)
    assert latent["bpp"] == pytest.approx(0.15)


def test_summary_by_shard() -> None:
    out = summarize(pd.DataFrame(ROWS), by="shard")
    got = {(r.shard, r.codec): (r.images, r.rejected, round(r.bpp, 6)) for r in out.itertuples()}
    assert got == {
        (0, "jpeg"): (1, 0, 0.6),
        (1, "jpeg"): (1, 1, 0.4),
        (0, "latent-q"): (1, 0, 0.075),
        (1, "latent-q"): (1, 0, 0.3),
    }
    assert list(out["shard"]) == [0, 0, 1, 1]


def test_summary_by_vae_keeps_pixel_codecs() -> None:
    out = summarize(pd.DataFrame(ROWS), by="vae")
    got = {(r.vae_id if isinstance(r.vae_id, str) else None, r.codec): (r.images, r.rejected) for r in out.itertuples()}
    assert got == {("taesd", "latent-q"): (1, 0), ("taesdxl", "latent-q"): (1, 0), (None, "jpeg"): (2, 1)}
    assert out.loc[out["vae_id"] == "taesd", "bpp"].item() == pytest.approx(0.075)


TARGETED = ledger_row("a", "clric", 0.1, vae_id="taesd", bpp=0.1, lpips=0.3, config_key="clric.default.bpp0.1")
AT_LAMBDA = ledger_row("a", "clric", 0.1, vae_id="taesd", bpp=0.9, lpips=0.1)


def test_summary_by_quality_is_the_default() -> None:
    frame = pd.DataFrame(ROWS)
    pd.testing.assert_frame_equal(summarize(frame), summarize(frame, by="quality"))
    assert len(summarize(frame)) == 4
    # A target size and a quality knob of the same value stay apart.
    out = summarize(pd.DataFrame([TARGETED, AT_LAMBDA]))
    assert list(out["config_key"]) == ["clric.default.bpp0.1", "clric.default.q0.1"]
    assert list(out["bpp"]) == [0.1, 0.9]
    with pytest.raises(ValueError, match="cannot summarize by 'colour'"):
        summarize(frame, by="colour")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120, env=os.environ)


def test_summary_command_formats(tmp_path: Path) -> None:
    ledger = str(tmp_path / "ledger")
    append_rows(ledger, ROWS, "run1")
    expected = summarize(read_ledger(ledger), by="shard")

    csv = run("ledger", "summary", ledger, "--by", "shard", "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(csv.stdout)), expected, check_dtype=False)

    as_json = run("ledger", "summary", ledger, "--by", "vae", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    records = json.loads(as_json.stdout)
    by_vae = summarize(read_ledger(ledger), by="vae")
    assert [r["vae_id"] for r in records] == [v if isinstance(v, str) else None for v in by_vae["vae_id"]]
    np.testing.assert_allclose([r["bpp"] for r in records], by_vae["bpp"], rtol=1e-12)

    table = run("ledger", "summary", ledger, "--by", "vae")
    assert table.returncode == 0, table.stderr
    assert "VAE" in table.stdout and "taesdxl" in table.stdout and "latent-q" in table.stdout

    append_rows(ledger, [TARGETED, AT_LAMBDA], "run1")
    by_quality = run("ledger", "summary", ledger)
    assert by_quality.returncode == 0, by_quality.stderr
    clric_rows = [line for line in by_quality.stdout.splitlines() if "clric" in line]
    assert len(clric_rows) == 2 and "bpp0.1" in clric_rows[0] and "0.1" in clric_rows[1]

    bad = run("ledger", "summary", ledger, "--by", "colour")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
