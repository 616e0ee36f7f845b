"""``vae``: the autoencoder alone, a reference that shows what the latent space costs.

The latent is stored as it is, in 16- or 32-bit floats (``quality`` is the bits per
value), so decoding gives the VAE's own reconstruction: no latent codec can do better
than this point's quality, and the report draws it as a line across the plots.

Payload (little endian): version u8, bits u8, channels u16, height u32, width u32, then
the ``channels * height * width`` values as IEEE floats of ``bits`` bits.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from latentpress.codecs.base import CodecError, CodecInput, DecodeContext, ImageEncoder
from latentpress.codecs.registry import CodecInfo, register_codec

_HEADER = struct.Struct("<BBHII")
_FLOATS = {16: np.dtype("<f2"), 32: np.dtype("<f4")}
MAX_VALUES = 1 << 26
"""Largest latent (C * h * w) a stream may describe."""


@dataclass(frozen=True)
class VaeParams:
    """``quality``: bits per latent value, 16 or 32."""

    quality: float = 16

    def validate(self) -> None:
        if self.quality not in _FLOATS:
            raise CodecError(f"codec 'vae' stores 16- or 32-bit floats, got quality {self.quality}")


class VaeAlone(ImageEncoder):
    """The latent stored as floats: the VAE's own reconstruction."""

    def encode(self, item: CodecInput, params: VaeParams) -> bytes:
        params.validate()
        latent = item.latent
        if latent is None or latent.ndim != 3 or latent.size == 0 or latent.size > MAX_VALUES:
            raise CodecError("codec 'vae' needs a non-empty (C, h, w) latent")
        if not np.all(np.isfinite(latent)):
            raise CodecError("codec 'vae': the latent has non-finite values")
        bits = int(params.quality)
        channels, height, width = latent.shape
        return _HEADER.pack(self.version, bits, channels, height, width) + latent.astype(_FLOATS[bits]).tobytes()

    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        if len(data) < _HEADER.size:
            raise CodecError(f"vae stream of {len(data)} bytes is shorter than its header")
        version, bits, channels, height, width = _HEADER.unpack_from(data)
        if version != self.version or bits not in _FLOATS:
            raise CodecError(f"unknown vae stream (version {version}, {bits}-bit values)")
        values = channels * height * width
        if values == 0 or values > MAX_VALUES or height > context.height or width > context.width:
            raise CodecError(
                f"bad vae latent shape ({channels}, {height}, {width}) for a {context.width}x{context.height} image"
            )
        if len(data) != _HEADER.size + values * bits // 8:
            raise CodecError(f"vae stream of {len(data)} bytes does not hold {values} {bits}-bit values")
        latent = np.frombuffer(data, _FLOATS[bits], values, _HEADER.size).astype(np.float32)
        return latent.reshape(channels, height, width)


register_codec(
    CodecInfo(
        name="vae",
        summary="the VAE alone: the latent stored as floats, a reference line for latent codecs",
        domain="latent",
        presets={"default": VaeParams()},
        default_qualities=(16,),
        knob="bits",
        better="higher",
        implementation=VaeAlone,
    )
)
