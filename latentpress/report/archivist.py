"""What an archivist asks of a report: how much storage, which photos fared worst, what
failed and why, and which run, versions and models made the numbers."""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime

import pandas as pd

from latentpress import __version__
from latentpress.infra.collection import OK, Item, read_collection
from latentpress.infra.layout import ArchiveLayout
from latentpress.infra.ledger import REFUSED, latest_rows, stored_bytes
from latentpress.pipeline.selection import read_selection

WORST_SHOWN = 40
"""Rows of the per-image table (worst LPIPS first); the ledger has them all."""


def collection_items(archive: str | None) -> list[Item] | None:
    """The archive's collection (every ingested file), or None without one."""
    items = read_collection(archive) if archive is not None else []
    return items or None


def storage_table(rows: pd.DataFrame, items: list[Item] | None, archive: str | None) -> pd.DataFrame | None:
    """Per configuration (and under the archive's quality-floor selection, if any):
    images, their original files' size, the stored size (payloads plus model shares)
    and the saving. None without the collection's ``items`` (the original sizes)."""
    if items is None:
        return None
    originals = {i.image_id: i.nbytes for i in items if i.status == OK}
    stored = rows.assign(stored=stored_bytes(rows))
    stored = stored[stored["image_id"].isin(originals)]
    groups = [(key, group["image_id"], group["stored"]) for key, group in stored.groupby("config_key", sort=True)]
    selection = read_selection(ArchiveLayout(archive).selection) if archive is not None else None
    if selection is not None:
        chosen = selection[1][selection[1]["image_id"].isin(originals)]
        groups.append((f"selection for {selection[0]}", chosen["image_id"], chosen["bytes"]))
    table = pd.DataFrame([
        {"configuration": key, "images": len(ids), "original_mb": sum(originals[i] for i in ids) / 1e6,
         "stored_mb": float(sizes.sum()) / 1e6}
        for key, ids, sizes in groups
    ])  # fmt: skip
    table["saving"] = 1 - table["stored_mb"] / table["original_mb"]
    table["ratio"] = table["original_mb"] / table["stored_mb"]
    return table


def worst_images(rows: pd.DataFrame, items: list[Item] | None) -> pd.DataFrame:
    """Every (image, configuration) with its rate and metrics, worst LPIPS first, named by
    the collection's file names (the source's base name without the collection)."""
    names = {item.image_id: item.name for item in items or [] if item.status == OK}
    out = rows.assign(
        name=[names.get(i) or posixpath.basename(s) for i, s in zip(rows["image_id"], rows["source"], strict=True)]
    )
    columns = ["name", "image_id", "config_key", "bpp", "lpips", "dists", "psnr", "ms_ssim"]
    return out.sort_values(["lpips", "psnr"], ascending=[False, True], na_position="last")[columns]


def failures(ledger: pd.DataFrame, items: list[Item] | None) -> pd.DataFrame:
    """Images a codec refused (ledger) and files ingest did not archive (collection), with reasons."""
    latest = latest_rows(ledger)
    refused = latest[latest["status"].isin(REFUSED)]
    out = [{"what": row.source, "stage": row.config_key, "status": "rejected", "reason": row.error}
           for row in refused.itertuples()]  # fmt: skip
    out += [{"what": item.name, "stage": "ingest", "status": item.status, "reason": item.error}
            for item in items or [] if item.status != OK]  # fmt: skip
    return pd.DataFrame(out, columns=["what", "stage", "status", "reason"])


def run_facts(ledger: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, value) lines: when, by which versions, codec libraries, VAEs, devices and runs."""
    stamps = pd.to_datetime(ledger["timestamp"])
    libraries = (
        ledger.dropna(subset=["codec_library"])
        .groupby("codec")["codec_library"]
        .agg(lambda v: ", ".join(sorted(set(v))))
    )
    runs = ledger.groupby("run_id")["timestamp"].min().sort_values()
    return [
        ("report made", datetime.now(UTC).isoformat(timespec="seconds")),
        ("report by", f"latentpress {__version__}"),
        ("rows measured", f"{stamps.min():%Y-%m-%d %H:%M} to {stamps.max():%Y-%m-%d %H:%M} UTC"),
        ("latentpress versions", ", ".join(sorted(set(ledger["code_version"].dropna())))),
        ("codec libraries", "; ".join(f"{codec}: {lib}" for codec, lib in libraries.items()) or "-"),
        ("VAEs", ", ".join(sorted(v for v in set(ledger["vae_id"].dropna()) if v)) or "-"),
        ("devices", ", ".join(sorted(set(ledger["device"].dropna()))) or "-"),
        ("runs", ", ".join(f"{run} ({stamp:%Y-%m-%d %H:%M})" for run, stamp in pd.to_datetime(runs).items())),
    ]
