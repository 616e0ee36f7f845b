"""The ``glc`` codec: learned transform coding in the latent space, against a
collection model.

Encoding: the analysis transform maps the VAE latent to ``y``, scaled by ``q_enc`` of
the quality; ``z = round(hyper_analysis(y))`` is coded under the model's Laplace
prior; then the four parts of ``y`` are coded in order, each value as
``s = round((y - mean) / step)`` under a Gaussian count table of its spread, the
mean, step and spread computed from the hyperprior and the parts already coded by
the exact (integer) networks. Decoding mirrors it, then unscales by ``q_dec`` and
runs the synthesis transform. Loaded models are cached per process.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from latentpress.codecs import entropy
from latentpress.codecs.base import CodecError, CodecInput, CollectionModelCodec, DecodeContext
from latentpress.codecs.glc import bitstream, tables
from latentpress.codecs.glc.exact import ExactNets
from latentpress.codecs.glc.model import PARTS, GlcModel
from latentpress.codecs.glc.params import GlcParams
from latentpress.codecs.glc.perceptual import PerceptualStage, finetune
from latentpress.codecs.glc.train import TrainingStatus, train
from latentpress.config import get_settings

MAX_VALUES = 1 << 26
"""Largest code (N * h * w) a payload may describe."""
_CACHE_SIZE = 4
_ONE = float(1 << tables.FRACTION)


class Glc(CollectionModelCodec):
    """GLC (generative latent coding) with the TAESD family's latents."""

    version = bitstream.PAYLOAD_VERSION

    def train(self, items: list[CodecInput], params: GlcParams, steps: int | None = None,
              progress: Callable[[TrainingStatus], None] | None = None) -> bytes:
        params.validate()
        latents = [_latent(item) for item in items]
        if not latents:
            raise CodecError("glc needs at least one image to train on")
        channels = {z.shape[0] for z in latents}
        if len(channels) > 1:
            raise CodecError(f"glc trains on latents of one channel count, got {sorted(channels)}")
        arch = params.architecture(latents[0].shape[0])
        training = params.training(steps)
        device = get_settings().device
        total = training.steps + params.perceptual_steps
        model = train(latents, arch, training, device, progress, total_steps=total)
        if params.perceptual_steps:

            def report(step: int, lpips: float, mse: float) -> None:
                if progress is not None:
                    progress(TrainingStatus(training.steps + step, total, mse + lpips, float("nan"), mse, "perceptual", lpips))

            finetune(model, latents, items[0].vae_id or "", PerceptualStage(params.perceptual_steps), device, report)
        record = bitstream.ModelRecord(arch, items[0].vae_id or "", len(items), total)
        return bitstream.pack_model(model.cpu(), record)

    def encode(self, item: CodecInput, params: GlcParams, model: bytes) -> bytes:
        params.validate()
        loaded = load_model(model)
        latent = _latent(item)
        if latent.shape[0] != loaded.model.arch.latent_channels:
            raise CodecError(f"glc model takes {loaded.model.arch.latent_channels}-channel latents, "
                             f"image {item.image_id} has {latent.shape[0]}")
        return loaded.encode(latent, float(np.float32(params.quality)))

    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        if context.shared_model is None:
            raise CodecError("glc decoding needs its collection model (context.shared_model)")
        quality, height, width, stream = bitstream.unpack_payload(data)
        if height > context.height or width > context.width:
            raise CodecError(f"glc latent {height}x{width} is larger than the image {context.height}x{context.width}")
        return load_model(context.shared_model).decode(quality, height, width, stream)


