"""Evaluate flow: decode every stored container not yet in the ledger and measure it."""

from __future__ import annotations

import uuid

from prefect import flow
from prefect.futures import PrefectFuture

from latentpress.codecs import CodecConfig
from latentpress.config import DEFAULT_BATCH_SIZE
from latentpress.flows.common import Workers, finer_tail, flatten, gather, shard_batches, use_cluster
from latentpress.infra import storage
from latentpress.infra.archive import ArchiveLayout, read_manifest
from latentpress.infra.cluster import gpu_tasks
from latentpress.infra.collection import Item, read_collection
from latentpress.infra.ledger import read_ledger
from latentpress.tasks.evaluate import evaluate_batch


def stored_ids(archive: str, config_key: str) -> set[str]:
    """Ids of the images with a container stored under ``config_key``."""
    folder = storage.join(archive, "images", config_key)
    if not storage.exists(folder):
        return set()
    names = (url.rsplit("/", 1)[-1] for url in storage.list_files(folder, recursive=False))
    return {name[: -len(".lpc")] for name in names if name.endswith(".lpc")}


@flow(name="evaluate")
def evaluate_flow(
    archive: str,
    ledger: str | None = None,
    run_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dask_address: str | None = None,
    workers: int | None = None,
) -> list[dict]:
    """Append a ledger row for every stored (image, configuration) the ledger lacks.

    Returns the new rows.
    """
    with use_cluster(dask_address, workers) as running:
        return evaluate(running, archive, ledger, run_id, batch_size)


def evaluate(
    running: Workers,
    archive: str,
    ledger: str | None = None,
    run_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[dict]:
    """The evaluate step on already running workers (see ``evaluate_flow``)."""
    layout = ArchiveLayout(archive)
    ledger_url = ledger or layout.ledger
    run_id = run_id or uuid.uuid4().hex[:12]
    manifest = read_manifest(archive)
    configs = [CodecConfig.from_dict(entry) for entry in manifest["configs"]]
    todo = unevaluated(archive, configs, recorded(ledger_url))
    size = running.batch_size(batch_size, sum(map(len, todo.values())))
    jobs = finer_tail([(config, batch) for config, images in todo.items() for batch in shard_batches(images, size)], running.threads)
    futures = [submit_evaluation(running, archive, config, batch, manifest["vae"], ledger_url, run_id) for config, batch in jobs]
    return flatten(gather(futures, "evaluate"))


def recorded(ledger_url: str) -> dict[str, set[str]]:
    """For each configuration key in the ledger, the ids of the images it has a row for."""
    existing = read_ledger(ledger_url)
    return {key: set(ids) for key, ids in existing.groupby("config_key")["image_id"]}


def unevaluated(archive: str, configs: list[CodecConfig], done: dict[str, set[str]]) -> dict[CodecConfig, list[Item]]:
    """For each of ``configs``, the ingested images with a stored container and no row in ``done``."""
    if not configs:
        return {}
    items = [item for item in read_collection(ArchiveLayout(archive).collection) if item.status == "ok"]
    todo = {}
    for config in configs:
        stored, recorded_ids = stored_ids(archive, config.key), done.get(config.key, set())
        todo[config] = [i for i in items if i.image_id in stored and i.image_id not in recorded_ids]
    return todo


def submit_evaluation(
    running: Workers, archive: str, config: CodecConfig, items: list[Item], vae: str, ledger_url: str, run_id: str
) -> PrefectFuture:
    """An ``evaluate_batch`` task for ``items`` under ``config``."""
    with gpu_tasks(running.gpus):
        parameters = {
            "items": items, "archive": archive, "config": config, "vae_name": vae, "ledger_url": ledger_url, "run_id": run_id
        }  # fmt: skip
        return running.runner.submit(evaluate_batch, parameters)
