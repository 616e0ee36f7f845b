"""Restore: stored containers back to PNG files, and the index of what went where."""

from __future__ import annotations

from latentpress.infra import storage
from latentpress.infra.archive import ArchiveLayout, check_config_key, check_image_id
from latentpress.infra.images import encode_png
from latentpress.pipeline.decode import decode_container
from latentpress.pipeline.outcomes import Outcome, failure, unless_transient


def restore_target(out: str, config_key: str, image_id: str) -> str:
    """Where ``image_id`` under ``config_key`` is restored: ``<out>/<key>/<id>.png``."""
    return storage.join(out, check_config_key(config_key), f"{check_image_id(image_id)}.png")


def restore_batch(image_ids: list[str], archive: str, config_key: str, out: str, vae_name: str,
                  sizes: dict[str, tuple[int, int]] | None = None) -> list[Outcome]:
    """Write ``<out>/<config-key>/<image-id>.png`` for each id; an outcome per id.

    Existing outputs are kept (reruns only fill in what is missing); an image that
    cannot be decoded, or whose container declares another size than ``sizes`` (width,
    height by id, from the manifest), is an ``error`` and never stops the batch.
    """
    layout = ArchiveLayout(archive)
    outcomes = []
    for image_id in image_ids:
        target = restore_target(out, config_key, image_id)
        try:
            if storage.exists(target):
                outcomes.append(Outcome(image_id, config_key, "ok", cached=True, path=target))
                continue
            url = layout.image(config_key, image_id)
            pixels, _ = decode_container(storage.read_bytes(url), vae_name, archive, url, image_id, config_key,
                                         (sizes or {}).get(image_id))
            storage.write_bytes_atomic(target, encode_png(pixels))
        except Exception as exc:  # noqa: BLE001 - this image ends in error, the batch goes on
            unless_transient(exc)
            outcomes.append(failure(image_id, config_key, exc, bad_input=False))
            continue
        outcomes.append(Outcome(image_id, config_key, "ok", path=target))
    return outcomes


def write_index(out: str, names: dict[str, str], outcomes: list[Outcome]) -> str:
    """``<out>/restored.csv``: which file holds which image (by its original name ``names``
    maps ids to), with each outcome's status; returns its URL."""
    lines = ["image_id,config_key,status,path,original_name"]
    for o in outcomes:
        name = names.get(o.image_id, "").replace('"', '""')
        lines.append(f'{o.image_id},{o.config_key},{o.status},{o.path or ""},"{name}"')
    url = storage.join(out, "restored.csv")
    storage.write_bytes_atomic(url, ("\n".join(lines) + "\n").encode())
    return url
