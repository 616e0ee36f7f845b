"""Ingest: list a collection, read and identify each file, group the images in shards.

The result is the collection file (``infra.collection``): one :class:`Item` per file,
``ok`` images with their shard, the others with the reason they are not archived.
"""

from __future__ import annotations

import posixpath
import threading
from collections import Counter
from dataclasses import replace

from latentpress.infra import storage
from latentpress.infra.collection import (
    DUPLICATE,
    ERROR,
    OK,
    REJECTED,
    SKIPPED,
    Item,
    content_id,
    source_id,
)
from latentpress.infra.images import ImageError, count_frames, read_image
from latentpress.infra.layout import ArchiveLayout
from latentpress.infra.listing import Listing, list_source
from latentpress.infra.metadata import Metadata, pack_metadata
from latentpress.pipeline.outcomes import describe, unless_transient

READ_SECONDS = 300.0
"""Longest the read of one file may take before it ends in ``error`` (read again next run)."""
REUSED = (OK, REJECTED, DUPLICATE)
"""Statuses of items whose unchanged files are not read again (``error`` ones are)."""


def list_images(url: str) -> dict[str, str]:
    """Sorted URLs of the image files to read under ``url`` (recursively), each with its
    version (size and modification time); see ``infra.listing`` for what is left out.

    Files are chosen by name: a broken ``.jpg`` is listed (and later rejected).
    """
    return list_source(url).files


def skipped_items(listing: Listing) -> list[Item]:
    """An item for every entry of ``listing`` that is not read, with its reason."""
    return [Item(source_id(s.url), s.url, s.name, 0, 0, 0, SKIPPED, s.reason, None) for s in listing.skipped]


def reusable(listing: dict[str, str], previous: list[Item]) -> tuple[list[Item], list[str]]:
    """Split a listing into earlier items whose file is unchanged (same source and
    version, status in ``REUSED``) and the URLs that must be read (new, changed,
    unreadable last time, or images whose metadata was never read)."""
    known = {
        item.source: item
        for item in previous
        if item.version is not None and item.status in REUSED and not (item.status == OK and item.metadata is None)
    }
    kept = [known[u] for u, v in listing.items() if u in known and known[u].version == v]
    kept_sources = {item.source for item in kept}
    return kept, [u for u in listing if u not in kept_sources]


def inspect_files(files: dict[str, str], root: str, archive: str | None = None) -> list[Item]:
    """Read, identify and validate each file (URL -> version) under ``root``, storing
    the metadata of good images in ``archive``.

    Bad images come back ``rejected``, unreadable files ``error``; only transient
    storage errors raise (so that the batch is retried).
    """
    return [inspect_image(url, root, version, archive) for url, version in files.items()]


def inspect_image(url: str, root: str, version: str | None = None, archive: str | None = None) -> Item:
    """One file as an item: ``ok``, ``rejected`` (not a usable image) or ``error``; an
    ``ok`` image's metadata is stored in ``archive`` (if given)."""
    name = _relative_name(url, root)
    try:
        data = read_within(url, READ_SECONDS)
    except Exception as exc:  # noqa: BLE001 - each file ends with a status
        unless_transient(exc)
        return unreadable(url, root, version, describe(exc))
    image_id = content_id(data)
    try:
        pixels, metadata = read_image(data, name)
    except ImageError as exc:
        return Item(image_id, url, name, 0, 0, len(data), REJECTED, str(exc), None, version)
    height, width, _ = pixels.shape
    if archive is not None and metadata.kept:
        store_metadata(archive, image_id, metadata, width, height)
    frames = count_frames(data)
    return Item(
        image_id,
        url,
        name,
        width,
        height,
        len(data),
        OK,
        None,
        None,
        version,
        frames if frames > 1 else None,
        metadata.summary(),
    )


def store_metadata(archive: str, image_id: str, metadata: Metadata, width: int, height: int) -> None:
    """Store an image's metadata object, unless one is stored (ids are content hashes)."""
    url = ArchiveLayout(archive).metadata(image_id)
    if not storage.exists(url):
        storage.write_bytes_atomic(url, pack_metadata(metadata, image_id, width, height))


class ReadTimeout(OSError):
    """A file whose bytes did not arrive in time (not retried within the run: the next run reads it again)."""


def read_within(url: str, seconds: float) -> bytes:
    """The bytes of ``url``, or ``ReadTimeout`` if reading takes longer than ``seconds``
    (a hung network mount, a special file): the reading thread is left behind, so one
    file can never stop the collection."""
    result: list[bytes | BaseException] = []

    def read() -> None:
        try:
            result.append(storage.read_bytes(url))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            result.append(exc)

    reader = threading.Thread(target=read, name="latentpress-read", daemon=True)
    reader.start()
    reader.join(seconds)
    if not result:
        raise ReadTimeout(f"reading took longer than {seconds:g} s")
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def unreadable(url: str, root: str, version: str | None, reason: str) -> Item:
    """The ``error`` item of a file that could not be read (read again next time)."""
    return Item(source_id(url), url, _relative_name(url, root), 0, 0, 0, ERROR, f"cannot read: {reason}", None, version)


def _relative_name(url: str, root: str) -> str:
    _, path = storage.filesystem(url)
    _, base = storage.filesystem(root)
    base = base.rstrip("/")
    if path.startswith(base + "/"):
        return path[len(base) + 1 :]
    return posixpath.basename(path)


def assign_shards(items: list[Item], shard_size: int, previous: list[Item] = ()) -> list[Item]:
    """Deduplicate and shard: the same items always give the same shards, and shards
    once given stay.

    Among ``ok`` (or earlier ``duplicate``) items with one id, the one kept in
    ``previous`` stays kept, else the first by source URL; the others become
    ``duplicate``. Kept items keep their shard from ``previous``; the others, sorted
    by id, fill the last shard up to ``shard_size`` images and then new shards (from
    0 for a new collection), so photos added later never move earlier ones to another
    shard. Returns the kept items by shard and id, then duplicates, rejected, skipped
    and unreadable items by source; only kept items have a shard. Running it again on
    its own output changes nothing.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    before = {item.image_id: item for item in previous if item.status == OK}
    kept: dict[str, Item] = {}
    others: list[Item] = []
    for item in sorted(items, key=lambda i: (i.source != getattr(before.get(i.image_id), "source", None), i.source)):
        if item.status in (REJECTED, ERROR, SKIPPED):
            others.append(replace(item, shard=None))
        elif item.image_id in kept:
            reason = f"same bytes as {kept[item.image_id].source}"
            others.append(replace(item, status=DUPLICATE, error=reason, shard=None))
        else:
            kept[item.image_id] = item
    shards = {i: before[i].shard for i in kept if i in before and before[i].shard is not None}
    sizes = Counter(shards.values())
    last = max(sizes, default=-1)
    for image_id in sorted(i for i in kept if i not in shards):
        if last < 0 or sizes[last] >= shard_size:
            last += 1
        shards[image_id] = last
        sizes[last] += 1
    sharded = [replace(kept[i], status=OK, error=None, shard=shards[i]) for i in kept]
    return sorted(sharded, key=lambda i: (i.shard, i.image_id)) + sorted(others, key=lambda i: i.source)
