"""The HTML report: BD-rate by hand, curves from ledger rows, and a real report of an
archive on S3 (moto) opened in headless Chromium."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ledger_rows import WHEN, ledger_row
from PIL import Image
from pipeline_fixtures import write_good_images

from latentpress.flows.prefect_flows import archive_flow
from latentpress.infra import storage
from latentpress.infra.layout import ledger_archive as default_archive
from latentpress.infra.ledger import append_rows, read_ledger
from latentpress.pipeline.decode import decode_container
from latentpress.report import write_report
from latentpress.report.bdrate import BDRateError, bd_rate, bd_rate_or_reason, shared_interval
from latentpress.report.crops import detail_window, nearest_rows
from latentpress.report.curves import bd_table, latest_ok_rows, rd_points, shared_images
from latentpress.run import Cluster, Run

BIN = Path(sys.executable).parent / "latentpress"
REPO = Path(__file__).resolve().parents[1]


# --- BD-rate -------------------------------------------------------------------------


def test_bd_rate_linear_curves_partial_overlap() -> None:
    # ln R = 0.1 q (anchor, q 30..40) and ln R = 0.2 q - 4 (test, q 35..45): both
    # linear, so the interpolants are exact. Shared interval [35, 40]; the mean of
    # the difference 0.1 q - 4 there is 0.1 * 37.5 - 4 = -0.25.
    qa = np.array([30.0, 32.5, 35.0, 37.5, 40.0])
    qt = np.array([35.0, 40.0, 45.0])
    result = bd_rate(np.exp(0.1 * qa), qa, np.exp(0.2 * qt - 4), qt)
    assert result == pytest.approx((math.exp(-0.25) - 1) * 100, abs=1e-9)


def test_bd_rate_curved_anchor_by_hand() -> None:
    # Anchor knots q = 0, 1, 2 with ln R = 0, 1, 3. PCHIP slopes: interior
    # 6 / (3/1 + 3/2) = 4/3, ends (3*1 - 2)/2 = 1/2 and (3*2 - 1)/2 = 5/2. Per unit
    # interval the integral is (y0 + y1)/2 + (m0 - m1)/12, so over [0, 2]:
    # 1/2 - 5/72 + 2 - 7/72 = 7/3, a mean of 7/6. The test curve ln R = 2 q - 1
    # has mean 1, so BD-rate = exp(1 - 7/6) - 1.
    anchor = bd_rate(np.exp([0.0, 1.0, 3.0]), [0, 1, 2], np.exp([-1.0, 3.0]), [0, 2])
    assert anchor == pytest.approx((math.exp(-1 / 6) - 1) * 100, abs=1e-9)


def test_bd_rate_lower_is_better_metric() -> None:
    # The same curves with the quality axis mapped to an LPIPS-like metric
    # (lpips = 1 - q / 50, lower is better) give the same BD-rate: fewer bits for
    # the same LPIPS is negative whichever way the metric runs.
    qa = np.array([30.0, 32.5, 35.0, 37.5, 40.0])
    qt = np.array([35.0, 40.0, 45.0])
    rate_a, rate_t = np.exp(0.1 * qa), np.exp(0.2 * qt - 4)
    by_quality = bd_rate(rate_a, qa, rate_t, qt)
    by_lpips = bd_rate(rate_a, 1 - qa / 50, rate_t, 1 - qt / 50)
    assert by_lpips == pytest.approx(by_quality, abs=1e-9) and by_lpips < 0
    # Half the bits at every LPIPS value is exactly -50%, and swapping the curves +100%.
    lpips = np.array([0.4, 0.3, 0.2, 0.1])
    rate = np.array([0.1, 0.2, 0.4, 0.9])
    assert bd_rate(rate, lpips, rate / 2, lpips) == pytest.approx(-50.0)
    assert bd_rate(rate / 2, lpips, rate, lpips) == pytest.approx(100.0)


def test_bd_rate_within_a_band_of_quality() -> None:
    # The test codec halves the rate from quality 4 up and matches the anchor below;
    # log-rates are linear in quality away from that step, so the interpolants are
    # exact on [0, 2] and [5, 6].
    quality = np.arange(7.0)
    anchor = np.exp(quality)
    test = np.where(quality >= 4, anchor / 2, anchor)
    assert bd_rate(anchor, quality, test, quality, within=(5.0, 6.0)) == pytest.approx(-50.0)
    assert bd_rate(anchor, quality, test, quality, within=(2.0, 0.0)) == pytest.approx(0.0, abs=1e-9)
    whole = bd_rate(anchor, quality, test, quality)
    assert -50.0 < whole < 0.0
    assert bd_rate(anchor, quality, test, quality, within=(-5.0, 9.0)) == pytest.approx(whole)
    with pytest.raises(BDRateError, match="within 7..8"):
        bd_rate(anchor, quality, test, quality, within=(7.0, 8.0))


def test_bd_rate_or_reason_gives_the_value_or_why_not() -> None:
    quality = np.arange(4.0)
    assert bd_rate_or_reason(np.exp(quality), quality, np.exp(quality) / 2, quality) == (pytest.approx(-50.0), "")
    value, reason = bd_rate_or_reason(np.exp(quality), quality, np.exp(quality), quality + 10)
    assert value is None and "no shared quality interval" in reason


def test_bd_rate_repeated_quality_is_averaged_in_log_rate() -> None:
    # Two anchor points at q = 1 with rates 1 and 4 count as one of rate 2.
    with_repeat = bd_rate([1.0, 4.0, 8.0], [1, 1, 2], [1.0, 4.0], [1, 2])
    assert with_repeat == pytest.approx(bd_rate([2.0, 8.0], [1, 2], [1.0, 4.0], [1, 2]))


@pytest.mark.parametrize(
    ("anchor", "test", "message"),
    [
        (([1, 2], [1, 2]), ([1, 2], [3, 4]), "no shared quality interval"),
        (([1, 2], [1, 1]), ([1, 2], [1, 2]), "at least two distinct"),
        (([1, 0], [1, 2]), ([1, 2], [1, 2]), "positive"),
        (([1, 2], [1, float("nan")]), ([1, 2], [1, 2]), "finite"),
        (([1, 2, 3], [1, 2]), ([1, 2], [1, 2]), "equal length"),
    ],
)
def test_bd_rate_refuses_curves_it_cannot_compare(anchor, test, message: str) -> None:
    with pytest.raises(BDRateError, match=message):
        bd_rate(*anchor, *test)


# --- curves from ledger rows ----------------------------------------------------------


def test_points_use_shared_images_and_latest_rows() -> None:
    later = WHEN + pd.Timedelta(hours=1)
    rows = [
        ledger_row("a", "jpeg", 20, bpp=0.2, lpips=0.4),
        ledger_row("b", "jpeg", 20, bpp=0.4, lpips=0.2),
        ledger_row("c", "jpeg", 20, bpp=9.0, lpips=0.9),  # c is not archived by avif
        ledger_row("a", "avif", 30, bpp=0.1, lpips=0.5),
        ledger_row("b", "avif", 30, bpp=0.7, lpips=0.9),  # superseded below
        ledger_row("b", "avif", 30, bpp=0.3, lpips=0.3, timestamp=later),
        ledger_row("a", "latent-q", 1, vae_id="taesd", bpp=0.05, lpips=0.6),
        ledger_row("b", "latent-q", 1, vae_id="taesd", bpp=0.15, lpips=0.4),
        ledger_row("c", "avif", 30, status="rejected", bpp=None, lpips=None, error="boom"),
    ]
    ok = latest_ok_rows(pd.DataFrame(rows))
    assert len(ok) == 7 and set(ok["curve"]) == {"jpeg", "avif", "latent-q (taesd)"}
    images = shared_images(ok)
    assert images == ["a", "b"]
    points = rd_points(ok, images).set_index("curve")
    assert points.loc["jpeg", "bpp"] == pytest.approx(0.3) and points.loc["jpeg", "lpips"] == pytest.approx(0.3)
    assert points.loc["avif", "bpp"] == pytest.approx(0.2) and points.loc["avif", "lpips"] == pytest.approx(0.4)
    assert points.loc["latent-q (taesd)", "bpp"] == pytest.approx(0.1)
    # An image measured by PSNR only (a thumbnail) is left out of every curve.
    nan = float("nan")
    thumb = [
        ledger_row("t", codec, q, vae_id=v, bpp=1.0, lpips=nan, dists=nan, ms_ssim=nan)
        for codec, q, v in (("jpeg", 20, None), ("avif", 30, None), ("latent-q", 1, "taesd"))
    ]
    assert shared_images(latest_ok_rows(pd.DataFrame(rows + thumb))) == ["a", "b"]


def _scipy_bd_rate(anchor: tuple, test: tuple) -> float:
    """BD-rate by scipy's PCHIP (an outside implementation of the same definition)."""
    from scipy.interpolate import PchipInterpolator

    curves = []
    for rate, quality in (anchor, test):
        order = np.argsort(quality)
        curves.append(PchipInterpolator(np.asarray(quality)[order], np.log(np.asarray(rate)[order])))
    low = max(c.x[0] for c in curves)
    high = min(c.x[-1] for c in curves)
    means = [c.integrate(low, high) / (high - low) for c in curves]
    return float(np.expm1(means[1] - means[0]) * 100)


