"""The shared model's bitstream: everything a decoder needs, then the quantized weights.

Little endian throughout. Layout of version 1:

==================  ==========================================================
version             u8, ``1``
architecture        channels u8, patch u8, hidden u16, depth u8, heads u8,
                    mlp_ratio u8, index_tokens u8, index_frequencies u16
float format        exponent bits u8, mantissa bits u8
rescaling           ``channels`` f32 means, then ``channels`` f32 stds
seed                u32
sampler             train timesteps u16, beta schedule u8 (index into
                    ``schedule.BETA_SCHEDULES``), beta start f64, beta end f64,
                    sampling steps u16
index map           images ``M`` u32, distinct latent shapes ``S`` u16, ``S`` x
                    (height u16, width u16); if ``S > 1``, each image's shape
                    number in ``ceil(log2 S)`` bits, MSB first, zero-padded to a byte
weights             per parameter tensor (in the network's order): exponent-symbol
                    histogram as uvarints (offset, alphabet size n, n counts);
                    u32 byte length of the range-coded exponent symbols of all
                    tensors; those words; then the sign-mantissa words of the
                    non-zero weights, ``1 + m`` bits each, MSB first, zero-padded
==================  ==========================================================

Exponent symbols are range coded (``entropy.Encoder.categorical``) because they are
far from uniform (weights cluster within a few binades: about 3 bits instead of
``e + 1``); signs and mantissas are nearly uniform, so they are packed as raw bits.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
import torch

from latentpress.codecs import entropy
from latentpress.codecs.base import CodecError
from latentpress.codecs.laduree.floatq import FloatFormat, from_codes, to_codes
from latentpress.codecs.laduree.model import Denoiser
from latentpress.codecs.laduree.params import BETA_SCHEDULES, Architecture, Schedule

VERSION = 1
MAX_IMAGES = 1 << 24
MAX_PARAMETERS = 1 << 27
_ARCH = struct.Struct("<BBHBBBBH")
_FORMAT = struct.Struct("<BB")
_SEED = struct.Struct("<I")
_SAMPLER = struct.Struct("<HBddH")
_COUNTS = struct.Struct("<IH")
_SHAPE = struct.Struct("<HH")
_LENGTH = struct.Struct("<I")
_CHUNK = 1 << 16
"""Values per step when (un)packing bits, to bound temporary memory."""
_LIMITS = {"patch": 16, "hidden": 4096, "depth": 64, "mlp_ratio": 16, "index_tokens": 64, "index_frequencies": 1024}


@dataclass(frozen=True)
class ModelRecord:
    """A trained Laduree model and what decoding it needs."""

    architecture: Architecture
    number_format: FloatFormat
    mean: np.ndarray
    """(C,) float32 per-channel latent mean of the set."""
    std: np.ndarray
    """(C,) float32 per-channel latent standard deviation of the set (> 0)."""
    seed: int
    schedule: Schedule
    shapes: tuple[tuple[int, int], ...]
    """Latent (height, width) of each image, by index."""
    weights: dict[str, np.ndarray]
    """Parameter name -> values (quantized to ``number_format`` when packed)."""


def parameter_shapes(arch: Architecture) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every trained parameter of the denoiser, in bitstream order."""
    with torch.device("meta"):
        net = Denoiser(arch, seed=0)
    return [(name, tuple(p.shape)) for name, p in net.named_parameters()]


