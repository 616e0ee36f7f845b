"""Prefect tasks: one wrapper per pipeline function, with its retry policy.

The flows never call these directly: a flow hands a pipeline function to its
executor, and the Dask executor submits the task wrapping it (``TASKS``). Retries
are for transient faults (storage, network); bad input and bugs never raise out of
a pipeline function, they end as the image's outcome. Each task run logs what it did
(its images by outcome) to its run log.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from latentpress.pipeline import archive_batch as archiving
from latentpress.pipeline import collection_models, compress, encode, evaluate, ingest, restore

STORAGE_RETRIES = {"retries": 2, "retry_delay_seconds": [2, 10]}


def _task(fn: Callable[..., Any], **retries: Any) -> Task:
    """``fn`` as a Prefect task that logs what it did (its signature and name are ``fn``'s)."""

    @functools.wraps(fn)
    def logged(*args: Any, **kwargs: Any) -> Any:
        value = fn(*args, **kwargs)
        get_run_logger().info(outcome_line(value))
        return value

    return task(logged, name=fn.__name__, cache_policy=NO_CACHE, **(retries or STORAGE_RETRIES))


def outcome_line(value: Any) -> str:
    """What a pipeline function returned, in a line: its images by outcome."""
    if isinstance(value, archiving.ArchivedBatch):
        return (
            f"compress {_counted(value.compressed)}; evaluate {_counted(value.evaluated)}; {value.rows} ledger row(s)"
        )
    if isinstance(value, evaluate.Evaluation):
        return f"evaluate {_counted(value.outcomes)}; {value.rows} ledger row(s)"
    if isinstance(value, collection_models.TrainedModel):
        return f"model {value.model_id} ({value.images} image(s), {value.seconds:.0f} s) at {value.url}"
    return _counted(value)


def _counted(outcomes: list) -> str:
    """``3 ok, 1 cached, 1 error``, of anything with a ``status`` (outcomes, ingested items)."""
    counts = Counter("cached" if getattr(o, "cached", False) else o.status for o in outcomes)
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing to do"


inspect_files = _task(ingest.inspect_files, retries=3, retry_delay_seconds=[1, 4, 16])
encode_latents = _task(encode.encode_latents)
compress_batch = _task(compress.compress_batch)
fit_shard = _task(compress.fit_shard, retries=1, retry_delay_seconds=[10])
evaluate_batch = _task(evaluate.evaluate_batch)
evaluate_images = _task(evaluate.evaluate_images)
archive_batch = _task(archiving.archive_batch)
restore_batch = _task(restore.restore_batch)
train_model = _task(collection_models.train_model, retries=1, retry_delay_seconds=[10])
train_from_files = _task(collection_models.train_from_files, retries=1, retry_delay_seconds=[10])

TASKS: dict[Callable[..., Any], Task] = {
    t.fn.__wrapped__: t
    for t in (
        inspect_files,
        encode_latents,
        compress_batch,
        fit_shard,
        evaluate_batch,
        evaluate_images,
        archive_batch,
        restore_batch,
        train_model,
        train_from_files,
    )
}
"""Pipeline function -> the Prefect task that runs it."""
