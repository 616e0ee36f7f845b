"""Preloaded into a local cluster's scheduler process (``infra.local_cluster``): the
scheduler closes once the process that started it is gone (a flow killed with
SIGKILL), instead of living on as an orphan."""

from __future__ import annotations

import asyncio
import os
from typing import Any

CHECK_SECONDS = 2.0
_watchers: set[asyncio.Task] = set()


async def dask_setup(scheduler: Any) -> None:
    """Dask's preload hook: watch the parent process from the scheduler's event loop."""
    parent = os.getppid()

    async def watch() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(CHECK_SECONDS)
        await scheduler.close()

    watcher = asyncio.ensure_future(watch())
    _watchers.add(watcher)
    watcher.add_done_callback(_watchers.discard)