@pytest.mark.parametrize("metric", ["lpips", "dists", "psnr", "ms_ssim"])
def test_bd_rate_agrees_with_scipy_pchip_on_real_curves(metric: str) -> None:
    """Every curve of the glc benchmark's measured photos (AVIF, latent-q, CLRIC, glc;
    per photo) against AVIF on the same photo: our BD-rate equals the one scipy's
    PchipInterpolator integrates, to 1e-9 percent."""
    rows = json.loads((REPO / "benchmarks" / "results" / "glc.json").read_text())["rows"]
    compared = 0
    for image in sorted({r["image"] for r in rows}):
        curves: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        for r in rows:
            if r["image"] == image:
                rate, quality = curves.setdefault((r["codec"], r["vae"]), ([], []))
                rate.append(r["bpp"])
                quality.append(r[metric])
        anchor = curves.pop(("avif", ""))
        for test in curves.values():
            low, high = shared_interval(anchor[1], test[1])
            if len(set(test[1])) == len(test[1]) and high > low:
                assert bd_rate(*anchor, *test) == pytest.approx(_scipy_bd_rate(anchor, test), abs=1e-9)
                compared += 1
    assert compared >= 8  # curves that share a quality interval with AVIF (latent codecs rarely do in PSNR)


def test_bd_table_against_anchor() -> None:
    lpips = [0.4, 0.3, 0.2, 0.1]
    rates = [0.1, 0.2, 0.4, 0.9]
    rows = []
    for q, (l, r) in enumerate(zip(lpips, rates, strict=True)):
        rows.append(ledger_row("a", "avif", q, bpp=r, lpips=l, dists=l))
        rows.append(ledger_row("a", "webp", q, bpp=r / 2, lpips=l, dists=l))
        rows.append(ledger_row("a", "jpeg", q, bpp=r, lpips=l + 1, dists=l))  # no LPIPS overlap
    ok = latest_ok_rows(pd.DataFrame(rows))
    table = bd_table(rd_points(ok, shared_images(ok)), "avif").set_index("curve")
    assert list(table.index) == ["jpeg", "webp"]
    assert table.loc["webp", "lpips"] == pytest.approx(-50.0) and table.loc["webp", "dists"] == pytest.approx(-50.0)
    assert math.isnan(table.loc["jpeg", "lpips"]) and "no shared quality interval" in table.loc["jpeg", "note"]
    assert table.loc["jpeg", "dists"] == pytest.approx(0.0, abs=1e-9)


