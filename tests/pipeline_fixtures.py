"""Fixtures for the end-to-end tests: a Prefect API, a Dask cluster, small collections."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import KODAK
from PIL import Image

from latentpress.run import Cluster


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One temporary Prefect server on 127.0.0.1 for the whole test session."""
    from latentpress.infra.cluster import apply_quiet_defaults, prefect_api

    apply_quiet_defaults()
    with prefect_api() as url:
        yield url


@pytest.fixture(scope="session")
def dask_address(prefect_server: str, s3_bucket: str) -> Iterator[str]:
    """A two-worker local Dask cluster shared by the end-to-end tests.

    Started after the Prefect server and the S3 settings, which its workers inherit.
    """
    from latentpress.infra.cluster import dask_scheduler

    with dask_scheduler(None, workers=2) as address:
        yield address


@pytest.fixture(scope="session")
def cluster(dask_address: str) -> Cluster:
    """The shared Dask cluster, as a run names it."""
    return Cluster(dask_address)


@contextmanager
def dask_processes(worker_args: list[list[str]], prefect_url: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A `dask scheduler` and one `dask worker` per entry of ``worker_args`` (extra
    command-line arguments), started as a user would, on 127.0.0.1; ``env``: the
    workers' environment differs from this process's by these variables."""
    from distributed import Client

    dask = str(Path(sys.executable).parent / "dask")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    environ = {**os.environ, "PREFECT_API_URL": prefect_url}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    command = [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    procs = [subprocess.Popen(command, env=environ, **quiet)]
    procs += [
        subprocess.Popen(
            [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard", *args],
            env={**environ, **(env or {})},
            **quiet,
        )
        for args in worker_args
    ]
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(len(worker_args), timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=60)


def real_crops() -> list[np.ndarray]:
    """Three small crops of real photos, of different sizes (one not a multiple of 8)."""
    crops = []
    for name, (top, left, h, w) in {
        "kodim01.png": (100, 200, 64, 96),
        "kodim03.png": (200, 300, 72, 100),
        "kodim05.png": (50, 60, 80, 64),
    }.items():
        with Image.open(KODAK / name) as img:
            crops.append(np.asarray(img.convert("RGB"))[top : top + h, left : left + w].copy())
    return crops


def write_good_images(folder: Path) -> list[Path]:
    """PNG, JPEG and (in a subfolder) CMYK JPEG files of real crops."""
    first, second, third = real_crops()
    (folder / "nested").mkdir(parents=True, exist_ok=True)
    paths = [folder / "a.png", folder / "b.jpg", folder / "nested" / "c_cmyk.jpg"]
    Image.fromarray(first).save(paths[0])
    Image.fromarray(second).save(paths[1], quality=95)
    Image.fromarray(third).convert("CMYK").save(paths[2], quality=95)
    return paths


def write_bad_files(folder: Path) -> dict[str, str]:
    """A truncated JPEG, a zero-byte file and a text file named .png; name -> kind."""
    buffer = io.BytesIO()
    Image.fromarray(real_crops()[0]).save(buffer, format="JPEG", quality=95)
    data = buffer.getvalue()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("these are not pixels\n")
    return {"truncated.jpg": "truncated", "empty.png": "zero-byte", "notes.png": "not an image"}


@pytest.fixture
def mixed_collection(tmp_path: Path) -> Path:
    """A folder of three good images (one CMYK) and three bad files."""
    folder = tmp_path / "photos"
    folder.mkdir()
    write_good_images(folder)
    write_bad_files(folder)
    return folder


@pytest.fixture
def latent_archive(tmp_path: Path) -> tuple[str, list]:
    """An archive folder with the TAESD latents of three 64x64 real crops (no codec
    run yet), and their items (one shard)."""
    from latentpress.infra.layout import ArchiveLayout
    from latentpress.pipeline.encode import encode_latents
    from latentpress.pipeline.ingest import assign_shards, inspect_image, list_images

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, crop in enumerate(real_crops()):
        Image.fromarray(crop[:64, :64]).save(photos / f"{i}.png")
    items = assign_shards([inspect_image(url, str(photos)) for url in list_images(str(photos))], shard_size=64)
    archive = str(tmp_path / "archive")
    assert {o.status for o in encode_latents(items, ArchiveLayout(archive).latents, "taesd")} == {"ok"}
    return archive, items
