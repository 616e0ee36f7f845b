"""Codec registry: a plain dict of what each codec is, its implementation loaded on use.

Every codec registers a :class:`CodecInfo` (name, domain, presets, default quality
points, what its knob means and which way is better) from a module that imports
neither torch nor diffusers, so that ``latentpress --help``, ``latentpress codecs``
and the checking of ``--codec`` values start fast. :func:`get_codec` imports the
implementation (``"package.module:Class"``) the first time a codec is used.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass
from typing import Any, Literal

from latentpress.codecs import base
from latentpress.codecs.base import Codec, CodecError, Domain

Coding = Literal["image", "batch", "shard-model", "collection-model"]
"""How a codec encodes (its implementation's ability in ``codecs.base``): ``image``,
one image at a time (``ImageEncoder``); ``batch``, several images at once too
(``BatchEncoder``); ``shard-model``, one model fitted per shard, the payloads out of
the fit (``ShardModelCodec``); ``collection-model``, each image against a model trained
on the collection (``CollectionModelCodec``)."""


@dataclass(frozen=True)
class KnobRange:
    """The knob values a per-image quality search may try: whole numbers from ``low``
    to ``high`` (``integer``), or ``steps`` values spaced evenly in log scale."""

    low: float
    high: float
    integer: bool = True
    steps: int = 33

    def values(self, better: Literal["higher", "lower"]) -> list[float]:
        """Every value the search may try, from the worst quality to the best."""
        if self.integer:
            values = [float(v) for v in range(math.ceil(self.low), math.floor(self.high) + 1)]
        else:
            ratio = math.log(self.high / self.low) / (self.steps - 1)
            values = [self.low * math.exp(i * ratio) for i in range(self.steps)]
        return values if better == "higher" else values[::-1]


@dataclass(frozen=True)
class CodecInfo:
    """What a codec is, known without importing its implementation."""

    name: str
    summary: str
    """One line for people (``latentpress codecs``)."""
    domain: Domain
    """``pixels``: the codec reads and returns images; ``latent``: VAE latents."""
    presets: dict[str, Any]
    """Preset name -> parameter dataclass (with a ``quality`` field); has ``default``."""
    default_qualities: tuple[float, ...]
    knob: str
    """What the quality knob is (``quality``, ``step``, ``lambda`` ...)."""
    better: Literal["higher", "lower"]
    """Which way of the knob gives better images (and more bits)."""
    implementation: str | type[Codec]
    """``"module:Class"`` imported on first use, or the class itself."""
    version: int = 1
    """Format version of the codec's bytes, written into every container as its
    ``codec_version``: bumped when the bytes a configuration writes, or what a preset
    means, change (docs/versioning.md)."""
    coding: Coding = "image"
    """How it encodes; the pipeline chooses its path by this, never by importing the
    implementation (which loads torch for most codecs)."""
    rate_control: bool = False
    """Whether ``NAME@bppX`` may ask for a size (the codec is ``RateControlled``)."""
    search: KnobRange | None = None
    """The knob values a per-image search for a quality floor tries (``NAME@lpips0.2``);
    None: the codec cannot be searched."""

    @property
    def collection_model(self) -> bool:
        """Whether it codes against a model trained on the collection."""
        return self.coding == "collection-model"

    @property
    def per_image(self) -> bool:
        """Whether each image is encoded on its own request (else in a shard's fit)."""
        return self.coding != "shard-model"

    def params(self, preset: str = "default", quality: float | None = None) -> Any:
        """Parameters of ``preset`` with the knob at ``quality`` (default: the preset's),
        checked by the dataclass's own ``validate`` where it has one."""
        if preset not in self.presets:
            known = ", ".join(sorted(self.presets))
            raise CodecError(f"codec {self.name!r} has no preset {preset!r} (known: {known})")
        base = self.presets[preset]
        params = base if quality is None else dataclasses.replace(base, quality=float(quality))
        validate = getattr(params, "validate", None)
        if validate is not None:
            validate()
        return params


CODECS: dict[str, CodecInfo] = {}
_classes: dict[str, type[Codec]] = {}


def register_codec(info: CodecInfo) -> CodecInfo:
    """Register ``info`` under its name (a name can be taken once)."""
    if info.name in CODECS and CODECS[info.name] != info:
        raise ValueError(f"codec name {info.name!r} is already registered")
    if "default" not in info.presets:
        raise ValueError(f"codec {info.name!r} has no 'default' preset")
    if isinstance(info.implementation, type):
        check_abilities(info, info.implementation)
    CODECS[info.name] = info
    _classes.pop(info.name, None)
    return info


ABILITIES: dict[str, type[Codec]] = {
    "image": base.ImageEncoder,
    "batch": base.BatchEncoder,
    "shard-model": base.ShardModelCodec,
    "collection-model": base.CollectionModelCodec,
}
"""The implementation's ability class of each ``Coding``."""


def check_abilities(info: CodecInfo, cls: type[Codec]) -> None:
    """``ValueError`` unless ``cls`` has the abilities ``info`` declares, and no other way
    of encoding."""
    has = {coding for coding, ability in ABILITIES.items() if issubclass(cls, ability)}
    expected = {"image", "batch"} if info.coding == "batch" else {info.coding}
    if has != expected or info.rate_control != issubclass(cls, base.RateControlled):
        raise ValueError(f"codec {info.name!r} declares coding {info.coding!r} (rate control {info.rate_control}), "
                         f"but {cls.__name__} is {sorted(has)} (rate control {issubclass(cls, base.RateControlled)})")  # fmt: skip


def codec_info(name: str) -> CodecInfo:
    """The registered information of codec ``name``; ``KeyError`` naming the known ones."""
    try:
        return CODECS[name]
    except KeyError:
        known = ", ".join(sorted(CODECS))
        raise KeyError(f"unknown codec {name!r} (known: {known})") from None


def get_codec(name: str) -> Codec:
    """An instance of codec ``name`` (its implementation imported on first use)."""
    info = codec_info(name)
    cls = _classes.get(name)
    if cls is None:
        cls = info.implementation
        if isinstance(cls, str):
            module, _, attribute = cls.partition(":")
            cls = getattr(importlib.import_module(module), attribute)
            check_abilities(info, cls)
        _classes[name] = cls
    return cls(info)
