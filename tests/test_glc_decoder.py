"""glc's tuned VAE decoder: trained on real photos, stored in the model, drawn with by
evaluation and restore alike, refused when its bytes are foreign."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pipeline_fixtures import real_crops

from latentpress.codecs import CodecInput, DecodeContext, get_codec
from latentpress.codecs.base import CodecError
from latentpress.codecs.glc import bitstream
from latentpress.codecs.glc.codec import decoding
from latentpress.codecs.tuned_decoder import BLEND_CHOICES, DecoderStage, split_for_judging, tune_decoder
from latentpress.codecs.tuned_decoder.stored import BLENDS
from latentpress.infra.container import ContainerError
from latentpress.models.metrics import compute_metrics
from latentpress.models.vae import DecoderWeights, load_vae
from latentpress.pipeline.decode import latent_pixels


@pytest.fixture(scope="module")
def plain_model(photo_items: list[CodecInput]) -> bytes:
    torch.manual_seed(0)
    return get_codec("glc").train(photo_items, get_codec("glc").params("tiny"))


@pytest.fixture(scope="module")
def tuned_model(photo_items: list[CodecInput]) -> bytes:
    codec = get_codec("glc")
    return codec.train(photo_items, dataclasses.replace(codec.params("tiny"), decoder_steps=6))


def test_tuning_brings_the_decoder_closer_to_the_photos(photo_items: list[CodecInput], plain_model: bytes) -> None:
    model = bitstream.unpack_model(plain_model)[0]
    pairs = [(item.latent, item.image) for item in photo_items]
    stage = DecoderStage(steps=30, crop=8, batch_size=4, judge_crops=2, judge_crop=8)
    decoder = tune_decoder(decoding(model), pairs, "taesd", stage)
    vae = load_vae("taesd")
    assert set(decoder.tuned) == set(vae.vae.decoder.state_dict())
    assert set(decoder.blends.tolist()) <= set(BLEND_CHOICES)
    tuned = vae.with_decoder(DecoderWeights(decoder.key, decoder.tuned, 1.0))
    train_pairs, _ = split_for_judging(pairs)
    before, after = [], []
    for latent, image in train_pairs:  # the photos it was tuned on, at the lowest quality
        with torch.no_grad():
            decoded = decoding(model)(torch.from_numpy(latent)[None], torch.tensor([1.0]))[0].numpy()
        before.append(compute_metrics(image, vae.decode([decoded], [(96, 96)])[0])["lpips"])
        after.append(compute_metrics(image, tuned.decode([decoded], [(96, 96)])[0])["lpips"])
    assert np.mean(after) < np.mean(before) - 0.01


def test_a_tuned_model_stores_its_decoder_and_draws_with_it(photo_items: list[CodecInput], tuned_model: bytes) -> None:
    codec = get_codec("glc")
    _, _, decoder = bitstream.unpack_model(tuned_model)
    assert decoder is not None and set(decoder.blends.tolist()) <= set(BLEND_CHOICES)
    item = photo_items[0]
    for quality in (1.0, 2.5, 4.0):
        data = codec.encode(item, codec.params("tiny", quality), tuned_model)
        context = DecodeContext(96, 96, "taesd", tuned_model)
        latent = codec.decode(data, context)
        weights = codec.vae_decoder(data, context)
        assert weights is not None and weights.blend == decoder.blend(quality)
        drawn = latent_pixels(latent, "taesd", "taesd", (96, 96), "p0", weights)
        stock = load_vae("taesd").decode([latent], [(96, 96)])[0]
        assert np.array_equal(drawn, load_vae("taesd").with_decoder(weights).decode([latent], [(96, 96)])[0])
        assert (weights.blend > 0) == (not np.array_equal(drawn, stock))


def test_models_without_a_tuned_decoder_draw_with_the_stock_one(
    photo_items: list[CodecInput], plain_model: bytes
) -> None:
    codec = get_codec("glc")
    data = codec.encode(photo_items[0], codec.params("tiny", 2.0), plain_model)
    assert bitstream.unpack_model(plain_model)[2] is None
    assert codec.vae_decoder(data, DecodeContext(96, 96, "taesd", plain_model)) is None
    assert codec.training_pixels(codec.params("tiny")) == 0
    assert codec.training_pixels(dataclasses.replace(codec.params("tiny"), decoder_steps=1)) > 0


def test_foreign_decoder_arrays_are_refused(tuned_model: bytes) -> None:
    model, record, decoder = bitstream.unpack_model(tuned_model)
    bogus = bitstream.pack_model(model, record, {**decoder.arrays(), "bogus": np.zeros(3)})
    with pytest.raises(CodecError, match="extra arrays glc does not write"):
        bitstream.unpack_model(bogus)
    bad_blends = bitstream.pack_model(model, record, {**decoder.arrays(), BLENDS: np.full(4, 2.0)})
    with pytest.raises(CodecError, match="blends must be 4 values in"):
        bitstream.unpack_model(bad_blends)
    name = sorted(decoder.tuned)[0]
    wrong = {**decoder.tuned, name: np.zeros((3, 3), np.float16)}
    with pytest.raises(ContainerError, match=f"decoder weight {name} has shape"):
        latent_pixels(np.zeros((4, 20, 20), np.float32), "taesd", "taesd", (96, 96), "x",
                      DecoderWeights("wrong", wrong, 0.5))  # fmt: skip


def test_decoder_tuning_needs_pixels_and_a_valid_step_count(photo_items: list[CodecInput]) -> None:
    codec = get_codec("glc")
    params = dataclasses.replace(codec.params("tiny"), decoder_steps=2)
    latents_only = [dataclasses.replace(item, image=None) for item in photo_items]
    with pytest.raises(CodecError, match="needs the pixels of its training photos"):
        codec.train(latents_only, params)
    with pytest.raises(CodecError, match="decoder_steps must be >= 0"):
        dataclasses.replace(params, decoder_steps=-1).validate()


def test_archive_evaluates_and_restores_through_the_tuned_decoder(tmp_path: Path, monkeypatch) -> None:
    """The ledger's metrics are those of the image restore writes: both draw the latent
    with the model's tuned decoder."""
    from latentpress.codecs.glc.params import PRESETS
    from latentpress.flows.archive import archive
    from latentpress.flows.restore import restore
    from latentpress.infra.ledger import read_ledger
    from latentpress.run import RestoreRun, Run

    monkeypatch.setitem(PRESETS, "tiny-decoder", dataclasses.replace(PRESETS["tiny"], decoder_steps=4))
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, crop in enumerate(real_crops()[:2]):
        Image.fromarray(crop[:64, :64]).save(folder / f"{index}.png")
    done = archive(Run(str(tmp_path / "archive"), source=str(folder), codecs=["glc:tiny-decoder@1,4"]))
    assert done.ok and done.new_rows == 4
    (model,) = (tmp_path / "archive" / "models" / "glc.tiny-decoder" / "taesd").glob("*.lpm")
    assert model.stat().st_size > 1_000_000  # the decoder travels with the model
    restored = restore(RestoreRun(str(tmp_path / "archive"), str(tmp_path / "out"), layout="ids"))
    assert [o.status for o in restored.stages["restore"]] == ["ok"] * 4
    ledger = read_ledger(str(tmp_path / "archive" / "ledger"))
    for row in ledger.itertuples():
        original = np.asarray(Image.open(row.source).convert("RGB"))
        restored_image = np.asarray(Image.open(tmp_path / "out" / row.config_key / f"{row.image_id}.png"))
        assert compute_metrics(original, restored_image)["lpips"] == pytest.approx(row.lpips, abs=1e-6)
