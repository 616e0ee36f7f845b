"""The results ledger: a Parquet dataset with one row per (image, codec config, run).

Layout: ``<ledger>/codec=<name>/part-<run_id>-<uuid>.parquet`` (hive partitions).
Appending writes new files only, so readers never see a file change under them.
``codec`` lives only in the partition folder name, not inside the files: a column
duplicated in both makes ``pandas.read_parquet(<ledger>)`` fail to merge schemas.
Analysts can read the folder with pandas, pyarrow or DuckDB (``hive_partitioning``).
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from latentpress import __version__
from latentpress.infra import storage
from latentpress.infra.faults import retrying

_NULLABLE = {
    "vae_id", "bytes", "bpp", "psnr", "ms_ssim", "lpips", "dists",
    "encode_seconds", "decode_seconds", "error", "shard",
    "shared_model_id", "shared_model_bytes", "shared_images", "codec_library", "metrics", "params_fingerprint",
}  # fmt: skip

LEDGER_SCHEMA = pa.schema(
    [
        pa.field(name, type_, nullable=name in _NULLABLE)
        for name, type_ in [
            ("image_id", pa.string()),
            ("source", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("codec", pa.string()),
            ("preset", pa.string()),
            ("quality", pa.float64()),
            ("config_key", pa.string()),
            ("params", pa.string()),
            ("params_fingerprint", pa.string()),
            ("codec_library", pa.string()),
            ("vae_id", pa.string()),
            ("bytes", pa.int64()),
            ("shared_model_id", pa.string()),
            ("shared_model_bytes", pa.int64()),
            ("shared_images", pa.int32()),
            ("bpp", pa.float64()),
            ("psnr", pa.float64()),
            ("ms_ssim", pa.float64()),
            ("lpips", pa.float64()),
            ("dists", pa.float64()),
            ("metrics", pa.string()),
            ("encode_seconds", pa.float64()),
            ("decode_seconds", pa.float64()),
            ("device", pa.string()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("shard", pa.int32()),
            ("run_id", pa.string()),
            ("code_version", pa.string()),
            ("timestamp", pa.timestamp("us", tz="UTC")),
        ]
    ]
)
"""Columns of the ledger, in order (``codec`` is stored as the partition key)."""

FILE_SCHEMA = LEDGER_SCHEMA.remove(LEDGER_SCHEMA.get_field_index("codec"))
"""Columns inside each Parquet file."""

OK, REJECTED = "ok", "rejected"
STATUSES = (OK, REJECTED)
"""Statuses a new row may have: a row records a finished image (``ok``, or ``rejected``:
refused by its codec), so these are the statuses that count as done; ledgers written
before 0.2 also hold ``failed`` rows, retried like images without a row."""
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_PARTITIONING = ds.partitioning(pa.schema([("codec", pa.string())]), flavor="hive")


COMPACT_PREFIX = "part-compact-"
"""Name of a part written by ``ledger compact`` (``infra.compaction``)."""
REPLACES_KEY = b"latentpress.replaces"
"""Parquet metadata of a compacted part: the JSON list of the part names it replaces."""


class LedgerError(ValueError):
    """Rows that do not fit the ledger schema."""


def append_rows(ledger_url: str, rows: list[dict[str, Any]], run_id: str) -> list[str]:
    """Append ``rows`` as one new Parquet file per codec; return the new files' URLs.

    ``run_id``, ``code_version`` and ``timestamp`` default to this run, this package's
    version and now; ``params`` may be a mapping (stored as sorted-key JSON).
    """
    if not _SAFE_NAME.match(run_id):
        raise LedgerError(f"run_id {run_id!r} is not a safe file-name part")
    defaults = {
        "run_id": run_id,
        "code_version": __version__,
        "timestamp": datetime.now(UTC),
    }
    rows = [defaults | row for row in rows]
    _check_rows(rows, run_id)
    urls = []
    for codec in sorted({row["codec"] for row in rows}):
        table = _table([row for row in rows if row["codec"] == codec])
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        url = storage.join(ledger_url, f"codec={codec}", f"part-{run_id}-{uuid.uuid4().hex}.parquet")
        storage.write_bytes_atomic(url, buffer.getvalue())
        urls.append(url)
    return urls


def _check_rows(rows: list[dict[str, Any]], run_id: str) -> None:
    """Raise ``LedgerError`` naming the first missing, unknown or bad column."""
    for index, row in enumerate(rows):
        unknown = set(row) - set(LEDGER_SCHEMA.names)
        if unknown:
            raise LedgerError(f"row {index}: unknown column(s) {sorted(unknown)}")
        for field in LEDGER_SCHEMA:
            if not field.nullable and row.get(field.name) is None:
                raise LedgerError(f"row {index}: column {field.name!r} is missing or null")
        if not isinstance(row["codec"], str) or not _SAFE_NAME.match(row["codec"]):
            raise LedgerError(f"row {index}: column 'codec' = {row['codec']!r} is not a safe name")
        if row["status"] not in STATUSES:
            raise LedgerError(f"row {index}: column 'status' must be one of {STATUSES}, got {row['status']!r}")
        if row["run_id"] != run_id:
            raise LedgerError(f"row {index}: column 'run_id' = {row['run_id']!r} differs from {run_id!r}")


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (already checked) as a table with ``FILE_SCHEMA``."""
    columns = []
    for field in FILE_SCHEMA:
        values = [row.get(field.name) for row in rows]
        if field.name == "params":
            values = [json.dumps(v, sort_keys=True) if isinstance(v, Mapping) else v for v in values]
        try:
            columns.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as error:
            raise LedgerError(f"column {field.name!r} does not fit {field.type}: {error}") from None
    return pa.Table.from_arrays(columns, schema=FILE_SCHEMA)


