"""Torch on one thread for the whole of an encode or decode.

CLRIC's tensors are tiny: a second thread only adds synchronisation (on a busy
machine a synthesis pass took 100x longer with two threads than with one), and
parallel tasks on the same cores would oversubscribe them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")


def single_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Decorator: run ``function`` with torch limited to one thread."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return function(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return run