def pack_model(record: ModelRecord) -> bytes:
    """Serialise ``record``, quantizing its weights to its float format."""
    arch, fmt, schedule = record.architecture, record.number_format, record.schedule
    arch.check()
    schedule.check()
    out = [
        struct.pack("<B", VERSION),
        _ARCH.pack(
            arch.channels,
            arch.patch,
            arch.hidden,
            arch.depth,
            arch.heads,
            arch.mlp_ratio,
            arch.index_tokens,
            arch.index_frequencies,
        ),
        _FORMAT.pack(fmt.exponent_bits, fmt.mantissa_bits),
        np.asarray(record.mean, "<f4").tobytes(),
        np.asarray(record.std, "<f4").tobytes(),
        _SEED.pack(record.seed),
        _SAMPLER.pack(
            schedule.train_timesteps,
            BETA_SCHEDULES.index(schedule.beta_schedule),
            schedule.beta_start,
            schedule.beta_end,
            schedule.steps,
        ),
        _pack_index_map(record.shapes),
    ]
    encoder = entropy.Encoder()
    words = []
    for name, shape in parameter_shapes(arch):
        values = np.asarray(record.weights[name], dtype=np.float32)
        if values.shape != shape:
            raise ValueError(f"weight {name} has shape {values.shape}, expected {shape}")
        symbols, sign_mantissa = to_codes(values, fmt)
        counts, offset = entropy.histogram(symbols)
        out.append(entropy.pack_uvarints([offset, counts.size, *counts]))
        encoder.categorical(symbols, counts, offset)
        words.append(sign_mantissa)
    coded = encoder.to_bytes()
    out += [_LENGTH.pack(len(coded)), coded, _pack_bits(np.concatenate(words), 1 + fmt.mantissa_bits)]
    return b"".join(out)


def unpack_model(data: bytes) -> ModelRecord:
    """Parse a model bitstream; raise ``CodecError`` on anything malformed."""
    reader = _Reader(data)
    (version,) = reader.unpack(struct.Struct("<B"))
    if version != VERSION:
        raise CodecError(f"unknown laduree model version {version}")
    arch = Architecture(*reader.unpack(_ARCH))
    _check_architecture(arch)
    try:
        fmt = FloatFormat(*reader.unpack(_FORMAT))
    except ValueError as err:
        raise CodecError(f"bad laduree float format: {err}") from None
    mean = reader.floats(arch.channels)
    std = reader.floats(arch.channels)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        raise CodecError("laduree rescaling statistics must be finite with std > 0")
    (seed,) = reader.unpack(_SEED)
    schedule = _read_schedule(reader)
    shapes = _read_index_map(reader)
    weights = _read_weights(reader, arch, fmt)
    return ModelRecord(arch, fmt, mean, std, seed, schedule, shapes, weights)


