"""What every flow does: cut work into batches, submit it, read results as they come.

A :class:`Plan` holds what a run's steps cut work by; a :class:`Job` is one call of
a pipeline function over a batch of images. A job that fails as a whole (after the
task runner's retries) does not stop the flow: each of its images ends as an
``error`` outcome with the job's reason (:func:`job_errors`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, TypeVar

from latentpress.codecs import CodecConfig
from latentpress.flows.executors import Executor
from latentpress.flows.progress import StepProgress
from latentpress.flows.run_log import run_logger
from latentpress.infra.collection import Item
from latentpress.pipeline.context import RunContext
from latentpress.pipeline.outcomes import Outcome, describe

T = TypeVar("T")
K = TypeVar("K")

TASKS_PER_WORKER = 2
"""Batches shrink (to no fewer than ``MIN_BATCH`` images) until each worker thread has
this many tasks; ``finer_tail`` then splits the last ones, so that a fast worker takes
over from a slow one at the end of a step."""
MIN_BATCH = 4
MAX_TASKS = 1000
"""Most tasks one step of one configuration is cut into: a larger collection gets
larger batches, so that a flow run of 100,000 photos holds a few thousand task runs
(Prefect slows down with many more) and each task's fixed cost (about 0.1 s) stays
small beside its work."""
BATCH_PIXELS = 24_000_000
"""Most pixels in one batch: a worker holds a batch's images (3 bytes a pixel, twice
when evaluating), so one 24 MP photo is a batch of its own, not batched with 60 others."""


@dataclass(frozen=True)
class Plan:
    """How a run's work is cut and where it runs: its codec configurations, what its
    pipeline steps share, the executor, and the images per batch (``size``)."""

    configs: list[CodecConfig]
    context: RunContext
    executor: Executor
    size: int

    @property
    def threads(self) -> int:
        return self.executor.threads


@dataclass
class Job:
    """One call of a pipeline ``step`` with ``params``, over the images ``image_ids``
    under ``config_key``."""

    step: Callable[..., Any]
    params: dict[str, Any]
    image_ids: list[str]
    config_key: str
    gpu: bool = False
    size: int | None = None
    """Images the job covers, for progress (default: ``len(image_ids)``)."""
    pairs: list[tuple[str, str]] | None = None
    """For a job over several configurations: each (configuration key, image id) it
    covers (``config_key`` is then empty)."""
    handle: Any = field(default=None, repr=False)

    @property
    def images(self) -> int:
        if self.pairs is not None:
            return len(self.pairs)
        return len(self.image_ids) if self.size is None else self.size


def job_errors(job: Job, exc: BaseException) -> list[Outcome]:
    """An ``error`` outcome for each image (and configuration) of a job that failed as a whole."""
    pairs = job.pairs if job.pairs is not None else [(job.config_key, image_id) for image_id in job.image_ids]
    return [Outcome(image_id, key, "error", describe(exc)) for key, image_id in pairs]


def ids(items: Iterable[Item]) -> list[str]:
    """The image ids of ``items``."""
    return [item.image_id for item in items]


def start(executor: Executor, jobs: list[Job]) -> list[Job]:
    """Submit every job to ``executor``; returns ``jobs``."""
    for job in jobs:
        job.handle = executor.submit(job.step, job.params, job.gpu)
    return jobs


def finished(executor: Executor, jobs: Sequence[Job], step: str) -> Iterator[tuple[Job, Any]]:
    """Each started job with its result, or the exception it failed with, as it
    finishes; progress in images."""
    results = executor.as_completed([job.handle for job in jobs])
    for job in jobs:
        job.handle = None  # only the executor holds them now: it lets each go once read
    with StepProgress(step, sum(job.images for job in jobs), run_log=run_logger()) as progress:
        for position, result in results:
            progress.advance(jobs[position].images)
            yield jobs[position], result


def balanced_batch(requested: int, images: int, threads: int) -> int:
    """``requested``, or less when ``images`` would give a thread fewer than
    ``TASKS_PER_WORKER`` tasks (never below ``MIN_BATCH``), or more when ``images``
    would make more than ``MAX_TASKS`` tasks."""
    if requested < 1:
        raise ValueError(f"batch size must be at least 1, got {requested}")
    balanced = math.ceil(images / (TASKS_PER_WORKER * threads))
    return max(min(requested, max(balanced, MIN_BATCH)), math.ceil(images / MAX_TASKS))


def chunks(values: Sequence[T], size: int) -> list[list[T]]:
    """``values`` in as few consecutive lists of at most ``size`` as possible, their
    lengths differing by at most one (6 by 4: 3 and 3, not 4 and 2)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    count = math.ceil(len(values) / size)
    bounds = [i * len(values) // count for i in range(count + 1)] if count else [0]
    return [list(values[a:b]) for a, b in pairwise(bounds)]


def finer_tail(jobs: list[tuple[K, list[T]]], threads: int, rounds: int = 3) -> list[tuple[K, list[T]]]:
    """``jobs`` (a key and a batch each) with the batches of the last ``threads`` jobs
    halved, ``rounds`` times over (4 jobs of 16 on 2 threads: 2 of 16, 2 of 8, 2 of 4,
    4 of 2). A step's last tasks are short, so the workers finish close together even
    when one is slower (one thread has nobody to wait for: its jobs stay as they are)."""
    if threads < 2:
        return jobs
    for _ in range(rounds):
        cut = max(len(jobs) - threads, 0)
        jobs = jobs[:cut] + [
            (key, half) for key, batch in jobs[cut:] for half in chunks(batch, math.ceil(len(batch) / 2))
        ]
    return jobs


def shard_batches(items: Iterable[Item], size: int, max_pixels: int | None = BATCH_PIXELS) -> list[list[Item]]:
    """Items of each shard in batches of at most ``size`` images and, unless
    ``max_pixels`` is None, at most that many pixels (a larger image goes alone);
    batches never span shards."""
    by_shard: dict[int, list[Item]] = {}
    for item in items:
        by_shard.setdefault(item.shard, []).append(item)
    batches = [batch for shard in sorted(by_shard) for batch in chunks(by_shard[shard], size)]
    return batches if max_pixels is None else [part for batch in batches for part in _by_pixels(batch, max_pixels)]


def photo_batches(items: list[Item], todo: Iterable[list[Item]], size: int, threads: int) -> list[list[Item]]:
    """Batches (``shard_batches``, the last ones halved by ``finer_tail``) of the
    ``items`` that any list of ``todo`` holds, in the order of ``items``: each batch
    is then worked on under every configuration its photos need."""
    wanted = {item.image_id for images in todo for item in images}
    batches = shard_batches([item for item in items if item.image_id in wanted], size)
    return [batch for _, batch in finer_tail([("", batch) for batch in batches], threads)]


def _by_pixels(items: list[Item], max_pixels: int) -> list[list[Item]]:
    """``items`` cut, in order, into runs of at most ``max_pixels`` pixels (or one image)."""
    runs: list[list[Item]] = [[]]
    pixels = 0
    for item in items:
        if runs[-1] and pixels + item.width * item.height > max_pixels:
            runs.append([])
            pixels = 0
        runs[-1].append(item)
        pixels += item.width * item.height
    return runs
