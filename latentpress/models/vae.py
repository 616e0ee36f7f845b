"""Latent autoencoders through diffusers (TAESD family, Stable Diffusion VAEs).

Latents are the *raw* latents the decoder takes (``AutoencoderTiny`` ``.latents``,
``AutoencoderKL`` ``latent_dist.mode()``), float32, shape (C, ceil(H/s), ceil(W/s)).
The diffusion-space latent of a model is ``(raw - shift_factor) * scaling_factor``;
both factors are exposed for the record and never applied here.

Images of any size are padded on the bottom and right to a multiple of the stride
by edge replication (repeating the last row and column), which avoids the dark or
mirrored borders zero or reflect padding would make the decoder reproduce; decoding
crops the padding away.

Images with a side over ``TILE`` pixels are coded alone, in tiles with context
(``models.tiling``), so memory is bounded by one tile whatever the photo's size;
smaller images are batched by shape, at most ``BATCH_PIXELS`` pixels a batch.
"""

from __future__ import annotations

import copy
import math
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from latentpress.config import get_settings
from latentpress.infra.model_files import model_id, resolve_model
from latentpress.models.tiling import windows

_CLASSES = ("AutoencoderTiny", "AutoencoderKL")
TILE = 1200
"""Images with a side over this many pixels are encoded and decoded in tiles of about
this side (a multiple of every VAE's stride)."""
TILE_MARGIN = 128
"""Context around each tile, in image pixels: it covers the TAESD coders' receptive
field, so tiled latents differ from untiled ones by float rounding (measured in
``docs/large-photos.md``)."""
BATCH_PIXELS = 1 << 21
"""Most pixels coded in one batch (about 2 MP: five Kodak photos)."""
TUNED_DECODERS = 4
"""Decoders with other weights (``with_decoder``) an autoencoder keeps built."""


@dataclass(frozen=True, eq=False)
class DecoderWeights:
    """Weights for a VAE's decoder: ``stock + blend * (tuned - stock)``, per tensor of
    the decoder's state (a collection model's tuned decoder, at the blend its quality
    asks for)."""

    key: str
    """Names ``tuned`` (a digest of the model that holds it), for caching."""
    tuned: Mapping[str, np.ndarray]
    blend: float
    """0: the stock decoder; 1: the tuned one."""


