"""Where a flow's work runs: in this process, or as Prefect tasks on Dask workers.

A flow hands pipeline functions and their arguments to an :class:`Executor` and
reads the results as they finish; it never knows which executor it has.

- :class:`InProcess`: calls each function in this process when its result is
  wanted, one after another. No server, no cluster, nothing to start: for small
  jobs, library users and tests.
- :class:`DaskExecutor`: submits the Prefect task wrapping each function
  (``latentpress.tasks``) to a Dask cluster through prefect-dask; model-heavy work
  needs a ``GPU`` resource where the cluster has GPU workers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class Executor(ABC):
    """Runs pipeline functions; results come back as they finish."""

    threads: int = 1
    """How many functions can run at once (worker threads)."""
    gpus: bool = False
    """Whether some workers offer a ``GPU`` resource."""

    @abstractmethod
    def submit(self, step: Callable[..., Any], params: dict[str, Any], gpu: bool = False) -> Any:
        """Start ``step(**params)``; a handle for :meth:`as_completed`. ``gpu``: the step
        is model-heavy (placed on a GPU worker where there is one)."""

    @abstractmethod
    def as_completed(self, handles: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """The position of each handle and its result, or the exception it ended with,
        as each finishes. The caller keeps no other reference to ``handles``."""

    def on_every_worker(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once in every worker process (e.g. one that starts loading
        models in the background)."""
        fn()


class _Deferred:
    """A call that runs when its result is first wanted."""

    def __init__(self, step: Callable[..., Any], params: dict[str, Any]) -> None:
        self.step, self.params = step, params

    def run(self) -> Any:
        try:
            return self.step(**self.params)
        except Exception as exc:  # noqa: BLE001 - handed to the flow as this call's result
            return exc


class InProcess(Executor):
    """Runs every step in this process, in the order the flow asks for results."""

    def submit(self, step: Callable[..., Any], params: dict[str, Any], gpu: bool = False) -> _Deferred:
        return _Deferred(step, params)

    def as_completed(self, handles: Sequence[_Deferred]) -> Iterator[tuple[int, Any]]:
        for position, handle in enumerate(handles):
            yield position, handle.run()


class DaskExecutor(Executor):
    """Prefect tasks on the workers of a Dask cluster (a started prefect-dask runner)."""

    def __init__(self, runner: Any) -> None:
        from latentpress.infra.cluster import cluster_shape

        self.runner = runner
        self.gpus, self.threads = cluster_shape(runner.client)

    def submit(self, step: Callable[..., Any], params: dict[str, Any], gpu: bool = False) -> Any:
        from latentpress.infra.cluster import gpu_tasks
        from latentpress.tasks import TASKS

        with gpu_tasks(gpu and self.gpus):
            return self.runner.submit(TASKS[step], params)

    def as_completed(self, handles: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Each handle is let go once its result is read, so that the cluster forgets
        the task and neither side keeps its arguments or result for the rest of the run."""
        from distributed import as_completed

        waiting = {handle.wrapped_future: (i, handle) for i, handle in enumerate(handles)}
        del handles
        for future in as_completed(list(waiting), loop=self.runner.client.loop):
            position, handle = waiting.pop(future)
            try:
                result = handle.result()
            except Exception as exc:  # noqa: BLE001 - a task that failed after its retries
                result = exc
            del future, handle
            yield position, result

    def on_every_worker(self, fn: Callable[[], None]) -> None:
        self.runner.client.run(fn)


@contextmanager
def dask_executor(address: str | None = None, workers: int | None = None) -> Iterator[DaskExecutor]:
    """An executor on the Dask cluster at ``address`` (default: a local cluster of
    ``workers`` single-threaded processes, started here and stopped on exit)."""
    from latentpress.infra.cluster import dask_scheduler, task_runner

    with dask_scheduler(address, workers) as scheduler, task_runner(scheduler) as runner:
        yield DaskExecutor(runner)
