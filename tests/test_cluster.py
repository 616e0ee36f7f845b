"""Cluster plumbing: GPU-tagged tasks go to GPU workers, untagged ones anywhere."""

from __future__ import annotations

from distributed import Client
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from latentpress.infra.cluster import cluster_has_gpus, gpu_tasks, task_runner
from pipeline_fixtures import dask_processes


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
            assert cluster_has_gpus(client)
        assert set(where_tasks_run(address, gpu=True, count=8)) == {"gpu-worker"}


def test_cpu_only_cluster_has_no_gpus(dask_address: str) -> None:
    with Client(dask_address) as client:
        assert not cluster_has_gpus(client)
