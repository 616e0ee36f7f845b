"""The ``relic`` codec: adaptive quantization of the latent and diffusion denoising,
against a collection model.

Encoding: the latent is normalised; the parameter network gives each channel a scale
and a shift and the image a time ``t``, all rounded to the side information's grids;
the code ``(y - shift) * scale`` is coded by the entropy model with a unit step
(:mod:`latentpress.codecs.hyperprior.coder`). Decoding rebuilds ``y_hat``, reads it as the
diffusion's sample at ``t`` and takes ``DECODE_STEPS`` DDIM steps to ``t = 0`` with the
model's denoiser (window by window on large latents), then undoes the normalisation.
With ``time_search`` ``"distance"`` or ``"pixels"`` the encoder replaces the predicted
``t`` by the time whose decoded latent is closest to the original by the latent
perceptual distance, or by pixel LPIPS plus DISTS (:mod:`.time_search`); decoders read
``t`` from the payload either way. A model with a tuned VAE decoder (``decoder_steps``)
has the pipeline draw the latent with it (``vae_decoder``), and the search by pixels
judges with it. Loaded models are cached per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import torch

from latentpress.codecs import entropy
from latentpress.codecs.base import CodecError, CodecInput, CollectionModelCodec, DecodeContext
from latentpress.codecs.hyperprior.coder import ONE, PriorCoder
from latentpress.codecs.hyperprior.latents import MAX_VALUES, checked_latent, training_latents
from latentpress.codecs.model_cache import ModelCache
from latentpress.codecs.relic import bitstream, schedule
from latentpress.codecs.relic.bitstream import SideInfo
from latentpress.codecs.relic.model import UNET_MULTIPLE, RelicModel
from latentpress.codecs.relic.params import DECODE_STEPS, RelicParams, Training
from latentpress.codecs.relic.time_fit import fit_stage
from latentpress.codecs.relic.time_search import TimeSearch, best_time, by_distance, by_pixels
from latentpress.codecs.relic.train import TrainingStatus, train
from latentpress.codecs.tuned_decoder import (
    DECODER_PHOTOS,
    DecoderStage,
    Decoding,
    TunedDecoder,
    tune_on_collection,
)
from latentpress.config import get_settings
from latentpress.models.tiling import windows

if TYPE_CHECKING:
    from latentpress.models.vae import DecoderWeights

log = logging.getLogger(__name__)

DENOISE_TILE = 128
"""Latents with a side over this many cells (1,024 pixels) are denoised window by
window: cores of about this side with ``DENOISE_MARGIN`` cells of context, so that the
denoiser's attention and group norms see one window and decoding time and memory grow
linearly with the photo. Part of the decoder's definition (``docs/format.md``)."""
DENOISE_MARGIN = 16


class Relic(CollectionModelCodec):
    """Relic et al.'s latent codec with a denoiser trained on the collection."""

    def train(
        self,
        items: list[CodecInput],
        params: RelicParams,
        steps: int | None = None,
        progress: Callable[[TrainingStatus], None] | None = None,
    ) -> bytes:
        params.validate()
        latents = training_latents(items, "relic")
        arch = params.architecture(latents[0].shape[0])
        training = params.training(steps)
        vae_name = items[0].vae_id or ""
        held_out = held_out_photos(items, training.time_fit.photos)
        kept = [z for n, z in enumerate(latents) if n not in held_out]
        model = train(kept, arch, training, get_settings().device, progress, vae_name=vae_name)
        photos = [(items[n].image, latents[n]) for n in held_out]
        decoder, _ = finish(model, training, params.decoder_steps, photos, latents, [item.image for item in items],
                            vae_name, progress)  # fmt: skip
        record = bitstream.ModelRecord(arch, vae_name, len(items),
                                       training.denoiser_steps + training.coder_steps)  # fmt: skip
        return bitstream.pack_model(model, record, decoder.arrays() if decoder else None)

    def encode(self, item: CodecInput, params: RelicParams, model: bytes) -> bytes:
        params.validate()
        loaded = load_model(model)
        latent = checked_latent(item, "relic")
        if latent.shape[0] != loaded.channels:
            raise CodecError(
                f"relic model takes {loaded.channels}-channel latents, image {item.image_id} has {latent.shape[0]}"
            )
        quality = float(np.float32(params.quality))
        search = time_search(item, params.time_search, loaded.decoder_weights(quality))
        return loaded.encode(latent, quality, search=search)

    def training_pixels(self, params: RelicParams) -> int:
        return max(params.time_fit_photos, DECODER_PHOTOS if params.decoder_steps else 0)

    def reads_pixels(self, params: RelicParams) -> bool:
        return params.time_search == "pixels"

    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        if context.shared_model is None:
            raise CodecError("relic decoding needs its collection model (context.shared_model)")
        loaded = load_model(context.shared_model)
        _, height, width, _, _ = bitstream.unpack_payload(data, loaded.channels)
        if height > context.height or width > context.width:
            raise CodecError(f"relic latent {height}x{width} is larger than the image {context.height}x{context.width}")
        return loaded.decode(data)

    def vae_decoder(self, data: bytes, context: DecodeContext) -> DecoderWeights | None:
        if context.shared_model is None:
            return None
        loaded = load_model(context.shared_model)
        return loaded.decoder_weights(bitstream.unpack_payload(data, loaded.channels)[0])


