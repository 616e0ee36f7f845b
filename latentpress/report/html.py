"""The report as one self-contained HTML page: inline CSS, PNGs as data URIs.

A Content-Security-Policy allowing only inline styles and ``data:`` images makes the
browser refuse any network request the page could make.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from html import escape

import pandas as pd

from latentpress.report.crops import DIFFERENCE_GAIN, CropSet
from latentpress.report.curves import BD_METRICS, METRICS

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, #overview td { text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
.plots img { width: 530px; max-width: 100%; }
.crops { display: flex; flex-wrap: wrap; gap: 10px; }
figure { margin: 0; } figcaption { font-size: 0.8em; max-width: 200px; }
.crops img { image-rendering: pixelated; border: 1px solid #ccc; }
.better { color: #1a7f37; } .worse { color: #b42318; } .note { color: #666; font-size: 0.9em; }
.warn { background: #fff4e5; border-left: 4px solid #e8a33d; padding: 0.6em 1em; }
#facts th, #facts td { text-align: left; } dt { font-weight: bold; margin-top: 0.6em; }
"""
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class Report:
    """Everything the page shows."""

    ledger: str
    archive: str | None
    anchor: str
    rows: int
    rejected: int
    images: list[str]
    points: pd.DataFrame
    bd: pd.DataFrame | None
    """None when the anchor is not in the ledger."""
    speed: pd.DataFrame
    plots: dict[str, bytes]
    """Plot name (``rd-<metric>``, ``speed``) -> PNG."""
    crops: list[CropSet]
    crops_note: str
    storage: pd.DataFrame | None
    """Original and stored size per configuration (None without an archive)."""
    worst: pd.DataFrame
    """The (image, configuration) rows of worst LPIPS."""
    worst_total: int
    failures: pd.DataFrame
    facts: list[tuple[str, str]]
    """(label, value) lines about the runs, versions and models."""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render(report: Report) -> str:
    """The page's HTML text."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>latentpress report: {escape(report.ledger)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>latentpress report</h1>",
        _overview(report),
        _WARNING,
        _storage_section(report),
        _rd_section(report),
        _bd_section(report),
        _worst_section(report),
        _failures_section(report),
        _speed_section(report),
        _crops_section(report),
        _METRICS_EXPLAINED,
        _facts_section(report),
        "</body></html>",
    ]
    return "\n".join(parts)


def _overview(report: Report) -> str:
    curves = sorted(report.points["curve"].unique())
    return (
        '<section id="overview"><table>'
        f"<tr><th>ledger</th><td>{escape(report.ledger)}</td></tr>"
        f"<tr><th>archive</th><td>{escape(report.archive or '-')}</td></tr>"
        f"<tr><th>ledger rows</th><td>{report.rows} ({report.rejected} images refused by a codec)</td></tr>"
        f"<tr><th>images shared by all configurations</th><td>{len(report.images)}</td></tr>"
        f"<tr><th>curves</th><td>{escape(', '.join(curves))}</td></tr>"
        "</table></section>"
    )


_WARNING = (
    '<section id="warning"><p class="warn"><b>Latent codecs draw, they do not copy.</b> latent-q, clric, laduree, '
    "glc and relic rebuild each photo through a generative decoder, which can redraw what it cannot keep: small "
    "text becomes other glyphs, faces and fine patterns change, and the result can still score well on LPIPS "
    "and DISTS (on kodim03 the hat's lettering stays legible under AVIF at 0.34 bpp but turns into other "
    "glyphs under latent-q at 0.26 bpp, which scores the better LPIPS). Look at the crops below before trusting "
    "them with documents, signs or faces; PSNR and MS-SSIM react more to such changes.</p></section>"
)
_METRICS_EXPLAINED = (
    '<section id="metrics"><h2>What the metrics mean</h2><dl>'
    "<dt>LPIPS (lower is better)</dt><dd>A learned perceptual distance between the original and the decoded "
    "photo (AlexNet features): 0 is identical; below about 0.1 the difference is hard to see at a glance; "
    "0.1 to 0.3 is visible loss of detail; above 0.4, strong degradation.</dd>"
    "<dt>DISTS (lower is better)</dt><dd>Structure and texture similarity on VGG features: 0 is identical; it "
    "forgives texture that is redrawn rather than copied, so it favours generative codecs; 0.05 to 0.15 is "
    "good.</dd>"
    "<dt>PSNR (higher is better)</dt><dd>Pixel-exact fidelity in decibels: 30 dB is moderate, 35 dB good, 40 dB "
    "near transparent. It punishes any change, including plausible invented detail.</dd>"
    "<dt>MS-SSIM (higher is better)</dt><dd>Structural similarity over several scales: 1 is identical; above "
    "0.95 is good, above 0.98 hard to tell apart.</dd>"
    "<dt>bpp</dt><dd>Bits per pixel of the stored object: an uncompressed photo takes 24, a camera JPEG "
    "typically 1 to 4.</dd>"
    "<dt>BD-rate</dt><dd>How many more (positive) or fewer (negative) bits a codec needs than the anchor for "
    "the same quality, averaged over the quality range both cover.</dd></dl></section>"
)


def _storage_section(report: Report) -> str:
    head = '<section id="storage"><h2>Storage</h2>'
    if report.storage is None:
        return head + '<p class="note">No archive: the original files\' sizes are in its collection file.</p></section>'
    columns = {"configuration": "configuration", "images": "images", "original_mb": "original MB",
               "stored_mb": "stored MB", "ratio": "times smaller", "saving": "saving"}  # fmt: skip
    frame = report.storage.assign(saving=[f"{s:.1%}" for s in report.storage["saving"]])
    return (
        head + "<p class=\"note\">Original: the collection's files as ingested. Stored: each image's container "
        "plus its share of shared models, for the images that configuration holds.</p>"
        + _table(frame, columns, "storage-table")
        + "</section>"
    )


def _worst_section(report: Report) -> str:
    columns = {"name": "photo", "config_key": "configuration", "bpp": "bpp"} | {m.column: m.title for m in METRICS}
    shown = f"the {len(report.worst)} of {report.worst_total}" if report.worst_total > len(report.worst) else "all"
    return (
        '<section id="worst"><h2>Photos that fared worst</h2>'
        f'<p class="note">Every photo under every configuration, worst LPIPS first ({shown} rows; '
        "<code>latentpress ledger export</code> writes them all).</p>"
        + _table(report.worst, columns, "worst-table")
        + "</section>"
    )


def _failures_section(report: Report) -> str:
    head = '<section id="failures"><h2>Not archived</h2>'
    if report.failures.empty:
        return head + '<p class="note">Every file was archived under every configuration.</p></section>'
    columns = {"what": "file", "stage": "where", "status": "status", "reason": "reason"}
    return head + _table(report.failures, columns, "failures-table") + "</section>"


def _facts_section(report: Report) -> str:
    rows = "".join(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>" for label, value in report.facts)
    return f'<section id="run"><h2>Runs, versions and models</h2><table id="facts">{rows}</table></section>'


def _rd_section(report: Report) -> str:
    plots = "".join(
        f'<img id="plot-{m.column}" class="plot" alt="{escape(m.title)} against bits per pixel" '
        f'src="{data_uri(report.plots["rd-" + m.column])}">'
        for m in METRICS
    )
    columns = {"curve": "curve", "quality": "quality", "bpp": "bpp", "amortised_bpp": "bpp with models"} | {
        m.column: m.title for m in METRICS
    }
    return (
        '<section id="rd"><h2>Rate and quality</h2>'
        f'<p class="note">Means over the {len(report.images)} image(s) that every configuration encoded. '
        'bpp is each image\'s own stored bits per pixel (the payload); "bpp with models" adds an equal share of '
        "the shared models (laduree's per shard, glc's per collection) among the images of this ledger that use "
        "them, which falls as the archive grows. Curves and BD-rates use the payload. A star is a codec searched "
        'image by image for a quality floor ("per image lpips<=X"): each image at the cheapest setting that meets '
        "the floor, so the mean sits near the floor, usually left of the codec's own curve.</p>"
        f'<div class="plots">{plots}</div>'
        f"{_table(report.points, columns, 'points')}</section>"
    )


def _bd_section(report: Report) -> str:
    head = f'<section id="bd"><h2>BD-rate against {escape(report.anchor)}</h2>'
    if report.bd is None:
        curves = ", ".join(sorted(report.points["curve"].unique()))
        return head + f'<p class="note">The anchor is not in this ledger (curves: {escape(curves)}).</p></section>'
    rows = []
    for row in report.bd.itertuples(index=False):
        cells = "".join(_bd_cell(getattr(row, m)) for m in BD_METRICS)
        rows.append(f"<tr><td>{escape(row.curve)}</td>{cells}<td>{escape(row.note)}</td></tr>")
    titles = "".join(f"<th>{m.title}</th>" for m in METRICS if m.column in BD_METRICS)
    return (
        head + '<p class="note">Mean bitrate difference at equal quality (Bjontegaard, piecewise-cubic fit of '
        "log rate against quality over the shared quality range); negative means fewer bits than the anchor.</p>"
        + f'<table id="bd-rate"><tr><th>curve</th>{titles}<th>note</th></tr>{"".join(rows)}</table></section>'
    )


def _bd_cell(value: float) -> str:
    if math.isnan(value):
        return "<td>n/a</td>"
    kind = "better" if value < 0 else "worse"
    return f'<td class="{kind}">{value:+.1f}%</td>'


def _speed_section(report: Report) -> str:
    columns = {
        "curve": "curve",
        "rows": "images x settings",
        "encode_seconds": "encode s/image",
        "decode_seconds": "decode s/image",
        "encode_seconds_per_mp": "encode s/MP",
        "decode_seconds_per_mp": "decode s/MP",
        "device": "device",
    }
    return (
        '<section id="speed"><h2>Encode and decode time</h2>'
        '<p class="note">Means over every ok row; latent codecs include the VAE encoder in encode and '
        "the VAE decoder in decode.</p>"
        f'<img id="plot-speed" class="plot" alt="seconds per image" src="{data_uri(report.plots["speed"])}">'
        f"{_table(report.speed, columns, 'speed-table')}</section>"
    )


def _crops_section(report: Report) -> str:
    blocks = []
    for crop in report.crops:
        top, left, h, w = crop.box
        figures = "".join(
            _figure(tile.title, tile.caption, tile.png, tile.error, w, tile.difference) for tile in crop.tiles
        )
        blocks.append(
            f"<h3>{escape(crop.source)}</h3>"
            f'<p class="note">image {escape(crop.image_id)}, crop {w}x{h} at ({left}, {top}), shown at 1:1</p>'
            f'<div class="crops">{figures}</div>'
        )
    note = f'<p class="note">{escape(report.crops_note)}</p>' if report.crops_note else ""
    legend = (
        (
            '<p class="note">Under each decoded crop, its difference from the original: white where they agree, '
            f"darker the more they differ (magnified {DIFFERENCE_GAIN} times). Redrawn detail shows as dark texture "
            "even where the crop looks right.</p>"
        )
        if report.crops
        else ""
    )
    return f'<section id="crops"><h2>Side by side at similar rates</h2>{note}{legend}{"".join(blocks)}</section>'


def _figure(
    title: str, caption: str, png: bytes | None, error: str, width: int, difference: bytes | None = None
) -> str:
    body = (
        f'<img class="crop" width="{width}" alt="{escape(title)}" src="{data_uri(png)}">'
        if png
        else f'<p class="note">not shown: {escape(error)}</p>'
    )
    if difference:
        body += (
            f'<br><img class="difference" width="{width}" alt="{escape(title)}: difference from the original" '
            f'src="{data_uri(difference)}">'
        )
    return f"<figure>{body}<figcaption><b>{escape(title)}</b><br>{escape(caption)}</figcaption></figure>"


def _table(frame: pd.DataFrame, columns: dict[str, str], table_id: str) -> str:
    head = "".join(f"<th>{escape(title)}</th>" for title in columns.values())
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_text(row[c]))}</td>" for c in columns) + "</tr>" for _, row in frame.iterrows()
    )
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def _text(value) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)
