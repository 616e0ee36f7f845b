"""What a run tells the Prefect run log, and how its state says whether images were lost.

A scheduled run has no terminal: an operator reads the Prefect UI. So a flow logs
its progress (see :mod:`.progress`), what each stage did and every error reason once,
and a run in which any image ended in ``error`` ends **Failed** with the summary as its
message (:func:`concluded`): a run that lost images never shows Completed. The run's
result travels in the failure (:class:`ImagesInError`), so the command that started
it still prints its own summary.

Outside a Prefect flow run (the in-process path, a library user) the same lines go to
the ``latentpress.flows`` logger.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from latentpress.flows.results import RunResult
from latentpress.pipeline.outcomes import Outcome, errors_by_reason

STAGE_WORDS = {"ok": "done", "cached": "already done", "rejected": "rejected", "error": "error"}
SHOWN_PER_REASON = 5
"""Images named under each error reason (the rest are counted)."""


class ImagesInError(RuntimeError):
    """A run ended with images in ``error``; ``value`` is what the run returns otherwise."""

    def __init__(self, message: str, value: Any) -> None:
        super().__init__(message)
        self.value = value


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The current Prefect flow run's logger (what its UI shows), or outside a run the
    ``latentpress.flows`` logger (no handler of its own). Never imports Prefect: a
    process that has not imported it runs no flow."""
    if "prefect" in sys.modules:
        from prefect import get_run_logger
        from prefect.context import FlowRunContext

        if FlowRunContext.get() is not None:
            return get_run_logger()
    return logging.getLogger("latentpress.flows")


def stage_lines(result: RunResult) -> list[str]:
    """``compress: 3 done, 1 already done, 2 error``: a line per stage."""
    lines = []
    for stage in result.stages:
        counts = result.counts(stage)
        text = ", ".join(f"{counts[k]} {word}" for k, word in STAGE_WORDS.items() if counts.get(k)) or "nothing to do"
        lines.append(f"{stage}: {text}")
    return lines


def where(outcomes: list[Outcome]) -> str:
    """``avif.default.q40/0123abcd..., ... and 4 more``: the images an error hit."""
    names = [f"{o.config_key}/{o.image_id}" if o.config_key else o.image_id for o in outcomes[:SHOWN_PER_REASON]]
    more = f" and {len(outcomes) - SHOWN_PER_REASON} more" if len(outcomes) > SHOWN_PER_REASON else ""
    return ", ".join(names) + more


def concluded(command: str, result: RunResult, value: Any = None) -> Any:
    """End a flow run of ``command``: log what each stage did and every error reason
    once; ``value`` (default ``result``) when nothing ended in ``error``, else a Failed
    state whose message counts the images in error and whose data is
    :class:`ImagesInError` carrying ``value``."""
    value = result if value is None else value
    logger = run_logger()
    for line in stage_lines(result):
        logger.info(line)
    groups = errors_by_reason(result.errors)
    for reason, outcomes in groups.items():
        logger.error("%d image(s) in error: %s (in %s)", len(outcomes), reason, where(outcomes))
    if not groups:
        logger.info("%s finished, nothing in error", command)
        return value
    from prefect.states import Failed

    message = (f"{command}: {result.images_in_error} image(s) ended in error ({len(groups)} reason(s), the first: "
               f"{next(iter(groups))}); rerun to finish them")  # fmt: skip
    return Failed(message=message, data=ImagesInError(message, value))
