"""Cluster plumbing: GPU-tagged tasks go to GPU workers, untagged ones anywhere;
batches sized to the cluster; local workers run without Dask's fast monitors."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import dask
import psutil
import pytest
from distributed import Client
from pipeline_fixtures import dask_processes
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from latentpress.flows.common import MAX_TASKS, MIN_BATCH, TASKS_PER_WORKER, balanced_batch, chunks, finer_tail
from latentpress.infra.cluster import cluster_shape, dask_scheduler, gpu_tasks, task_runner


@task(cache_policy=NO_CACHE)
def worker_name() -> str:
    from distributed import get_worker

    return get_worker().name


@flow
def where_tasks_run(address: str, gpu: bool, count: int) -> list[str]:
    with task_runner(address) as runner:
        with gpu_tasks(gpu):
            futures = [runner.submit(worker_name, {}) for _ in range(count)]
        return [f.result() for f in futures]


def test_gpu_tasks_run_only_on_gpu_workers(prefect_server: str) -> None:
    workers = [["--resources", "GPU=1", "--name", "gpu-worker"], ["--name", "cpu-worker"]]
    with dask_processes(workers, prefect_server) as address:
        with Client(address) as client:
            assert cluster_shape(client)[0]  # has GPUs
        assert set(where_tasks_run(address, gpu=True, count=8)) == {"gpu-worker"}


@flow
def same_submission_twice(address: str) -> tuple[list[str], list[str]]:
    with task_runner(address) as runner:
        futures = [runner.submit(worker_name, {}) for _ in range(2)]
        return [f.wrapped_future.key for f in futures], [f.result() for f in futures]


def test_task_runner_gives_random_keys_and_runs_every_submission(dask_address: str) -> None:
    keys, names = same_submission_twice(dask_address)
    assert len(set(keys)) == 2 and all(
        re.fullmatch(r"worker_name-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", k) for k in keys
    )
    assert len(names) == 2 and set(names) <= {0, 1}  # the two workers of the local cluster


def test_cpu_only_cluster_shape(dask_address: str) -> None:
    with Client(dask_address) as client:
        assert cluster_shape(client) == (False, 2)  # two single-threaded workers, no GPU


@pytest.mark.parametrize(
    ("requested", "images", "threads", "expected"),
    [
        (16, 32, 1, 16),  # two tasks for the one thread already
        (16, 64, 2, 16),  # four tasks: two per thread
        (16, 32, 2, 8),  # four tasks: two per thread
        (16, 6, 2, MIN_BATCH),  # few images: not below the floor
        (3, 6, 2, 3),  # a smaller request stands
        (16, 16_000, 16, 16),  # large collections keep the requested size
        (16, 100_000, 16, 100),  # up to MAX_TASKS tasks: then larger batches
    ],
)
def test_batch_size_gives_each_thread_several_tasks(requested: int, images: int, threads: int, expected: int) -> None:
    assert balanced_batch(requested, images, threads) == expected
    assert -(-images // expected) <= MAX_TASKS
    if expected < requested and expected > MIN_BATCH:
        assert -(-images // expected) >= TASKS_PER_WORKER * threads
    with pytest.raises(ValueError, match="at least 1"):
        balanced_batch(0, images, threads)


def _monitor_settings() -> dict:
    import dask

    return {
        key: dask.config.get(key) for key in ("distributed.worker.profile.enabled", "distributed.admin.tick.interval")
    }


def test_local_workers_run_without_fast_monitors_and_the_scheduler_apart() -> None:
    with dask_scheduler(None, 1) as address, Client(address) as client:
        settings = list(client.run(_monitor_settings).values())
        pid = client.run_on_scheduler(os.getpid)
        saturation = client.run_on_scheduler(dask.config.get, "distributed.scheduler.worker-saturation")
        tick = client.run_on_scheduler(dask.config.get, "distributed.admin.tick.interval")
    assert settings == [{"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s"}]
    # the scheduler in a process of its own (none of its memory in the flow's), with our settings
    assert pid != os.getpid() and (saturation, tick) == (1.0, "1s")
    assert (
        not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    )  # stopped with the cluster


@pytest.mark.parametrize(
    ("count", "size", "lengths"), [(6, 4, [3, 3]), (64, 16, [16] * 4), (10, 3, [2, 3, 2, 3]), (0, 5, []), (1, 5, [1])]
)
def test_chunks_are_even_and_keep_order(count: int, size: int, lengths: list[int]) -> None:
    values = list(range(count))
    parts = chunks(values, size)
    assert [len(p) for p in parts] == lengths and sum(parts, []) == values


CHECK_SERVER = """
from prefect.settings import get_current_settings
from latentpress.infra.cluster import prefect_api
with prefect_api() as url:
    settings = get_current_settings()
    print(url, settings.api.url, settings.flows.heartbeat_frequency)
