"""Restore: stored containers back to image files, and the index of what went where.

Two layouts: ``original`` (the source's folder tree and file names, made safe by
``pipeline.restore_names``; one configuration per image) and ``ids``
(``<out>/<config-key>/<image-id>.<ext>``, any number of configurations).
"""

from __future__ import annotations

from collections.abc import Sequence

from latentpress.config import RESTORE_LAYOUTS
from latentpress.infra import storage
from latentpress.infra.container import ContainerError
from latentpress.infra.images import encode_image, output_format
from latentpress.infra.layout import ArchiveLayout, check_config_key, check_image_id
from latentpress.infra.metadata import Metadata, unpack_metadata
from latentpress.pipeline.decode import StoredAt, decode_container
from latentpress.pipeline.outcomes import Outcome, failure, unless_transient
from latentpress.pipeline.restore_names import original_paths
from latentpress.pipeline.selection import read_selection


def restore_targets(out: str, layout: str, config_key: str, names: dict[str, str], fmt: str) -> dict[str, str]:
    """Per image id of ``names`` (id -> original name): the URL it is restored to under
    ``config_key``. ``original`` paths depend on every name restored together, so
    ``names`` holds all the images of the run that use that layout."""
    extension = output_format(fmt)[0]
    if layout == "ids":
        folder = storage.join(out, check_config_key(config_key))
        return {i: storage.join(folder, f"{check_image_id(i)}{extension}") for i in names}
    if layout == "original":
        return {i: storage.join(out, path) for i, path in original_paths(names, extension).items()}
    raise ValueError(f"unknown restore layout {layout!r} (known: {', '.join(RESTORE_LAYOUTS)})")


def restore_plan(archive: str, manifest: dict, configs: Sequence[str] | None, ids: list[str]) -> dict[str, list[str]]:
    """Configuration key -> the image ids (of ``ids``, the archived images) restored
    from it: every image from each of ``configs``; without them, the selection's choice
    per image, or every image from every configuration when the archive has no selection."""
    known = [c["key"] for c in manifest["configs"]]
    unknown = sorted(set(configs or []) - set(known))
    if unknown:
        raise ValueError(f"archive {archive} has no configuration {', '.join(unknown)} (it has: {', '.join(known)})")
    stored = None if configs else read_selection(ArchiveLayout(archive).selection)
    if stored is None:
        return {key: ids for key in configs or known}
    chosen = dict(zip(stored[1]["image_id"], stored[1]["config_key"], strict=True))
    plan: dict[str, list[str]] = {}
    for image_id in ids:
        if chosen.get(image_id) in known:
            plan.setdefault(chosen[image_id], []).append(image_id)
    return plan


def keys_by_image(plan: dict[str, list[str]]) -> dict[str, list[str]]:
    """Image id -> the configuration keys a restore plan takes it from."""
    out: dict[str, list[str]] = {}
    for key, image_ids in plan.items():
        for image_id in image_ids:
            out.setdefault(image_id, []).append(key)
    return out


def restore_batch(
    targets: dict[str, str],
    archive: str,
    config_key: str,
    vae_name: str,
    sizes: dict[str, tuple[int, int]] | None = None,
    fmt: str = "png",
) -> list[Outcome]:
    """Write the image of each id of ``targets`` to its URL there in format ``fmt``; an
    outcome per id.

    Existing outputs are kept (reruns only fill in what is missing); an image that
    cannot be decoded, or whose container declares another size than ``sizes`` (width,
    height by id, from the manifest), is an ``error`` and never stops the batch. The
    image's stored metadata (EXIF, ICC, XMP, IPTC) goes into the file as far as the
    format carries it.
    """
    layout = ArchiveLayout(archive)
    outcomes = []
    for image_id, target in targets.items():
        try:
            if storage.exists(target):
                outcomes.append(Outcome(image_id, config_key, "ok", cached=True, path=target))
                continue
            url = layout.image(config_key, image_id)
            stored = StoredAt(url, image_id, config_key, (sizes or {}).get(image_id))
            pixels, _ = decode_container(storage.read_bytes(url), vae_name, archive, stored)
            metadata, note = stored_metadata(layout, image_id)
            storage.write_bytes_atomic(target, encode_image(pixels, fmt, metadata))
        except Exception as exc:  # noqa: BLE001 - this image ends in error, the batch goes on
            unless_transient(exc)
            outcomes.append(failure(image_id, config_key, exc, bad_input=False))
            continue
        outcomes.append(Outcome(image_id, config_key, "ok", reason=note, path=target))
    return outcomes


def stored_metadata(layout: ArchiveLayout, image_id: str) -> tuple[Metadata | None, str | None]:
    """The image's stored metadata (None if it has none) and, if its object is damaged,
    why the image is restored without it."""
    url = layout.metadata(image_id)
    try:
        return unpack_metadata(storage.read_bytes(url), url, image_id), None
    except FileNotFoundError:
        return None, None
    except ContainerError as exc:
        return None, f"restored without its metadata: {exc}"


def write_index(out: str, names: dict[str, str], outcomes: list[Outcome]) -> str:
    """``<out>/restored.csv``: which file holds which image (by its original name ``names``
    maps ids to), with each outcome's status and note (why it failed, or what it lacks);
    returns its URL."""
    lines = ["image_id,config_key,status,path,original_name,note"]
    for o in outcomes:
        name, path, note = ((text or "").replace('"', '""') for text in (names.get(o.image_id), o.path, o.reason))
        lines.append(f'{o.image_id},{o.config_key},{o.status},"{path}","{name}","{note}"')
    url = storage.join(out, "restored.csv")
    storage.write_bytes_atomic(url, ("\n".join(lines) + "\n").encode())
    return url
