"""Ingest flow: list a collection, inspect every file, assign shards."""

from __future__ import annotations

from prefect import flow

from latentpress.config import DEFAULT_SHARD_SIZE
from latentpress.flows.common import chunks, flatten, gather
from latentpress.infra.archive import ArchiveLayout
from latentpress.infra.cluster import dask_scheduler, task_runner
from latentpress.infra.collection import Item, assign_shards, list_images, write_collection
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

    Returns all items: good ones with their shard, bad ones with their reason.
    """
    urls = list_images(source)
    if not urls:
        raise ValueError(f"no image files (by extension) under {source}")
    with dask_scheduler(dask_address, workers) as address, task_runner(address) as runner:
        futures = [runner.submit(inspect_batch, {"urls": batch, "root": source}) for batch in chunks(urls, INSPECT_BATCH)]
        items = assign_shards(flatten(gather(futures, "inspect")), shard_size)
    write_collection(ArchiveLayout(archive).collection, items)
    return items
