"""The model file glc and relic share: a format version, the architecture and training
record as JSON, and the weights as safetensors.

Layout (little endian): format version u16, JSON length u32, JSON (architecture and
training record), then a safetensors blob of the state dict: everything as float16
except the exact networks (:mod:`.exact`), stored as integers (weights int16 in units
of ``2**-WEIGHT_BITS``, biases int32 in units of ``2**-FRACTION``). No pickle:
safetensors holds only named arrays, and every name, shape and value range is
checked against a fresh model of the recorded architecture. A codec may store more
arrays beside its networks (glc's tuned VAE decoder), float16 under names that begin
with ``EXTRA``; they are checked to be finite and handed back to it as they are.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from latentpress.codecs.base import CodecError
from latentpress.codecs.hyperprior import FORMAT_VERSION
from latentpress.codecs.hyperprior.exact import EXACT_PREFIXES, WEIGHT_BITS
from latentpress.codecs.hyperprior.prior import ContextPrior
from latentpress.codecs.hyperprior.tables import FRACTION

_MODEL_HEADER = struct.Struct("<HI")
MAX_JSON = 1 << 16
EXTRA = "extra/"
"""Name prefix of the arrays a codec stores beside its networks."""


Model = TypeVar("Model", bound=ContextPrior)


@dataclass(frozen=True)
class ModelRecord:
    """What a model file says besides its weights."""

    arch: Any
    """The codec's architecture dataclass (``Architecture`` for GLC)."""
    vae_id: str
    images: int
    """Images it was trained on."""
    steps: int


def exact_names(model: ContextPrior) -> set[str]:
    """State-dict names of the integer networks' parameters."""
    return {name for name in model.state_dict() if name.startswith(EXACT_PREFIXES)}


def state_arrays(model: ContextPrior) -> dict[str, np.ndarray]:
    """The model's state as stored: the exact networks as integers on their grids
    (already there), everything else float16."""
    exact = exact_names(model)
    arrays = {}
    for name, tensor in model.state_dict().items():
        values = tensor.detach().double().cpu().numpy()
        if name in exact:
            bits = WEIGHT_BITS if name.endswith("weight") else FRACTION
            dtype = np.int16 if name.endswith("weight") else np.int32
            arrays[name] = np.round(values * (1 << bits)).astype(dtype)
        else:
            arrays[name] = values.astype(np.float16)
    return arrays


def load_state_arrays(model: ContextPrior, blob: bytes, label: str) -> dict[str, np.ndarray]:
    """Load safetensors ``blob`` (as ``pack_model`` wrote it) into ``model``, checking
    every name, shape, dtype and value, and return its extra arrays (float32, without
    the prefix); ``CodecError`` naming ``label`` otherwise."""
    try:
        arrays = load_arrays(bytes(blob))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CodecError(f"{label} model weights are malformed: {exc}") from None
    extra = {}
    for name in [name for name in arrays if name.startswith(EXTRA)]:
        values = arrays.pop(name)
        if values.dtype != np.float16 or not np.all(np.isfinite(values)):
            raise CodecError(f"{label} model array {name} is not finite float16")
        extra[name.removeprefix(EXTRA)] = values.astype(np.float32)
    expected = model.state_dict()
    if set(arrays) != set(expected):
        raise CodecError(
            f"{label} model weights do not match its architecture ({len(arrays)} arrays, {len(expected)} expected)"
        )
    exact = exact_names(model)
    state = {}
    for name, tensor in expected.items():
        values = arrays[name]
        if values.shape != tuple(tensor.shape):
            raise CodecError(f"{label} model weight {name} has shape {values.shape}, expected {tuple(tensor.shape)}")
        if name in exact:
            bits = WEIGHT_BITS if name.endswith("weight") else FRACTION
            want = np.int16 if name.endswith("weight") else np.int32
            if values.dtype != want:
                raise CodecError(f"{label} model weight {name} is {values.dtype}, expected {np.dtype(want)}")
            state[name] = torch.from_numpy(values.astype(np.float64) / (1 << bits)).float()
        else:
            if values.dtype != np.float16 or not np.all(np.isfinite(values)):
                raise CodecError(f"{label} model weight {name} is not finite float16")
            state[name] = torch.from_numpy(values.astype(np.float32))
    model.load_state_dict(state)
    return extra


def pack_model(model: ContextPrior, record: ModelRecord, extra: Mapping[str, np.ndarray] | None = None) -> bytes:
    """The model's bytes (its exact networks already on their grids), with ``extra``
    arrays (stored float16 under ``EXTRA`` + their names) beside them."""
    header = json.dumps({"arch": asdict(record.arch), "vae_id": record.vae_id, "images": record.images,
                         "steps": record.steps}, sort_keys=True).encode()  # fmt: skip
    arrays = state_arrays(model)
    arrays.update({EXTRA + name: np.asarray(values, np.float16) for name, values in (extra or {}).items()})
    return _MODEL_HEADER.pack(FORMAT_VERSION, len(header)) + header + save_arrays(arrays)


def unpack_model_as(
    data: bytes, label: str, architecture: Callable[[dict], Any], build: Callable[[Any], Model]
) -> tuple[Model, ModelRecord, dict[str, np.ndarray]]:
    """A model written by ``pack_model`` (float32, eval mode), its record and its extra
    arrays (by the names they were given): the architecture parsed from the JSON by
    ``architecture`` (which raises ``ValueError``, ``KeyError`` or ``TypeError`` when it
    is not one), the model made by ``build``; ``CodecError`` naming ``label`` for
    anything else."""
    if len(data) < _MODEL_HEADER.size:
        raise CodecError(f"{label} model shorter than its header")
    version, length = _MODEL_HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise CodecError(f"unknown {label} model version {version}")
    if length > MAX_JSON or _MODEL_HEADER.size + length > len(data):
        raise CodecError(f"{label} model header length is out of range")
    try:
        meta = json.loads(data[_MODEL_HEADER.size : _MODEL_HEADER.size + length])
        arch = architecture(meta["arch"])
        arch.check()
        record = ModelRecord(arch, str(meta["vae_id"]), int(meta["images"]), int(meta["steps"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise CodecError(f"{label} model header is malformed: {exc}") from None
    model = build(arch)
    extra = load_state_arrays(model, data[_MODEL_HEADER.size + length :], label)
    return model.eval().requires_grad_(False), record, extra
