"""Codec choices on the command line: ``NAME[:PRESET][@Q1,Q2,...]``.

A point ``bppX`` (codecs with rate control only) asks for a stream of X bits per
pixel instead of a quality: ``clric:fast@bpp0.1,bpp0.2``. A point ``lpipsX``,
``distsX``, ``psnrX`` or ``ms_ssimX`` (codecs whose knob can be searched) asks, for
every image, for the smallest stream that meets that quality floor:
``avif@lpips0.15`` is ``avif`` at the cheapest quality with LPIPS at most 0.15,
searched image by image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from latentpress.codecs.base import ADDED
from latentpress.codecs.registry import CODECS, codec_info
from latentpress.quality_floors import METRICS, QualityTarget, checked

_SPEC = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_-]*)(?::(?P<preset>[a-z0-9_-]+))?(?:@(?P<q>.+))?\Z")
_POINT = re.compile(r"(?P<target>bpp|lpips|dists|psnr|ms_ssim)?(?P<value>[0-9.eE+-]+)\Z")
TARGETS = ("bpp", *METRICS)
"""What a configuration's ``quality`` may be instead of the codec's knob."""


def params_meaning(params: Any) -> dict[str, Any]:
    """``params`` (a codec's parameter dataclass) as a dict of what it means: every
    field, but those marked ``ADDED`` while they hold their default, so that a new
    option does not change the fingerprint of the configurations that do not use it."""
    values = dataclasses.asdict(params)
    for f in dataclasses.fields(params):
        if ADDED in f.metadata and values[f.name] == f.default:
            del values[f.name]
    return values


@dataclass(frozen=True)
class CodecConfig:
    """One codec at one preset and one quality point."""

    name: str
    preset: str
    quality: float
    target: str | None = None
    """What ``quality`` is when it is not the codec's knob: ``bpp`` (a size in bits per
    pixel) or a metric of ``targets.METRICS`` (a quality floor, searched per image)."""

    @property
    def key(self) -> str:
        """Stable, path-safe name of this configuration, e.g. ``avif.default.q20``
        (``clric.fast.bpp0.1`` for a target size, ``avif.default.lpips0.15`` for a floor)."""
        return f"{self.name}.{self.preset}.{self.target or 'q'}{self.quality:g}"

    @property
    def target_bpp(self) -> bool:
        """Whether ``quality`` is a size in bits per pixel."""
        return self.target == "bpp"

    @property
    def floor(self) -> QualityTarget | None:
        """The quality floor each image's search must meet (None if not a floor)."""
        return QualityTarget(self.target, self.quality) if self.target in METRICS else None

    def params(self) -> Any:
        """The codec's parameter dataclass for this configuration (the preset's
        quality for a target: the knob is searched per image)."""
        info = codec_info(self.name)
        return info.params(self.preset) if self.target else info.params(self.preset, self.quality)

    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over what this configuration means today: the
        codec's format version, the target and every field of the resolved parameters.
        Two rows of one key with different fingerprints were made by different codecs
        (a preset whose meaning changed), whatever their key says."""
        meaning = {"codec": self.name, "version": codec_info(self.name).version, "target": self.target,
                   "params": params_meaning(self.params())}  # fmt: skip
        return hashlib.sha256(json.dumps(meaning, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """As stored in containers and manifests (a target only when set)."""
        out: dict[str, Any] = {"codec": self.name, "preset": self.preset, "quality": self.quality}
        if self.target_bpp:
            out["target_bpp"] = True
        elif self.target:
            out["target"] = self.target
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        """Inverse of :meth:`to_dict`; ``ValueError`` for an unknown target."""
        target = "bpp" if data.get("target_bpp") else data.get("target")
        if target is not None and target not in TARGETS:
            raise ValueError(f"unknown configuration target {target!r}")
        return cls(data["codec"], data["preset"], data["quality"], target)


def key_floor(key: str) -> QualityTarget | None:
    """The quality floor a configuration key searches for (``avif.default.lpips0.2``),
    or None for a knob value or a size."""
    parts = key.split(".", 2)
    point = _POINT.match(parts[2]) if len(parts) == 3 else None
    return QualityTarget(point["target"], float(point["value"])) if point and point["target"] in METRICS else None


def parse_codec_spec(text: str) -> list[CodecConfig]:
    """Parse one ``--codec`` value into its configurations.

    Without ``@...`` the codec's default quality points are used.
    """
    match = _SPEC.match(text.strip())
    if not match:
        raise ValueError(f"bad codec spec {text!r}: expected NAME[:PRESET][@Q1,Q2,...]")
    name, preset = match["name"], match["preset"] or "default"
    try:
        codec = codec_info(name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    if match["q"] is None:
        configs = [CodecConfig(name, preset, q) for q in codec.default_qualities]
    else:
        points = [_POINT.match(q.strip().replace("ms-ssim", "ms_ssim")) for q in match["q"].split(",") if q.strip()]
        try:
            configs = [CodecConfig(name, preset, float(p["value"]), p["target"]) for p in points if p]
        except (TypeError, ValueError):
            configs = []
        if not configs or len(configs) != len(points):
            raise ValueError(f"bad quality list in codec spec {text!r}") from None
    for config in configs:
        if config.target_bpp and not codec.rate_control:
            raise ValueError(f"codec {name!r} has no rate control: {text!r} cannot ask for a bpp")
        if config.target_bpp and not 0 < config.quality < 64:
            raise ValueError(f"target bpp must be in (0, 64), got {config.quality:g} in {text!r}")
        if config.floor is not None:
            if codec.search is None:
                raise ValueError(f"codec {name!r} cannot search its {codec.knob} per image: {text!r} cannot ask "
                                 f"for a quality floor")  # fmt: skip
            checked(config.floor, text)
        config.params()  # validates preset and range
    return configs


def parse_specs(specs: Sequence[str]) -> list[CodecConfig]:
    """All configurations of several ``--codec`` values, without repeats, in order."""
    configs: list[CodecConfig] = []
    for spec in specs:
        configs += [c for c in parse_codec_spec(spec) if c not in configs]
    if not configs:
        raise ValueError("no codec given")
    return configs


def with_floor(specs: list[str], target: QualityTarget) -> list[str]:
    """``specs`` and, for each whose codec's knob can be searched, the same codec and
    preset searched per image for ``target`` (``avif:fast@lpips0.2``)."""
    point = f"{target.metric}{target.bound:g}"
    searched = []
    for text in specs:
        match = _SPEC.match(text.strip())
        if match and match["name"] in CODECS and CODECS[match["name"]].search is not None:
            searched.append(f"{match['name']}:{match['preset'] or 'default'}@{point}")
    return specs + list(dict.fromkeys(searched))


def with_target_bpp(specs: list[str], bpps: list[float]) -> list[str]:
    """``specs`` with target sizes ``bpps`` for every codec that has rate control.

    Such a spec without quality points gets the targets instead of its default
    points; one with points keeps them and gets the targets too. ``ValueError`` if
    no spec names a codec with rate control.
    """
    targets = ",".join(f"bpp{b:g}" for b in bpps)
    out, found = [], False
    for text in specs:
        match = _SPEC.match(text.strip())
        if match and match["name"] in CODECS and CODECS[match["name"]].rate_control:
            found = True
            text = f"{text.strip()},{targets}" if match["q"] else f"{text.strip()}@{targets}"
        out.append(text)
    if not found:
        raise ValueError("--target-bpp needs a --codec with rate control (e.g. clric)")
    return out
