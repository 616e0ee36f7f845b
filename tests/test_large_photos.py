"""A collection mixing a large photo with small ones archives and restores whole: the
large photo goes through the tiled VAE, the windowed metrics and a batch of its own,
and every image of every configuration has its row (issue #14, at a size CI affords;
``benchmarks/megapixels.py`` measures 1 to 48 MP)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from latentpress.flows.archive import archive
from latentpress.flows.restore import restore
from latentpress.infra.ledger import read_ledger
from latentpress.models.metrics import PERCEPTUAL_TILE
from latentpress.models.vae import TILE
from latentpress.run import RestoreRun, Run

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak-dev"


def mosaic(width: int, height: int) -> np.ndarray:
    """Real photos side by side at native scale, cropped to ``width`` x ``height``."""
    photos = [np.asarray(Image.open(KODAK / f"kodim0{n}.png").convert("RGB"))[:512, :768] for n in (1, 3, 5)]
    strip = np.concatenate(photos, 1)
    return np.concatenate([strip, strip[::-1, ::-1]], 0)[:height, :width].copy()


def test_a_large_photo_among_small_ones_archives_and_restores(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("latentpress.flows.common.BATCH_PIXELS", 600_000)  # the large photo is a batch alone
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    large = mosaic(1400, 720)
    assert max(large.shape) > max(TILE, PERCEPTUAL_TILE)
    Image.fromarray(large).save(photos / "trip" / "panorama.png")
    for n in (2, 4):
        with Image.open(KODAK / f"kodim0{n}.png") as img:
            img.convert("RGB").crop((100, 100, 292, 228)).save(photos / f"small{n}.png")
    arch = str(tmp_path / "archive")
    codecs = ["avif@30", "latent-q@0.5", "clric:fast@0.3"]

    result = archive(Run(arch, source=str(photos), codecs=codecs, batch_size=8))

    assert result.ok, result.errors
    ledger = read_ledger(f"{arch}/ledger")
    assert len(ledger) == 9 and set(ledger["status"]) == {"ok"}
    big = ledger[ledger["width"] == 1400]
    assert len(big) == 3 and set(big["height"]) == {720}
    for row in big.itertuples():  # real measurements of the tiled path, not placeholders
        assert 0.0 < row.lpips < 0.5 and 0.0 < row.dists < 0.4 and 20 < row.psnr < 45 and 0.8 < row.ms_ssim < 1
        assert 0.02 < row.bpp < 2
    restored = restore(RestoreRun(arch, str(tmp_path / "out"), layout="ids"))
    paths = [Path(o.path) for o in restored.stages["restore"]]
    assert len(paths) == 9 and all(o.status == "ok" for o in restored.stages["restore"])
    assert sorted(Image.open(p).size for p in paths).count((1400, 720)) == 3
