"""The Prefect task runner on Dask that the flows submit their tasks to.

The one place that touches prefect-dask's internals (``DaskTaskRunner._started`` and
``_optimize_futures``, not part of its public API): ``pyproject.toml`` keeps
prefect-dask below 0.4, and ``tests/test_cluster.py``
(``test_task_runner_gives_random_keys_and_runs_every_submission``) runs this runner
against the installed version, so an upgrade that moves them fails there first.
"""

from __future__ import annotations

from typing import Any

from prefect_dask import DaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture


class RandomKeyDaskTaskRunner(DaskTaskRunner):
    """``DaskTaskRunner`` whose submissions get random Dask keys.

    Prefect gives every task run a fresh id, so Dask's default for a submission
    (``pure=True``: a key made by hashing the function, Prefect's serialized context and
    every argument) only costs time: about 30 ms of the flow's CPU per task here, taken
    from the cores the workers need.
    """

    def submit(
        self, task: Any, parameters: dict[str, Any], wait_for: Any = None, dependencies: Any = None
    ) -> PrefectDaskFuture:
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        future = self.client.submit(
            task,
            parameters=self._optimize_futures(parameters),
            wait_for=self._optimize_futures(wait_for) if wait_for else None,
            dependencies=dependencies,
            return_type="state",
            pure=False,
        )
        return PrefectDaskFuture(wrapped_future=future, task_run_id=future.task_run_id)
