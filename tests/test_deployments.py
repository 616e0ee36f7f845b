"""prefect.yaml: every deployment names a real flow with valid parameters, and the
README's "Scheduled jobs" steps work for real: a `prefect server start` on
127.0.0.1 with its own PREFECT_HOME, the work pool, `prefect deploy --all` from the
repository's prefect.yaml, a process worker, and runs of nightly-archive,
weekly-verify and restore, checked by their states, logs and files."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
import yaml
from conftest import KODAK, REPO, SHARED
from PIL import Image
from prefect import Flow
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint

DEPLOYMENTS = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
BIN = Path(sys.executable).parent
RUN_SECONDS = 240
"""Most a flow run may take here (a Dask cluster starts in each)."""


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_deployment_points_at_a_flow_with_its_parameters(deployment: dict) -> None:
    entrypoint = deployment["entrypoint"]
    assert ":" not in entrypoint and not entrypoint.endswith(".py")  # a module path: importable by Dask workers
    flow = load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
    assert isinstance(flow, Flow)
    assert flow.fn.__module__ == entrypoint.rsplit(".", 1)[0]
    flow.validate_parameters(deployment.get("parameters", {}))  # raises on unknown, missing or mistyped parameters
    for schedule in deployment.get("schedules", []):
        CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))


def test_nightly_archive_is_scheduled() -> None:
    nightly = next(d for d in DEPLOYMENTS if d["name"] == "nightly-archive")
    assert nightly["entrypoint"].endswith(".archive_flow") and nightly["schedules"]


@dataclass
class PrefectServer:
    """A `prefect server start` of the test's own, and how to reach it."""

    api: str
    env: dict[str, str]

    def prefect(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([str(BIN / "prefect"), "--no-prompt", *args], cwd=REPO, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=180)  # fmt: skip
        assert done.returncode == 0, f"prefect {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done

    def run(self, deployment: str, **params: object) -> str:
        """Start a run of ``deployment`` with ``params``; its flow run id."""
        args = [arg for name, value in params.items() for arg in ("--param", f"{name}={json.dumps(value)}")]
        out = self.prefect("deployment", "run", deployment, *args).stdout
        return re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)

    def wait(self, flow_run: str) -> tuple[str, str, list[str]]:
        """The run's final state type and message, and its log (flow and task runs)."""
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            state = httpx.get(f"{self.api}/flow_runs/{flow_run}").json()["state"]
            if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                break
            time.sleep(1)
        else:
            pytest.fail(f"flow run {flow_run} still {state['type']} after {RUN_SECONDS} s")
        return state["type"], state.get("message") or "", self.log(flow_run)

    def log(self, flow_run: str) -> list[str]:
        """The messages of a finished run's log (its tasks' too), once the flow's last line
        (Prefect's "Finished in state ...") has arrived: logs reach the server after the
        state does."""
        deadline = time.monotonic() + 30
        while True:
            logs = httpx.post(f"{self.api}/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run]}},
                                                                "sort": "TIMESTAMP_ASC", "limit": 200}).json()  # fmt: skip
            if time.monotonic() > deadline or any(
                log["task_run_id"] is None and log["message"].startswith("Finished in state") for log in logs
            ):
                return [log["message"] for log in logs]
            time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flow_runs_exited(worker: subprocess.Popen, timeout: float = 90) -> float:
    """Seconds until every flow-run process the worker started has exited (a run's
    state is final before its process has stopped its Dask cluster and exited)."""
    started = time.monotonic()
    children = psutil.Process(worker.pid).children(recursive=True)
    _, alive = psutil.wait_procs(children, timeout=timeout)
    assert not alive, f"flow-run processes still running {timeout:.0f} s after their runs ended: {alive}"
    return time.monotonic() - started


