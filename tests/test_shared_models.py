"""Plumbing for shared-model codecs: one model per shard, stored once, named by
every image container, loaded once when decoding, amortised in the ledger."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.codecs import CODECS, CodecConfig, CodecInfo, ShardModelCodec, SharedFit, register_codec
from latentpress.infra.latent_store import LatentStore
from latentpress.infra.layout import ArchiveLayout, unpack_image, unpack_model
from latentpress.infra.ledger import read_ledger, with_rates
from latentpress.models.vae import load_vae
from latentpress.pipeline.compress import fit_shard
from latentpress.pipeline.context import RunContext
from latentpress.pipeline.decode import shared_model
from latentpress.pipeline.evaluate import evaluate_batch
from latentpress.pipeline.restore import restore_batch, restore_targets


@dataclass(frozen=True)
class Params:
    quality: float = 1.0


class SharedMean(ShardModelCodec):
    """A small shard-model codec for the test: the shard's mean latent, one byte an image."""

    def fit(self, items, params) -> SharedFit:
        mean = np.mean([item.latent for item in items], axis=0).astype(np.float16)
        model = struct.pack("<3H", *mean.shape) + mean.tobytes()
        return SharedFit(model, {item.image_id: bytes([i]) for i, item in enumerate(items)})

    def decode(self, data, context) -> np.ndarray:
        shape = struct.unpack("<3H", context.shared_model[:6])
        return np.frombuffer(context.shared_model[6:], np.float16).reshape(shape).astype(np.float32)


@pytest.fixture(scope="module")
def shared_mean_codec():
    info = register_codec(
        CodecInfo(
            "test-shared-mean",
            "a test codec",
            "latent",
            {"default": Params()},
            (1.0,),
            "quality",
            "higher",
            SharedMean,
            coding="shard-model",
        )
    )
    yield lambda: SharedMean(info)
    del CODECS["test-shared-mean"]


def test_one_model_per_shard_amortised_in_the_ledger(shared_mean_codec, latent_archive, tmp_path: Path) -> None:
    archive, items = latent_archive
    layout = ArchiveLayout(archive)
    config = CodecConfig("test-shared-mean", "default", 1.0)

    outcomes = fit_shard(items, RunContext(archive, "taesd"), config)
    assert [(o.status, o.cached) for o in outcomes] == [("ok", False)] * 3
    models = list((tmp_path / "archive" / "shared" / config.key).glob("*.lpm"))
    assert len(models) == 1
    model_container, model_config = unpack_model(models[0].read_bytes())
    assert model_config["images"] == 3 and model_container.kind == "model"
    for item in items:
        container, _ = unpack_image(Path(layout.image(config.key, item.image_id)).read_bytes())
        assert container.sections["shared"].decode() == models[0].stem
        assert container.sections["payload"] in {b"\x00", b"\x01", b"\x02"}

    assert (
        evaluate_batch(items, RunContext(archive, "taesd", ledger=str(tmp_path / "ledger"), run_id="run1"), config).rows
        == 3
    )
    model_size = models[0].stat().st_size
    rows = read_ledger(str(tmp_path / "ledger")).set_index("image_id")
    for item in items:
        row = rows.loc[item.image_id]
        assert row["status"] == "ok" and row["shared_model_id"] == models[0].stem
        assert row["shared_model_bytes"] == model_size and row["shared_images"] == 3
        image_bytes = Path(layout.image(config.key, item.image_id)).stat().st_size
        assert row["bytes"] == image_bytes
        assert row["bpp"] == pytest.approx(8 * image_bytes / (64 * 64))  # the payload
    ledger = with_rates(read_ledger(str(tmp_path / "ledger")))
    for row in ledger.itertuples():  # the model's bytes shared by the three images that use it
        assert row.amortised_bpp == pytest.approx(row.bpp + 8 * model_size / 3 / (64 * 64))

    # Restore decodes every image from the one shared model, loaded once per process.
    shared_model.cache_clear()
    out = str(tmp_path / "restored")
    targets = restore_targets(out, "ids", config.key, {i.image_id: i.name for i in items}, "png")
    restored = restore_batch(targets, archive, config.key, "taesd")
    assert {(o.status, o.cached) for o in restored} == {("ok", False)}
    assert shared_model.cache_info().misses == 1
    mean = shared_mean_codec().decode(b"\x00", type("C", (), {"shared_model": model_container.sections["model"]})())
    expected = load_vae("taesd").decode([mean], [(64, 64)])[0]
    for item in items:
        with Image.open(Path(out) / config.key / f"{item.image_id}.png") as img:
            np.testing.assert_array_equal(np.asarray(img), expected)

    # A rerun skips the shard; no second model appears.
    assert {o.cached for o in fit_shard(items, RunContext(archive, "taesd"), config)} == {True}
    assert len(list((tmp_path / "archive" / "shared" / config.key).glob("*.lpm"))) == 1


class PickyMean(SharedMean):
    """SharedMean that refuses latents whose sum is over ``limit``."""

    limit = 0.0

    def refusal(self, item, params) -> str | None:
        return "too large for this codec" if float(item.latent.sum()) > self.limit else None


def test_an_image_the_codec_refuses_is_rejected_alone(latent_archive, tmp_path: Path) -> None:
    archive, items = latent_archive
    layout = ArchiveLayout(archive)
    store = LatentStore(layout.latents, "taesd")
    sums = {item.image_id: float(store.read(item.image_id)[0].sum()) for item in items}
    refused = max(sums, key=sums.get)
    PickyMean.limit = sorted(sums.values())[-2]
    info = register_codec(
        CodecInfo(
            "test-picky-mean",
            "a test codec",
            "latent",
            {"default": Params()},
            (1.0,),
            "quality",
            "higher",
            PickyMean,
            coding="shard-model",
        )
    )
    try:
        outcomes = fit_shard(items, RunContext(archive, "taesd"), CodecConfig("test-picky-mean", "default", 1.0))
    finally:
        del CODECS[info.name]
    by_id = {o.image_id: o for o in outcomes}
    assert by_id[refused].status == "rejected" and "too large for this codec" in by_id[refused].reason
    assert [by_id[i.image_id].status for i in items if i.image_id != refused] == ["ok", "ok"]
    (model,) = (tmp_path / "archive" / "shared" / "test-picky-mean.default.q1").glob("*.lpm")
    assert unpack_model(model.read_bytes())[1]["images"] == 2


def test_laduree_refuses_latents_over_its_patch_limit() -> None:
    from latentpress.codecs import CodecInput, get_codec
    from latentpress.codecs.laduree.codec import MAX_TOKENS

    codec = get_codec("laduree")
    params = codec.params("tiny", 108)
    side = 2 * int(MAX_TOKENS**0.5)  # patches of 2: exactly MAX_TOKENS
    fits = CodecInput("a", side * 8, side * 8, latent=np.zeros((4, side, side), np.float32))
    over = CodecInput("b", side * 8, side * 8 + 16, latent=np.zeros((4, side, side + 2), np.float32))
    assert codec.refusal(fits, params) is None
    assert f"over its limit of {MAX_TOKENS}" in codec.refusal(over, params)
