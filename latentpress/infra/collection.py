"""The collection file: every ingested file as an :class:`Item`, one Parquet object.

Stored as ``<archive>/collection.parquet`` (one row per file). Statuses:

- ``ok``: a decodable image; it gets a shard.
- ``rejected``: not a usable image (undecodable, empty, too large); ``error`` says
  why. Never read again while the file is unchanged.
- ``error``: the file could not be read (missing, forbidden); read again by the next
  ingest. Collections written before these statuses say ``failed``, read as ``error``.
- ``skipped``: an entry of the source that is not read (another format, hidden, not a
  regular file, a link loop or out of the source, a name that is not UTF-8, too large:
  see ``infra.listing``); ``error`` says why. Listed again by every ingest.
- ``duplicate``: the same bytes as an earlier file (by source URL order); it shares
  that file's id, ``error`` names the kept source, and it gets no shard of its own.

An item whose bytes could not be read has the id ``x`` followed by 15 hex digits of
the SHA-256 of its URL (content ids are pure hex, so the two never collide).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from latentpress.infra import storage

OK, REJECTED, ERROR, DUPLICATE, SKIPPED = "ok", "rejected", "error", "duplicate", "skipped"


@dataclass(frozen=True)
class Item:
    """One input file. ``name`` is its path under the collection root, for people."""

    image_id: str
    source: str
    name: str
    width: int
    height: int
    nbytes: int
    status: str
    error: str | None
    shard: int | None
    version: str | None = None
    """The file's version when inspected (size and modification time, see
    ``storage.file_versions``): an unchanged file is not read again."""
    frames: int | None = None
    """Frames of an animated or multi-page file (its first is archived); None for one."""
    metadata: str | None = None
    """What became of the file's metadata (``infra.metadata``): the kinds kept and those
    dropped with their reasons; '' for none; None if not read (collections before 0.3)."""


_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("source", pa.string()),
        ("name", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("nbytes", pa.int64()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("shard", pa.int32()),
        ("version", pa.string()),
        ("frames", pa.int32()),
        ("metadata", pa.string()),
    ]
)


def content_id(data: bytes) -> str:
    """The image id: the first 16 hex digits of the SHA-256 of the file's bytes."""
    return hashlib.sha256(data).hexdigest()[:16]


def source_id(url: str) -> str:
    """Id for a file whose bytes could not be read (never equal to a content id)."""
    return "x" + hashlib.sha256(url.encode()).hexdigest()[:15]


def write_collection(url: str, items: list[Item]) -> None:
    """Store ``items`` as one Parquet file at ``url``, atomically."""
    table = pa.Table.from_pylist([asdict(i) for i in items], schema=_SCHEMA)
    out = io.BytesIO()
    pq.write_table(table, out)
    storage.write_bytes_atomic(url, out.getvalue())


def read_collection(url: str) -> list[Item]:
    """The items stored by :func:`write_collection` (``failed`` read as ``error``)."""
    table = pq.read_table(io.BytesIO(storage.read_bytes(url)))
    missing = set(_SCHEMA.names) - set(table.column_names) - {"version", "frames", "metadata"}
    if missing:
        raise ValueError(f"{url}: not a collection file (missing {sorted(missing)})")
    names = [n for n in _SCHEMA.names if n in table.column_names]
    rows = table.select(names).to_pylist()
    return [Item(**(row | {"status": ERROR} if row["status"] == "failed" else row)) for row in rows]
