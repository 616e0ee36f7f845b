"""From ledger rows to what the report shows: rate/quality points, BD-rates, speeds.

A *curve* is one codec at one preset (and, for latent codecs, one VAE); its points
are its quality settings. Rates are payload rates (each image's own container: the
rate of a collection so large that shared models cost nothing); the amortised rate,
with shared models' bytes spread over the images that use them, is shown beside. Points are means over the images that have an ``ok`` row
with every metric under every configuration in the ledger (images under 32 pixels a
side have PSNR only and are left out), so every curve and every metric is measured
on the same pictures. When an (image, configuration) was measured more than once,
the latest row counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from latentpress.codecs.spec import key_floor
from latentpress.infra.ledger import with_rates
from latentpress.report.bdrate import bd_rate_or_reason


@dataclass(frozen=True)
class Metric:
    """A quality column of the ledger and how to show it."""

    column: str
    title: str
    lower_is_better: bool


METRICS = (
    Metric("lpips", "LPIPS", True),
    Metric("dists", "DISTS", True),
    Metric("psnr", "PSNR (dB)", False),
    Metric("ms_ssim", "MS-SSIM", False),
)
BD_METRICS = ("lpips", "dists", "psnr", "ms_ssim")
"""Quality domains of the BD-rate table."""
REFERENCE_CODEC = "vae"
"""The VAE alone (``codecs.vae_alone``): drawn as a line of quality, left out of BD-rates."""

_MEANS = ["bpp", "amortised_bpp", *(m.column for m in METRICS), "encode_seconds", "decode_seconds"]


def curve_label(codec: str, preset: str, vae_id: str | None, config_key: str = "") -> str:
    """``codec``, ``codec:preset`` for other presets, `` (vae)`` for latent codecs, and
    `` per image lpips<=X`` for a quality floor searched per image (a curve of its own:
    one point per floor, not a point of the codec's knob)."""
    label = codec if preset == "default" else f"{codec}:{preset}"
    label = f"{label} ({vae_id})" if isinstance(vae_id, str) and vae_id else label
    floor = key_floor(config_key)
    return f"{label} per image {floor}" if floor else label


def latest_ok_rows(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ``ok`` rows, one per (image, configuration, VAE): the latest, with a ``curve``
    column and both rates (``bpp`` the payload, ``amortised_bpp`` with shared models)."""
    ledger = with_rates(ledger)
    ok = ledger[ledger["status"] == "ok"].copy()
    ok["vae_id"] = ok["vae_id"].fillna("")
    ok = ok.sort_values("timestamp").drop_duplicates(["image_id", "config_key", "vae_id"], keep="last")
    ok["curve"] = [
        curve_label(*key) for key in zip(ok["codec"], ok["preset"], ok["vae_id"], ok["config_key"], strict=True)
    ]
    return ok.reset_index(drop=True)


def shared_images(rows: pd.DataFrame) -> list[str]:
    """Ids of the images that have a row with every metric under every (curve,
    configuration), sorted."""
    measured = rows[rows[["ms_ssim", "lpips", "dists"]].notna().all(axis=1)]
    per_config = measured.groupby(["curve", "config_key"])["image_id"].agg(set)
    if per_config.empty:
        return []
    return sorted(set.intersection(*per_config))


def rd_points(rows: pd.DataFrame, images: list[str]) -> pd.DataFrame:
    """Mean rate, quality and seconds per (curve, quality) over ``images``, by curve then bpp."""
    shared = rows[rows["image_id"].isin(images)]
    keys = ["curve", "codec", "preset", "quality", "config_key"]
    points = shared.groupby(keys)[_MEANS].mean().reset_index()
    return points.sort_values(["curve", "bpp"], ignore_index=True)


def bd_table(points: pd.DataFrame, anchor: str) -> pd.DataFrame:
    """BD-rate (percent) of every curve against ``anchor`` in each of ``BD_METRICS``.

    One row per other curve but the VAE-alone reference and the quality floors searched
    per image (points, not curves); a pair that cannot be compared has NaN and the
    reason in ``note``.
    """
    base = points[points["curve"] == anchor]
    rows = []
    floors = points["config_key"].map(lambda key: key_floor(key) is not None)
    others = points[(points["curve"] != anchor) & (points["codec"] != REFERENCE_CODEC) & ~floors]
    for curve, group in others.groupby("curve", sort=True):
        row: dict = {"curve": curve, "note": ""}
        for metric in BD_METRICS:
            value, reason = bd_rate_or_reason(base["bpp"], base[metric], group["bpp"], group[metric])
            row[metric] = math.nan if value is None else value
            if reason:
                row["note"] = "; ".join(filter(None, [row["note"], f"{metric}: {reason}"]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["curve", *BD_METRICS, "note"])


def speeds(rows: pd.DataFrame) -> pd.DataFrame:
    """Per curve: images, mean encode and decode seconds per image and per megapixel."""
    frame = rows.assign(megapixels=rows["width"].astype(float) * rows["height"].astype(float) / 1e6)
    grouped = frame.groupby("curve")
    out = grouped[["encode_seconds", "decode_seconds"]].mean()
    out.insert(0, "rows", grouped.size())
    for column in ("encode_seconds", "decode_seconds"):
        out[f"{column}_per_mp"] = grouped[column].sum() / grouped["megapixels"].sum()
    out["device"] = grouped["device"].agg(lambda d: ", ".join(sorted(set(d))))
    return out.reset_index()
