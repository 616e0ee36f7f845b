"""GLC's bytes: the collection model, and each image's payload.

Model: the hyperprior package's model file (:mod:`latentpress.codecs.hyperprior.model_file`)
holding the transforms, quality scalers and entropy model; a model trained with
``decoder_steps`` also holds, as extra arrays, its VAE decoder tuned on the collection
(``decoder/`` + each tensor's name in the decoder's state) and the share of the tuning
each anchor quality decodes with (``decoder_blends``, one value per anchor in [0, 1]).

Payload: version u8, quality f32, latent height u16 and width u16, then the range
coded stream (``z`` channel by channel, then the four parts of ``y``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from latentpress.codecs.base import CodecError
from latentpress.codecs.glc.model import GlcModel
from latentpress.codecs.glc.params import ANCHORS, Architecture
from latentpress.codecs.hyperprior.model_file import ModelRecord, pack_model, unpack_model_as

__all__ = [
    "PAYLOAD_HEADER",
    "PAYLOAD_VERSION",
    "ModelRecord",
    "TunedDecoder",
    "weights_key",
    "pack_model",
    "pack_payload",
    "unpack_model",
    "unpack_payload",
]

PAYLOAD_VERSION = 1
PAYLOAD_HEADER = struct.Struct("<BfHH")
DECODER = "decoder/"
BLENDS = "decoder_blends"


@dataclass(frozen=True, eq=False)
class TunedDecoder:
    """A VAE decoder tuned on the collection, and how much of the tuning each anchor
    quality uses (``blends``; in between, interpolated)."""

    tuned: dict[str, np.ndarray]
    """The tuned decoder's state, tensor by tensor (float16 values)."""
    blends: np.ndarray
    """(ANCHORS,) in [0, 1]: 0 decodes with the stock decoder, 1 with the tuned one."""

    def blend(self, quality: float) -> float:
        """The blend at ``quality`` (rounded to thousandths, so that nearby qualities
        share one built decoder)."""
        return round(float(np.interp(quality, np.arange(1, ANCHORS + 1), self.blends)), 3)

    def arrays(self) -> dict[str, np.ndarray]:
        """The extra arrays that store it in a model file."""
        return {**{DECODER + name: values for name, values in self.tuned.items()}, BLENDS: self.blends}

    @classmethod
    def from_arrays(cls, extra: dict[str, np.ndarray]) -> TunedDecoder | None:
        """The tuned decoder of a model file's extra arrays (``None`` without one);
        ``CodecError`` for arrays glc does not write."""
        if not extra:
            return None
        tuned = {name.removeprefix(DECODER): values for name, values in extra.items() if name.startswith(DECODER)}
        blends = extra.get(BLENDS)
        if not tuned or blends is None or len(tuned) + 1 != len(extra):
            raise CodecError(f"glc model holds extra arrays glc does not write: {sorted(extra)[:3]}")
        if blends.shape != (ANCHORS,) or not np.all((blends >= 0) & (blends <= 1)):
            raise CodecError(f"glc model decoder blends must be {ANCHORS} values in [0, 1], got {blends}")
        return cls(tuned, blends)


def weights_key(tuned: Mapping[str, np.ndarray]) -> str:
    """A digest of a decoder's weights (names and values), to cache decoders built from them."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(tuned):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tuned[name], np.float32).tobytes())
    return digest.hexdigest()


def unpack_model(data: bytes) -> tuple[GlcModel, ModelRecord, TunedDecoder | None]:
    """A GLC model (float32, eval mode), its record and its tuned VAE decoder if it has
    one; ``CodecError`` for anything else."""
    model, record, extra = unpack_model_as(data, "glc", lambda fields: Architecture(**fields), GlcModel)
    return model, record, TunedDecoder.from_arrays(extra)


def pack_payload(quality: float, height: int, width: int, stream: bytes) -> bytes:
    return PAYLOAD_HEADER.pack(PAYLOAD_VERSION, quality, height, width) + stream


def unpack_payload(data: bytes) -> tuple[float, int, int, bytes]:
    """Quality, latent height and width, and the coded stream; ``CodecError`` if bad."""
    if len(data) < PAYLOAD_HEADER.size:
        raise CodecError(f"glc payload of {len(data)} bytes is shorter than its header")
    version, quality, height, width = PAYLOAD_HEADER.unpack_from(data)
    if version != PAYLOAD_VERSION:
        raise CodecError(f"unknown glc payload version {version}")
    if not 1.0 <= quality <= ANCHORS or min(height, width) < 1:
        raise CodecError(f"bad glc payload header: quality {quality}, latent {height}x{width}")
    return float(quality), height, width, data[PAYLOAD_HEADER.size :]
