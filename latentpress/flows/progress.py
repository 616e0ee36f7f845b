"""Progress of a step an operator can read: images done of total, images per minute
and the time left.

On a terminal, a live bar (on standard error) that gives way to one line when the
step ends. In logs (standard error not a terminal), one plain line every
``LOG_EVERY`` seconds and one when the step ends, nothing else. Steps of under a
second print nothing. The same lines (every ``LOG_EVERY`` seconds and at the end of
every step) also go to ``run_log``: in a Prefect flow run, the run's log, what an
operator of a scheduled run reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

LOG_EVERY = 30.0
"""Seconds between progress lines in logs."""
QUIET_UNDER = 1.0
"""Steps shorter than this (seconds) print no closing line."""


def rate_and_eta(done: int, total: int, seconds: float) -> tuple[float | None, float | None]:
    """Images per minute so far and seconds left at that pace (``None`` until known)."""
    if done <= 0 or seconds <= 0:
        return None, None
    per_minute = 60.0 * done / seconds
    return per_minute, (total - done) * 60.0 / per_minute


def format_seconds(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_rate(per_minute: float) -> str:
    """``1234``, ``56.7`` or ``0.42`` (three significant digits below 100)."""
    return f"{per_minute:.0f}" if per_minute >= 100 else f"{per_minute:.3g}"


def status_line(step: str, done: int, total: int, seconds: float) -> str:
    """``compress: 40/120 images, 35.1 images/min, 2m17s left`` (or ``... in 12s`` when done)."""
    per_minute, left = rate_and_eta(done, total, seconds)
    text = f"{step}: {done}/{total} images"
    if per_minute is not None:
        text += f", {format_rate(per_minute)} images/min"
    if done >= total:
        return f"{text}, in {format_seconds(seconds)}"
    return text if left is None else f"{text}, {format_seconds(left)} left"


class _RateAndEta(ProgressColumn):
    def render(self, task: Task) -> Text:
        per_minute, left = rate_and_eta(int(task.completed), int(task.total or 0), task.elapsed or 0.0)
        if per_minute is None:
            return Text("-- images/min", style="progress.data.speed")
        eta = "" if left is None else f", {format_seconds(left)} left"
        return Text(f"{format_rate(per_minute)} images/min{eta}", style="progress.data.speed")


class StepProgress:
    """Progress of one step of ``total`` images; ``advance`` as batches finish."""

    def __init__(
        self,
        step: str,
        total: int,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        run_log: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        self.step, self.total, self.done = step, total, 0
        self.console = console or Console(stderr=True)
        self.run_log = run_log
        self.live = self.console.is_terminal and total > 0
        self.clock = clock
        self._start = self._logged = clock()
        self._bar: Progress | None = None

    def __enter__(self) -> StepProgress:
        self._start = self._logged = self._run_logged = self.clock()
        self._logged_done = -1
        if self.live:
            columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} images"),
                       _RateAndEta(), TimeElapsedColumn())  # fmt: skip
            self._bar = Progress(*columns, console=self.console, transient=True, refresh_per_second=2)
            self._bar.start()
            self._task = self._bar.add_task(self.step, total=self.total)
        return self

    def advance(self, images: int) -> None:
        self.done += images
        if self._bar is not None:
            self._bar.advance(self._task, images)
        elif self.total and self.clock() - self._logged >= LOG_EVERY:
            self._log()
        if self.run_log is not None and self.done < self.total and self.clock() - self._run_logged >= LOG_EVERY:
            self._run_logged = self.clock()
            self.run_log.info(status_line(self.step, self.done, self.total, self._run_logged - self._start))

    def _log(self) -> None:
        self._logged, self._logged_done = self.clock(), self.done
        self.console.print(
            status_line(self.step, self.done, self.total, self._logged - self._start), highlight=False, soft_wrap=True
        )

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        finished_line = self._logged_done == self.done
        if self.total and kind is None and not finished_line and self.clock() - self._start >= QUIET_UNDER:
            self._log()
        if self.run_log is not None and self.total and kind is None:
            self.run_log.info(status_line(self.step, self.done, self.total, self.clock() - self._start))
