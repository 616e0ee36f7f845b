"""Ingest flow: list a collection, inspect every file, assign shards."""

from __future__ import annotations

import math

from prefect import flow

from latentpress.config import DEFAULT_SHARD_SIZE
from latentpress.flows.common import Workers, chunks, flatten, gather, use_cluster
from latentpress.infra import storage
from latentpress.infra.archive import ArchiveLayout
from latentpress.infra.collection import Item, assign_shards, list_images, read_collection, reusable, write_collection
from latentpress.tasks.ingest import inspect_batch

INSPECT_BATCH = 100


@flow(name="ingest")
def ingest_flow(
    source: str,
    archive: str,
    shard_size: int = DEFAULT_SHARD_SIZE,
    dask_address: str | None = None,
    workers: int | None = None,
) -> list[Item]:
    """Inspect every image under ``source`` and write ``<archive>/collection.parquet``.

    Files unchanged since the archive's last ingest (same URL, size and modification
    time) are not read again. Returns all items: good ones with their shard, bad ones
    with their reason.
    """
    with use_cluster(dask_address, workers) as running:
        return ingest(running, source, archive, shard_size)


def ingest(running: Workers, source: str, archive: str, shard_size: int = DEFAULT_SHARD_SIZE) -> list[Item]:
    """The ingest step on already running workers (see ``ingest_flow``)."""
    listing = list_images(source)
    if not listing:
        raise ValueError(f"no image files (by extension) under {source}")
    url = ArchiveLayout(archive).collection
    kept, todo = reusable(listing, read_collection(url) if storage.exists(url) else [])
    size = min(INSPECT_BATCH, max(1, math.ceil(len(todo) / running.threads)))  # every thread gets some
    futures = [
        running.runner.submit(inspect_batch, {"files": {u: listing[u] for u in batch}, "root": source})
        for batch in chunks(todo, size)
    ]
    items = assign_shards(kept + flatten(gather(futures, "inspect")), shard_size)
    write_collection(url, items)
    return items
