"""The ``clric`` payload: header, entropy-coded weights, entropy-coded grids.

Layout (little endian), version 1:

| field                   | type        | notes                                          |
|-------------------------|-------------|------------------------------------------------|
| version                 | u8          | 1                                              |
| flags                   | u8          | bit 0: the function describes the transposed latent |
| C, h, w                 | u8, u16, u16| latent channels and size (transposed if flagged) |
| L                       | u8          | levels, 1..12                                  |
| grids per level         | L x u8      | 0..16 each, at least one grid in all           |
| ARM width, synthesis width | u8, u8   |                                                |
| shifts                  | 5 x u8      | per parameter group, 0..20                     |
| per group               | varints     | zigzag lo, zigzag hi, and if lo < hi zigzag e  |
| grids                   | varints     | zigzag lo, zigzag hi                           |
| coded words             | varint      | zigzag count of the words that follow          |
| coded symbols           | u32 words   | to the end of the payload                      |

Parameter groups, in order: ARM weights, ARM biases, upsampling kernel, synthesis
weights, synthesis biases; each group's integers are its tensors flattened in
definition order (see :mod:`.quantize`), coded under Laplace(0, ``2**(e/8)``) on
``[lo, hi]`` (nothing is coded when ``lo == hi``). Then the grid values, wavefront
by wavefront (:func:`.grid.wavefronts`), each under the Laplace model the integer
ARM (:mod:`.fixed`) derives from its already decoded neighbours.
"""

from __future__ import annotations

import struct

import numpy as np

from latentpress.codecs import entropy
from latentpress.codecs.base import CodecError
from latentpress.codecs.clric.grid import coding_order, context_index, grid_size, wavefronts
from latentpress.codecs.clric.model import Architecture
from latentpress.codecs.clric.quantize import (
    GROUPS,
    MAX_SHIFT,
    QuantizedFunction,
    group_sizes,
    weight_scale,
    weight_scale_exponent,
)

VERSION = 1
MAX_VALUES = 1 << 26
"""Largest latent (C * h * w) or grid total a stream may describe."""
_MAX_LEVELS, _MAX_GRIDS, _MAX_ARM_WIDTH = 12, 16, 64
_MAX_EXPONENT = 8 * 64
_HEAD = struct.Struct("<BBBHHB")
_TRANSPOSED = 1
"""Flag: the function describes the transposed latent (h and w swapped)."""


