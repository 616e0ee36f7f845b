"""A local Dask cluster whose scheduler runs in a process of its own.

Dask's ``LocalCluster`` runs its scheduler in the process that starts it: here, the
flow's. That scheduler kept every task's arguments (the batch's items) and Prefect's
run context long after the task was forgotten, about 80 KB a task on top of the
items (measured with tracemalloc on 5,000 photos: 45 MiB held against 15 MiB with the
scheduler elsewhere), so the flow process grew with the collection. With the
scheduler in its own process the flow process is a Dask client, as it is on an
existing cluster; the workers' nannies stay in the flow process, as in
``LocalCluster``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from distributed import Nanny, SpecCluster
from distributed.deploy.spec import ProcessInterface

SCHEDULER_START_SECONDS = 60.0


def dask_environment(settings: dict[str, Any]) -> dict[str, str]:
    """Dask settings as the environment variables a Dask process reads at start
    (``distributed.admin.tick.interval`` -> ``DASK_DISTRIBUTED__ADMIN__TICK_INTERVAL``)."""
    return {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): repr(value) if not isinstance(value, str) else value
            for key, value in settings.items()}  # fmt: skip


class SchedulerProcess(ProcessInterface):
    """A Dask scheduler on 127.0.0.1 in a child process (``python -m dask spec``), with
    ``settings`` (Dask configuration) given through its environment. Its log goes to
    this process's standard error, as Dask's own logging settings allow; it closes
    itself when this process is gone (``infra.scheduler_guard``)."""

    def __init__(self, settings: dict[str, Any], timeout: float = SCHEDULER_START_SECONDS) -> None:
        super().__init__()
        self.settings, self.timeout = settings, timeout
        self.process: asyncio.subprocess.Process | None = None
        self.folder: str | None = None

    async def start(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="latentpress-scheduler-")
        address_file = Path(self.folder) / "scheduler.json"
        spec = {"cls": "distributed.Scheduler",
                "opts": {"host": "127.0.0.1", "port": 0, "dashboard_address": ":0", "scheduler_file": str(address_file),
                         "preload": ["latentpress.infra.scheduler_guard"]}}  # fmt: skip
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dask", "spec", "--spec", json.dumps(spec),
            env=os.environ | dask_environment(self.settings), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = asyncio.get_running_loop().time() + self.timeout
        while self.address is None:
            try:
                self.address = json.loads(address_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                if self.process.returncode is not None:
                    raise RuntimeError(
                        f"the Dask scheduler exited with code {self.process.returncode} while starting"
                    ) from None
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"the Dask scheduler did not start within {self.timeout:.0f} s") from None
                await asyncio.sleep(0.1)
        await super().start()

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        await super().close()


def local_cluster(workers: int, settings: dict[str, Any], silence_logs: int, **worker_options: Any) -> SpecCluster:
    """A started cluster of ``workers`` single-threaded worker processes (each under a
    nanny in this process, given ``worker_options``) and a scheduler process."""
    worker = {
        "cls": Nanny,
        "options": {"nthreads": 1, "host": "127.0.0.1", "silence_logs": silence_logs, **worker_options},
    }
    return SpecCluster(
        workers=dict.fromkeys(range(workers), worker), scheduler={"cls": SchedulerProcess, "options": {"settings": settings}},
        worker=worker, silence_logs=silence_logs, name="latentpress",
    )  # fmt: skip