@retrying
def read_ledger(ledger_url: str, columns: list[str] | None = None) -> pd.DataFrame:
    """All rows, with ``columns`` (default: all, in ``LEDGER_SCHEMA`` order); an empty
    frame if there is no ledger.
    """
    fs, path = storage.filesystem(ledger_url)
    schema = LEDGER_SCHEMA if columns is None else pa.schema([LEDGER_SCHEMA.field(c) for c in columns])
    parts = live_parts(fs, path) if storage.path_exists(fs, path) else []
    if not parts:
        return _to_pandas(schema.empty_table())
    dataset = ds.dataset(parts, schema=LEDGER_SCHEMA, format="parquet", filesystem=fs, partitioning=_PARTITIONING,
                         partition_base_dir=path.rstrip("/"))  # fmt: skip
    return _to_pandas(dataset.to_table(columns=columns))


def all_parts(fs, root: str) -> list[str]:
    """Paths of every Parquet part of the ledger at ``root`` (in ``fs``), sorted."""
    return sorted(fs.glob(f"{root.rstrip('/')}/codec=*/*.parquet"))


def live_parts(fs, root: str) -> list[str]:
    """Paths of the ledger's Parquet parts to read: every part under ``root`` but those
    a present compacted part replaces (a compaction that has not deleted them yet), sorted."""
    paths = all_parts(fs, root)
    compacted = compacted_parts(fs, paths)
    return [p for p in paths if not replaced_by(compacted, p)] if compacted else paths


def compacted_parts(fs, paths: list[str]) -> dict[str, list[str]]:
    """The compacted parts among ``paths`` and the names of the parts each replaces."""
    out = {}
    for path in paths:
        if posixpath.basename(path).startswith(COMPACT_PREFIX):
            metadata = pq.read_schema(path, filesystem=fs).metadata or {}
            out[path] = json.loads(metadata.get(REPLACES_KEY, b"[]"))
    return out


def replaced_by(compacted: dict[str, list[str]], path: str) -> bool:
    """Whether another of ``compacted`` (part -> names it replaces) in ``path``'s
    folder replaces the part at ``path``."""
    folder, name = posixpath.split(path)
    return any(new != path and posixpath.dirname(new) == folder and name in old for new, old in compacted.items())


@retrying
def has_ledger(ledger_url: str) -> bool:
    """Whether ``ledger_url`` holds a ledger (a folder with at least one ``codec=`` part)."""
    fs, path = storage.filesystem(ledger_url)
    return storage.path_exists(fs, path) and bool(all_parts(fs, path))


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Integer columns stay integers (nullable ``Int32``/``Int64``) when values are missing."""
    mapping = {pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}
    return table.to_pandas(types_mapper=mapping.get)


REFUSED = (REJECTED, "failed")
"""Statuses of rows whose image a codec refused (``failed``: ledgers before 0.2)."""


def refusals(ledger_url: str, config_key: str) -> dict[str, str]:
    """Image id -> the codec's reason, for every image ``config_key``'s codec refused."""
    ledger = read_ledger(ledger_url, columns=["image_id", "config_key", "status", "error"])
    refused = ledger[(ledger["config_key"] == config_key) & ledger["status"].isin(REFUSED)]
    return dict(zip(refused["image_id"], refused["error"], strict=True))


def with_rates(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with both rates of every row, in bits per image pixel:

    - ``bpp``: the payload, the image's own stored container (``8 * bytes / pixels``;
      recomputed for rows with a shared model, since ledgers written before 0.2
      stored laduree rows with the model's share added);
    - ``amortised_bpp``: the payload plus an equal share of the shared model's
      container among the images whose latest ok rows in this ledger use that model.
      Equal to ``bpp`` for images without a shared model.

    The amortised rate falls as the archive grows, so it is computed here, when the
    ledger is read, never stored.
    """
    out = df.copy()
    for column in ("bytes", "shared_model_id", "shared_model_bytes"):  # frames made by hand may lack them
        if column not in out:
            out[column] = None
    pixels = out["width"].astype("float64") * out["height"].astype("float64")
    shared = out["shared_model_id"].notna() & out["bytes"].notna() & (pixels > 0)
    out.loc[shared, "bpp"] = 8 * out.loc[shared, "bytes"].astype("float64") / pixels[shared]
    latest = latest_rows(out[out["status"] == "ok"])
    users = latest.dropna(subset=["shared_model_id"]).groupby("shared_model_id")["image_id"].nunique()
    share = out["shared_model_bytes"].astype("float64") / out["shared_model_id"].map(users).astype("float64")
    out["amortised_bpp"] = out["bpp"] + (8 * share / pixels).fillna(0.0)
    return out


