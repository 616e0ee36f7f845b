"""Archiving one batch: compressed, then the images it stored evaluated, except those
the ledger already has; an image whose source went bad is an error, not a row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.codecs import CodecConfig
from latentpress.infra.archive import ArchiveLayout
from latentpress.infra.ledger import read_ledger
from latentpress.models import feature_metrics
from latentpress.models.metrics import compute_metrics
from latentpress.pipeline.archive import BatchWork, archive_batch
from latentpress.pipeline.decode import decode_container


def test_archive_batch_evaluates_what_it_stored_and_the_ledger_lacks(latent_archive) -> None:
    archive, items = latent_archive
    Path(items[2].source).write_bytes(b"not a png")  # unreadable since ingest
    layout, config = ArchiveLayout(archive), CodecConfig("jpeg", "default", 50)

    work = [BatchWork(config, items, done=frozenset({items[1].image_id}))]
    batch = archive_batch(work, archive, layout.latents, "taesd", layout.ledger, "run1")

    assert [o.status for o in batch.compressed] == ["ok", "ok", "error"]
    assert "not a supported image" in batch.compressed[2].reason
    assert [o.image_id for o in batch.evaluated] == [items[0].image_id]  # items[1] is recorded already
    assert batch.rows == 1
    ledger = read_ledger(layout.ledger)
    assert list(ledger["image_id"]) == [items[0].image_id] and list(ledger["status"]) == ["ok"]
    size = Path(layout.image(config.key, items[0].image_id)).stat().st_size
    assert ledger["bytes"].iloc[0] == size and 25 < ledger["psnr"].iloc[0] < 50


def test_each_photo_is_measured_once_for_all_its_configurations(latent_archive, monkeypatch) -> None:
    """Two configurations of two photos: the originals' side of DISTS runs once a photo
    (two passes, not four), and every value equals a measurement of its own."""
    archive, items = latent_archive
    items = items[:2]
    layout = ArchiveLayout(archive)
    configs = [CodecConfig("jpeg", "default", 30), CodecConfig("webp", "default", 40)]
    passes = []
    real = feature_metrics._dists_features
    monkeypatch.setattr(feature_metrics, "_dists_features", lambda *a: passes.append(1) or real(*a))

    batch = archive_batch([BatchWork(c, items) for c in configs], archive, layout.latents, "taesd", layout.ledger, "r1")

    assert batch.rows == 4 and len(passes) == 2 + 4  # one original and four decoded images
    for row in read_ledger(layout.ledger).itertuples():
        original = np.asarray(Image.open(row.source).convert("RGB"))
        decoded, _ = decode_container(Path(layout.image(row.config_key, row.image_id)).read_bytes(), "taesd", archive)
        alone = compute_metrics(original, decoded)
        for name, value in alone.items():
            assert getattr(row, name) == pytest.approx(value, abs=1e-9)
