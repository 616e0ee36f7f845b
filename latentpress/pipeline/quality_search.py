"""Per-image rate control by quality: the cheapest setting of a codec's knob whose
decoded image meets a quality floor.

The knob's candidate values (``CodecInfo.search``) go from the worst quality to the
best; taking quality to grow along them, a binary search finds the first that meets
the floor in about log2(n) + 1 probes. Every probe is a real stream, decoded and
measured as evaluation measures it. The answer is the smallest passing stream of
all probes (so a knob whose quality is not quite monotone still yields a passing
stream), or, when none passes, the probe of best quality: its row in the ledger then
shows the floor missed. A value the codec cannot code at counts as failing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from latentpress.codecs.base import CodecError
from latentpress.quality_floors import QualityTarget


@dataclass(frozen=True)
class Probe:
    """One knob value tried: its stream and the floor's metric on its decoded image."""

    knob: float
    payload: bytes
    value: float
    meets: bool


@dataclass(frozen=True)
class Found:
    """The stream chosen and how many probes it took."""

    probe: Probe
    probes: int


def search(
    values: list[float],
    encode: Callable[[float], bytes],
    measure: Callable[[bytes], float],
    target: QualityTarget,
    guess: int | None = None,
) -> Found:
    """The smallest stream among ``values`` (worst quality first) that meets ``target``.

    ``encode(knob)`` makes a stream, ``measure(stream)`` its metric value. ``guess``: the
    index of the value expected to be the first that meets it (an estimate that costs
    no decoding); the search starts there and widens its steps away from it (1, 2, 4
    ...) until it has the answer bracketed, then halves: two probes when the guess is
    right, never a different answer than from no guess when quality grows with the
    knob. ``CodecError`` if the codec can code at none of the values tried.
    """
    tried: dict[int, Probe | None] = {}
    refusals: list[str] = []

    def passes(i: int) -> bool:
        if i not in tried:
            try:
                payload = encode(values[i])
            except CodecError as exc:
                refusals.append(f"{values[i]:g}: {exc}")
                tried[i] = None
                return False
            value = float(measure(payload))
            tried[i] = Probe(values[i], payload, value, bool(target.meets(value)))
        probe = tried[i]
        return probe is not None and probe.meets

    low, high = _bracket(passes, len(values), guess) if guess is not None else (0, len(values) - 1)
    while low < high:
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle + 1
    passes(low)
    probes = [p for p in tried.values() if p is not None]
    if not probes:
        raise CodecError(f"no knob value could be coded ({'; '.join(refusals)})")
    passing = [p for p in probes if p.meets]
    if passing:
        return Found(min(passing, key=lambda p: len(p.payload)), len(tried))
    return Found(max(probes, key=lambda p: goodness(p.value, target)), len(tried))


def _bracket(passes: Callable[[int], bool], count: int, guess: int) -> tuple[int, int]:
    """``(low, high)`` holding the first passing index of ``count`` (``high`` passes, or
    is the last index), found by steps of 1, 2, 4 ... away from ``guess``."""
    start = min(max(guess, 0), count - 1)
    step = 1
    if passes(start):
        high = start
        while high > 0:
            lower = max(0, start - step)
            if not passes(lower):
                return lower + 1, high
            high, step = lower, 2 * step
        return 0, 0
    low = start + 1
    while low < count - 1:
        upper = min(count - 1, start + step)
        if passes(upper):
            return low, upper
        low, step = upper + 1, 2 * step
    return min(low, count - 1), count - 1


def goodness(value: float, target: QualityTarget) -> float:
    """``value`` as a number that grows with quality (NaN lowest)."""
    if math.isnan(value):
        return -math.inf
    return value if target.higher_is_better else -value
