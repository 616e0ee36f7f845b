"""Codec choices on the command line: ``NAME[:PRESET][@Q1,Q2,...]``.

A point ``bppX`` (codecs with rate control only) asks for a stream of X bits per
pixel instead of a quality: ``clric:fast@bpp0.1,bpp0.2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from latentpress.codecs.registry import CODECS, codec_info

_SPEC = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_-]*)(?::(?P<preset>[a-z0-9_-]+))?(?:@(?P<q>.+))?\Z")


@dataclass(frozen=True)
class CodecConfig:
    """One codec at one preset and one quality point."""

    name: str
    preset: str
    quality: float
    target_bpp: bool = False
    """``quality`` is a target size in bits per pixel, not the codec's quality knob."""

    @property
    def key(self) -> str:
        """Stable, path-safe name of this configuration, e.g. ``avif.default.q20``
        (``clric.fast.bpp0.1`` for a target size)."""
        return f"{self.name}.{self.preset}.{'bpp' if self.target_bpp else 'q'}{self.quality:g}"

    def params(self) -> Any:
        """The codec's parameter dataclass for this configuration (the preset's
        quality for a target size: the codec searches its own)."""
        info = codec_info(self.name)
        return info.params(self.preset) if self.target_bpp else info.params(self.preset, self.quality)

    def to_dict(self) -> dict[str, Any]:
        """As stored in containers and manifests (``target_bpp`` only when set)."""
        out: dict[str, Any] = {"codec": self.name, "preset": self.preset, "quality": self.quality}
        return (out | {"target_bpp": True}) if self.target_bpp else out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(data["codec"], data["preset"], data["quality"], bool(data.get("target_bpp", False)))


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
        points = [q.strip() for q in match["q"].split(",") if q.strip()]
        try:
            configs = [CodecConfig(name, preset, float(q.removeprefix("bpp")), q.startswith("bpp")) for q in points]
        except ValueError:
            raise ValueError(f"bad quality list in codec spec {text!r}") from None
        if not configs:
            raise ValueError(f"empty quality list in codec spec {text!r}")
    for config in configs:
        if config.target_bpp and not codec.rate_control:
            raise ValueError(f"codec {name!r} has no rate control: {text!r} cannot ask for a bpp")
        if config.target_bpp and not 0 < config.quality < 64:
            raise ValueError(f"target bpp must be in (0, 64), got {config.quality:g} in {text!r}")
        config.params()  # validates preset and range
    return configs


def parse_specs(specs: list[str]) -> list[CodecConfig]:
    """All configurations of several ``--codec`` values, without repeats, in order."""
    configs: list[CodecConfig] = []
    for spec in specs:
        configs += [c for c in parse_codec_spec(spec) if c not in configs]
    if not configs:
        raise ValueError("no codec given")
    return configs


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
