"""What a run did: every image's outcome at every stage, and the new ledger rows."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from latentpress.infra.collection import ERROR, Item
from latentpress.pipeline.outcomes import Outcome, count


def new_run_id() -> str:
    """A fresh run id (12 hex digits)."""
    return uuid.uuid4().hex[:12]


@dataclass
class RunResult:
    """The outcome of one command: ingest items, outcomes per stage, how many ledger rows."""

    run_id: str
    items: list[Item] = field(default_factory=list)
    """Every file the ingest saw (``ok``, ``rejected``, ``error`` or ``duplicate``)."""
    stages: dict[str, list[Outcome]] = field(default_factory=dict)
    """Stage name (``latents``, ``compress``, ``evaluate``, ``restore``) -> outcomes."""
    new_rows: int = 0
    """Ledger rows the run appended."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall seconds of each step of the run (``ingest``, ``compress and evaluate`` ...), in order."""
    _lap: float = field(default_factory=time.perf_counter, repr=False)

    def lap(self, step: str) -> None:
        """Count the wall time since the last lap (or since the result was made) to ``step``."""
        now = time.perf_counter()
        self.seconds[step] = self.seconds.get(step, 0.0) + now - self._lap
        self._lap = now

    def add(self, stage: str, outcomes: list[Outcome]) -> None:
        """Record ``outcomes`` under ``stage`` (a stage appears once it has one)."""
        if outcomes:
            self.stages.setdefault(stage, []).extend(outcomes)

    def counts(self, stage: str) -> dict[str, int]:
        return count(self.stages.get(stage, []))

    @property
    def errors(self) -> list[Outcome]:
        """Every ``error`` outcome: unreadable files, then each stage's."""
        unreadable = [Outcome(i.image_id, "", "error", f"{i.name}: {i.error}") for i in self.items if i.status == ERROR]
        return unreadable + [o for outcomes in self.stages.values() for o in outcomes if o.status == "error"]

    @property
    def images_in_error(self) -> int:
        """How many images ended in ``error`` at some stage (each counted once)."""
        return len({o.image_id for o in self.errors})

    @property
    def ok(self) -> bool:
        """Whether nothing ended in ``error`` (rejected input is not a failure of the run)."""
        return not self.errors
