"""GLC's bytes: the collection model, and each image's payload.

Model: the hyperprior package's model file (:mod:`latentpress.codecs.hyperprior.model_file`)
holding the transforms, quality scalers and entropy model; a model trained with
``decoder_steps`` also holds, as extra arrays, its VAE decoder tuned on the collection
and the share of the tuning each anchor quality decodes with
(:mod:`latentpress.codecs.tuned_decoder.stored`).

Payload: version u8, quality f32, latent height u16 and width u16, then the range
coded stream (``z`` channel by channel, then the four parts of ``y``).
"""

from __future__ import annotations

import struct

from latentpress.codecs.base import CodecError
from latentpress.codecs.glc.model import GlcModel
from latentpress.codecs.glc.params import ANCHORS, Architecture
from latentpress.codecs.hyperprior.model_file import ModelRecord, pack_model, unpack_model_as
from latentpress.codecs.tuned_decoder import TunedDecoder

__all__ = [
    "PAYLOAD_HEADER",
    "PAYLOAD_VERSION",
    "ModelRecord",
    "pack_model",
    "pack_payload",
    "unpack_model",
    "unpack_payload",
]

PAYLOAD_VERSION = 1
PAYLOAD_HEADER = struct.Struct("<BfHH")


def unpack_model(data: bytes) -> tuple[GlcModel, ModelRecord, TunedDecoder | None]:
    """A GLC model (float32, eval mode), its record and its tuned VAE decoder if it has
    one; ``CodecError`` for anything else."""
    model, record, extra = unpack_model_as(data, "glc", lambda fields: Architecture(**fields), GlcModel)
    return model, record, TunedDecoder.from_arrays(extra, "glc")


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
