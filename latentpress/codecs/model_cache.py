"""Loaded collection models, built once per process and kept in a small LRU."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

Loaded = TypeVar("Loaded")


class ModelCache(Generic[Loaded]):
    """``get(data)`` builds a model from its bytes once (keyed by their SHA-256) and
    keeps the ``size`` most recently used."""

    def __init__(self, build: Callable[[bytes], Loaded], size: int = 4) -> None:
        self.build = build
        self.size = size
        self._models: OrderedDict[bytes, Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, data: bytes) -> Loaded:
        key = hashlib.sha256(data).digest()
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loaded = self.build(data)
            self._models[key] = loaded
            if len(self._models) > self.size:
                self._models.popitem(last=False)
            return loaded
