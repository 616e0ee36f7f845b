"""Evaluation task: decode stored bytes, measure against the original, append ledger rows."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone

from prefect import task
from prefect.cache_policies import NO_CACHE

from latentpress import __version__
from latentpress.codecs import CodecConfig
from latentpress.config import get_settings
from latentpress.infra import storage
from latentpress.infra.archive import ArchiveLayout
from latentpress.infra.collection import Item
from latentpress.infra.images import decode_image
from latentpress.infra.ledger import append_rows
from latentpress.infra.container import Container
from latentpress.models.metrics import compute_metrics, warm_up
from latentpress.tasks.decode import decode_container, shared_model, shared_model_url


def warm_up_in_background() -> None:
    """Start loading the metric networks in a thread of this process. Run on every
    worker when an archive run starts, it overlaps with ingest and compression; a
    failure is left for the first evaluation to report."""

    def load() -> None:
        try:
            warm_up()
        except Exception:  # noqa: BLE001 - the evaluation task raises it with its item
            logging.getLogger(__name__).debug("metric warm-up failed", exc_info=True)

    threading.Thread(target=load, name="latentpress-metrics-warm-up", daemon=True).start()


def base_row(item: Item, config: CodecConfig, run_id: str) -> dict:
    """A ledger row for ``item`` under ``config`` with no measurement yet."""
    return {
        "image_id": item.image_id,
        "source": item.source,
        "width": item.width,
        "height": item.height,
        "codec": config.name,
        "preset": config.preset,
        "quality": config.quality,
        "config_key": config.key,
        "params": json.dumps({"codec": config.name, "preset": config.preset, "quality": config.quality}),
        "vae_id": None,
        "bytes": None,
        "bpp": None,
        "psnr": None,
        "ms_ssim": None,
        "lpips": None,
        "dists": None,
        "encode_seconds": None,
        "decode_seconds": None,
        "device": get_settings().device,
        "status": "ok",
        "error": None,
        "shard": item.shard,
        "run_id": run_id,
        "code_version": __version__,
        "timestamp": datetime.now(timezone.utc),
    }


def shared_columns(container: Container, archive: str) -> dict:
    """Ledger columns of the shared model an image container uses (nulls if none)."""
    url = shared_model_url(container, json.loads(container.sections["config"]), archive)
    if url is None:
        return {"shared_model_id": None, "shared_model_bytes": None, "shared_images": None}
    _, size, images = shared_model(url)
    return {"shared_model_id": container.sections["shared"].decode("ascii"), "shared_model_bytes": size, "shared_images": images}


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def evaluate_batch(
    items: list[Item], archive: str, config: CodecConfig, vae_name: str, ledger_url: str, run_id: str
) -> list[dict]:
    """Ledger rows for the batch (also appended to the ledger as one new file).

    The rate is the stored object's size: every counted byte was written, read
    back and decoded here. Images of a shared-model codec also carry their share of
    the shared model's container (its size over the images sharing it).
    """
    layout = ArchiveLayout(archive)
    rows = []
    for item in items:
        url = layout.image(config.key, item.image_id)
        row = base_row(item, config, run_id)
        try:
            data = storage.read_bytes(url)
            stats = json.loads(storage.read_bytes(layout.stats(config.key, item.image_id)))
            start = time.perf_counter()
            decoded, container = decode_container(data, vae_name, archive, source=url)
            decode_seconds = time.perf_counter() - start
            shared = shared_columns(container, archive)
            original = decode_image(storage.read_bytes(item.source), item.name)
            metrics = compute_metrics(original, decoded)
        except (ValueError, KeyError, FileNotFoundError) as exc:
            rows.append({**row, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append(
            {
                **row,
                "params": json.dumps(stats["params"], sort_keys=True),
                "vae_id": container.vae_id or None,
                "bytes": len(data),
                **shared,
                "bpp": 8 * (len(data) + (shared["shared_model_bytes"] or 0) / (shared["shared_images"] or 1))
                / (item.width * item.height),
                **metrics,
                "encode_seconds": stats["encode_seconds"],
                "decode_seconds": decode_seconds,
                "device": stats.get("device", row["device"]),
            }
        )
    if rows:
        append_rows(ledger_url, rows, run_id)
    return rows
