"""Restore flow: archived images back to PNG files."""

from __future__ import annotations

from prefect import flow

from latentpress.config import DEFAULT_BATCH_SIZE
from latentpress.flows.common import chunks, flatten, gather, use_cluster
from latentpress.infra import storage
from latentpress.infra.archive import read_manifest
from latentpress.codecs import get_codec
from latentpress.infra.cluster import gpu_tasks
from latentpress.tasks.restore import restore_batch


@flow(name="restore")
def restore_flow(
    archive: str,
    out: str,
    configs: list[str] | None = None,
    vae: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dask_address: str | None = None,
    workers: int | None = None,
) -> list[dict]:
    """Decode every archived image of the chosen configurations (default: all) to
    ``<out>/<config-key>/<image-id>.png``; returns a status dict per image."""
    manifest = read_manifest(archive)
    known = [c["key"] for c in manifest["configs"]]
    chosen = configs or known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"archive {archive} has no configuration {', '.join(unknown)} (it has: {', '.join(known)})")
    ids = [item["image_id"] for item in manifest["items"]]
    codecs = {c["key"]: c["codec"] for c in manifest["configs"]}
    with use_cluster(dask_address, workers) as running:
        futures, size = [], running.batch_size(batch_size, len(ids) * len(chosen))
        for key in chosen:
            with gpu_tasks(running.gpus and get_codec(codecs[key]).domain == "latent"):
                futures += [
                    running.runner.submit(
                        restore_batch,
                        {"image_ids": b, "archive": archive, "config_key": key, "out": out, "vae_name": vae or manifest["vae"]},
                    )
                    for b in chunks(ids, size)
                ]
        statuses = flatten(gather(futures, "restore"))
    write_index(out, manifest, statuses)
    return statuses


def write_index(out: str, manifest: dict, statuses: list[dict]) -> None:
    """``<out>/restored.csv``: which file holds which image, by its original name."""
    names = {item["image_id"]: item["name"] for item in manifest["items"]}
    lines = ["image_id,config_key,status,path,original_name"]
    for s in statuses:
        name = names.get(s["image_id"], "").replace('"', '""')
        lines.append(f'{s["image_id"]},{s["config_key"]},{s["status"]},{s["path"]},"{name}"')
    storage.write_bytes_atomic(storage.join(out, "restored.csv"), ("\n".join(lines) + "\n").encode())