class LoadedModel:
    """A model ready to code: its parameter network and denoiser, its exact entropy
    model, and its tuned VAE decoder if it has one."""

    def __init__(self, model: RelicModel, decoder: TunedDecoder | None = None) -> None:
        self.model = model
        self.coder = PriorCoder(model)
        self.channels = model.arch.latent_channels
        self.decoder = decoder

    def decoder_weights(self, quality: float) -> DecoderWeights | None:
        """The VAE decoder's weights for a payload at ``quality`` (``None``: the stock decoder)."""
        return self.decoder.weights(quality) if self.decoder else None

    @torch.inference_mode()
    def side_info(self, latent: np.ndarray, quality: float) -> SideInfo:
        """The coding parameters the parameter network picks for ``latent`` at ``quality``."""
        y = self.model.normalise(torch.from_numpy(latent))[None]
        log_scale, shift, t = self.model.parameter_net(y, torch.tensor([quality]))
        return SideInfo.of(float(t[0]), log_scale[0].numpy(), shift[0].numpy())

    def encode(
        self, latent: np.ndarray, quality: float, t: float | None = None, search: TimeSearch | None = None
    ) -> bytes:
        """The payload of ``latent`` at ``quality``; ``t`` (if given) in place of the
        predicted time (the same code, denoised from another time), or with a
        ``search`` the time it finds best (:mod:`.time_search`)."""
        return self.code(latent, quality, t, search)[0]

    @torch.inference_mode()
    def code(
        self, latent: np.ndarray, quality: float, t: float | None = None, search: TimeSearch | None = None
    ) -> tuple[bytes, torch.Tensor]:
        """The payload, and the normalised latent ``y_hat`` (1, C, h, w) its decoder
        rebuilds before denoising. The time does not change what is coded: it is
        chosen (``t``, or by ``search``) after the code."""
        side = self.side_info(latent, quality)
        y = self.model.normalise(torch.from_numpy(latent)).double()[None]
        shift, scale = self._affine(side)
        encoder = entropy.Encoder()
        decoded = self.coder.encode((y - shift) * scale, encoder)
        y_hat = (decoded / ONE / scale + shift).float()
        if search is not None:
            t = best_time(lambda t: search.cost(self.to_latent(self.denoise(y_hat, t))), side.time, search.coarse,
                          search.refinements)  # fmt: skip
        if t is not None:
            side = replace(side, t=bitstream.time_units(t))
        payload = bitstream.pack_payload(quality, latent.shape[1], latent.shape[2], side, encoder.to_bytes())
        return payload, y_hat

    @torch.inference_mode()
    def decoded(self, data: bytes) -> tuple[SideInfo, torch.Tensor]:
        """A payload's side information and its ``y_hat`` (see ``code``)."""
        _, height, width, side, stream = bitstream.unpack_payload(data, self.channels)
        if self.channels * height * width > MAX_VALUES:
            raise CodecError(f"relic latent {height}x{width} is too large")
        decoder = entropy.Decoder(stream)
        decoded = self.coder.decode(decoder, height, width)
        decoder.finish()
        shift, scale = self._affine(side)
        return side, (decoded / ONE / scale + shift).float()

    def decode(self, data: bytes) -> np.ndarray:
        """The (C, h, w) latent of a payload."""
        side, y_hat = self.decoded(data)
        return self.to_latent(self.denoise(y_hat, side.time))

    def reconstruct(self, latent: np.ndarray, quality: float) -> np.ndarray:
        """The latent a decoder of ``encode(latent, quality)`` gives (the predicted
        time), computed by the encoder."""
        payload, y_hat = self.code(latent, quality)
        side = bitstream.unpack_payload(payload, self.channels)[3]
        return self.to_latent(self.denoise(y_hat, side.time))

    @staticmethod
    def _affine(side: SideInfo) -> tuple[torch.Tensor, torch.Tensor]:
        """The side information's shifts and scales, shaped (1, C, 1, 1), float64."""
        return tuple(torch.from_numpy(v)[None, :, None, None] for v in (side.shift_values(), side.scales()))

    @torch.inference_mode()
    def denoise(self, y_hat: torch.Tensor, t: float, steps: int = DECODE_STEPS) -> torch.Tensor:
        """Normalised ``y_hat`` (1, C, h, w) read as the sample at ``t``, taken to ``t = 0``
        in ``steps`` DDIM steps (unchanged when ``t`` is 0)."""
        if t <= 0:
            return y_hat
        path = schedule.times(t, steps)
        x = schedule.alpha_bar(torch.tensor(t)).sqrt() * y_hat
        for now, following in pairwise(path):
            now_t, next_t = torch.tensor([now]), torch.tensor([following])
            x = schedule.ddim_step(x, self.noise(x, now_t), now_t, next_t)
        return x

    def noise(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The denoiser's noise prediction for ``x`` (1, C, h, w) at ``t``; window by
        window for latents with a side over ``DENOISE_TILE``."""
        height, width = x.shape[2:]
        if max(height, width) <= DENOISE_TILE:
            return self.model.denoiser(x, t)
        eps = torch.empty_like(x)
        for window in windows(height, width, DENOISE_TILE, DENOISE_MARGIN, UNET_MULTIPLE):
            eps[(..., *window.core())] = self.model.denoiser(x[(..., *window.window())], t)[
                (..., *window.core_in_window())
            ]
        return eps

    def to_latent(self, y: torch.Tensor) -> np.ndarray:
        """A normalised (1, C, h, w) latent back in the VAE's units, as (C, h, w) float32."""
        return np.ascontiguousarray(self.model.denormalise(y[0]).numpy(), dtype=np.float32)


def finish(
    model: RelicModel,
    training: Training,
    decoder_steps: int,
    held_out: list[tuple[np.ndarray, np.ndarray]],
    latents: list[np.ndarray],
    images: list[np.ndarray | None],
    vae_name: str,
    progress: Callable[[TrainingStatus], None] | None = None,
) -> tuple[TunedDecoder | None, str | None]:
    """Training's stages after the codec stage, on a trained ``model`` (in place): the
    time fit on the ``held_out`` (image, latent) pairs, then, with ``decoder_steps``,
    the VAE decoder tuned on the collection's ``latents`` and ``images``. Returns that
    decoder and what the time fit reports (None without held-out photos)."""
    summary = None
    if held_out:

        def measured(done: int, total: int) -> None:
            if progress is not None:
                progress(TrainingStatus(done, total, "time", float("nan")))

        summary = fit_stage(LoadedModel(model), held_out, vae_name, training.time_fit, measured).summary()
        log.info("relic time fit on %d held-out photos: %s", len(held_out), summary)
    if not decoder_steps:
        return None, summary

    def tuned(step: int, lpips: float, mse: float) -> None:
        if progress is not None:
            progress(TrainingStatus(step, decoder_steps, "decoder", lpips))

    return tune_on_collection(decoding(LoadedModel(model)), latents, images, vae_name, DecoderStage(decoder_steps),
                              get_settings().device, tuned), summary  # fmt: skip


def held_out_photos(items: list[CodecInput], wanted: int) -> list[int]:
    """Indices of the training images held out for the time fit: the first ``wanted``
    that come with pixels LPIPS and DISTS can measure, at most a third of ``items``
    (the denoiser knows the photos it learnt from by heart, and prefers larger times
    on them than on new ones: docs/relic.md). ``CodecError`` if none has such pixels."""
    from latentpress.models.metrics import MIN_SIZE

    if not wanted:
        return []
    with_pixels = [
        n for n, item in enumerate(items) if item.image is not None and min(item.image.shape[:2]) >= MIN_SIZE
    ]
    if not with_pixels:
        raise CodecError(
            f"relic's time fit (time_fit_photos) needs the pixels of some training images of {MIN_SIZE} pixels a side"
        )
    held_out = with_pixels[: min(wanted, len(items) // 3)]
    if not held_out:
        log.warning("relic's time fit skipped: %d training images are too few to hold any out", len(items))
    return held_out


def decoding(loaded: LoadedModel) -> Decoding:
    """What relic's decoder gives for latents at qualities, crop by crop (each coded
    and denoised from its predicted time): what its VAE decoder is tuned to draw."""

    def decode(latents: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        decoded = [loaded.reconstruct(z.cpu().numpy(), float(q)) for z, q in zip(latents, quality, strict=True)]
        return torch.from_numpy(np.stack(decoded)).to(latents.device)

    return decode


def time_search(item: CodecInput, how: str, weights: DecoderWeights | None = None) -> TimeSearch | None:
    """The encoder's search for the time of ``item`` (``RelicParams.time_search``); None
    for the predicted time; by pixels, drawn with the decoder ``weights`` give (the
    stock one for ``None``). ``CodecError`` where the image or its VAE cannot have one;
    a VAE or weights file that cannot be read now (``OSError``) is left to propagate,
    so the image is retried rather than refused."""
    if how == "predicted":
        return None
    if not item.vae_id:
        raise CodecError(f"relic's time search needs the VAE of image {item.image_id}'s latent")
    try:
        if how == "distance":
            return by_distance(checked_latent(item, "relic"), item.vae_id)
        if item.image is None:
            raise CodecError(f"relic's time search by pixels needs image {item.image_id}'s pixels")
        return by_pixels(item.image, item.vae_id, weights)
    except ValueError as exc:  # LatentDistanceError among them
        raise CodecError(f"relic's time search for image {item.image_id}: {exc}") from None


def _load(data: bytes) -> LoadedModel:
    model, _, decoder = bitstream.unpack_model(data)
    return LoadedModel(model, decoder)


_models: ModelCache[LoadedModel] = ModelCache(_load)


def load_model(data: bytes) -> LoadedModel:
    """The model of ``data``, built once per process (LRU of a few)."""
    return _models.get(data)
