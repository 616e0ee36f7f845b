"""What the command prints: what a run did, its errors grouped by reason, and the
ledger summary table at whatever width the terminal or log has.

Results go to standard output; problems (files not archived, errors) to standard
error, each reason once.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

    from latentpress.flows.results import RunResult
    from latentpress.infra.collection import Item

LOG_WIDTH = 80
"""Columns of output that goes to a log or a pipe rather than a terminal."""


def _console(stderr: bool) -> Console:
    terminal = Console(stderr=stderr)
    return terminal if terminal.is_terminal else Console(stderr=stderr, width=LOG_WIDTH)


console = _console(stderr=False)
errors = _console(stderr=True)

SHOWN_NOT_ARCHIVED = 20
"""Files not archived listed by name (the rest are counted; all are in the archive's collection)."""

KEY_HEADERS = {"codec": "codec", "quality": "quality", "shard": "shard", "vae_id": "VAE"}
VALUE_HEADERS = {
    "images": "images",
    "bpp": "bpp",
    "lpips": "LPIPS",
    "amortised_bpp": "bpp+model",
    "dists": "DISTS",
    "psnr": "PSNR",
    "ms_ssim": "MS-SSIM",
    "rejected": "rejected",
    "encode_seconds": "enc s",
    "decode_seconds": "dec s",
}
"""Summary columns in the order they are kept when the width runs short."""

FORMATS = {
    "lpips": ".4f",
    "dists": ".4f",
    "ms_ssim": ".4f",
    "psnr": ".2f",
    "bpp": ".4f",
    "amortised_bpp": ".4f",
    "encode_seconds": ".3g",
    "decode_seconds": ".3g",
}
"""Number formats of the summary's value columns (default ``.4g``)."""


def print_items(items: list[Item]) -> None:
    """One line for the ingest, then each file not archived with its reason."""
    good = sum(1 for i in items if i.status == "ok")
    console.print(f"ingest: {good} image(s) ok, {len(items) - good} not archived")
    others = [i for i in items if i.status not in ("ok", "error")]
    for item in others[:SHOWN_NOT_ARCHIVED]:
        errors.print(f"[yellow]{item.status}[/yellow] {escape(item.name)}: {escape(item.error or '')}", soft_wrap=True)
    if len(others) > SHOWN_NOT_ARCHIVED:
        errors.print(
            f"... and {len(others) - SHOWN_NOT_ARCHIVED} more (all listed in the collection, ARCHIVE/collection/)"
        )


def print_stages(result: RunResult) -> None:
    """A line per stage: how many images were done, already done, rejected, in error."""
    from latentpress.flows.run_log import stage_lines

    for line in stage_lines(result):
        console.print(line)


def steps_line(seconds: dict[str, float]) -> str:
    """``ingest 1.2 s, compress and evaluate 40.1 s, ...``: where a run's time went."""
    return ", ".join(f"{step} {value:.1f} s" for step, value in seconds.items())


def print_errors(result: RunResult) -> int:
    """Every ``error`` of the run, each reason once with the images it hit; the exit
    status (1 if there was any error, else 0)."""
    from latentpress.flows.run_log import where
    from latentpress.pipeline.outcomes import errors_by_reason

    groups = errors_by_reason(result.errors)
    for reason, outcomes in groups.items():
        errors.print(f"[red]error[/red] ({len(outcomes)}): {escape(reason)}", soft_wrap=True)
        errors.print(f"  in {where(outcomes)}", soft_wrap=True, highlight=False)
    if groups:
        errors.print(
            f"[red]{result.images_in_error} image(s) ended in error[/red]: fix the cause and rerun the same "
            "command; it redoes only what is missing"
        )
    return 1 if groups else 0


def summary_table(summary: pd.DataFrame, keys: list[str], title: str, width: int) -> tuple[Table, list[str]]:
    """The ledger summary as a table no wider than ``width``: key columns, then as many
    value columns (in ``VALUE_HEADERS`` order) as fit; also the headers left out."""
    rows = list(summary.itertuples(index=False))
    cells = {key: [_key_cell(row, key) for row in rows] for key in keys}
    values = {col: [_cell(v, FORMATS.get(col, ".4g")) for v in summary[col]] for col in VALUE_HEADERS}
    shown: list[str] = []
    shared = (summary["amortised_bpp"] - summary["bpp"]).abs().fillna(0).max() > 0
    wanted = [
        c for c in VALUE_HEADERS if (c != "rejected" or summary["rejected"].any()) and (c != "amortised_bpp" or shared)
    ]
    for col in wanted:
        if (
            _table(title, keys, shown + [col], cells, values)
            .__rich_measure__(Console(width=10_000), Console(width=10_000).options)
            .maximum
            > width
        ):
            break
        shown.append(col)
    return _table(title, keys, shown, cells, values), [VALUE_HEADERS[c] for c in wanted if c not in shown]


def _table(
    title: str, keys: list[str], shown: list[str], cells: dict[str, list[str]], values: dict[str, list[str]]
) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for key in keys:
        table.add_column(KEY_HEADERS[key], justify="left" if key in ("codec", "vae_id") else "right", no_wrap=True)
    for col in shown:
        table.add_column(VALUE_HEADERS[col], justify="right", no_wrap=True)
    for i in range(len(next(iter(cells.values()), []))):
        table.add_row(*(cells[k][i] for k in keys), *(values[c][i] for c in shown))
    return table


def print_summary(summary: pd.DataFrame, keys: list[str], ledger_url: str) -> None:
    """The summary table on standard output, fitted to its width."""
    table, hidden = summary_table(summary, keys, f"ledger {ledger_url}", console.width)
    console.print(table)
    if hidden:
        console.print(f"(not shown at this width: {', '.join(hidden)}; --format csv has every column)")


def _key_cell(row, key: str) -> str:
    if key == "codec":
        return row.codec if row.preset == "default" else f"{row.codec}:{row.preset}"
    if key == "quality":  # the knob's value, or the target (a size, a floor searched per image)
        setting = row.config_key.split(".", 2)[-1]
        return _cell(row.quality) if setting.startswith("q") else setting
    return _cell(getattr(row, key))


def _cell(value, fmt: str = ".4g") -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:{fmt}}"
    return "-" if value is None or str(value) in ("<NA>", "nan") else str(value)
