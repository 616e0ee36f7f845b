"""Ingest: list a collection, inspect every file on the workers, assign shards."""

from __future__ import annotations

import math

from latentpress.flows.common import MAX_TASKS, Job, chunks, finished, start
from latentpress.flows.executors import Executor, InProcess
from latentpress.infra.collection import Item, append_changes, read_collection
from latentpress.infra.lease import leased
from latentpress.infra.listing import list_source
from latentpress.pipeline import ingest as stage
from latentpress.pipeline.outcomes import describe
from latentpress.run import Run

INSPECT_BATCH = 100
"""Most files one inspection task reads."""


@leased("ingest")
def ingest(run: Run, executor: Executor | None = None) -> list[Item]:
    """Inspect every image under ``run.source`` and append what changed to the
    collection of ``run.archive`` (``infra.collection``), which also lists every other
    entry of the source with the reason it is skipped. Shards of ``run.shard_size``
    images once given stay (``assign_shards``).

    Files unchanged since the archive's last ingest (same URL, size and modification
    time) are not read again, unless they were unreadable. Returns all items: good
    ones with their shard, the others with their reason.
    """
    executor = executor or InProcess()
    source, archive = run.source, run.archive
    everything = list_source(source)
    listing = everything.files
    if not listing:
        raise ValueError(f"no image files (by extension) under {source}")
    previous = read_collection(archive)
    kept, todo = stage.reusable(listing, previous)
    size = max(min(INSPECT_BATCH, max(1, math.ceil(len(todo) / executor.threads))),  # every thread gets some
               math.ceil(len(todo) / MAX_TASKS))  # fmt: skip
    jobs = [
        Job(
            stage.inspect_files,
            {"files": {u: listing[u] for u in batch}, "root": source, "archive": archive},
            [],
            "",
            size=len(batch),
        )
        for batch in chunks(todo, size)
    ]
    inspected: list[Item] = []
    for job, result in finished(executor, start(executor, jobs), "ingest"):
        if isinstance(result, BaseException):  # unreadable after retries: read again next run
            files = job.params["files"].items()
            result = [stage.unreadable(url, source, version, describe(result)) for url, version in files]
        inspected += result
    items = stage.assign_shards(kept + inspected + stage.skipped_items(everything), run.shard_size, previous)
    append_changes(archive, previous, items)
    return items
