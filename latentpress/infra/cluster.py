"""Where work runs: a Prefect API for the command and a Dask cluster for the tasks."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

# Settings of a command's own process (``latentpress ...``), set before Prefect or Dask
# is imported and inherited by local Dask workers. The command prints what happened
# itself (each error reason once), so Prefect's console handler shows only what is
# worse; flow and task runs still send their logs to the Prefect API, where a server
# records them. Dask's own logs (ports, workers stopping) are noise everywhere.
COMMAND_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no telemetry traffic
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_SERVER_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}
DASK_QUIET_ENV = {"DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "critical"}
DEBUG_ENV = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "0", "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "info"}
QUIET_LOGGERS = ("distributed", "uvicorn", "httpx", "asyncio")
SERVER_START_SECONDS = 120
"""How long to wait for a temporary Prefect server: Prefect's own 20 s is too short on
a loaded machine."""

# Local clusters only. Dask's monitors wake every 10-500 ms in each worker and nanny; on
# two cores their CPU (0.2-0.3 s per 7 s task, mostly the profiler sampling the task
# thread) came out of the tasks' time, and bulk jobs need none of them at that rate.
# A worker gets its next task only when a thread is free (saturation 1.0, Dask's
# default 1.1 queues one more), so a slower worker never holds back the last tasks.
LOCAL_SETTINGS = {
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}
# Every Dask process keeps the last 1,000 messages of each of its streams for debugging
# Dask itself: in the flow's client every recent task with its arguments (a batch's
# items), in the scheduler the same again for each worker, alive long after the task
# ended (plain Dask, 300 tasks given an object each: 7.9 MiB still held after the
# tasks were forgotten, 0.5 MiB with the log off). Off, for the client of every run and
# for local clusters.
NO_MESSAGE_LOG = {"distributed.admin.low-level-log-length": 0}


def apply_quiet_defaults(debug: bool = False) -> None:
    """For a command's process: set the environment defaults above unless the user
    chose otherwise (``debug``: Prefect's and Dask's informational logs on the
    console) and quiet Dask's and the web stack's loggers."""
    for key, value in (COMMAND_ENV | DASK_QUIET_ENV | (DEBUG_ENV if debug else {})).items():
        os.environ.setdefault(key, value)
    if not debug:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)


def quiet_cluster_logs() -> None:
    """Silence Dask's own logs (port choices, workers stopped at the end) in a flow's
    process and the local workers it starts; Prefect's flow and task logs stay as
    configured (a flow run that a Prefect worker started logs to its UI)."""
    for key, value in DASK_QUIET_ENV.items():
        os.environ.setdefault(key, value)
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


@contextmanager
def prefect_api() -> Iterator[str]:
    """Yield the Prefect API URL to report runs to.

    A configured ``PREFECT_API_URL`` (e.g. ``prefect server start`` on 127.0.0.1) is
    used as is. Otherwise one temporary local server is started for the whole
    command and its URL exported, so that every Dask worker started afterwards
    reports to it instead of starting a server of its own. Flow-run heartbeats,
    which let a lasting server mark crashed runs, are off for a server that ends
    with the command (stopping them made each flow up to 1 s longer).
    """
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        yield configured
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    server = SubprocessASGIServer()
    server.start(timeout=max(SERVER_START_SECONDS, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()))
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield server.api_url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def default_workers() -> int:
    """One single-threaded worker per CPU core."""
    return max(1, os.cpu_count() or 1)


@contextmanager
def dask_scheduler(address: str | None = None, workers: int | None = None) -> Iterator[str]:
    """Yield a Dask scheduler address: ``address`` itself, or a local cluster's
    (``infra.local_cluster``: its scheduler in a process of its own).

    The local cluster runs ``workers`` processes with one thread each (Dask sets
    ``OMP_NUM_THREADS=1`` in them, so torch does not oversubscribe the cores); a
    GPU machine gives every worker a ``GPU=1`` resource for model-heavy tasks.
    Dask's default ``MALLOC_TRIM_THRESHOLD_`` of 64 KiB hands every freed tensor
    buffer back to the system, which made torch work in workers about 70% slower
    here; our workers keep glibc's own threshold, and run Dask's monitors slowly
    (``LOCAL_SETTINGS``). Workers import the task modules
    (torch, diffusers, ...) while the cluster starts (Dask's ``preload``), not
    during the first task; for an external cluster, start workers with
    ``dask worker ... --preload latentpress.tasks.preload``.
    """
    if address:
        yield address
        return
    import dask

    from latentpress.infra.local_cluster import local_cluster

    quiet_cluster_logs()  # the workers inherit it
    kwargs: dict = {}
    if _cuda_devices():
        kwargs["resources"] = {"GPU": 1}
    environ = {
        k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items() if k != "MALLOC_TRIM_THRESHOLD_"
    }
    settings = LOCAL_SETTINGS | NO_MESSAGE_LOG
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ, **settings}),
        local_cluster(
            workers or default_workers(), settings, logging.CRITICAL, preload=["latentpress.tasks.preload"], **kwargs
        ) as cluster,
    ):
        yield cluster.scheduler_address


def _cuda_devices() -> int:
    """NVIDIA GPUs the local workers may use: the driver's list (``/proc/driver/nvidia/gpus``),
    no more than ``CUDA_VISIBLE_DEVICES`` names. Read without torch, which would cost the
    flow process, that only orchestrates, about 600 MiB."""
    try:
        found = len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found = min(found, len([d for d in visible.split(",") if d.strip() and not d.strip().startswith("-")]))
    return found


def cluster_shape(client) -> tuple[bool, int]:
    """Whether any worker of the cluster a Dask ``client`` talks to offers a ``GPU``
    resource, and how many worker threads it has (at least 1): one scheduler call."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    gpus = any(w.get("resources", {}).get("GPU", 0) > 0 for w in workers)
    return gpus, max(1, sum(w.get("nthreads", 1) for w in workers))


@contextmanager
def gpu_tasks(enabled: bool) -> Iterator[None]:
    """Tasks submitted inside need one ``GPU`` resource when ``enabled``.

    Only enable it on clusters with GPU workers (``cluster_shape``); elsewhere the
    same tasks run on any worker, on the CPU.
    """
    if not enabled:
        yield
        return
    import dask

    with dask.annotate(resources={"GPU": 1}):
        yield


@contextmanager
def task_runner(address: str) -> Iterator:
    """A started Prefect task runner on the Dask scheduler at ``address``
    (``RandomKeyDaskTaskRunner``)."""
    import dask

    from latentpress.infra.dask_runner import RandomKeyDaskTaskRunner

    with dask.config.set(NO_MESSAGE_LOG), RandomKeyDaskTaskRunner(address=address) as runner:
        yield runner
