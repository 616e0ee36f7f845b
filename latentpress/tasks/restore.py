"""Restore task: stored containers back to PNG files."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from latentpress.infra import storage
from latentpress.infra.archive import ArchiveLayout, check_config_key, check_image_id
from latentpress.infra.images import encode_png
from latentpress.tasks.decode import decode_container


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def restore_batch(image_ids: list[str], archive: str, config_key: str, out: str, vae_name: str) -> list[dict]:
    """Write ``<out>/<config-key>/<image-id>.png`` for each id; a status dict per id.

    Existing outputs are kept (reruns only fill in what is missing).
    """
    layout = ArchiveLayout(archive)
    statuses = []
    for image_id in image_ids:
        target = storage.join(out, check_config_key(config_key), f"{check_image_id(image_id)}.png")
        status = {"image_id": image_id, "config_key": config_key, "path": target, "status": "skipped", "error": None}
        if storage.exists(target):
            statuses.append(status)
            continue
        url = layout.image(config_key, image_id)
        try:
            pixels, _ = decode_container(storage.read_bytes(url), vae_name, archive, source=url)
        except (ValueError, FileNotFoundError) as exc:
            statuses.append({**status, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
            continue
        storage.write_bytes_atomic(target, encode_png(pixels))
        statuses.append({**status, "status": "restored"})
    return statuses
