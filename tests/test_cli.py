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

from latentpress.infra.ledger import read_ledger
from pipeline_fixtures import dask_processes

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


@pytest.mark.parametrize(
    ("spec", "message"),
    [("nope@3", "unknown codec 'nope'"), ("avif:turbo", "no preset 'turbo'"), ("avif@500", "avif"), ("jpeg@x", "bad quality")],
)
def test_bad_codec_spec_fails_before_any_work(tmp_path: Path, spec: str, message: str) -> None:
    result = run("archive", str(tmp_path), str(tmp_path / "archive"), "--codec", spec, timeout=60)
    assert result.returncode == 1 and message in result.stderr
    assert not (tmp_path / "archive").exists()


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    result = run("archive", str(tmp_path / "absent"), str(tmp_path / "archive"), "--codec", "jpeg@50")
    assert result.returncode == 1 and "absent" in result.stderr


def test_killed_run_resumes_then_restore_and_ledger_tools(mixed_collection: Path, tmp_path: Path) -> None:
    archive, out = tmp_path / "archive", tmp_path / "restored"
    args = ["archive", str(mixed_collection), str(archive), "--codec", "jpeg@30,60", "--codec", "latent-q@1",
            "--workers", "1", "--batch-size", "1"]
    proc = subprocess.Popen([str(BIN), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
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

    result = run("restore", str(archive), str(out), "--config", "jpeg.default.q60", "--workers", "1")
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
    with dask_processes([["--preload", "latentpress.tasks.all"]], prefect_server) as address:
        yield address


def test_archive_on_an_external_dask_cluster(mixed_collection: Path, tmp_path: Path, external_cluster: str, prefect_server: str) -> None:
    archive = tmp_path / "archive"
    result = run(
        "archive", str(mixed_collection), str(archive), "--codec", "avif@30", "--dask-address", external_cluster,
        env={"PREFECT_API_URL": prefect_server},
    )
    assert result.returncode == 0, result.stderr
    assert len(read_ledger(str(archive / "ledger"))) == 3

    from distributed import Client

    with Client(external_cluster, timeout=60) as client:
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert sum(executed.values()) >= 2  # inspect, then compress-and-evaluate ran on that worker
