"""Codec choices on the command line: ``NAME[:PRESET][@Q1,Q2,...]``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from latentpress.codecs.registry import get_codec

_SPEC = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_-]*)(?::(?P<preset>[a-z0-9_-]+))?(?:@(?P<q>.+))?$")


@dataclass(frozen=True)
class CodecConfig:
    """One codec at one preset and one quality point."""

    name: str
    preset: str
    quality: float

    @property
    def key(self) -> str:
        """Stable, path-safe name of this configuration, e.g. ``avif.default.q20``."""
        return f"{self.name}.{self.preset}.q{self.quality:g}"

    def params(self) -> Any:
        """The codec's parameter dataclass for this configuration."""
        return get_codec(self.name).params(self.preset, self.quality)


def parse_codec_spec(text: str) -> list[CodecConfig]:
    """Parse one ``--codec`` value into its configurations.

    Without ``@...`` the codec's default quality points are used.
    """
    match = _SPEC.match(text.strip())
    if not match:
        raise ValueError(f"bad codec spec {text!r}: expected NAME[:PRESET][@Q1,Q2,...]")
    name, preset = match["name"], match["preset"] or "default"
    codec = get_codec(name)
    if match["q"] is None:
        qualities = list(codec.default_qualities)
    else:
        try:
            qualities = [float(q) for q in match["q"].split(",") if q.strip()]
        except ValueError:
            raise ValueError(f"bad quality list in codec spec {text!r}") from None
        if not qualities:
            raise ValueError(f"empty quality list in codec spec {text!r}")
    configs = [CodecConfig(name, preset, q) for q in qualities]
    for config in configs:
        codec.params(config.preset, config.quality)  # validates preset and range
    return configs
