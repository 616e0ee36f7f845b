"""Passing storage faults: telling them apart, and riding them out.

A transient fault is one worth trying again: a refused, reset or timed-out
connection, throttling (``SlowDown``), or a 5xx answer. :func:`retrying` retries an
idempotent storage operation on such faults with exponential backoff for up to
``RETRY_SECONDS`` in all, so an outage shorter than that costs time, not the run; the
first fault of an outage is logged once, and the recovery. A fault that outlasts the
budget propagates (the task runner may retry the batch; otherwise the image ends in
``error`` and the next run does it).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

RETRY_SECONDS = 90.0
"""Longest a storage operation keeps retrying a transient fault (an outage of 60 s is absorbed)."""
FIRST_DELAY, MAX_DELAY = 0.5, 8.0

_TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE,
                     errno.EHOSTUNREACH, errno.ENETUNREACH}  # fmt: skip
_TRANSIENT_NAMES = {
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ClientConnectorError", "ServerDisconnectedError", "ClientOSError", "ClientPayloadError",
    "ProtocolError", "IncompleteReadError", "ResponseStreamingError",
}  # fmt: skip
"""Class names of the network errors of botocore, aiohttp and urllib3 that are not
``ConnectionError`` or ``TimeoutError`` subclasses."""
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                    "ServiceUnavailable", "503", "500", "502", "504"}  # fmt: skip

log = logging.getLogger("latentpress.storage")
F = TypeVar("F", bound=Callable[..., Any])


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` looks like a passing storage or network fault worth retrying."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__):
        return True
    code = getattr(exc, "response", None)
    code = code.get("Error", {}).get("Code") if isinstance(code, dict) else None
    if code in _TRANSIENT_CODES:
        return True
    cause = exc.__cause__  # storage libraries re-raise network errors as their own
    return cause is not None and cause is not exc and is_transient(cause)


class _Outage:
    """Whether a fault is being ridden out, so that it is logged once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since: float | None = None

    def fault(self, what: str, exc: BaseException) -> None:
        with self.lock:
            if self.since is None:
                self.since = time.monotonic()
                log.warning("storage fault (%s: %s: %s); retrying for up to %.0f s", what, type(exc).__name__,
                            exc, RETRY_SECONDS)  # fmt: skip

    def recovered(self) -> None:
        with self.lock:
            if self.since is not None:
                log.warning("storage answers again after %.1f s", time.monotonic() - self.since)
                self.since = None


_outage = _Outage()


def retrying(function: F) -> F:
    """``function`` (an idempotent storage operation) retried on transient faults for
    up to ``RETRY_SECONDS``."""

    @wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        return retry(function, RETRY_SECONDS, *args, **kwargs)

    return run  # type: ignore[return-value]


def retry(function: Callable[..., Any], seconds: float, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, retried on transient faults for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    delay = FIRST_DELAY
    while True:
        try:
            result = function(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            _outage.fault(function.__name__, exc)
            time.sleep(delay)
            delay = min(2 * delay, MAX_DELAY)
            continue
        _outage.recovered()
        return result
