"""Rate control: the lambda that makes one image's stream a given size.

The first probe fits at a guessed lambda; each next one fine-tunes an earlier
probe (a quarter of the main schedule) at a lambda found by secant steps on log
bits against log lambda, kept inside the bracket once the target is bracketed.
Sizes are real stream sizes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from latentpress.codecs.base import CodecError

LAMBDA_RANGE = (1e-4, 100.0)
"""Lambdas rate control may try."""
MAX_PROBES = 8


@dataclass(frozen=True)
class Probe:
    """One encoding tried: its lambda, size in bits and payload."""

    lam: float
    bits: int
    payload: bytes


def search(
    probe: Callable[[float, Probe | None], Probe], target_bits: float, first: float, tolerance: float = 0.1
) -> Probe:
    """The first probe within ``tolerance`` of ``target_bits``; ``CodecError`` if none is found.

    ``probe(lam, start)`` encodes at ``lam``, fine-tuning the earlier probe ``start``
    (``None`` for the first: a full fit).
    """
    if not target_bits > 0:
        raise CodecError(f"target of {target_bits:.0f} bits leaves no room for the stream")
    lo_lam, hi_lam = LAMBDA_RANGE
    probes: list[Probe] = []
    lam = min(max(first, lo_lam), hi_lam)
    for _ in range(MAX_PROBES):
        probes.append(probe(lam, _start(probes, lam)))
        if abs(probes[-1].bits - target_bits) <= tolerance * target_bits:
            return probes[-1]
        lam = _next_lambda(probes, target_bits)
        if lam is None:
            break
    best = min(probes, key=lambda p: abs(p.bits - target_bits))
    raise CodecError(
        f"cannot reach {target_bits:.0f} bits within {tolerance:.0%}: closest {best.bits} bits at lambda "
        f"{best.lam:.4g} after {len(probes)} tries (lambda range {lo_lam:g}..{hi_lam:g})"
    )


def _start(probes: list[Probe], lam: float) -> Probe | None:
    """The probe to fine-tune for ``lam``: of largest lambda below it (shedding bits is
    quicker than regrowing them), else of smallest lambda."""
    below = [p for p in probes if p.lam <= lam]
    return max(below, key=lambda p: p.lam) if below else min(probes, key=lambda p: p.lam, default=None)


def _next_lambda(probes: list[Probe], target: float) -> float | None:
    """Next lambda to try, or ``None`` when the range or the bracket is exhausted."""
    lo_lam, hi_lam = LAMBDA_RANGE
    above = [p for p in probes if p.bits > target]  # too big: raise lambda
    if above:
        a = max(above, key=lambda p: p.lam)
        higher = [p for p in probes if p.bits < target and p.lam > a.lam]
        if higher:  # bracketed: log-log secant, kept inside the middle of the bracket
            b = min(higher, key=lambda p: p.lam)
            if b.lam / a.lam < 1.05:
                return None  # the size jumps across the target here
            t = min(max(math.log(a.bits / target) / math.log(a.bits / b.bits), 0.2), 0.8)
            return math.exp(math.log(a.lam) + t * math.log(b.lam / a.lam))
        start = a
    else:
        start = min(probes, key=lambda p: p.lam)
    at_edge = start.lam >= hi_lam if above else start.lam <= lo_lam
    if at_edge:
        return None
    lam = start.lam * math.exp(math.log(start.bits / target) / _slope(probes))
    return min(max(lam, lo_lam), hi_lam)


def _slope(probes: list[Probe]) -> float:
    """-d log bits / d log lambda from the last two probes (1 if unknown), in [0.3, 3]."""
    if len(probes) < 2 or probes[-1].lam == probes[-2].lam or probes[-1].bits == probes[-2].bits:
        return 1.0
    a, b = probes[-2], probes[-1]
    return min(max(-math.log(b.bits / a.bits) / math.log(b.lam / a.lam), 0.3), 3.0)
