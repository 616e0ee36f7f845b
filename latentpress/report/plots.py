"""PNG plots of the report, drawn with matplotlib's object API (no pyplot state)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from latentpress.codecs.spec import key_floor
from latentpress.report.curves import REFERENCE_CODEC, Metric

DPI = 110


def colours(curves: list[str]) -> dict[str, tuple]:
    """One fixed colour per curve, the same in every plot."""
    palette = colormaps["tab10"]
    return {curve: palette(i % palette.N) for i, curve in enumerate(sorted(curves))}


def rd_plot(points: pd.DataFrame, metric: Metric, images: int) -> bytes:
    """Rate (bpp) against ``metric``, one line per curve."""
    figure = Figure(figsize=(6.4, 4.4), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    palette = colours(list(points["curve"].unique()))
    for curve, group in points.groupby("curve", sort=True):
        if (group["codec"] == REFERENCE_CODEC).all():  # the VAE alone: the best a latent codec can reach
            axes.axhline(
                group[metric.column].mean(), ls="--", lw=1.4, color=palette[curve], label=f"{curve}: VAE alone"
            )
            continue
        if group["config_key"].map(lambda key: key_floor(key) is not None).all():  # a floor searched per image
            axes.plot(group["bpp"], group[metric.column], marker="*", lw=0, ms=12, color=palette[curve], label=curve)
            continue
        axes.plot(group["bpp"], group[metric.column], marker="o", lw=1.8, ms=4, color=palette[curve], label=curve)
    better = "lower is better" if metric.lower_is_better else "higher is better"
    axes.set_xlabel("bits per pixel")
    axes.set_ylabel(f"{metric.title} ({better})")
    axes.set_title(f"{metric.title} against rate, mean of {images} image(s)")
    axes.set_xlim(left=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _png(figure)


def speed_plot(speed: pd.DataFrame) -> bytes:
    """Mean encode and decode seconds per image, two bars per curve (log scale)."""
    figure = Figure(figsize=(6.4, 0.5 + 0.45 * max(2, len(speed))), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    y = np.arange(len(speed))
    axes.barh(y - 0.2, speed["encode_seconds"], height=0.4, color="#3a6ea5", label="encode")
    axes.barh(y + 0.2, speed["decode_seconds"], height=0.4, color="#e08a2c", label="decode")
    axes.set_yticks(y, speed["curve"])
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("seconds per image (mean)")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(fontsize="small")
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