"""


def test_command_server_runs_flows_without_heartbeats() -> None:
    # In a process of its own: Prefect shares one server object per process, and
    # stopping it here would stop the tests' server.
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = subprocess.run([sys.executable, "-c", CHECK_SERVER], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    url, api_url, heartbeat = done.stdout.split()[-3:]
    assert url.startswith("http://127.0.0.1:") and api_url == url and heartbeat == "None"


def test_finer_tail_halves_the_last_batches() -> None:
    jobs = [("a", list(range(i * 16, i * 16 + 16))) for i in range(4)]
    tail = finer_tail(jobs, threads=2)
    assert [len(batch) for _, batch in tail] == [16] * 2 + [8] * 2 + [4] * 2 + [2] * 4
    assert [x for _, batch in tail for x in batch] == list(range(64))
    assert [len(batch) for _, batch in finer_tail(jobs, threads=2, rounds=1)] == [16] * 2 + [8] * 4
    assert finer_tail([("a", [1]), ("b", [2])], threads=4) == [("a", [1]), ("b", [2])] and finer_tail([], 2) == []
    assert finer_tail(jobs, threads=1) == jobs


def _metric_networks_loaded() -> int:
    from latentpress.models import metrics

    return metrics._lpips_model.cache_info().currsize + metrics._dists_model.cache_info().currsize


def test_workers_warm_up_metric_networks_in_the_background() -> None:
    import time

    from latentpress.pipeline.evaluate import warm_up_in_background

    with dask_scheduler(None, 1) as address, Client(address) as client:
        assert list(client.run(_metric_networks_loaded).values()) == [0]
        client.run(warm_up_in_background)
        deadline = time.monotonic() + 60
        while list(client.run(_metric_networks_loaded).values()) != [2] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert list(client.run(_metric_networks_loaded).values()) == [2]


def test_batches_are_sized_by_pixels_and_a_large_photo_goes_alone() -> None:
    from latentpress.flows.common import BATCH_PIXELS, shard_batches
    from latentpress.infra.collection import OK, Item

    def item(n: int, width: int, height: int, shard: int = 0) -> Item:
        return Item(f"id{n:03d}", f"/src/{n}.png", f"{n}.png", width, height, 1, OK, None, shard)

    small = [item(n, 768, 512) for n in range(60)]
    large = item(60, 6000, 4000)  # 24 MP
    batches = shard_batches([*small[:30], large, *small[30:]], 16)
    assert [large] in batches
    assert sorted(i.image_id for b in batches for i in b) == sorted(i.image_id for i in [*small, large])
    assert all(len(b) <= 16 and (len(b) == 1 or sum(i.width * i.height for i in b) <= BATCH_PIXELS) for b in batches)
    assert shard_batches(small, 16) == shard_batches(small, 16, None)  # small photos: batched by count as before
    assert shard_batches([item(0, 9000, 9000), item(1, 9000, 9000)], 16, None) == [
        [item(0, 9000, 9000), item(1, 9000, 9000)]
    ]


KILLED_FLOW = """
import os, sys, time
from distributed import Client
from latentpress.infra.cluster import dask_scheduler
with dask_scheduler(None, 1) as address, Client(address) as client:
    print(client.run_on_scheduler(os.getpid), flush=True)
    time.sleep(600)
"""


def test_the_scheduler_of_a_killed_flow_closes_itself() -> None:
    flow = subprocess.Popen([sys.executable, "-c", KILLED_FLOW], stdout=subprocess.PIPE, text=True)
    try:
        scheduler = int(flow.stdout.readline())
        assert psutil.pid_exists(scheduler)
    finally:
        flow.kill()  # SIGKILL: nothing of the flow's own cleanup runs
        flow.wait()
    gone = psutil.wait_procs([psutil.Process(scheduler)], timeout=30)[0]
    assert [p.pid for p in gone] == [scheduler]
