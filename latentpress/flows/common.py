"""Helpers shared by the flows: batching work and gathering task results."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from prefect.futures import PrefectFuture, as_completed
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from latentpress.infra.cluster import cluster_shape, dask_scheduler, task_runner
from latentpress.infra.collection import Item

T = TypeVar("T")
K = TypeVar("K")

TASKS_PER_WORKER = 2
"""Batches shrink (to no fewer than ``MIN_BATCH`` images) until each worker thread has
this many tasks; ``finer_tail`` then splits the last ones, so that a fast worker takes
over from a slow one at the end of a step."""
MIN_BATCH = 4


class FlowError(RuntimeError):
    """Some tasks of a flow failed after their retries."""


@dataclass(frozen=True)
class Workers:
    """A started task runner on a Dask cluster: whether it has GPUs, how many threads."""

    runner: Any
    gpus: bool
    threads: int = 1

    def batch_size(self, requested: int, images: int) -> int:
        """``requested``, or less when ``images`` would give a thread fewer than
        ``TASKS_PER_WORKER`` tasks (never below ``MIN_BATCH``)."""
        if requested < 1:
            raise ValueError(f"batch size must be at least 1, got {requested}")
        balanced = math.ceil(images / (TASKS_PER_WORKER * self.threads))
        return min(requested, max(balanced, MIN_BATCH))


@contextmanager
def use_cluster(dask_address: str | None, count: int | None) -> Iterator[Workers]:
    """Workers of the cluster at ``dask_address`` (default: a local cluster of ``count``)."""
    with dask_scheduler(dask_address, count) as address, task_runner(address) as runner:
        yield Workers(runner, *cluster_shape(runner.client))


def chunks(values: Sequence[T], size: int) -> list[list[T]]:
    """``values`` in as few consecutive lists of at most ``size`` as possible, their
    lengths differing by at most one (6 by 4: 3 and 3, not 4 and 2)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    count = math.ceil(len(values) / size)
    bounds = [i * len(values) // count for i in range(count + 1)] if count else [0]
    return [list(values[a:b]) for a, b in zip(bounds, bounds[1:])]


def finer_tail(jobs: list[tuple[K, list[T]]], threads: int, rounds: int = 3) -> list[tuple[K, list[T]]]:
    """``jobs`` (a key and a batch each) with the batches of the last ``threads`` jobs
    halved, ``rounds`` times over (4 jobs of 16 on 2 threads: 2 of 16, 2 of 8, 2 of 4,
    4 of 2). A step's last tasks are short, so the workers finish close together even
    when one is slower (one thread has nobody to wait for: its jobs stay as they are)."""
    if threads < 2:
        return jobs
    for _ in range(rounds):
        cut = max(len(jobs) - threads, 0)
        jobs = jobs[:cut] + [(key, half) for key, batch in jobs[cut:] for half in chunks(batch, math.ceil(len(batch) / 2))]
    return jobs


def shard_batches(items: Iterable[Item], batch_size: int) -> list[list[Item]]:
    """Items of each shard in batches of at most ``batch_size`` (batches never span shards)."""
    by_shard: dict[int, list[Item]] = {}
    for item in items:
        by_shard.setdefault(item.shard, []).append(item)
    return [batch for shard in sorted(by_shard) for batch in chunks(by_shard[shard], batch_size)]


def finished(futures: Sequence[PrefectFuture], description: str) -> Iterator[tuple[int, Any]]:
    """The position and result of each of ``futures`` as it finishes, with a progress bar.

    Raises ``FlowError`` naming every failed task once all have finished, so work
    that succeeded is never thrown away.
    """
    index = {id(future): i for i, future in enumerate(futures)}
    errors: list[str] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=not sys.stderr.isatty(), disable=not futures, refresh_per_second=2) as progress:
        bar = progress.add_task(description, total=len(futures))
        for future in as_completed(futures):
            progress.advance(bar)
            try:
                result = future.result()
            except Exception as exc:  # a task that failed after its retries
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            yield index[id(future)], result
    if errors:
        raise FlowError(f"{description}: {len(errors)} task(s) failed: " + "; ".join(errors[:5]))


def gather(futures: Sequence[PrefectFuture], description: str) -> list[Any]:
    """Wait for ``futures`` (see ``finished``); their results in submission order."""
    results: list[Any] = [None] * len(futures)
    for position, result in finished(futures, description):
        results[position] = result
    return results


def flatten(lists: Iterable[list[T]]) -> list[T]:
    """One list of all elements of ``lists``."""
    return [value for values in lists for value in values]
