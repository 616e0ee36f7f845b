"""The collection: every ingested file as an :class:`Item`, in append-only parts.

Each ingest that finds something new appends one Parquet part,
``<archive>/collection/part-<UTC time>-<random>.parquet``, holding only the rows of files
that are new or changed since the last state, and a ``removed`` row for each file no
longer listed; a rerun that finds nothing new writes nothing. The collection is the
latest row of each source over the parts in name (time) order, removed sources left
out; archives made before 0.3 start from their single ``<archive>/collection.parquet``,
read as the first part. A part is written whole or not at all, so an ingest killed
while writing loses nothing and repeats nothing: the next one finds the same changes.
Statuses:

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
from dataclasses import asdict, dataclass, replace

import pyarrow as pa
import pyarrow.parquet as pq

from latentpress.infra import storage
from latentpress.infra.layout import check_image_id

OK, REJECTED, ERROR, DUPLICATE, SKIPPED, REMOVED = "ok", "rejected", "error", "duplicate", "skipped", "removed"
"""``removed`` is a part's row for a source no longer listed: it leaves the collection."""
PARTS_FOLDER = "collection"
LEGACY_FILE = "collection.parquet"


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


def read_items(url: str) -> list[Item]:
    """The rows of one file stored by :func:`write_collection` (``failed`` read as ``error``)."""
    table = pq.read_table(io.BytesIO(storage.read_bytes(url)))
    missing = set(_SCHEMA.names) - set(table.column_names) - {"version", "frames", "metadata"}
    if missing:
        raise ValueError(f"{url}: not a collection file (missing {sorted(missing)})")
    names = [n for n in _SCHEMA.names if n in table.column_names]
    rows = table.select(names).to_pylist()
    items = [Item(**(row | {"status": ERROR} if row["status"] == "failed" else row)) for row in rows]
    for item in items:
        _check(item, url)
    return items


def _check(item: Item, url: str) -> None:
    """``ValueError`` naming ``url`` unless an archived item has a well-formed id and name
    (they become paths when restored)."""
    if item.status == OK:
        try:
            check_image_id(item.image_id)
        except ValueError as exc:
            raise ValueError(f"{url}: {exc}") from None
    if not isinstance(item.name, str) or not isinstance(item.source, str):
        raise ValueError(f"{url}: item {item.image_id!r} without a name or source")


def collection_parts(archive: str) -> list[str]:
    """URLs of the collection's parts in reading order: the single file of archives
    before 0.3, then the parts by name (time)."""
    legacy = storage.join(archive, LEGACY_FILE)
    folder = storage.join(archive, PARTS_FOLDER)
    parts = (
        [u for u in storage.list_files(folder, recursive=False) if u.endswith(".parquet")]
        if storage.exists(folder)
        else []
    )
    return ([legacy] if storage.exists(legacy) else []) + parts


def read_collection(archive: str) -> list[Item]:
    """The archive's collection (empty before its first ingest): the latest row of
    each source, removed ones left out; archived items by shard and id, then the
    others by source."""
    latest: dict[str, Item] = {}
    for url in collection_parts(archive):
        latest.update((item.source, item) for item in read_items(url))
    items = [item for item in latest.values() if item.status != REMOVED]
    kept = sorted((i for i in items if i.status == OK), key=lambda i: (i.shard, i.image_id))
    return kept + sorted((i for i in items if i.status != OK), key=lambda i: i.source)


def archived_items(archive: str) -> list[Item]:
    """The collection's archived (``ok``) items, by shard and id."""
    return [item for item in read_collection(archive) if item.status == OK]


def append_changes(archive: str, previous: list[Item], items: list[Item]) -> str | None:
    """Append the part that turns ``previous`` into ``items``: the rows of ``items`` that
    are new or differ, and a ``removed`` row for each earlier source missing from
    ``items``. Returns its URL, or None when nothing changed (nothing is written)."""
    before = {item.source: item for item in previous}
    now = {item.source for item in items}
    rows = [item for item in items if before.get(item.source) != item]
    rows += [replace(item, status=REMOVED, error="no longer listed", shard=None)
             for source, item in sorted(before.items()) if source not in now]  # fmt: skip
    if not rows:
        return None
    url = storage.join(archive, PARTS_FOLDER, storage.timed_part_name("parquet"))
    write_collection(url, rows)
    return url
