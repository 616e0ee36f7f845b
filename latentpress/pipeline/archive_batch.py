"""Archiving one batch: compress it under each configuration, then evaluate what it
stored, in one call.

Joining the steps lets a task runner run a batch's evaluation where and as soon as
it was compressed, with fewer tasks (each costs a worker about 0.1 s on Prefect and
Dask), and lets each photo be measured once for all its configurations: the task's
quality searches and its evaluation share the photo's original
(``pipeline.originals``).
"""

from __future__ import annotations

from dataclasses import dataclass

from latentpress.codecs import CodecConfig
from latentpress.infra.collection import Item
from latentpress.pipeline.compress import compress_batch
from latentpress.pipeline.context import RunContext
from latentpress.pipeline.evaluate import evaluate_images
from latentpress.pipeline.originals import Originals
from latentpress.pipeline.outcomes import Outcome


@dataclass(frozen=True)
class ArchivedBatch:
    """Compression outcomes, evaluation outcomes and the number of new ledger rows of one batch."""

    compressed: list[Outcome]
    evaluated: list[Outcome]
    rows: int


@dataclass(frozen=True)
class BatchWork:
    """One configuration's part of a batch: the items to compress under it, those the
    ledger already has a finished row for, those it records as refused, and the
    collection model to code against (collection-model codecs)."""

    config: CodecConfig
    items: list[Item]
    done: frozenset[str] = frozenset()
    rejected: frozenset[str] = frozenset()
    model_url: str | None = None


def to_evaluate(items: list[Item], compressed: list[Outcome], done: set[str] | frozenset[str]) -> list[Item]:
    """The ``items`` that have a container (``compressed`` ``ok``) and no finished ledger
    row (their ids not in ``done``)."""
    stored = {o.image_id for o in compressed if o.status == "ok"}
    return [item for item in items if item.image_id in stored and item.image_id not in done]


def archive_batch(work: list[BatchWork], run: RunContext) -> ArchivedBatch:
    """``compress_batch`` of each configuration's items, then one evaluation of every
    stored image without a finished row, photo by photo (measuring ``run.metrics``).
    A second call compresses nothing twice (stored containers are kept)."""
    originals = Originals()
    compressed: list[Outcome] = []
    evaluate: dict[str, tuple[Item, list[CodecConfig]]] = {}
    for part in work:
        outcomes = compress_batch(part.items, run, part.config, part.rejected, part.model_url, originals)
        compressed += outcomes
        for item in to_evaluate(part.items, outcomes, part.done):
            evaluate.setdefault(item.image_id, (item, []))[1].append(part.config)
    evaluation = evaluate_images(list(evaluate.values()), run, originals)
    return ArchivedBatch(compressed, evaluation.outcomes, evaluation.rows)