def start_interruptible(args: list[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` with SIGINT at its default in the child, as from a terminal.
    A command started with ``&`` from a script inherits SIGINT ignored (as this suite
    may be, by whatever runs it), and Prefect's worker stops on SIGTERM by sending
    itself SIGINT: started so, it would never stop."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, **kwargs)
    finally:
        signal.signal(signal.SIGINT, previous)


def stop(proc: subprocess.Popen) -> float:
    """SIGTERM, then SIGKILL after 30 s; seconds until it exited."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return time.monotonic() - started


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1"}  # fmt: skip
    log = open(home / "server.log", "w")  # noqa: SIM115 - open while the server runs
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (home / "server.log").read_text()
            time.sleep(0.5)
        else:
            pytest.fail("prefect server did not answer in 120 s")
        yield PrefectServer(api, env | {"PREFECT_API_URL": api})
    finally:
        stop(server)
        log.close()


def crops(folder: Path) -> None:
    folder.mkdir(parents=True)
    with Image.open(KODAK / "kodim01.png") as img:
        photo = np.asarray(img.convert("RGB"))
    for i in range(2):
        Image.fromarray(photo[64 * i : 64 * i + 64, 200:264]).save(folder / f"crop{i}.png")


@pytest.mark.e2e
def test_scheduled_jobs_as_the_readme_says(prefect_server: PrefectServer, tmp_path: Path) -> None:
    server = prefect_server
    server.prefect("work-pool", "create", "latentpress", "--type", "process")
    deployed = server.prefect("deploy", "--all")
    assert all(d["name"] in deployed.stdout for d in DEPLOYMENTS)
    worker_env = {**server.env, "LATENTPRESS_HOME": str(REPO), "LATENTPRESS_MODELS": str(SHARED / "models"),
                  "PREFECT_WORKER_QUERY_SECONDS": "1"}  # fmt: skip
    worker_log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - open while the worker runs
    worker = start_interruptible([str(BIN / "prefect"), "worker", "start", "--pool", "latentpress"], cwd=tmp_path,
                                 env=worker_env, stdout=worker_log, stderr=subprocess.STDOUT)  # fmt: skip
    photos, archive, restored = tmp_path / "photos", tmp_path / "archive", tmp_path / "restored"
    crops(photos)
    try:
        run = server.run("archive/nightly-archive", run={"source": str(photos), "archive": str(archive),
                                                         "codecs": ["avif@30"], "cluster": {"workers": 1}})  # fmt: skip
        state, message, log = server.wait(run)
        assert state == "COMPLETED", (message, log)
        assert any(re.fullmatch(r"compress and evaluate: 2/2 images.*", line) for line in log), log
        assert "compress: 2 done" in log and "evaluate: 2 done" in log and "archive finished, nothing in error" in log
        assert any(line.startswith("compress 2 ok; evaluate 2 ok; 2 ledger row(s)") for line in log), log  # a task run
        assert len(list((archive / "images" / "avif.default.q30").glob("*.lpc"))) == 2

        state, message, log = server.wait(server.run("verify/weekly-verify", archive=str(archive)))
        assert state == "COMPLETED" and any("is intact" in line for line in log), (message, log)
        container = next((archive / "images" / "avif.default.q30").glob("*.lpc"))
        original = container.read_bytes()
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0xFF
        container.write_bytes(bytes(damaged))
        name = container.relative_to(archive).as_posix()
        state, message, log = server.wait(server.run("verify/weekly-verify", archive=str(archive)))
        assert state == "FAILED" and "1 damaged" in message, (message, log)
        assert any(line.startswith(f"damaged: {name}") for line in log), log
        # Prefect's engine logs the exception of every failed deployment run once; we add none.
        assert sum("Traceback" in line for line in log) == 1, "\n".join(log)
        container.write_bytes(original)

        state, message, log = server.wait(server.run("restore/restore", run={
            "archive": str(archive), "out": str(restored), "configs": ["avif.default.q30"], "cluster": {"workers": 1}
        }))  # fmt: skip
        assert state == "COMPLETED", (message, log)
        assert sorted(p.name for p in restored.glob("*.png")) == ["crop0.png", "crop1.png"]

        crops(tmp_path / "more")
        run = server.run("archive/nightly-archive", run={
            "source": str(tmp_path / "more"), "archive": str(tmp_path / "lost"), "codecs": ["latent-q"],
            "vae": str(tmp_path / "no-such-vae"), "cluster": {"workers": 1}
        })  # fmt: skip
        state, message, log = server.wait(run)
        assert state == "FAILED" and "2 image(s) ended in error" in message, (message, log)
        assert any(line.startswith("2 image(s) in error: ") and "no-such-vae" in line for line in log), log
        flow_runs_exited(worker)
    finally:
        seconds = stop(worker)
        worker_log.close()
    tail = (tmp_path / "worker.log").read_text().splitlines()[-20:]
    assert seconds < 10, f"the idle worker took {seconds:.0f} s to stop on SIGTERM; its log ends:\n" + "\n".join(tail)
