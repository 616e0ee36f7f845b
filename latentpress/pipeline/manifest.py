"""Closing a compression run: record the refusals, then write the manifest (last:
it lists what the archive holds)."""

from __future__ import annotations

from datetime import UTC, datetime

from latentpress import __version__
from latentpress.codecs import CodecConfig, codec_info
from latentpress.infra.collection import Item
from latentpress.infra.layout import read_manifest, write_manifest
from latentpress.infra.ledger import append_rows
from latentpress.infra.model_files import model_id
from latentpress.pipeline.context import RunContext
from latentpress.pipeline.outcomes import Outcome
from latentpress.pipeline.rows import rejected_rows


def build_manifest(archive: str, configs: list[CodecConfig], vae: str, models: dict[str, str] | None = None) -> dict:
    """The manifest: this run's configurations and collection models (``codec.preset``
    -> model id) merged with those already archived. Its size does not grow with the
    collection (the images are the collection's, ``infra.collection``)."""
    previous = read_manifest(archive, missing_ok=True)
    known = {c["key"]: c for c in previous.get("configs", [])}
    for config in configs:
        known[config.key] = {"key": config.key, **config.to_dict(), "codec_version": codec_info(config.name).version}
    return {
        "code_version": __version__,
        "updated": datetime.now(UTC).isoformat(),
        "vae": vae,
        "vae_id": model_id(vae),
        "configs": sorted(known.values(), key=lambda c: c["key"]),
        "models": previous.get("models", {}) | (models or {}),
    }


def finish_compression(
    run: RunContext,
    items: list[Item],
    configs: list[CodecConfig],
    outcomes: list[Outcome],
    models: dict[str, str] | None = None,
) -> None:
    """Append to ``run``'s ledger a ``rejected`` row for each image a codec refused in
    this run, then write the archive's manifest if it changed (``models``: the
    collection models used, by ``codec.preset``)."""
    rows = rejected_rows(items, configs, outcomes, run.run_id)
    if rows:
        append_rows(run.ledger, rows, run.run_id)
    manifest = build_manifest(run.archive, configs, run.vae, models)
    previous = read_manifest(run.archive, missing_ok=True)
    if _content(manifest) != _content(previous):  # a no-op rerun leaves the manifest (and its digest) as it is
        write_manifest(run.archive, manifest)


def _content(manifest: dict) -> dict:
    """A manifest but for when and by which version it was written."""
    return {k: v for k, v in manifest.items() if k not in ("updated", "code_version", "format")}
