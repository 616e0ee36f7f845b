"""The ``laduree`` codec: one diffusion decoder per shard, one index per image.

``fit`` trains a denoiser on the shard's latents and returns its bitstream (see
:mod:`.bitstream`) and each image's payload: its index ``i`` in the shard (the order
of ``items``) as a big-endian integer of ``ceil(ceil(log2 M) / 8)`` bytes (empty when
``M = 1``). ``decode`` regenerates the latent of index ``i`` from the shared model;
deserialised models are cached per process by the SHA-256 of their bytes, so a shard
of ``M`` images builds its network once.

Images of different sizes may share a shard: the denoiser works on any whole number
of patches, and the model lists each index's latent shape.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
import torch

from latentpress.codecs.base import CodecError, CodecInput, DecodeContext, ShardModelCodec, SharedFit
from latentpress.codecs.laduree import latents
from latentpress.codecs.laduree.bitstream import MAX_IMAGES, ModelRecord, pack_model, unpack_model
from latentpress.codecs.laduree.model import Denoiser
from latentpress.codecs.laduree.params import LadureeParams
from latentpress.codecs.laduree.sample import generate
from latentpress.codecs.laduree.schedule import make_scheduler
from latentpress.codecs.laduree.train import train
from latentpress.config import get_settings

_CACHE_SIZE = 4
MAX_TOKENS = 16384
"""Most patches one image may have (a 2x2 patch of a TAESD latent is 16x16 pixels: about
4 megapixels). The denoiser attends over every patch of an image at once and learns
each image whole, so larger photos are refused rather than tiled: tiles would be
separate images to memorise, which is not the method."""


class Laduree(ShardModelCodec):
    """Unicorn's Laduree prototype: a conditional latent diffusion model per shard."""

    def fit(self, items: list[CodecInput], params: LadureeParams) -> SharedFit:
        params.validate()
        raw = _check_items(items)
        mean, std = latents.statistics(raw)
        arch = params.architecture(channels=raw[0].shape[0])
        scaled = [latents.pad(latents.rescale(z, mean, std), arch.patch) for z in raw]
        net = train(scaled, arch, params.schedule(), params.training(), params.seed, get_settings().device)
        weights = {name: p.detach().cpu().numpy() for name, p in net.named_parameters()}
        shapes = tuple((z.shape[1], z.shape[2]) for z in raw)
        record = ModelRecord(arch, params.number_format(), mean, std, params.seed, params.schedule(), shapes, weights)
        payloads = {item.image_id: pack_index(i, len(items)) for i, item in enumerate(items)}
        return SharedFit(model=pack_model(record), payloads=payloads)

    def refusal(self, item: CodecInput, params: LadureeParams) -> str | None:
        if item.latent is None:
            return None
        tokens = -(-item.latent.shape[1] // params.patch) * -(-item.latent.shape[2] // params.patch)
        if tokens > MAX_TOKENS:
            return (
                f"laduree learns each image whole: a latent of {item.latent.shape[1]}x{item.latent.shape[2]} "
                f"is {tokens} patches, over its limit of {MAX_TOKENS} (about 4 megapixels)"
            )
        return None

    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        if context.shared_model is None:
            raise CodecError("laduree decoding needs the shared model (context.shared_model)")
        model = load_model(context.shared_model)
        index = unpack_index(data, len(model.record.shapes))
        height, width = model.record.shapes[index]
        if height > context.height or width > context.width:
            raise CodecError(f"latent {height}x{width} is larger than the image {context.height}x{context.width}")
        return model.latent(index)


class LoadedModel:
    """A deserialised model on the configured device, ready to regenerate latents."""

    def __init__(self, record: ModelRecord, device: str) -> None:
        self.record = record
        with torch.device("meta"):
            net = Denoiser(record.architecture, record.seed)
        state = {name: torch.from_numpy(values) for name, values in record.weights.items()}
        net.load_state_dict(state, strict=True, assign=True)
        self.net = net.to(device).eval()
        self.scheduler = make_scheduler(record.schedule)

    def latent(self, index: int) -> np.ndarray:
        """The (C, h, w) float32 raw latent of image ``index``."""
        record = self.record
        height, width = record.shapes[index]
        shape = latents.padded_shape(height, width, record.architecture.patch)
        z = generate(self.net, self.scheduler, record.seed, index, shape)[:, :height, :width]
        return np.ascontiguousarray(latents.unscale(z, record.mean, record.std))


_cache: OrderedDict[tuple[bytes, str], LoadedModel] = OrderedDict()
_cache_lock = threading.Lock()


def load_model(data: bytes) -> LoadedModel:
    """The model of bitstream ``data``, built once per process and device (LRU of 4)."""
    device = get_settings().device
    key = (hashlib.sha256(data).digest(), device)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        model = LoadedModel(unpack_model(data), device)
        _cache[key] = model
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return model


def index_bytes(count: int) -> int:
    """Payload size for a set of ``count`` images: ``ceil(log2 count)`` bits in whole bytes."""
    return -(-(count - 1).bit_length() // 8)


def pack_index(index: int, count: int) -> bytes:
    """The payload of image ``index`` in a set of ``count``."""
    return index.to_bytes(index_bytes(count), "big")


def unpack_index(data: bytes, count: int) -> int:
    """Inverse of :func:`pack_index`; ``CodecError`` on a wrong length or index."""
    if len(data) != index_bytes(count):
        raise CodecError(f"laduree payload of {len(data)} bytes, expected {index_bytes(count)} for {count} images")
    index = int.from_bytes(data, "big")
    if index >= count:
        raise CodecError(f"laduree index {index} is outside the model's {count} images")
    return index


def _check_items(items: list[CodecInput]) -> list[np.ndarray]:
    """The items' latents as float32, after checking what ``fit`` needs of them."""
    if not 1 <= len(items) <= MAX_IMAGES:
        raise CodecError(f"laduree fits 1 to {MAX_IMAGES} images, got {len(items)}")
    ids = [item.image_id for item in items]
    if len(set(ids)) != len(ids):
        raise CodecError("laduree items have duplicate image ids")
    raw = []
    for item in items:
        z = item.latent
        if z is None or z.ndim != 3 or min(z.shape) == 0 or max(z.shape[1:]) >= 1 << 16:
            shape = None if z is None else z.shape
            raise CodecError(f"laduree needs a non-empty (C, h, w) latent, image {item.image_id} has {shape}")
        if not np.all(np.isfinite(z)):
            raise CodecError(f"latent of image {item.image_id} has non-finite values")
        raw.append(np.asarray(z, dtype=np.float32))
    channels = {z.shape[0] for z in raw}
    if len(channels) > 1 or raw[0].shape[0] > 255:
        raise CodecError(f"laduree latents must share one channel count <= 255, got {sorted(channels)}")
    return raw