def _batches(keys: Sequence[tuple[int, ...]], batch_size: int, max_pixels: int) -> Iterator[list[int]]:
    """Indices grouped by equal shape ``key`` (..., H, W), in chunks of at most
    ``batch_size`` and of at most ``max_pixels`` pixels (at least one image)."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    for key, idx in groups.items():
        size = max(1, min(batch_size, max_pixels // (key[-2] * key[-1])))
        for start in range(0, len(idx), size):
            yield idx[start : start + size]


class LatentAutoencoder:
    """A diffusers autoencoder with numpy in and out."""

    def __init__(self, vae: torch.nn.Module, vae_id: str, device: str) -> None:
        config = vae.config
        self.vae = vae.to(device).eval().requires_grad_(False)
        self.vae_id = vae_id
        self.device = torch.device(device)
        self.is_tiny = type(vae).__name__ == "AutoencoderTiny"
        self.stride: int = 2 ** (len(config.block_out_channels) - 1)
        self.latent_channels: int = int(config.latent_channels)
        self.scaling_factor: float = float(config.scaling_factor)
        self.shift_factor: float = float(getattr(config, "shift_factor", None) or 0.0)
        self.tile = TILE
        """Images with a side over this many pixels are coded in tiles of about this side."""
        self.margin = TILE_MARGIN
        """Context each tile sees beyond its core, in image pixels (a multiple of the stride)."""
        self._decoders: OrderedDict[tuple[str, float], LatentAutoencoder] = OrderedDict()
        self._decoders_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LatentAutoencoder({self.vae_id!r}, stride={self.stride}, channels={self.latent_channels})"

    def with_decoder(self, weights: DecoderWeights | None) -> LatentAutoencoder:
        """This autoencoder with its decoder's weights set by ``weights`` (itself for
        ``None`` or a blend of 0); ``ValueError`` if they do not fit this decoder. The
        last ``TUNED_DECODERS`` are kept built."""
        if weights is None or weights.blend == 0:
            return self
        key = (weights.key, float(weights.blend))
        with self._decoders_lock:
            if key in self._decoders:
                self._decoders.move_to_end(key)
                return self._decoders[key]
        stock = self.vae.decoder.state_dict()
        if set(weights.tuned) != set(stock):
            raise ValueError(f"decoder weights of {len(weights.tuned)} tensors do not fit {self.vae_id}'s decoder "
                             f"({len(stock)} tensors, other names)")  # fmt: skip
        state = {}
        for name, value in stock.items():
            tuned = weights.tuned[name]
            if tuned.shape != tuple(value.shape):
                raise ValueError(
                    f"decoder weight {name} has shape {tuned.shape}, {self.vae_id}'s has {tuple(value.shape)}"
                )
            state[name] = value + weights.blend * (torch.from_numpy(np.asarray(tuned, np.float32)).to(value) - value)
        vae = copy.deepcopy(self.vae)
        vae.decoder.load_state_dict(state)
        tuned_vae = LatentAutoencoder(vae, self.vae_id, str(self.device))
        tuned_vae.tile, tuned_vae.margin = self.tile, self.margin
        with self._decoders_lock:
            self._decoders[key] = tuned_vae
            while len(self._decoders) > TUNED_DECODERS:
                self._decoders.popitem(last=False)
        return tuned_vae

    def latent_size(self, width: int, height: int) -> tuple[int, int]:
        """Latent (width, height) for an image of the given size."""
        return math.ceil(width / self.stride), math.ceil(height / self.stride)

    def encode(self, images: Sequence[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        """Encode (H, W, 3) uint8 RGB images to float32 latents (C, ceil(H/s), ceil(W/s)).

        Images with a side over ``tile`` are encoded alone, in tiles; smaller ones in
        batches of equal size and at most ``BATCH_PIXELS``."""
        padded = [self._pad(_check_image(img)) for img in images]
        out: list[np.ndarray] = [np.empty(0)] * len(padded)
        whole = [i for i, p in enumerate(padded) if not self._tiled(*p.shape[:2])]
        for idx in _batches([padded[i].shape[:2] for i in whole], batch_size, BATCH_PIXELS):
            for i, z in zip(idx, self._encode_batch(np.stack([padded[whole[k]] for k in idx])), strict=True):
                out[whole[i]] = z
        for i, image in enumerate(padded):
            if self._tiled(*image.shape[:2]):
                out[i] = self._encode_tiled(image)
        return out

    def decode(
        self, latents: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]], batch_size: int = 8
    ) -> list[np.ndarray]:
        """Decode latents to (H, W, 3) uint8 images cropped to ``sizes`` (width, height);
        large ones in tiles, as ``encode``."""
        if len(latents) != len(sizes):
            raise ValueError(f"{len(latents)} latents but {len(sizes)} sizes")
        for z, (w, h) in zip(latents, sizes, strict=True):
            expected = (self.latent_channels, *self.latent_size(w, h)[::-1])
            if z.shape != expected:
                raise ValueError(f"latent shape {z.shape} does not fit image {w}x{h}: expected {expected}")
        images: list[np.ndarray] = [np.empty(0)] * len(latents)
        s = self.stride
        whole = [i for i, z in enumerate(latents) if not self._tiled(z.shape[1] * s, z.shape[2] * s)]
        for idx in _batches(
            [(latents[i].shape[1] * s, latents[i].shape[2] * s) for i in whole], batch_size, BATCH_PIXELS
        ):
            for i, image in zip(idx, self._decode_batch(np.stack([latents[whole[k]] for k in idx])), strict=True):
                images[whole[i]] = image
        for i, z in enumerate(latents):
            if self._tiled(z.shape[1] * s, z.shape[2] * s):
                images[i] = self._decode_tiled(np.asarray(z, np.float32))
        return [np.ascontiguousarray(image[:h, :w]) for image, (w, h) in zip(images, sizes, strict=True)]

    def _tiled(self, height: int, width: int) -> bool:
        return max(height, width) > self.tile

    def _encode_tiled(self, image: np.ndarray) -> np.ndarray:
        s = self.stride
        out = np.empty((self.latent_channels, image.shape[0] // s, image.shape[1] // s), np.float32)
        for window in windows(*image.shape[:2], self.tile, self.margin, s):
            z = self._encode_batch(np.array(image[window.window()])[None])[0]
            out[(slice(None), *window.core(1 / s))] = z[(slice(None), *window.core_in_window(1 / s))]
        return out

    def _decode_tiled(self, latent: np.ndarray) -> np.ndarray:
        s = self.stride
        out = np.empty((latent.shape[1] * s, latent.shape[2] * s, 3), np.uint8)
        for window in windows(*latent.shape[1:], self.tile // s, self.margin // s):
            image = self._decode_batch(latent[(slice(None), *window.window())][None])[0]
            out[window.core(s)] = image[window.core_in_window(s)]
        return out

    def _encode_batch(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8, sides multiples of the stride -> (N, C, H/s, W/s) float32."""
        with torch.inference_mode():
            x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
            enc = self.vae.encode(x)
            z = enc.latents if self.is_tiny else enc.latent_dist.mode()
            return z.float().cpu().numpy()

    def _decode_batch(self, latents: np.ndarray) -> np.ndarray:
        """(N, C, h, w) float32 -> (N, h*s, w*s, 3) uint8."""
        with torch.inference_mode():
            x = self.vae.decode(torch.from_numpy(np.asarray(latents, np.float32)).to(self.device)).sample
            image = x.float().clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch.uint8)
            return image.permute(0, 2, 3, 1).cpu().numpy()

    def _pad(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        ph, pw = -h % self.stride, -w % self.stride
        return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else image


def _check_image(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    return image


def load_vae(name: str = "taesd", device: str | None = None) -> LatentAutoencoder:
    """Load the autoencoder ``name`` (models-folder name, folder or hub id), cached per process.

    The class (``AutoencoderTiny`` or ``AutoencoderKL``) is read from the model's
    ``config.json`` ``_class_name``.
    """
    return _load(resolve_model(name), model_id(name), device or get_settings().device)


@lru_cache(maxsize=8)
def _load(source: str, vae_id: str, device: str) -> LatentAutoencoder:
    import diffusers

    class_name = diffusers.AutoencoderKL.load_config(source).get("_class_name")
    if class_name not in _CLASSES:
        raise ValueError(f"{source}: unsupported class {class_name!r}, not in {_CLASSES}")
    cls = getattr(diffusers, class_name)
    vae = cls.from_pretrained(source, torch_dtype=torch.float32, low_cpu_mem_usage=False)
    return LatentAutoencoder(vae, vae_id, device)