def write(q: QuantizedFunction) -> bytes:
    """The payload of ``q``."""
    arch = q.arch
    flags = _TRANSPOSED if q.transposed else 0
    head = [
        _HEAD.pack(VERSION, flags, arch.channels, arch.height, arch.width, len(arch.grids)),
        bytes(arch.grids),
        bytes([arch.arm_width, arch.synthesis_width, *q.shifts]),
    ]
    encoder = entropy.Encoder()
    fields: list[int] = []
    for values in q.values:
        lo, hi = int(values.min()), int(values.max())
        fields += [lo, hi]
        if lo < hi:
            exponent = weight_scale_exponent(values)
            fields.append(exponent)
            encoder.laplace(values, 0.0, weight_scale(exponent), lo, hi)
    lo, hi = int(q.grids.min()), int(q.grids.max())
    fields += [lo, hi]
    if lo < hi:
        context = np.append(q.grids, 0)[context_index(arch.shapes).T]
        loc, scale = q.arm()(context)
        order = coding_order(arch.shapes)
        encoder.laplace(q.grids[order], loc[order], scale[order], lo, hi)
    coded = encoder.to_bytes()
    head.append(entropy.pack_uvarints(entropy.zigzag([*fields, len(coded) // 4])))
    return b"".join(head) + coded


def read(data: bytes, image_width: int, image_height: int) -> QuantizedFunction:
    """Parse and decode a payload made by :func:`write`; ``CodecError`` if it is malformed."""
    arch, shifts, transposed, pos = _read_header(data, image_width, image_height)
    ranges: list[tuple[int, int, int | None]] = []
    for _ in group_sizes(arch):
        (lo, hi), pos = _signed(data, 2, pos)
        exponent = None
        if lo < hi:
            (exponent,), pos = _signed(data, 1, pos)
            if abs(exponent) > _MAX_EXPONENT:
                raise CodecError(f"clric weight scale exponent {exponent} out of range")
        _check_range(lo, hi, "weight")
        ranges.append((lo, hi, exponent))
    (lo, hi, words), pos = _signed(data, 3, pos)
    _check_range(lo, hi, "grid")
    if len(data) - pos != 4 * words:
        raise CodecError(f"clric stream has {len(data) - pos} bytes of coded data, its header says {4 * words}")
    decoder = entropy.Decoder(data[pos:])
    values = []
    for size, (wlo, whi, exponent) in zip(group_sizes(arch), ranges, strict=True):
        if exponent is None:
            values.append(np.full(size, wlo, dtype=np.int64))
        else:
            values.append(decoder.laplace(0.0, weight_scale(exponent), wlo, whi, size))
    q = QuantizedFunction(arch, np.zeros(0, np.int64), shifts, tuple(values))
    grids = _decode_grids(decoder, q, lo, hi)
    decoder.finish()
    return QuantizedFunction(arch, grids, shifts, tuple(values), transposed)


def _decode_grids(decoder: entropy.Decoder, q: QuantizedFunction, lo: int, hi: int) -> np.ndarray:
    """Grid values, wavefront by wavefront, each from its decoded neighbours."""
    shapes = q.arch.shapes
    total = grid_size(shapes)
    if lo == hi:
        return np.full(total, lo, dtype=np.int64)
    values = np.zeros(total + 1, dtype=np.int64)  # the last entry is the zero outside every grid
    index = context_index(shapes)
    arm = q.arm()
    for positions in wavefronts(shapes):
        loc, scale = arm(values[index[positions]].T)
        values[positions] = decoder.laplace(loc, scale, lo, hi, positions.size)
    return values[:total]


def _read_header(data: bytes, image_width: int, image_height: int) -> tuple[Architecture, tuple[int, ...], bool, int]:
    if len(data) < _HEAD.size:
        raise CodecError(f"clric stream of {len(data)} bytes is shorter than its header")
    version, flags, channels, height, width, levels = _HEAD.unpack_from(data)
    if version != VERSION:
        raise CodecError(f"unknown clric stream version {version}")
    if flags & ~_TRANSPOSED:
        raise CodecError(f"unknown clric stream flags {flags:#04x}")
    transposed = bool(flags & _TRANSPOSED)
    if not 1 <= levels <= _MAX_LEVELS:
        raise CodecError(f"clric stream has {levels} levels (1..{_MAX_LEVELS})")
    pos = _HEAD.size
    end = pos + levels + 2 + len(GROUPS)
    if len(data) < end:
        raise CodecError("clric stream is truncated in its header")
    grids = tuple(data[pos : pos + levels])
    arm_width, synthesis_width = data[pos + levels], data[pos + levels + 1]
    shifts = tuple(data[pos + levels + 2 : end])
    if min(channels, height, width, arm_width, synthesis_width) == 0 or channels * height * width > MAX_VALUES:
        raise CodecError(
            f"bad clric sizes: latent ({channels}, {height}, {width}), widths {arm_width}, {synthesis_width}"
        )
    latent_height, latent_width = (width, height) if transposed else (height, width)
    if latent_height > image_height or latent_width > image_width:
        raise CodecError(f"latent {latent_height}x{latent_width} is larger than the image {image_height}x{image_width}")
    if max(grids) > _MAX_GRIDS or sum(grids) == 0 or arm_width > _MAX_ARM_WIDTH or max(shifts) > MAX_SHIFT:
        raise CodecError(f"bad clric architecture: grids {grids}, ARM width {arm_width}, shifts {shifts}")
    arch = Architecture(channels, height, width, grids, arm_width, synthesis_width)
    if grid_size(arch.shapes) > MAX_VALUES:
        raise CodecError("clric grids are too large")
    return arch, shifts, transposed, end


def _signed(data: bytes, count: int, pos: int) -> tuple[list[int], int]:
    values, pos = entropy.unpack_uvarints(data, count, pos)
    return [int(v) for v in entropy.unzigzag(values)], pos


def _check_range(lo: int, hi: int, what: str) -> None:
    if not (-(1 << 31) <= lo <= hi < 1 << 31 and hi - lo < entropy.MAX_ALPHABET):
        raise CodecError(f"bad clric {what} range [{lo}, {hi}]")