def test_crop_window_and_nearest_rate() -> None:
    image = np.full((120, 200, 3), 128, np.uint8)
    image[70:110, 150:190] = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    top, left, h, w = detail_window(image, 48)
    assert (h, w) == (48, 48) and 70 <= top + h / 2 <= 110 and 150 <= left + w / 2 <= 190  # centred on the texture
    assert detail_window(image, 500) == (0, 0, 120, 200)

    rows = latest_ok_rows(
        pd.DataFrame(
            [ledger_row("a", "avif", q, bpp=b) for q, b in [(10, 0.1), (30, 0.4), (50, 1.6)]]
            + [ledger_row("a", "jpeg", q, bpp=b) for q, b in [(10, 0.2), (40, 0.5), (90, 3.0)]]
        )
    )
    chosen = nearest_rows(rows, "avif").set_index("curve")["quality"].to_dict()
    assert chosen == {"avif": 30.0, "jpeg": 40.0}


def test_default_archive() -> None:
    assert default_archive("s3://bucket/arch/ledger") == "s3://bucket/arch"
    assert default_archive("/data/arch/ledger/") == "/data/arch"
    assert default_archive("/data/results") is None
    assert default_archive("ledger") is None


def test_report_without_archive_or_anchor(tmp_path: Path) -> None:
    rows = [ledger_row(i, c, q, bpp=b * s, lpips=0.5 - b / 4, dists=0.4 - b / 5) for i in "ab" for c, s in [("jpeg", 1), ("webp", 0.8)]
            for q, b in [(10, 0.2), (50, 0.8), (90, 1.6)]]  # fmt: skip
    append_rows(str(tmp_path / "results"), rows, "run1")
    page = Path(write_report(str(tmp_path / "results"), str(tmp_path / "out")))
    html = page.read_text()
    assert "The anchor is not in this ledger" in html and "No archive to decode crops from" in html
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "rd-dists.png", "rd-lpips.png", "rd-ms_ssim.png", "rd-psnr.png", "speed.png",
    ]  # fmt: skip
    page = Path(write_report(str(tmp_path / "results"), str(tmp_path / "out2"), anchor="jpeg", crop_images=0))
    html = page.read_text()
    assert "BD-rate against jpeg" in html and "-20.0%" in html and "Crops were not requested" in html

    with pytest.raises(ValueError, match="no ok rows"):
        write_report(str(tmp_path / "absent"), str(tmp_path / "out3"))


