"""``latent-q``: naive latent quantization (the baseline of Relic et al.).

The VAE latent is divided by a step, rounded to integers (half to even) and each
channel is range coded under its own factorized model: the channel's exact symbol
histogram, sent in the stream. Decoding gives ``float32(symbol * step)``.

Payload (little endian): version u8, channels u16, height u32, width u32, step f32;
per channel: zigzag-uvarint offset, uvarint alphabet size ``n``, ``n`` uvarint counts;
then the range-coded symbols of all channels in order (uint32 words, to the end).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from latentpress.codecs import entropy
from latentpress.codecs.base import CodecError, CodecInput, DecodeContext, ImageEncoder
from latentpress.codecs.registry import CodecInfo, KnobRange, register_codec

_HEADER = struct.Struct("<BHIIf")
MAX_VALUES = 1 << 26
"""Largest latent (C * h * w) a stream may describe."""
_MAX_SYMBOL = 1 << 30


@dataclass(frozen=True)
class LatentQParams:
    """``quality`` is the quantization step in latent units (> 0)."""

    quality: float = 0.5

    def validate(self) -> None:
        step = np.float32(self.quality)
        if not (np.isfinite(step) and step > 0):
            raise CodecError(f"latent-q step must be finite and > 0, got {self.quality}")


class LatentQ(ImageEncoder):
    """Uniform scalar quantization of the latent, per-channel histogram coding."""

    def encode(self, item: CodecInput, params: LatentQParams) -> bytes:
        params.validate()
        latent = item.latent
        if latent is None or latent.ndim != 3 or latent.size == 0:
            raise CodecError("latent-q needs a non-empty (C, h, w) latent")
        channels, height, width = latent.shape
        if channels >= 1 << 16 or latent.size > MAX_VALUES:
            raise CodecError(f"latent of shape {latent.shape} is too large")
        step = np.float32(params.quality)
        scaled = np.asarray(latent, dtype=np.float64) / np.float64(step)
        if not np.all(np.isfinite(scaled)) or np.abs(scaled).max() >= _MAX_SYMBOL:
            raise CodecError("latent has non-finite values or is too large for this step")
        symbols = np.rint(scaled).astype(np.int64).reshape(channels, -1)
        levels = int((symbols.max(axis=1) - symbols.min(axis=1)).max()) + 1
        if levels > entropy.MAX_ALPHABET:
            raise CodecError(f"step {step} gives {levels} levels in a channel (at most {entropy.MAX_ALPHABET})")
        header = [_HEADER.pack(self.version, channels, height, width, step)]
        encoder = entropy.Encoder()
        for row in symbols:
            counts, offset = entropy.histogram(row)
            model = np.concatenate([entropy.zigzag([offset]), [counts.size], counts])
            header.append(entropy.pack_uvarints(model))
            encoder.categorical(row, counts, offset)
        return b"".join(header) + encoder.to_bytes()

    def decode(self, data: bytes, context: DecodeContext) -> np.ndarray:
        if len(data) < _HEADER.size:
            raise CodecError(f"latent-q stream of {len(data)} bytes is shorter than its header")
        version, channels, height, width, step = _HEADER.unpack_from(data)
        if version != self.version:
            raise CodecError(f"unknown latent-q stream version {version}")
        if not (math.isfinite(step) and step > 0):
            raise CodecError(f"bad latent-q step {step}")
        if min(channels, height, width) == 0 or channels * height * width > MAX_VALUES:
            raise CodecError(f"bad latent-q shape ({channels}, {height}, {width})")
        if height > context.height or width > context.width:
            raise CodecError(f"latent {height}x{width} is larger than the image {context.height}x{context.width}")
        pos = _HEADER.size
        models = []
        for c in range(channels):
            (zig, size), pos = entropy.unpack_uvarints(data, 2, pos)
            offset = int(entropy.unzigzag(zig))
            if not (1 <= size <= entropy.MAX_ALPHABET and -_MAX_SYMBOL <= offset and offset + size - 1 <= _MAX_SYMBOL):
                raise CodecError(f"bad symbol range in latent-q channel {c}")
            counts, pos = entropy.unpack_uvarints(data, int(size), pos)
            if counts.max() > height * width or counts.sum() != height * width:
                raise CodecError(f"latent-q channel {c} histogram does not match its size")
            models.append((counts, offset))
        decoder = entropy.Decoder(data[pos:])
        out = np.empty((channels, height * width), dtype=np.float32)
        for c, (counts, offset) in enumerate(models):
            symbols = decoder.categorical(counts, offset, height * width)
            if not np.array_equal(np.bincount(symbols - offset, minlength=counts.size), counts):
                raise CodecError(f"latent-q channel {c} decodes to a wrong histogram (corrupt or truncated data)")
            out[c] = symbols.astype(np.float64) * np.float64(step)
        decoder.finish()
        return out.reshape(channels, height, width)


register_codec(
    CodecInfo(
        name="latent-q",
        summary="the latent quantized and range coded (baseline)",
        domain="latent",
        presets={"default": LatentQParams()},
        default_qualities=(0.25, 0.5, 1.0),
        knob="step",
        better="lower",
        implementation=LatentQ,
        search=KnobRange(0.05, 4.0, integer=False, steps=25),
    )
)
