"""How each image ends at each stage: ``ok``, ``rejected`` or ``error``.

- ``ok``: done (now, or by an earlier run: ``cached``);
- ``rejected``: bad input (an undecodable file, an image a codec refuses); recorded
  and never retried;
- ``error``: the environment, storage or a bug; never counted as done, so the next
  run tries again.

A stage catches what one image raises and turns it into that image's outcome, except
transient storage errors (connection refused or reset, timeouts), which propagate so
that the task runner can retry the batch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from latentpress.codecs.base import CodecError
from latentpress.infra.faults import is_transient
from latentpress.infra.images import ImageError

Status = Literal["ok", "rejected", "error"]

BAD_INPUT: tuple[type[Exception], ...] = (ImageError, CodecError)
"""What an encoder raises for input it cannot take: a rejection, not an error."""


@dataclass(frozen=True)
class Outcome:
    """How one image ended at one stage (under one codec configuration)."""

    image_id: str
    config_key: str
    """The configuration's key; ``latent`` for the VAE encoding, ``""`` for ingest."""
    status: Status
    reason: str | None = None
    """Why, for ``rejected`` and ``error``; for ``ok``, what the result lacks, if anything."""
    cached: bool = False
    """``ok`` because an earlier run did the work (nothing was redone)."""
    path: str | None = None
    """The file written, for stages that write one per image (restore)."""


def describe(exc: BaseException) -> str:
    """An exception as one line: its type and message."""
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


def failure(image_id: str, config_key: str, exc: Exception, bad_input: bool = True) -> Outcome:
    """The outcome of ``exc`` raised for one image: ``rejected`` when it is bad input
    (and the stage judges input, ``bad_input``), else ``error``."""
    status: Status = "rejected" if bad_input and isinstance(exc, BAD_INPUT) else "error"
    return Outcome(image_id, config_key, status, describe(exc))


def unless_transient(exc: Exception) -> None:
    """Re-raise ``exc`` if it is transient (``is_transient``), so the batch is retried."""
    if is_transient(exc):
        raise exc


def count(outcomes: list[Outcome]) -> dict[str, int]:
    """How many outcomes have each status (``ok`` split into new and ``cached``)."""
    counts: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        counts["cached" if outcome.cached and outcome.status == "ok" else outcome.status] += 1
    return dict(counts)


def errors_by_reason(outcomes: list[Outcome], status: Status = "error") -> dict[str, list[Outcome]]:
    """Outcomes of ``status`` grouped by their reason, most frequent first."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.status == status:
            groups[outcome.reason or "unknown"].append(outcome)
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))
