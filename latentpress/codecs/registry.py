"""Codec registry: a plain dict filled by a decorator."""

from __future__ import annotations

from typing import Callable, TypeVar

from latentpress.codecs.base import Codec

CODECS: dict[str, type[Codec]] = {}

C = TypeVar("C", bound=type[Codec])


def register_codec(name: str) -> Callable[[C], C]:
    """Class decorator registering a codec under ``name``."""

    def decorate(cls: C) -> C:
        if name in CODECS and CODECS[name] is not cls:
            raise ValueError(f"codec name {name!r} is already registered")
        cls.name = name
        CODECS[name] = cls
        return cls

    return decorate


def get_codec(name: str) -> Codec:
    """A codec instance by registered name."""
    try:
        return CODECS[name]()
    except KeyError:
        known = ", ".join(sorted(CODECS))
        raise KeyError(f"unknown codec {name!r} (known: {known})") from None
