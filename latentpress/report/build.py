"""Write a ledger's report: ``OUT/index.html`` plus the PNGs it embeds."""

from __future__ import annotations

import pandas as pd

from latentpress.infra import storage
from latentpress.infra.layout import ledger_archive
from latentpress.infra.ledger import REFUSED, latest_rows, read_ledger
from latentpress.report.archivist import WORST_SHOWN, collection_items, failures, run_facts, storage_table, worst_images
from latentpress.report.crops import CropSet, crop_sets
from latentpress.report.curves import METRICS, bd_table, latest_ok_rows, rd_points, shared_images, speeds
from latentpress.report.html import Report, render
from latentpress.report.plots import rd_plot, speed_plot

DEFAULT_ANCHOR = "avif"
DEFAULT_CROPS = 3


def write_report(
    ledger_url: str,
    out: str,
    anchor: str = DEFAULT_ANCHOR,
    archive: str | None = None,
    crop_images: int = DEFAULT_CROPS,
) -> str:
    """Write the report of the ledger at ``ledger_url`` under ``out``; returns the page's URL.

    ``archive`` (default: the ledger's parent when the ledger is ``<archive>/ledger``)
    supplies the decoded images of the side-by-side crops.
    """
    ledger = read_ledger(ledger_url)
    rows = latest_ok_rows(ledger)
    if rows.empty:
        raise ValueError(f"ledger {ledger_url} has no ok rows to report on")
    images = shared_images(rows)
    if not images:
        raise ValueError(f"ledger {ledger_url}: no image has an ok row under every configuration")
    points = rd_points(rows, images)
    speed = speeds(rows)
    plots = {f"rd-{m.column}": rd_plot(points, m, len(images)) for m in METRICS}
    plots["speed"] = speed_plot(speed)
    archive = archive or ledger_archive(ledger_url)
    crops, note = _crops(rows, images, archive, anchor, crop_images)
    items = collection_items(archive)
    worst = worst_images(rows, items)
    report = Report(
        ledger=ledger_url,
        archive=archive,
        anchor=anchor,
        rows=len(ledger),
        rejected=int(latest_rows(ledger)["status"].isin(REFUSED).sum()),
        images=images,
        points=points,
        bd=bd_table(points, anchor) if (points["curve"] == anchor).any() else None,
        speed=speed,
        plots=plots,
        crops=crops,
        crops_note=note,
        storage=storage_table(rows, items, archive),
        worst=worst.head(WORST_SHOWN),
        worst_total=len(worst),
        failures=failures(ledger, items),
        facts=run_facts(ledger),
    )
    for name, png in plots.items():
        storage.write_bytes_atomic(storage.join(out, f"{name}.png"), png)
    for crop in crops:
        for index, tile in enumerate(crop.tiles):
            if tile.png:
                storage.write_bytes_atomic(
                    storage.join(out, "crops", f"{crop.image_id}-{index}-{tile.key}.png"), tile.png
                )
            if tile.difference:
                storage.write_bytes_atomic(
                    storage.join(out, "differences", f"{crop.image_id}-{index}-{tile.key}.png"), tile.difference
                )
    page = storage.join(out, "index.html")
    storage.write_bytes_atomic(page, render(report).encode("utf-8"))
    return page


def _crops(
    rows: pd.DataFrame, images: list[str], archive: str | None, anchor: str, count: int
) -> tuple[list[CropSet], str]:
    """Crop sets and a note saying why there are none, if so."""
    if count < 1:
        return [], "Crops were not requested."
    if archive is None:
        return [], "No archive to decode crops from: pass --archive (the ledger is not <archive>/ledger)."
    try:
        return crop_sets(rows, images, archive, anchor, count), ""
    except FileNotFoundError as error:
        return [], f"No crops: {error}"