class _Reader:
    """Bounds-checked reading from a byte string."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        if size < 0 or size > len(self.data) - self.pos:
            raise CodecError(
                f"laduree model truncated: needs {size} bytes at {self.pos}, has {len(self.data) - self.pos}"
            )
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def unpack(self, layout: struct.Struct) -> tuple:
        return layout.unpack(self.take(layout.size))

    def floats(self, count: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * count), "<f4").astype(np.float32)

    def uvarints(self, count: int) -> np.ndarray:
        values, self.pos = entropy.unpack_uvarints(self.data, count, self.pos)
        return values


def _check_architecture(arch: Architecture) -> None:
    too_big = [name for name, limit in _LIMITS.items() if getattr(arch, name) > limit]
    try:
        arch.check()
    except ValueError as err:
        raise CodecError(f"bad laduree architecture: {err}") from None
    if too_big or arch.heads > arch.hidden:
        raise CodecError(f"laduree architecture out of range ({', '.join(too_big)}): {arch}")
    count = sum(math.prod(shape) for _, shape in parameter_shapes(arch))
    if count > MAX_PARAMETERS:
        raise CodecError(f"laduree model of {count} parameters exceeds {MAX_PARAMETERS}")


def _read_schedule(reader: _Reader) -> Schedule:
    timesteps, code, beta_start, beta_end, steps = reader.unpack(_SAMPLER)
    if code >= len(BETA_SCHEDULES):
        raise CodecError(f"unknown laduree beta schedule code {code}")
    schedule = Schedule(timesteps, BETA_SCHEDULES[code], beta_start, beta_end, steps)
    try:
        schedule.check()
    except ValueError as err:
        raise CodecError(f"bad laduree sampler settings: {err}") from None
    return schedule


def _pack_index_map(shapes: tuple[tuple[int, int], ...]) -> bytes:
    distinct = sorted(set(shapes))
    if not 1 <= len(shapes) <= MAX_IMAGES or len(distinct) >= 1 << 16:
        raise ValueError(f"{len(shapes)} images with {len(distinct)} shapes is out of range")
    out = [_COUNTS.pack(len(shapes), len(distinct))]
    out += [_SHAPE.pack(h, w) for h, w in distinct]
    numbers = np.array([distinct.index(s) for s in shapes])
    return b"".join(out) + _pack_bits(numbers, _bits_for(len(distinct)))


def _read_index_map(reader: _Reader) -> tuple[tuple[int, int], ...]:
    images, count = reader.unpack(_COUNTS)
    if not 1 <= images <= MAX_IMAGES or not 1 <= count <= images:
        raise CodecError(f"bad laduree index map: {images} images, {count} shapes")
    distinct = [reader.unpack(_SHAPE) for _ in range(count)]
    if min(min(s) for s in distinct) == 0 or len(set(distinct)) != count:
        raise CodecError("laduree latent shapes must be non-empty and distinct")
    numbers = _read_bits(reader, images, _bits_for(count))
    if numbers.size and numbers.max() >= count:
        raise CodecError("laduree index map names a shape it does not list")
    return tuple(distinct[n] for n in numbers)


def _read_weights(reader: _Reader, arch: Architecture, fmt: FloatFormat) -> dict[str, np.ndarray]:
    layout = parameter_shapes(arch)
    models = []
    for name, _ in layout:
        offset, size = reader.uvarints(2)
        if not 1 <= size <= fmt.symbols - offset:
            raise CodecError(f"bad exponent alphabet for laduree weight {name}")
        models.append((offset, reader.uvarints(int(size))))
    (length,) = reader.unpack(_LENGTH)
    decoder = entropy.Decoder(reader.take(length))
    symbols = []
    for (name, shape), (offset, counts) in zip(layout, models, strict=True):
        if counts.sum() != math.prod(shape):
            raise CodecError(f"exponent counts of laduree weight {name} do not match its size")
        decoded = decoder.categorical(counts, int(offset), math.prod(shape))
        if not np.array_equal(np.bincount(decoded - offset, minlength=counts.size), counts):
            raise CodecError(f"decoded exponents of laduree weight {name} differ from counts")
        symbols.append(decoded)
    decoder.finish()
    nonzero = [np.count_nonzero(s) for s in symbols]
    words = _read_bits(reader, sum(nonzero), 1 + fmt.mantissa_bits)
    if reader.pos != len(reader.data):
        raise CodecError(f"{len(reader.data) - reader.pos} bytes follow the laduree weights")
    splits = np.split(words, np.cumsum(nonzero)[:-1])
    return {
        name: from_codes(s, w, fmt).reshape(shape) for (name, shape), s, w in zip(layout, symbols, splits, strict=True)
    }


def _bits_for(count: int) -> int:
    """Bits of a number in ``[0, count)``: ``ceil(log2 count)``."""
    return (count - 1).bit_length()


def _pack_bits(values: np.ndarray, width: int) -> bytes:
    """Integers in ``[0, 2**width)`` (width <= 32), MSB first, zero-padded to whole bytes."""
    if width == 0:
        return b""
    words = np.asarray(values, dtype=">u4").view(np.uint8).reshape(-1, 4)
    bits = [np.unpackbits(words[i : i + _CHUNK], axis=1)[:, 32 - width :].ravel() for i in range(0, len(words), _CHUNK)]
    return np.packbits(np.concatenate(bits) if bits else np.zeros(0, np.uint8)).tobytes()


def _read_bits(reader: _Reader, count: int, width: int) -> np.ndarray:
    """``count`` integers packed by :func:`_pack_bits`; the padding bits must be zero."""
    if width == 0:
        return np.zeros(count, dtype=np.int64)
    total = count * width
    bits = np.unpackbits(np.frombuffer(reader.take(-(-total // 8)), dtype=np.uint8))
    if bits[total:].any():
        raise CodecError("laduree bit padding is not zero")
    rows = bits[:total].reshape(count, width)
    out = np.empty(count, dtype=np.int64)
    for i in range(0, count, _CHUNK):
        padded = np.zeros((len(rows[i : i + _CHUNK]), 32), dtype=np.uint8)
        padded[:, 32 - width :] = rows[i : i + _CHUNK]
        out[i : i + _CHUNK] = np.packbits(padded, axis=1).view(">u4").ravel()
    return out
