"""One writing run at a time per archive: a lease object, ``ARCHIVE/lease.json``.

A run that writes to an archive (ingest, archive, compress, evaluate, train) first
creates the lease, an atomic create-if-absent: ``O_EXCL`` on a local disk, a
conditional ``PUT`` (``If-None-Match: *``) on S3. A second run finds it and stops
with a message naming the holder, so two runs never evaluate the same images twice
nor write duplicate ledger rows. The holder renews the lease every ``RENEW_SECONDS``
and removes it when it ends; a run records the archive's fixity
(:mod:`latentpress.infra.fixity`) before that, also when it fails. A lease not renewed for ``STALE_SECONDS`` (a run
killed with SIGKILL, a machine that died), or held by a process of this host that is
gone, is stale: the next run takes it over.

Leases are held per process and are reentrant: ``archive`` holds one and the ingest
it runs uses the same.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import wraps
from inspect import signature
from typing import Any, TypeVar

from fsspec.implementations.local import LocalFileSystem

from latentpress.infra import fixity, storage
from latentpress.infra.faults import retrying

RENEW_SECONDS = 20.0
STALE_SECONDS = 120.0

F = TypeVar("F", bound=Callable[..., Any])


class ArchiveBusy(RuntimeError):
    """Another run holds the archive's lease."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease (the lease object's JSON)."""

    command: str
    host: str
    pid: int
    token: str
    started: float
    renewed: float

    def stale(self, now: float) -> bool:
        """Not renewed for ``STALE_SECONDS``, or a process of this host that is gone."""
        if now - self.renewed > STALE_SECONDS:
            return True
        return self.host == socket.gethostname() and not _alive(self.pid)


_held: dict[str, int] = {}
_held_lock = threading.Lock()


@contextmanager
def archive_lease(archive: str, command: str) -> Iterator[float | None]:
    """Hold ``archive``'s lease for the block (``ArchiveBusy`` if another run holds it).
    Yields None for a nested hold of this process; for the outermost, the time since
    which the archive's writes are runs' own: this run's start, or that of a killed
    run whose stale lease it took over (its writes were never recorded)."""
    url = storage.join(archive, "lease.json")
    with _held_lock:
        if url in _held:
            _held[url] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield None
        finally:
            with _held_lock:
                _held[url] -= 1
        return
    holder, since = _acquire(url, command)
    with _held_lock:
        _held[url] = 1
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(url, holder, stop), name="latentpress-lease", daemon=True)
    renewer.start()
    try:
        yield since
    finally:
        stop.set()
        renewer.join()
        with _held_lock:
            del _held[url]
        if _read(url) == holder.token:
            storage.remove(url)


def leased(command: str) -> Callable[[F], F]:
    """Decorate a function with an ``archive`` parameter (or a ``run`` one whose
    ``archive`` it is) to run under that archive's lease; the outermost run records the
    archive's fixity when it returns or fails (a ``compact`` run folds the record's
    parts)."""

    def wrap(function: F) -> F:
        params = signature(function)

        @wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            arguments = params.bind(*args, **kwargs).arguments
            archive = arguments["archive"] if "archive" in arguments else arguments["run"].archive
            with archive_lease(archive, command) as since:
                try:
                    result = function(*args, **kwargs)
                except BaseException:
                    if since is not None:
                        _record_after_failure(archive, since)
                    raise
                if since is not None:
                    fixity.record(archive, since, fold=command == "compact")
                return result

        return run  # type: ignore[return-value]

    return wrap


def _record_after_failure(archive: str, since: float) -> None:
    """Record the fixity of a run that failed, so that what it wrote is not taken for
    damage by the next run; a failure to record (the storage that failed the run)
    leaves that to the run's own error."""
    try:
        fixity.record(archive, since)
    except Exception:  # noqa: BLE001 - the run's own exception is the one to raise
        pass


def _acquire(url: str, command: str) -> tuple[Holder, float]:
    """The new lease's holder, and since when the archive's writes are runs' own (see
    ``archive_lease``)."""
    now = time.time()
    holder = Holder(command, socket.gethostname(), os.getpid(), os.urandom(8).hex(), now, now)
    since = now
    for _ in range(3):
        if _create(url, _encode(holder)):
            return holder, since
        current = _holder(url)
        if current is not None and current.token == holder.token:
            return holder, since  # created by a try whose answer was lost
        if current is not None and not current.stale(time.time()):
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(current.started))
            raise ArchiveBusy(
                f"archive {url.rsplit('/', 1)[0]} is in use by a '{current.command}' run (process {current.pid} on "
                f"{current.host}, since {since}); run again when it ends (a lease not renewed for "
                f"{STALE_SECONDS:.0f} s is taken over)"
            )
        if current is not None and current.started > 0:
            since = min(since, current.started)  # a killed run: its writes are recorded by this one
        storage.remove(url)  # stale or unreadable: take it over
    raise ArchiveBusy(f"could not take the lease {url}: other runs keep taking it")


def _renew(url: str, holder: Holder, stop: threading.Event) -> None:
    while not stop.wait(RENEW_SECONDS):
        if _read(url) != holder.token:
            return  # taken over: nothing of ours to renew
        try:
            storage.write_bytes_atomic(url, _encode(Holder(**{**asdict(holder), "renewed": time.time()})))
        except OSError:
            continue  # a passing storage fault: the next renewal tries again


@retrying
def _create(url: str, data: bytes) -> bool:
    """Create ``url`` holding ``data`` unless it exists (atomically); whether it did."""
    fs, path = storage.filesystem(url)
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        return True
    try:
        storage.put(fs, path, data, IfNoneMatch="*")
    except FileExistsError:
        return False
    return True


def _holder(url: str) -> Holder | None:
    try:
        return Holder(**json.loads(storage.read_bytes(url)))
    except FileNotFoundError:
        return None
    except (TypeError, ValueError):  # damaged: treated as stale
        return Holder("unknown", "", 0, "", 0.0, 0.0)


def _read(url: str) -> str | None:
    """The token of the lease at ``url`` (None if there is none)."""
    holder = _holder(url)
    return holder.token if holder else None


def _encode(holder: Holder) -> bytes:
    return json.dumps(asdict(holder), sort_keys=True).encode()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
