"""Storage faults: transient ones are retried with backoff at the storage layer and
logged once; an archive run through a proxy that resets, refuses and black-holes
connections finishes (or fails clearly and the next run finishes) with every object
and ledger row present once and intact."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import fsspec
import numpy as np
import pytest
from faultproxy import FaultProxy
from PIL import Image

from latentpress.infra import faults, storage
from latentpress.infra.collection import archived_items
from latentpress.infra.faults import is_transient, retrying
from latentpress.infra.layout import read_manifest, unpack_image
from latentpress.infra.ledger import read_ledger

BIN = Path(sys.executable).parent / "latentpress"


def test_transient_faults_are_retried_and_logged_once(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    monkeypatch.setattr(faults, "FIRST_DELAY", 0.01)
    calls = []

    @retrying
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionResetError(104, "Connection reset by peer")
        return "done"

    with caplog.at_level(logging.WARNING, logger="latentpress.storage"):
        assert flaky() == "done"
    assert len(calls) == 4
    assert [r.getMessage().split(" (")[0].split(" after")[0] for r in caplog.records] == [
        "storage fault",
        "storage answers again",
    ]


def test_other_errors_and_long_outages_propagate(monkeypatch) -> None:
    monkeypatch.setattr(faults, "FIRST_DELAY", 0.01)
    monkeypatch.setattr(faults, "RETRY_SECONDS", 0.1)
    calls = []

    @retrying
    def missing() -> None:
        calls.append(1)
        raise FileNotFoundError("no such object")

    with pytest.raises(FileNotFoundError):
        missing()
    assert len(calls) == 1

    @retrying
    def down() -> None:
        raise TimeoutError("read timed out")

    with pytest.raises(TimeoutError):
        down()


def test_wrapped_network_errors_are_transient() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as exc:
            raise OSError("s3fs could not reach the endpoint") from exc
    except OSError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(PermissionError("Access Denied"))


@pytest.mark.e2e
def test_archive_through_a_faulty_network(s3_root: str, tmp_path: Path, kodak_crop: np.ndarray) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        Image.fromarray(np.roll(kodak_crop, 11 * i, axis=0)[:64, :64]).save(photos / f"p{i}.png")
    server = urlparse(os.environ["FSSPEC_S3_ENDPOINT_URL"])
    schedule = [("pass", 1.5), ("reset", 2.0), ("pass", 1.0), ("refuse", 3.0), ("pass", 1.0), ("blackhole", 4.0)]
    proxy = FaultProxy((server.hostname, server.port), schedule).start()
    env = {**os.environ, "FSSPEC_S3_ENDPOINT_URL": proxy.url,
           "FSSPEC_S3": json.dumps({"config_kwargs": {"connect_timeout": 2, "read_timeout": 3,
                                                      "retries": {"max_attempts": 1}}})}  # fmt: skip
    command = [str(BIN), "archive", str(photos), s3_root, "--codec", "jpeg@50", "--local"]
    try:
        runs = [subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)]
        if runs[0].returncode != 0:  # a clear failure; the next run finishes the work
            assert runs[0].stderr.strip(), runs[0]
            runs.append(subprocess.run(command, env=env, capture_output=True, text=True, timeout=600))
    finally:
        proxy.stop()
    assert runs[-1].returncode == 0, [r.stderr for r in runs]
    assert {"reset", "refuse", "blackhole"} <= proxy.seen
    rows = read_ledger(f"{s3_root}/ledger")  # straight to the server from here on
    assert len(rows) == 6 and rows["image_id"].is_unique and (rows["status"] == "ok").all()
    assert read_manifest(s3_root)["configs"][0]["key"] == "jpeg.default.q50"
    assert len(archived_items(s3_root)) == 6
    from latentpress.infra import storage

    for image_id in rows["image_id"]:
        url = f"{s3_root}/images/jpeg.default.q50/{image_id}.lpc"
        container, _ = unpack_image(storage.read_bytes(url), url, image_id)
        assert int(rows.set_index("image_id").loc[image_id, "bytes"]) == len(storage.read_bytes(url))


def _put_through_black_hole(s3_root: str, data: bytes, read_timeout: float) -> BaseException | None:
    """What ``storage.put`` of ``data`` raises through a proxy that accepts connections
    and never answers (None if it returned), or fail if it is still waiting after 30 s."""
    server = urlparse(os.environ["FSSPEC_S3_ENDPOINT_URL"])
    proxy = FaultProxy((server.hostname, server.port), [("blackhole", 60.0)]).start()
    fs = fsspec.filesystem("s3", **storage.options(s3_root), endpoint_url=proxy.url, skip_instance_cache=True,
                           config_kwargs={"connect_timeout": 1, "read_timeout": read_timeout,
                                          "retries": {"max_attempts": 1}})  # fmt: skip
    outcome: list[BaseException | None] = []

    def put() -> None:
        try:
            storage.put(fs, f"{s3_root.removeprefix('s3://')}/object", data)
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - the test inspects whatever was raised
            outcome.append(exc)

    worker = threading.Thread(target=put, daemon=True)
    worker.start()
    worker.join(30)
    proxy.stop()
    assert outcome, "the PUT is still waiting on a server that never answers"
    return outcome[0]


def test_a_put_to_a_silent_server_ends_at_the_read_timeout(s3_root: str) -> None:
    # botocore's Expect: 100-continue made aiohttp wait for an answer with no timeout
    error = _put_through_black_hole(s3_root, b"x" * 1000, read_timeout=1)
    assert error is not None and is_transient(error), error


def test_a_put_body_nobody_reads_ends_at_its_deadline(s3_root: str, monkeypatch) -> None:
    monkeypatch.setattr(storage, "PUT_SECONDS", 2.0)
    monkeypatch.setattr(storage, "PUT_BYTES_PER_SECOND", 1 << 30)
    error = _put_through_black_hole(s3_root, bytes(64 << 20), read_timeout=600)
    assert isinstance(error, TimeoutError), error
    assert is_transient(error)


def test_s3_requests_are_configured_when_s3_is_first_used_not_on_import() -> None:
    code = (
        "from botocore import handlers\n"
        "from latentpress.infra import storage\n"
        "def expecting(): return any(s[1] is handlers.add_expect_header for s in handlers.BUILTIN_HANDLERS)\n"
        "before = expecting(); storage.options('/tmp/local'); local = expecting()\n"
        "storage.options('s3://bucket/archive'); print(before, local, expecting())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["True", "True", "False"]


def test_an_outage_of_a_minute_is_ridden_out(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(faults.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(faults.time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))

    @retrying
    def read() -> bytes:
        if clock[0] < 60.0:
            raise ConnectionRefusedError(111, "Connection refused")
        return b"data"

    assert read() == b"data" and 60.0 <= clock[0] <= faults.RETRY_SECONDS

    clock[0] = 0.0

    @retrying
    def down() -> bytes:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(ConnectionRefusedError):
        down()
    assert clock[0] <= faults.RETRY_SECONDS
