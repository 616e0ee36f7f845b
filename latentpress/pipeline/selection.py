"""A quality floor per photo: for every image, the smallest stored configuration whose
measured quality meets the floor (per-image rate control by quality, across codecs).

The choice is made from the ledger's latest ``ok`` rows (rates with shared models
amortised, as ``ledger summary`` counts them); an image no configuration satisfies
gets the one of best quality and ``meets`` False. It is stored as
``ARCHIVE/selection.parquet`` (the floor in the file's metadata), which ``restore``
follows by default.
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from latentpress.infra import storage
from latentpress.infra.ledger import latest_rows, stored_bytes, with_rates
from latentpress.quality_floors import QualityTarget, parse_target

_KEY = b"latentpress.target"


def select(ledger: pd.DataFrame, target: QualityTarget, configs: list[str] | None = None) -> pd.DataFrame:
    """One row per image: the chosen ``config_key``, its ``bytes`` (payload plus its share
    of a shared model), ``bpp``, the metric's value and whether it ``meets`` the floor."""
    rows = latest_rows(with_rates(ledger))
    rows = rows[(rows["status"] == "ok") & rows[target.metric].notna()]
    if configs is not None:
        rows = rows[rows["config_key"].isin(configs)]
    rows = rows.assign(bytes=stored_bytes(rows), bpp=rows["amortised_bpp"], meets=target.meets(rows[target.metric]))
    better_first = target.higher_is_better
    passing = rows[rows["meets"]].sort_values(["bytes", target.metric], ascending=[True, not better_first])
    best = rows.sort_values([target.metric, "bytes"], ascending=[not better_first, True])
    chosen = pd.concat([passing.drop_duplicates("image_id"), best.drop_duplicates("image_id")]).drop_duplicates(
        "image_id"
    )
    out = chosen[["image_id", "config_key", "bytes", "bpp", target.metric, "meets"]]
    return out.rename(columns={target.metric: "value"}).sort_values("image_id", ignore_index=True)


def write_selection(url: str, selection: pd.DataFrame, target: QualityTarget) -> None:
    """Store ``selection`` at ``url`` with its floor, atomically."""
    table = pa.Table.from_pandas(selection, preserve_index=False)
    table = table.replace_schema_metadata({_KEY: str(target).encode()})
    out = io.BytesIO()
    pq.write_table(table, out)
    storage.write_bytes_atomic(url, out.getvalue())


def read_selection(url: str) -> tuple[QualityTarget, pd.DataFrame] | None:
    """The stored floor and selection, or None if there is none."""
    try:
        table = pq.read_table(io.BytesIO(storage.read_bytes(url)))
    except FileNotFoundError:
        return None
    target = parse_target((table.schema.metadata or {}).get(_KEY, b"").decode())
    return target, table.to_pandas()
