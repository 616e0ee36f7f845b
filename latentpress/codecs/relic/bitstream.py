"""Relic's bytes: the collection model, and each image's payload.

Model: the hyperprior package's model file
(:mod:`latentpress.codecs.hyperprior.model_file`) holding the denoiser, the parameter
network, the entropy model and the latent statistics; a model trained with
``decoder_steps`` also holds, as extra arrays, its VAE decoder tuned on the collection
and the share of the tuning each quality decodes with
(:mod:`latentpress.codecs.tuned_decoder.stored`).

Payload: version u8, quality f32, latent height u16 and width u16, the time ``t`` in
thousandths u16, then the side information, C log2 scales (int8, sixteenths) and C
shifts (int8, thirty-seconds of a standard deviation), then the range coded stream
(``z`` channel by channel, then the four parts of the code).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from latentpress.codecs.base import CodecError
from latentpress.codecs.hyperprior.model_file import ModelRecord, pack_model, unpack_model_as
from latentpress.codecs.relic import schedule
from latentpress.codecs.relic.model import RelicModel
from latentpress.codecs.relic.params import QUALITY_RANGE, Architecture
from latentpress.codecs.tuned_decoder import TunedDecoder

PAYLOAD_VERSION = 1
PAYLOAD_HEADER = struct.Struct("<BfHHH")
T_UNITS = 1000
"""``t`` travels in thousandths (the denoiser's integer timesteps)."""
LOG_SCALE_UNITS = 16
SHIFT_UNITS = 32
LOG_SCALE_RANGE = (-64, 127)
"""Log2 scales in sixteenths: steps from 16 standard deviations down to 1/250 of one."""


@dataclass(frozen=True)
class SideInfo:
    """An image's coding parameters, as integers on their grids."""

    t: int
    """Thousandths, in [0, 1000 * T_MAX]."""
    log_scales: np.ndarray
    """(C,) int, sixteenths of a log2 scale, in ``LOG_SCALE_RANGE``."""
    shifts: np.ndarray
    """(C,) int, thirty-seconds of a standard deviation, in [-128, 127]."""

    @classmethod
    def of(cls, t: float, log_scales: np.ndarray, shifts: np.ndarray) -> SideInfo:
        """The side information nearest to real-valued parameters (clipped to range)."""
        return cls(time_units(t),
                   np.clip(np.round(np.asarray(log_scales) * LOG_SCALE_UNITS), *LOG_SCALE_RANGE).astype(np.int64),
                   np.clip(np.round(np.asarray(shifts) * SHIFT_UNITS), -128, 127).astype(np.int64))  # fmt: skip

    @property
    def time(self) -> float:
        return self.t / T_UNITS

    def scales(self) -> np.ndarray:
        return np.exp2(self.log_scales / LOG_SCALE_UNITS)

    def shift_values(self) -> np.ndarray:
        return self.shifts / SHIFT_UNITS


def time_units(t: float) -> int:
    """``t`` in thousandths, clipped to [0, T_MAX]."""
    return int(np.clip(round(t * T_UNITS), 0, round(schedule.T_MAX * T_UNITS)))


def unpack_model(data: bytes) -> tuple[RelicModel, ModelRecord, TunedDecoder | None]:
    """A model (float32, eval mode), its record and its tuned VAE decoder if it has
    one; ``CodecError`` for anything else."""
    model, record, extra = unpack_model_as(data, "relic", _architecture, RelicModel)
    decoder = TunedDecoder.from_arrays(extra, "relic")
    if not bool((model.latent_std > 0).all()):
        raise CodecError("relic model latent statistics need std > 0")
    return model, record, decoder


def _architecture(fields: dict) -> Architecture:
    fields = dict(fields)
    for name in ("unet_channels", "parameter_channels"):
        fields[name] = tuple(fields[name])
    return Architecture(**fields)


def pack_payload(quality: float, height: int, width: int, side: SideInfo, stream: bytes) -> bytes:
    return (PAYLOAD_HEADER.pack(PAYLOAD_VERSION, quality, height, width, side.t)
            + side.log_scales.astype(np.int8).tobytes() + side.shifts.astype(np.int8).tobytes() + stream)  # fmt: skip


def unpack_payload(data: bytes, channels: int) -> tuple[float, int, int, SideInfo, bytes]:
    """Quality, latent height and width, side information and the coded stream of a
    payload for a model of ``channels`` latent channels; ``CodecError`` if bad."""
    size = PAYLOAD_HEADER.size + 2 * channels
    if len(data) < size:
        raise CodecError(f"relic payload of {len(data)} bytes is shorter than its header ({size})")
    version, quality, height, width, t = PAYLOAD_HEADER.unpack_from(data)
    if version != PAYLOAD_VERSION:
        raise CodecError(f"unknown relic payload version {version}")
    if not QUALITY_RANGE[0] <= quality <= QUALITY_RANGE[1] or min(height, width) < 1:
        raise CodecError(f"bad relic payload header: quality {quality}, latent {height}x{width}")
    if t > round(schedule.T_MAX * T_UNITS):
        raise CodecError(f"relic payload time {t / T_UNITS} is beyond {schedule.T_MAX}")
    side = np.frombuffer(data, np.int8, 2 * channels, PAYLOAD_HEADER.size).astype(np.int64)
    log_scales = side[:channels]
    if log_scales.min() < LOG_SCALE_RANGE[0]:
        raise CodecError(f"relic payload log2 scale {log_scales.min() / LOG_SCALE_UNITS} is out of range")
    return float(quality), height, width, SideInfo(t, log_scales, side[channels:]), data[size:]


__all__ = [
    "PAYLOAD_HEADER",
    "PAYLOAD_VERSION",
    "ModelRecord",
    "SideInfo",
    "pack_model",
    "pack_payload",
    "time_units",
    "unpack_model",
    "unpack_payload",
]