# --- a real archive on S3, its report in Chromium ------------------------------------

CODECS = ["jpeg@20,60", "avif@20,50", "latent-q@0.5"]  # one latent-q point: no BD-rate for it
CURVES = ["avif", "jpeg", "latent-q (taesd)"]


@pytest.fixture(scope="module")
def s3_report(tmp_path_factory: pytest.TempPathFactory, s3_bucket: str, cluster: Cluster) -> Iterator[tuple[str, Path]]:
    """An archive of three real crops on S3 and its report, made by the command."""
    photos = tmp_path_factory.mktemp("photos")
    write_good_images(photos)
    archive = f"s3://{s3_bucket}/report-{uuid.uuid4().hex[:8]}"
    archive_flow(Run(archive, source=str(photos), codecs=CODECS, cluster=cluster))
    out = tmp_path_factory.mktemp("report")
    result = subprocess.run(
        [str(BIN), "report", f"{archive}/ledger", str(out)], capture_output=True, text=True, timeout=300, env=os.environ
    )
    assert result.returncode == 0, result.stderr
    assert "report written to" in result.stdout
    yield archive, out


def test_report_of_s3_ledger(s3_report: tuple[str, Path]) -> None:
    archive, out = s3_report
    ledger = read_ledger(f"{archive}/ledger")
    assert len(ledger) == 15 and set(ledger["status"]) == {"ok"}
    html = (out / "index.html").read_text()
    for curve in CURVES:
        assert curve in html
    assert "images shared by all configurations</th><td>3<" in html
    # For the archivist: storage against the originals, worst photos first, failures, what made the numbers.
    storage_rows = html.split('id="storage-table"')[1].split("</table>")[0].split("<tr>")[2:]
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in storage_rows]
    assert len(cells) == 5 and all(row[1] == "3" and 0 < float(row[-1].rstrip("%")) < 100 for row in cells)
    worst = html.split('id="worst-table"')[1].split("</table>")[0].split("<tr>")[2:]
    lpips = [float(row.split("<td>")[4].split("<")[0]) for row in worst]
    assert len(lpips) == 15 and lpips == sorted(lpips, reverse=True)
    assert "Every file was archived under every configuration" in html
    facts = html.split('id="facts"')[1].split("</table>")[0]
    assert "libjpeg-turbo" in facts and "libavif" in facts and "taesd" in facts and "latentpress" in facts
    assert "Latent codecs draw, they do not copy" in html and "What the metrics mean" in html
    # Every crop is the whole (small) image here: the original, and each curve's
    # crop equal to the decoded stored container.
    crops = sorted((out / "crops").glob("*.png"))
    assert len(crops) == 3 * (1 + len(CURVES))
    for crop in crops:
        image_id, index, key = crop.stem.split("-", 2)
        pixels = np.asarray(Image.open(crop))
        if key == "original":
            assert index == "0"
            continue
        expected, _ = decode_container(storage.read_bytes(f"{archive}/images/{key}/{image_id}.lpc"), "taesd", archive)
        np.testing.assert_array_equal(pixels, expected)
        original = np.asarray(Image.open(out / "crops" / f"{image_id}-0-original.png"))
        difference = np.asarray(Image.open(out / "differences" / crop.name))[..., 0].astype(int)
        gap = np.abs(original.astype(int) - expected.astype(int)).max(axis=2)
        np.testing.assert_array_equal(difference, 255 - np.clip(4 * gap, 0, 255))  # white where equal


