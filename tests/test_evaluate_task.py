"""Evaluating images below the perceptual metrics' size: an ok row with the
real rate and PSNR, the other metrics missing (not a failure)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image
from pipeline_fixtures import real_crops

from latentpress.codecs import CodecConfig
from latentpress.infra.layout import ArchiveLayout
from latentpress.infra.ledger import read_ledger
from latentpress.models.metrics import MIN_SIZE
from latentpress.pipeline.compress import compress_batch
from latentpress.pipeline.context import RunContext
from latentpress.pipeline.evaluate import evaluate_batch
from latentpress.pipeline.ingest import assign_shards, inspect_image, list_images


def test_thumbnail_gets_rate_and_psnr(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(real_crops()[0][:24, : MIN_SIZE + 8]).save(photos / "thumb.png")
    items = assign_shards([inspect_image(url, str(photos)) for url in list_images(str(photos))], shard_size=64)
    archive, config = str(tmp_path / "archive"), CodecConfig("jpeg", "default", 50)
    layout = ArchiveLayout(archive)
    assert [o.status for o in compress_batch(items, RunContext(archive, "taesd"), config)] == ["ok"]

    evaluation = evaluate_batch(items, RunContext(archive, "taesd", run_id="run1"), config)
    assert [o.status for o in evaluation.outcomes] == ["ok"] and evaluation.rows == 1
    stored = read_ledger(layout.ledger).iloc[0]
    size = Path(layout.image(config.key, items[0].image_id)).stat().st_size
    assert stored["bpp"] == 8 * size / (24 * (MIN_SIZE + 8)) and 20 < stored["psnr"] < 50
    assert all(math.isnan(stored[k]) for k in ("ms_ssim", "lpips", "dists"))