def stored_bytes(rows: pd.DataFrame) -> pd.Series:
    """Bytes each row's image costs in storage: its container plus its share of a shared
    model (``amortised_bpp`` of :func:`with_rates`, back in bytes)."""
    return rows["amortised_bpp"] * rows["width"].astype("float64") * rows["height"].astype("float64") / 8


def latest_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The latest row (by ``timestamp``) of each (image, configuration)."""
    return df.sort_values("timestamp", kind="stable").drop_duplicates(["image_id", "config_key"], keep="last")


SUMMARY_GROUPS: dict[str, list[str]] = {
    "quality": ["codec", "preset", "config_key", "quality"],
    "codec": ["codec", "preset"],
    "shard": ["shard", "codec", "preset"],
    "vae": ["vae_id", "codec", "preset"],
}
"""``summarize(by=...)`` choices and the columns each groups rows by."""
SUMMARY_COLUMNS = [
    "image_id", "codec", "preset", "config_key", "quality", "shard", "vae_id", "status", "timestamp", "width",
    "height", "bytes", "bpp", "shared_model_id", "shared_model_bytes", "lpips", "dists", "psnr", "ms_ssim",
    "encode_seconds", "decode_seconds",
]  # fmt: skip
"""The columns :func:`summarize` reads (the long text columns, such as ``source`` and
``params``, left out: a ledger of 10 million rows is read in half the memory)."""


def summarize(df: pd.DataFrame, by: str = "quality") -> pd.DataFrame:
    """Images and mean rate, quality and speed of ok rows per group of ``SUMMARY_GROUPS[by]``.

    Only the latest row of each (image, configuration) counts. ``bpp`` is the payload
    rate, ``amortised_bpp`` adds the shared models (``with_rates``). ``images`` counts
    the images with an ok row; ``rejected`` the images a codec refused (and the ``failed``
    rows of ledgers written before 0.2).
    A missing key (no VAE for pixel codecs) is a group of its own. By quality, the
    configuration key keeps a target size (``bpp0.1``) apart from the quality knob
    of the same value (``q0.1``). Sorted by the group columns other than quality and
    configuration, then bpp.
    """
    if by not in SUMMARY_GROUPS:
        raise ValueError(f"cannot summarize by {by!r} (choose from {', '.join(SUMMARY_GROUPS)})")
    keys = SUMMARY_GROUPS[by]
    means = ["bpp", "amortised_bpp", "lpips", "dists", "psnr", "ms_ssim", "encode_seconds", "decode_seconds"]
    latest = latest_rows(with_rates(df))
    ok = latest[latest["status"] == "ok"]
    out = ok.groupby(keys, dropna=False)[means].mean()
    out.insert(0, "images", ok.groupby(keys, dropna=False)["image_id"].nunique())
    refused = latest[latest["status"].isin(REFUSED)].groupby(keys, dropna=False).size().rename("rejected")
    out = out.join(refused, how="outer")
    out["images"] = out["images"].fillna(0).astype("int64")
    out["rejected"] = out["rejected"].fillna(0).astype("int64")
    order = (
        [k for k in keys if k not in ("quality", "config_key")]
        + ["bpp"]
        + [k for k in keys if k in ("quality", "config_key")]
    )
    return out.reset_index().sort_values(order, ignore_index=True)


def export(df: pd.DataFrame, url: str, fmt: Literal["csv", "parquet", "json"]) -> None:
    """Write ``df`` to ``url`` (any fsspec URL) as CSV, Parquet or JSON records."""
    if fmt == "csv":
        data = df.to_csv(index=False).encode()
    elif fmt == "parquet":
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    elif fmt == "json":
        data = df.to_json(orient="records", date_format="iso", indent=1).encode()
    else:
        raise ValueError(f"unknown export format {fmt!r} (csv, parquet or json)")
    storage.write_bytes_atomic(url, data)
