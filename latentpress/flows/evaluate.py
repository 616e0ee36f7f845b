"""Evaluate flow: decode every stored container not yet in the ledger and measure it."""

from __future__ import annotations

import uuid

from prefect import flow

from latentpress.codecs import CodecConfig
from latentpress.config import DEFAULT_BATCH_SIZE
from latentpress.flows.common import Workers, finer_tail, flatten, gather, shard_batches, use_cluster
from latentpress.infra import storage
from latentpress.infra.archive import ArchiveLayout, read_manifest
from latentpress.infra.cluster import gpu_tasks
from latentpress.infra.collection import read_collection
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
    items = [item for item in read_collection(layout.collection) if item.status == "ok"]
    existing = read_ledger(ledger_url)
    done = set(zip(existing["image_id"], existing["config_key"]))
    todo = {}
    for entry in manifest["configs"]:
        config = CodecConfig.from_dict(entry)
        stored = stored_ids(archive, config.key)
        todo[config] = [i for i in items if i.image_id in stored and (i.image_id, config.key) not in done]
    size = running.batch_size(batch_size, sum(map(len, todo.values())))
    jobs = [(config, batch) for config, images in todo.items() for batch in shard_batches(images, size)]
    jobs = finer_tail(jobs, running.threads)
    with gpu_tasks(running.gpus):
        futures = [
            running.runner.submit(
                evaluate_batch,
                {
                    "items": batch,
                    "archive": archive,
                    "config": config,
                    "vae_name": manifest["vae"],
                    "ledger_url": ledger_url,
                    "run_id": run_id,
                },
            )
            for config, batch in jobs
        ]
    return flatten(gather(futures, "evaluate"))
