"""Archiving one batch: compressed, then the images it stored evaluated, except those
the ledger already has; an image whose source went bad is an error, not a row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.codecs import CodecConfig, parse_codec_spec
from latentpress.infra.layout import ArchiveLayout
from latentpress.infra.ledger import read_ledger
from latentpress.models import feature_metrics
from latentpress.models.metrics import compute_metrics
from latentpress.pipeline.archive_batch import BatchWork, archive_batch
from latentpress.pipeline.context import RunContext
from latentpress.pipeline.decode import decode_container


def test_archive_batch_evaluates_what_it_stored_and_the_ledger_lacks(latent_archive) -> None:
    archive, items = latent_archive
    Path(items[2].source).write_bytes(b"not a png")  # unreadable since ingest
    layout, config = ArchiveLayout(archive), CodecConfig("jpeg", "default", 50)

    work = [BatchWork(config, items, done=frozenset({items[1].image_id}))]
    batch = archive_batch(work, RunContext(archive, "taesd", run_id="run1"))

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

    batch = archive_batch([BatchWork(c, items) for c in configs], RunContext(archive, "taesd", run_id="r1"))

    assert batch.rows == 4 and len(passes) == 2 + 4  # one original and four decoded images
    for row in read_ledger(layout.ledger).itertuples():
        original = np.asarray(Image.open(row.source).convert("RGB"))
        decoded, _ = decode_container(Path(layout.image(row.config_key, row.image_id)).read_bytes(), "taesd", archive)
        alone = compute_metrics(original, decoded)
        for name, value in alone.items():
            assert getattr(row, name) == pytest.approx(value, abs=1e-9)


def test_a_searched_latent_stream_is_not_decoded_twice(latent_archive, monkeypatch) -> None:
    """latent-q searched for a floor: the evaluation reads each stored container back
    and uses the search's decoding of that very payload (no VAE decoding of its own);
    the values equal a fresh decoding of the stored bytes."""
    from latentpress.pipeline import decode, evaluate

    archive, items = latent_archive
    layout, config = ArchiveLayout(archive), parse_codec_spec("latent-q@lpips0.3")[0]
    stage, decodings = ["search"], []
    real_pixels, real_decode = decode.latent_pixels, evaluate.decode_container
    monkeypatch.setattr(decode, "latent_pixels", lambda *a, **k: decodings.append(stage[0]) or real_pixels(*a, **k))
    monkeypatch.setattr(
        evaluate, "decode_container", lambda *a, **k: stage.__setitem__(0, "evaluate") or real_decode(*a, **k)
    )

    batch = archive_batch([BatchWork(config, items)], RunContext(archive, "taesd", run_id="r1"))

    assert batch.rows == 3 and stage == ["evaluate"]
    assert decodings.count("search") >= 3 * 2 and decodings.count("evaluate") == 0  # probes only
    monkeypatch.setattr(decode, "latent_pixels", real_pixels)
    for row in read_ledger(layout.ledger).itertuples():
        data = Path(layout.image(row.config_key, row.image_id)).read_bytes()
        fresh, container = decode_container(data, "taesd", archive)
        original = np.asarray(Image.open(row.source).convert("RGB"))
        assert row.lpips == pytest.approx(compute_metrics(original, fresh)["lpips"], abs=1e-9)
        other = container.sections["payload"][:-1] + bytes([container.sections["payload"][-1] ^ 1])
        known = np.zeros_like(fresh)
        assert decode_container(data, "taesd", archive, known=(other, known))[0] is not known  # not that payload
        assert decode_container(data, "taesd", archive, known=(container.sections["payload"], known))[0] is known


def test_the_latent_distance_guess_saves_vae_decodings(latent_archive, monkeypatch) -> None:
    """latent-q searched for an LPIPS floor with and without the guess from the latent
    perceptual distance: the same setting for every crop, in fewer VAE decodings."""
    from latentpress.pipeline import compress, decode

    archive, items = latent_archive
    layout, config = ArchiveLayout(archive), parse_codec_spec("latent-q@lpips0.25")[0]
    decodings = []
    real = decode.latent_pixels
    monkeypatch.setattr(decode, "latent_pixels", lambda *a, **k: decodings.append(1) or real(*a, **k))
    chosen = {}
    for label in ("guided", "plain"):
        if label == "plain":
            monkeypatch.setattr(compress.Compressor, "guess", lambda *a: None)
        decodings.clear()
        out = compress.compress_batch(items, RunContext(archive, "taesd"), config)
        assert [o.status for o in out] == ["ok"] * 3
        chosen[label] = ([json.loads(Path(layout.stats(config.key, i.image_id)).read_text())["params"]["quality"]
                          for i in items], len(decodings))  # fmt: skip
        for item in items:  # the next round codes them again
            Path(layout.image(config.key, item.image_id)).unlink()
    assert chosen["guided"][0] == chosen["plain"][0]
    assert chosen["guided"][1] < chosen["plain"][1]
