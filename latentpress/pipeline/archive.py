"""Archiving one batch: compress it, then evaluate what it stored, in one call.

Joining the two steps lets a task runner run a batch's evaluation where and as soon
as it was compressed, with half the tasks (each costs a worker about 0.1 s on
Prefect and Dask).
"""

from __future__ import annotations

from dataclasses import dataclass

from latentpress.codecs import CodecConfig
from latentpress.infra.collection import Item
from latentpress.pipeline.compress import compress_batch
from latentpress.pipeline.evaluate import Evaluation, evaluate_batch
from latentpress.pipeline.outcomes import Outcome


@dataclass(frozen=True)
class ArchivedBatch:
    """Compression outcomes, evaluation outcomes and the number of new ledger rows of one batch."""

    compressed: list[Outcome]
    evaluated: list[Outcome]
    rows: int


def to_evaluate(items: list[Item], compressed: list[Outcome], done: set[str]) -> list[Item]:
    """The ``items`` that have a container (``compressed`` ``ok``) and no finished ledger
    row (their ids not in ``done``)."""
    stored = {o.image_id for o in compressed if o.status == "ok"}
    return [item for item in items if item.image_id in stored and item.image_id not in done]


def archive_batch(
    items: list[Item],
    archive: str,
    latents_url: str,
    vae_name: str,
    config: CodecConfig,
    ledger_url: str,
    run_id: str,
    done: set[str] = frozenset(),
    rejected: frozenset[str] = frozenset(),
    model_url: str | None = None,
    metrics: tuple[str, ...] | None = None,
) -> ArchivedBatch:
    """``compress_batch`` then ``evaluate_batch`` of the stored images not ``done`` in the
    ledger (measuring ``metrics``, default all). A second call compresses nothing
    twice (stored containers are kept)."""
    compressed = compress_batch(items, archive, latents_url, vae_name, config, rejected, model_url)
    todo = to_evaluate(items, compressed, done)
    evaluation = evaluate_batch(todo, archive, config, vae_name, ledger_url, run_id, metrics) if todo else Evaluation([], 0)
    return ArchivedBatch(compressed, evaluation.outcomes, evaluation.rows)
