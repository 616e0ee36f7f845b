"""The `latentpress` command as a user runs it: help, errors, kill and resume, ledger
tools, restore, and an external Dask scheduler and worker on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from pipeline_fixtures import dask_processes

from latentpress.infra.ledger import read_ledger

BIN = Path(sys.executable).parent / "latentpress"


def run(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize(
    "command", [[], ["archive"], ["ingest"], ["compress"], ["evaluate"], ["restore"], ["codecs"], ["ledger", "summary"]]
)
def test_help_everywhere(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0 and "usage: latentpress" in result.stdout


def test_codecs_lists_every_codec() -> None:
    result = run("codecs")
    assert result.returncode == 0
    for name in ("jpeg", "webp", "avif", "latent-q"):
        assert name in result.stdout


def test_killed_run_resumes_then_restore_and_ledger_tools(mixed_collection: Path, tmp_path: Path) -> None:
    archive, out = tmp_path / "archive", tmp_path / "restored"
    args = [
        "archive",
        str(mixed_collection),
        str(archive),
        "--codec",
        "jpeg@30,60",
        "--codec",
        "latent-q@1",
        "--workers",
        "1",
        "--batch-size",
        "1",
    ]
    proc = subprocess.Popen(
        [str(BIN), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 240
    while not list(archive.glob("images/*/*.lpc")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the command, its Prefect server and its Dask workers
    proc.wait()
    assert not (archive / "manifest.json").exists(), "the manifest is written last"

    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert "ledger" in result.stdout and "latent-q" in result.stdout
    ledger = read_ledger(str(archive / "ledger"))
    assert len(ledger) == 9 and set(ledger["status"]) == {"ok"}
    assert not ledger.duplicated(["image_id", "config_key"]).any()

    result = run("restore", str(archive), str(out), "--layout", "ids", "--config", "jpeg.default.q60", "--workers", "1")
    assert result.returncode == 0, result.stderr
    restored = sorted((out / "jpeg.default.q60").glob("*.png"))
    assert len(restored) == 3 and not (out / "latent-q.default.q1").exists()
    sizes = {Image.open(p).size for p in restored}
    assert sizes == {(96, 64), (100, 72), (64, 80)}

    summary = run("ledger", "summary", str(archive / "ledger"))
    assert summary.returncode == 0 and "jpeg" in summary.stdout and "latent-q" in summary.stdout
    exported = tmp_path / "ledger.csv"
    assert run("ledger", "export", str(archive / "ledger"), str(exported)).returncode == 0
    assert len(pd.read_csv(exported)) == 9


@pytest.fixture
def external_cluster(prefect_server: str) -> Iterator[str]:
    """A `dask scheduler` and one `dask worker` started as a user would, on 127.0.0.1."""
    with dask_processes([["--preload", "latentpress.tasks.preload"]], prefect_server) as address:
        yield address


def test_archive_on_an_external_dask_cluster(
    mixed_collection: Path, tmp_path: Path, external_cluster: str, prefect_server: str
) -> None:
    archive = tmp_path / "archive"
    result = run(
        "archive",
        str(mixed_collection),
        str(archive),
        "--codec",
        "avif@30",
        "--dask-address",
        external_cluster,
        env={"PREFECT_API_URL": prefect_server},
    )
    assert result.returncode == 0, result.stderr
    assert len(read_ledger(str(archive / "ledger"))) == 3

    from distributed import Client

    with Client(external_cluster, timeout=60) as client:
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert sum(executed.values()) >= 2  # inspect, then compress-and-evaluate ran on that worker


def test_worker_without_models_ends_in_error_and_the_rerun_completes(
    mixed_collection: Path, tmp_path: Path, prefect_server: str
) -> None:
    archive = tmp_path / "archive"
    args = ["archive", str(mixed_collection), str(archive), "--codec", "avif@30"]
    no_models = {"LATENTPRESS_MODELS": str(tmp_path / "empty")}
    with dask_processes([["--preload", "latentpress.tasks.preload"]], prefect_server, env=no_models) as address:
        first = run(*args, "--dask-address", address, env={"PREFECT_API_URL": prefect_server})
    assert first.returncode == 1, first.stderr
    assert first.stderr.count("weights 'lpips/alex_v0.1_full.pth' not found") == 1  # one line per reason
    assert "error (3)" in first.stderr and "Traceback" not in first.stderr
    assert read_ledger(str(archive / "ledger")).empty  # nothing counted as done

    second = run(*args, "--local")
    assert second.returncode == 0, second.stderr
    ledger = read_ledger(str(archive / "ledger"))
    assert len(ledger) == 3 and set(ledger["status"]) == {"ok"}
    assert len(list((archive / "images" / "avif.default.q30").glob("*.lpc"))) == 3  # stored once, by the first run