class LoadedModel:
    """A model ready to code: its float transforms and its exact entropy networks."""

    def __init__(self, model: GlcModel) -> None:
        self.model = model
        self.exact = ExactNets(model)
        self.stride = model.arch.stride
        self.z_loc = np.round(model.z_loc.double().numpy() * _ONE).astype(np.int64)
        log2_scale = model.z_log_scale.double().numpy() / math.log(2.0)
        self.z_scale = np.round(log2_scale * tables.STEPS_PER_OCTAVE).astype(np.int64)

    def code_shape(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(y height, y width, z height, z width) for a latent of this size."""
        hy, wy = -(-height // self.stride), -(-width // self.stride)
        return hy, wy, -(-hy // 4), -(-wy // 4)

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
        hy, wy, _, _ = self.code_shape(height, width)
        x = torch.from_numpy(latent)[None]
        x = F.pad(x, (0, wy * self.stride - width, 0, hy * self.stride - height), mode="replicate")
        q_enc, _ = self.model.scalers.at(torch.tensor([quality]))
        y = (self.model.analysis(x) * q_enc).double()
        z = torch.round(self.model.hyper_analysis(y.float())).clamp(-tables.Z_RANGE, tables.Z_RANGE).double()
        encoder = entropy.Encoder()
        for c in range(z.shape[1]):
            encoder.categorical(z[0, c].numpy().astype(np.int64), self._z_counts(c), -tables.Z_RANGE)
        features = self.exact.features(z, hy, wy)
        decoded = torch.zeros_like(y)
        for k, (row, col) in enumerate(PARTS):
            mean, delta, ratio_index = self._part(k, features, decoded, row, col)
            values = y[0, :, row::2, col::2].numpy()
            limits = tables.LIMITS[ratio_index]
            symbols = np.clip(np.floor((values - mean) / delta + 0.5), -limits, limits).astype(np.int64)
            for index in np.unique(ratio_index):
                chosen = ratio_index == index
                encoder.categorical(symbols[chosen], tables.gaussian_counts(int(index)), -int(tables.LIMITS[index]))
            decoded[..., row::2, col::2] = torch.from_numpy((mean + delta * symbols) * _ONE)
        return bitstream.pack_payload(quality, height, width, encoder.to_bytes()), decoded

    @torch.inference_mode()
    def decode(self, quality: float, height: int, width: int, stream: bytes) -> np.ndarray:
        hy, wy, hz, wz = self.code_shape(height, width)
        channels = self.model.arch.channels
        if channels * hy * wy > MAX_VALUES:
            raise CodecError(f"glc latent {height}x{width} is too large")
        decoder = entropy.Decoder(stream)
        z = np.stack([decoder.categorical(self._z_counts(c), -tables.Z_RANGE, hz * wz).reshape(hz, wz)
                      for c in range(self.model.arch.hyper_channels)])  # fmt: skip
        features = self.exact.features(torch.from_numpy(z)[None].double(), hy, wy)
        decoded = torch.zeros((1, channels, hy, wy), dtype=torch.float64)
        for k, (row, col) in enumerate(PARTS):
            mean, delta, ratio_index = self._part(k, features, decoded, row, col)
            symbols = np.zeros(ratio_index.shape, dtype=np.int64)
            for index in np.unique(ratio_index):
                chosen = ratio_index == index
                limit = int(tables.LIMITS[index])
                symbols[chosen] = decoder.categorical(tables.gaussian_counts(int(index)), -limit, int(chosen.sum()))
            decoded[..., row::2, col::2] = torch.from_numpy((mean + delta * symbols) * _ONE)
        decoder.finish()
        return self.synthesize(decoded, quality, height, width)

    @torch.inference_mode()
    def synthesize(self, decoded: torch.Tensor, quality: float, height: int, width: int) -> np.ndarray:
        """The (C, height, width) latent of decoded code values (fixed point)."""
        _, q_dec = self.model.scalers.at(torch.tensor([quality]))
        y_hat = (decoded / _ONE).float() * q_dec
        latent = self.model.synthesis(y_hat)[0, :, :height, :width]
        return np.ascontiguousarray(latent.numpy(), dtype=np.float32)

    def _part(self, k: int, features: torch.Tensor, decoded: torch.Tensor, row: int, col: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean (float64, exact), step and spread index of part ``k``'s values."""
        mean, log_delta, log_ratio = (t[0, :, row::2, col::2].numpy() for t in self.exact.part(k, features, decoded))
        delta = tables.DELTAS[tables.index_of(log_delta, tables.DELTA_LOG2)]
        return mean / _ONE, delta, tables.index_of(log_ratio, tables.RATIO_LOG2)

    def _z_counts(self, channel: int) -> np.ndarray:
        return tables.laplace_counts(int(self.z_loc[channel]), int(self.z_scale[channel]))


_cache: OrderedDict[tuple[bytes, str], LoadedModel] = OrderedDict()
_cache_lock = threading.Lock()


def load_model(data: bytes) -> LoadedModel:
    """The model of ``data``, built once per process (LRU of a few)."""
    key = (hashlib.sha256(data).digest(), "cpu")
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        model, _ = bitstream.unpack_model(data)
        loaded = LoadedModel(model)
        _cache[key] = loaded
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return loaded


def _latent(item: CodecInput) -> np.ndarray:
    latent = item.latent
    if latent is None or latent.ndim != 3 or latent.size == 0 or max(latent.shape[1:]) >= 1 << 16:
        raise CodecError(f"glc needs a non-empty (C, h, w) latent, image {item.image_id} has "
                         f"{None if latent is None else latent.shape}")
    latent = np.asarray(latent, dtype=np.float32)
    if not np.all(np.isfinite(latent)):
        raise CodecError(f"latent of image {item.image_id} has non-finite values")
    return latent
