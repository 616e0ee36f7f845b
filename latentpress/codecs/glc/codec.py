"""The ``glc`` codec: learned transform coding in the latent space, against a
collection model.

Encoding: the analysis transform maps the VAE latent to ``y``, scaled by ``q_enc`` of
the quality, and :mod:`.coder` codes it with the model's entropy model. Decoding
mirrors it, then unscales by ``q_dec`` and runs the synthesis transform; a model
with a tuned VAE decoder (``decoder_steps``) has the pipeline draw the latent with it
(``vae_decoder``). Loaded models are cached per process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from latentpress.codecs import entropy
from latentpress.codecs.base import CodecError, CodecInput, CollectionModelCodec, DecodeContext
from latentpress.codecs.glc import bitstream
from latentpress.codecs.glc.model import GlcModel
from latentpress.codecs.glc.params import GlcParams
from latentpress.codecs.glc.perceptual import PerceptualStage, finetune
from latentpress.codecs.glc.train import TrainingStatus, train
from latentpress.codecs.hyperprior.coder import ONE, PriorCoder
from latentpress.codecs.hyperprior.latents import MAX_VALUES, checked_latent, training_latents
from latentpress.codecs.model_cache import ModelCache
from latentpress.codecs.tuned_decoder import DECODER_PHOTOS, DecoderStage, TunedDecoder, tune_on_collection
from latentpress.config import get_settings
from latentpress.models.channel_sensitivity import PHOTOS as SENSITIVITY_PHOTOS

if TYPE_CHECKING:
    from latentpress.models.vae import DecoderWeights


class Glc(CollectionModelCodec):
    """GLC (generative latent coding) with the TAESD family's latents."""

    def train(
        self,
        items: list[CodecInput],
        params: GlcParams,
        steps: int | None = None,
        progress: Callable[[TrainingStatus], None] | None = None,
    ) -> bytes:
        params.validate()
        latents = training_latents(items, "glc")
        arch = params.architecture(latents[0].shape[0])
        training = params.training(steps)
        device = get_settings().device
        total = training.steps + params.perceptual_steps + params.decoder_steps
        vae_name = items[0].vae_id or ""
        weighted = params.weighs_channels(arch.latent_channels)
        sensitivity = measured_sensitivity(items, latents, vae_name) if weighted else None
        model = train(latents, arch, training, device, progress, total_steps=total, vae_name=vae_name,
                      sensitivity=sensitivity)  # fmt: skip

        def reporter(before: int, phase: str) -> Callable[[int, float, float], None]:
            def report(step: int, lpips: float, mse: float) -> None:
                if progress is not None:
                    progress(TrainingStatus(before + step, total, mse + lpips, float("nan"), mse, phase, lpips=lpips))

            return report

        if params.perceptual_steps:
            stage = PerceptualStage(params.perceptual_steps)
            finetune(model, latents, vae_name, stage, device, reporter(training.steps, "perceptual"))
        decoder = None
        if params.decoder_steps:
            stage = DecoderStage(params.decoder_steps)
            report = reporter(training.steps + params.perceptual_steps, "decoder")
            images = [item.image for item in items]
            decoder = tune_on_collection(decoding(model), latents, images, vae_name, stage, device, report)
        record = bitstream.ModelRecord(arch, vae_name, len(items), total)
        return bitstream.pack_model(model.cpu(), record, decoder.arrays() if decoder else None)

    def training_pixels(self, params: GlcParams) -> int:
        weighting = SENSITIVITY_PHOTOS if params.channel_weighting != "off" else 0
        return max(DECODER_PHOTOS if params.decoder_steps else 0, weighting)

    def encode(self, item: CodecInput, params: GlcParams, model: bytes) -> bytes:
        params.validate()
        loaded = load_model(model)
        latent = checked_latent(item, "glc")
        if latent.shape[0] != loaded.model.arch.latent_channels:
            raise CodecError(
                f"glc model takes {loaded.model.arch.latent_channels}-channel latents, "
                f"image {item.image_id} has {latent.shape[0]}"
            )
        return loaded.encode(latent, float(np.float32(params.quality)))

    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        if context.shared_model is None:
            raise CodecError("glc decoding needs its collection model (context.shared_model)")
        quality, height, width, stream = bitstream.unpack_payload(data)
        if height > context.height or width > context.width:
            raise CodecError(f"glc latent {height}x{width} is larger than the image {context.height}x{context.width}")
        return load_model(context.shared_model).decode(quality, height, width, stream)

    def vae_decoder(self, data: bytes, context: DecodeContext) -> DecoderWeights | None:
        if context.shared_model is None:
            return None
        return load_model(context.shared_model).decoder_weights(bitstream.unpack_payload(data)[0])


