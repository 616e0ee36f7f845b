"""Ingest: list a collection, validate and identify each image, group items in shards.

Plain functions over storage URLs; the Prefect tasks in ``latentpress.tasks`` wrap
them. The result is stored as ``<archive>/collection.parquet`` (one row per file).

Statuses:

- ``ok``: a decodable image; it gets a shard.
- ``failed``: the file could not be read or decoded; ``error`` says why. Its id is
  the content id of its bytes when they could be read, else ``x`` followed by 15 hex
  digits of the SHA-256 of its URL (content ids are pure hex, so they never collide).
- ``duplicate``: the same bytes as an earlier file (by source URL order); it shares
  that file's id, ``error`` names the kept source, and it gets no shard of its own.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
from dataclasses import asdict, dataclass, replace

import pyarrow as pa
import pyarrow.parquet as pq

from latentpress.infra import storage
from latentpress.infra.images import ImageError, decode_image, has_image_extension

OK, FAILED, DUPLICATE = "ok", "failed", "duplicate"

# Errors that mean this one file is unreadable (retrying will not help); other
# storage errors propagate so the task layer can retry them.
_UNREADABLE = (FileNotFoundError, PermissionError, IsADirectoryError)


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
    ]
)


def content_id(data: bytes) -> str:
    """The image id: the first 16 hex digits of the SHA-256 of the file's bytes."""
    return hashlib.sha256(data).hexdigest()[:16]


def _source_id(url: str) -> str:
    """Id for a file whose bytes could not be read (never equal to a content id)."""
    return "x" + hashlib.sha256(url.encode()).hexdigest()[:15]


def list_images(url: str) -> dict[str, str]:
    """Sorted URLs of the files under ``url`` (recursively) with an image extension,
    each with its version (``storage.file_versions``).

    Files are chosen by name only: a broken ``.jpg`` is listed (and later recorded as
    failed); files with other extensions are ignored.
    """
    return {u: v for u, v in storage.file_versions(url).items() if has_image_extension(u)}


def reusable(listing: dict[str, str], previous: list[Item]) -> tuple[list[Item], list[str]]:
    """Split a listing into earlier items whose file is unchanged (same source and
    version) and the URLs that must be inspected (new or changed files)."""
    known = {item.source: item for item in previous if item.version is not None}
    kept = [known[u] for u, v in listing.items() if u in known and known[u].version == v]
    kept_sources = {item.source for item in kept}
    return kept, [u for u in listing if u not in kept_sources]


def _relative_name(url: str, root: str) -> str:
    _, path = storage.filesystem(url)
    _, base = storage.filesystem(root)
    base = base.rstrip("/")
    if path.startswith(base + "/"):
        return path[len(base) + 1 :]
    return posixpath.basename(path)


def inspect_image(url: str, root: str, version: str | None = None) -> Item:
    """Read, identify and validate one file; bad input gives a ``failed`` item.

    Raises only storage errors other than a missing or forbidden file (for example a
    lost connection), so that the caller may retry.
    """
    name = _relative_name(url, root)
    try:
        data = storage.read_bytes(url)
    except _UNREADABLE as exc:
        reason = f"cannot read: {type(exc).__name__}: {exc}"
        return Item(_source_id(url), url, name, 0, 0, 0, FAILED, reason, None, version)
    image_id = content_id(data)
    try:
        height, width, _ = decode_image(data, name).shape
    except ImageError as exc:
        return Item(image_id, url, name, 0, 0, len(data), FAILED, str(exc), None, version)
    return Item(image_id, url, name, width, height, len(data), OK, None, None, version)


def assign_shards(items: list[Item], shard_size: int) -> list[Item]:
    """Deduplicate and shard: the same items always give the same shards.

    Among ``ok`` (or earlier ``duplicate``) items with one id, the first by source URL
    is kept and the others become ``duplicate``. Kept items, sorted by id, are cut
    into shards of ``shard_size`` numbered from 0. Returns the kept items in shard
    order, then duplicates and failed items by source; only kept items have a shard.
    Running it again on its own output changes nothing.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    kept: dict[str, Item] = {}
    others: list[Item] = []
    for item in sorted(items, key=lambda i: i.source):
        if item.status == FAILED:
            others.append(replace(item, shard=None))
        elif item.image_id in kept:
            reason = f"same bytes as {kept[item.image_id].source}"
            others.append(replace(item, status=DUPLICATE, error=reason, shard=None))
        else:
            kept[item.image_id] = item
    ordered = [kept[i] for i in sorted(kept)]
    sharded = [
        replace(item, status=OK, error=None, shard=n // shard_size)
        for n, item in enumerate(ordered)
    ]
    return sharded + others


def write_collection(url: str, items: list[Item]) -> None:
    """Store ``items`` as one Parquet file at ``url``, atomically."""
    table = pa.Table.from_pylist([asdict(i) for i in items], schema=_SCHEMA)
    out = io.BytesIO()
    pq.write_table(table, out)
    storage.write_bytes_atomic(url, out.getvalue())


def read_collection(url: str) -> list[Item]:
    """The items stored by :func:`write_collection`."""
    table = pq.read_table(io.BytesIO(storage.read_bytes(url)))
    missing = set(_SCHEMA.names) - set(table.column_names) - {"version"}
    if missing:
        raise ValueError(f"{url}: not a collection file (missing {sorted(missing)})")
    names = [n for n in _SCHEMA.names if n in table.column_names]
    return [Item(**row) for row in table.select(names).to_pylist()]
