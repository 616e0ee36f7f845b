"""Prefect tasks: one wrapper per pipeline function, with its retry policy.

The flows never call these directly: a flow hands a pipeline function to its
executor, and the Dask executor submits the task wrapping it (``TASKS``). Retries
are for transient faults (storage, network); bad input and bugs never raise out of
a pipeline function, they end as the image's outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from latentpress.pipeline import archive, compress, encode, evaluate, ingest, models, restore

STORAGE_RETRIES = {"retries": 2, "retry_delay_seconds": [2, 10]}


def _task(fn: Callable[..., Any], **retries: Any) -> Task:
    return task(fn, name=fn.__name__, cache_policy=NO_CACHE, **(retries or STORAGE_RETRIES))


inspect_files = _task(ingest.inspect_files, retries=3, retry_delay_seconds=[1, 4, 16])
encode_latents = _task(encode.encode_latents)
compress_batch = _task(compress.compress_batch)
fit_shard = _task(compress.fit_shard, retries=1, retry_delay_seconds=[10])
evaluate_batch = _task(evaluate.evaluate_batch)
archive_batch = _task(archive.archive_batch)
restore_batch = _task(restore.restore_batch)
train_model = _task(models.train_model, retries=1, retry_delay_seconds=[10])
train_from_files = _task(models.train_from_files, retries=1, retry_delay_seconds=[10])

TASKS: dict[Callable[..., Any], Task] = {
    t.fn: t
    for t in (inspect_files, encode_latents, compress_batch, fit_shard, evaluate_batch, archive_batch, restore_batch,
              train_model, train_from_files)
}
"""Pipeline function -> the Prefect task that runs it."""
