"""relic's tuned VAE decoder: trained on real photos for relic's decoded latents, stored
in the model, drawn with by the pipeline and judged with by the time search by pixels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from latentpress.codecs import CodecInput, DecodeContext, get_codec
from latentpress.codecs.base import CodecError
from latentpress.codecs.relic import bitstream
from latentpress.codecs.relic.codec import LoadedModel, decoding, load_model
from latentpress.codecs.relic.time_search import by_pixels
from latentpress.codecs.tuned_decoder import BLEND_CHOICES, DECODER_PHOTOS
from latentpress.models.vae import load_vae
from latentpress.pipeline.decode import latent_pixels


@pytest.fixture(scope="module")
def tuned_model(photo_items: list[CodecInput]) -> bytes:
    codec = get_codec("relic")
    torch.manual_seed(0)
    statuses = []
    model = codec.train(
        photo_items, dataclasses.replace(codec.params("tiny"), decoder_steps=6), progress=statuses.append
    )
    decoder_statuses = [s for s in statuses if s.stage == "decoder"]
    assert decoder_statuses and decoder_statuses[-1].step == decoder_statuses[-1].steps == 6
    assert "pixel LPIPS" in decoder_statuses[-1].summary()
    return model


def test_relic_decoding_is_what_its_decoder_gives(photo_items: list[CodecInput], tuned_model: bytes) -> None:
    loaded = load_model(tuned_model)
    latent = photo_items[0].latent
    for quality in (1.0, 3.0):
        expected = loaded.decode(loaded.encode(latent, quality))
        assert np.array_equal(loaded.reconstruct(latent, quality), expected)
        batch = decoding(loaded)(torch.from_numpy(latent)[None], torch.tensor([quality]))
        assert np.array_equal(batch[0].numpy(), expected)


def test_a_tuned_model_stores_its_decoder_and_draws_with_it(photo_items: list[CodecInput], tuned_model: bytes) -> None:
    codec = get_codec("relic")
    _, _, decoder = bitstream.unpack_model(tuned_model)
    vae = load_vae("taesd")
    assert decoder is not None and set(decoder.tuned) == set(vae.vae.decoder.state_dict())
    assert set(decoder.blends.tolist()) <= set(BLEND_CHOICES)
    for quality in (1.0, 2.5, 4.0):
        data = codec.encode(photo_items[1], codec.params("tiny", quality), tuned_model)
        context = DecodeContext(96, 96, "taesd", tuned_model)
        latent = codec.decode(data, context)
        weights = codec.vae_decoder(data, context)
        assert weights is not None and weights.blend == decoder.blend(quality)
        drawn = latent_pixels(latent, "taesd", "taesd", (96, 96), "p1", weights)
        assert np.array_equal(drawn, vae.with_decoder(weights).decode([latent], [(96, 96)])[0])
        assert (weights.blend > 0) == (not np.array_equal(drawn, vae.decode([latent], [(96, 96)])[0]))


def test_the_time_search_by_pixels_judges_with_the_tuned_decoder(
    photo_items: list[CodecInput], tuned_model: bytes
) -> None:
    loaded = load_model(tuned_model)
    image, latent = photo_items[2].image, photo_items[2].latent
    decoded = loaded.decode(loaded.encode(latent, 1.0, t=0.1))
    stock = by_pixels(image, "taesd").cost(decoded)
    fully = dataclasses.replace(loaded.decoder_weights(1.0), blend=1.0)
    assert by_pixels(image, "taesd", fully).cost(decoded) != pytest.approx(stock, abs=1e-6)
    assert by_pixels(image, "taesd", dataclasses.replace(fully, blend=0.0)).cost(decoded) == pytest.approx(stock)


def test_models_without_a_tuned_decoder_and_bad_settings(photo_items: list[CodecInput]) -> None:
    codec = get_codec("relic")
    params = codec.params("tiny")
    assert codec.training_pixels(params) == 0
    assert codec.training_pixels(dataclasses.replace(params, decoder_steps=1)) == DECODER_PHOTOS
    plain = codec.train(photo_items, params)
    data = codec.encode(photo_items[0], params, plain)
    assert codec.vae_decoder(data, DecodeContext(96, 96, "taesd", plain)) is None
    assert LoadedModel(bitstream.unpack_model(plain)[0]).decoder_weights(2.0) is None
    with pytest.raises(CodecError, match="decoder_steps must be a count >= 0"):
        dataclasses.replace(params, decoder_steps=-1).validate()
    latents_only = [dataclasses.replace(item, image=None) for item in photo_items]
    with pytest.raises(CodecError, match="needs the pixels of its training photos"):
        codec.train(latents_only, dataclasses.replace(params, decoder_steps=2))
