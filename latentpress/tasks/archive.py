"""Archive task: compress a batch, then evaluate it, in one task run."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from latentpress.codecs import CodecConfig
from latentpress.infra.collection import Item
from latentpress.tasks.compress import compress_batch
from latentpress.tasks.evaluate import evaluate_batch


def to_evaluate(items: list[Item], statuses: list[dict], recorded: set[str]) -> list[Item]:
    """The ``items`` whose compression left a container (``statuses``) and that have no
    ledger row yet (their ids not in ``recorded``)."""
    stored = {s["image_id"] for s in statuses if s["status"] != "failed"}
    return [item for item in items if item.image_id in stored and item.image_id not in recorded]


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def archive_batch(
    items: list[Item],
    archive: str,
    latents_url: str,
    vae_name: str,
    config: CodecConfig,
    ledger_url: str,
    run_id: str,
    recorded: set[str],
) -> tuple[list[dict], list[dict]]:
    """``compress_batch`` then ``evaluate_batch`` of the images it stored that are not
    ``recorded`` in the ledger: the compression statuses and the new ledger rows.

    One task run instead of two halves Prefect's and Dask's per-task cost (about 0.1 s
    of a worker's time each) for cheap codecs, and the batch is evaluated where and
    as soon as it was compressed. A retry compresses nothing twice (stored containers
    are skipped).
    """
    statuses = compress_batch.fn(items, archive, latents_url, vae_name, config)
    todo = to_evaluate(items, statuses, recorded)
    return statuses, evaluate_batch.fn(todo, archive, config, vae_name, ledger_url, run_id) if todo else []