def measured_sensitivity(items: list[CodecInput], latents: list[np.ndarray], vae_name: str) -> np.ndarray:
    """(C,) what each latent channel's error costs in pixel LPIPS plus DISTS, measured on
    the training photos that come with pixels; ``CodecError`` if none does."""
    from latentpress.codecs.hyperprior.training import latent_statistics
    from latentpress.models.channel_sensitivity import channel_sensitivity
    from latentpress.models.vae import load_vae

    pairs = [(item.image, z) for item, z in zip(items, latents, strict=True) if item.image is not None]
    try:
        return channel_sensitivity(load_vae(vae_name), [p for p, _ in pairs], [z for _, z in pairs],
                                   latent_statistics(latents)[1])  # fmt: skip
    except ValueError as exc:
        raise CodecError(f"glc channel_weighting: {exc}") from None


class LoadedModel:
    """A model ready to code: its float transforms and its exact entropy model."""

    def __init__(self, model: GlcModel, decoder: TunedDecoder | None = None) -> None:
        self.model = model
        self.coder = PriorCoder(model)
        self.stride = model.arch.stride
        self.decoder = decoder

    def decoder_weights(self, quality: float) -> DecoderWeights | None:
        """The VAE decoder's weights for a payload at ``quality`` (``None``: the stock decoder)."""
        return self.decoder.weights(quality) if self.decoder else None

    def code_shape(self, height: int, width: int) -> tuple[int, int]:
        """(y height, y width) for a latent of this size."""
        return -(-height // self.stride), -(-width // self.stride)

    def encode(self, latent: np.ndarray, quality: float) -> bytes:
        """The payload of ``latent`` at ``quality``."""
        return self.code(latent, quality)[0]

    def reconstruct(self, latent: np.ndarray, quality: float) -> np.ndarray:
        """The latent a decoder of ``encode(latent, quality)`` gives, computed by the encoder."""
        _, decoded = self.code(latent, quality)
        return self.synthesize(decoded, quality, latent.shape[1], latent.shape[2])

    @torch.inference_mode()
    def code(self, latent: np.ndarray, quality: float) -> tuple[bytes, torch.Tensor]:
        """The payload, and the decoded code values (fixed point) both sides share."""
        _, height, width = latent.shape
        hy, wy = self.code_shape(height, width)
        x = torch.from_numpy(latent)[None]
        x = F.pad(x, (0, wy * self.stride - width, 0, hy * self.stride - height), mode="replicate")
        q_enc, _ = self.model.scalers.at(torch.tensor([quality]))
        encoder = entropy.Encoder()
        decoded = self.coder.encode((self.model.analysis(x) * q_enc).double(), encoder)
        return bitstream.pack_payload(quality, height, width, encoder.to_bytes()), decoded

    @torch.inference_mode()
    def decode(self, quality: float, height: int, width: int, stream: bytes) -> np.ndarray:
        hy, wy = self.code_shape(height, width)
        if self.model.arch.channels * hy * wy > MAX_VALUES:
            raise CodecError(f"glc latent {height}x{width} is too large")
        decoder = entropy.Decoder(stream)
        decoded = self.coder.decode(decoder, hy, wy)
        decoder.finish()
        return self.synthesize(decoded, quality, height, width)

    @torch.inference_mode()
    def synthesize(self, decoded: torch.Tensor, quality: float, height: int, width: int) -> np.ndarray:
        """The (C, height, width) latent of decoded code values (fixed point)."""
        _, q_dec = self.model.scalers.at(torch.tensor([quality]))
        y_hat = (decoded / ONE).float() * q_dec
        latent = self.model.synthesis(y_hat)[0, :, :height, :width]
        return np.ascontiguousarray(latent.numpy(), dtype=np.float32)


def decoding(model: GlcModel) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """What glc's decoder gives for latents at qualities (the rounded code through the
    synthesis): what its VAE decoder is tuned to draw."""
    return lambda latents, quality: model(latents, quality, rounding=True)[0]


def _load(data: bytes) -> LoadedModel:
    model, _, decoder = bitstream.unpack_model(data)
    return LoadedModel(model, decoder)


_models: ModelCache[LoadedModel] = ModelCache(_load)


def load_model(data: bytes) -> LoadedModel:
    """The model of ``data``, built once per process (LRU of a few)."""
    return _models.get(data)
