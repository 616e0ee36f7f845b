"""Archiving one batch: compressed, then the images it stored evaluated, except those
the ledger already has; an image whose source went bad is an error, not a row."""

from __future__ import annotations

from pathlib import Path

from latentpress.codecs import CodecConfig
from latentpress.infra.archive import ArchiveLayout
from latentpress.infra.ledger import read_ledger
from latentpress.pipeline.archive import archive_batch


def test_archive_batch_evaluates_what_it_stored_and_the_ledger_lacks(latent_archive) -> None:
    archive, items = latent_archive
    Path(items[2].source).write_bytes(b"not a png")  # unreadable since ingest
    layout, config = ArchiveLayout(archive), CodecConfig("jpeg", "default", 50)

    batch = archive_batch(items, archive, layout.latents, "taesd", config, layout.ledger, "run1", {items[1].image_id})

    assert [o.status for o in batch.compressed] == ["ok", "ok", "error"]
    assert "not a supported image" in batch.compressed[2].reason
    assert [o.image_id for o in batch.evaluated] == [items[0].image_id]  # items[1] is recorded already
    assert batch.rows == 1
    ledger = read_ledger(layout.ledger)
    assert list(ledger["image_id"]) == [items[0].image_id] and list(ledger["status"]) == ["ok"]
    size = Path(layout.image(config.key, items[0].image_id)).stat().st_size
    assert ledger["bytes"].iloc[0] == size and 25 < ledger["psnr"].iloc[0] < 50