class _Elements(HTMLParser):
    """Tags with their attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run `bash scripts/setup.sh` (apt-get install chromium)")
    return path


def _chromium_run(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", *args, page.resolve().as_uri(),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_report_renders_in_chromium(s3_report: tuple[str, Path], tmp_path: Path) -> None:
    _, out = s3_report
    page = out / "index.html"
    dom = _chromium_run(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    parser = _Elements()
    parser.feed(dom.stdout)
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    plots = {attrs["id"] for attrs in images if attrs.get("class") == "plot"}
    assert plots == {"plot-lpips", "plot-dists", "plot-psnr", "plot-ms_ssim", "plot-speed"}
    assert len([a for a in images if a.get("class") == "crop"]) == 3 * (1 + len(CURVES))
    assert len([a for a in images if a.get("class") == "difference"]) == 3 * len(CURVES)
    # Self-contained: every image is inline, nothing links out, and the policy forbids fetching.
    assert all(attrs["src"].startswith("data:image/png;base64,") for attrs in images)
    assert not [a for _, a in parser.tags if "href" in a]
    assert any(a.get("http-equiv") == "Content-Security-Policy" and "default-src 'none'" in a["content"]
               for t, a in parser.tags if t == "meta")  # fmt: skip
    bd_table = dom.stdout.split('id="bd-rate"')[1].split("</table>")[0]
    assert bd_table.count("<tr>") == 1 + 2  # header, jpeg, latent-q
    latent_row = bd_table.split("latent-q (taesd)")[1].split("</tr>")[0]
    assert latent_row.count("n/a") == 4 and "at least two distinct quality values" in latent_row
    assert "PSNR (dB)" in bd_table and "MS-SSIM" in bd_table

    shot = tmp_path / "page.png"
    result = _chromium_run(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2200")
    assert result.returncode == 0 and shot.exists(), result.stderr
    pixels = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")).astype(int)
    plot_band = pixels[250:2100]  # below the overview, warning and storage tables: the four rate/quality plots
    assert len(np.unique(plot_band.reshape(-1, 3), axis=0)) > 1000, (
        "the plot area is blank or flat"
    )  # broken images: ~500
    for colour in [(31, 119, 180), (255, 127, 14), (44, 160, 44)]:  # the curves' tab10 colours
        near = (np.abs(plot_band - np.array(colour)).sum(axis=2) < 40).sum()
        assert near > 100, f"curve colour {colour} barely drawn ({near} pixels)"
