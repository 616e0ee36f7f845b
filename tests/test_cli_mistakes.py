"""A user's mistakes, through the real command: each one gives one line on standard
error naming the problem and the fix, exit status 2, and creates nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

BIN = Path(sys.executable).parent / "latentpress"


def run(*args: str, env: dict | None = None, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120, env=environ)


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 32), (10, 120, 200)).save(folder / "a.png")
    return folder


def test_misspelt_source(tmp_path: Path) -> None:
    result = run("archive", str(tmp_path / "phtos"), str(tmp_path / "archive"), "--codec", "avif@30")
    one_line_error(result, "phtos", "does not exist")
    assert not (tmp_path / "archive").exists()


def test_empty_source(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no photos here")
    result = run("archive", str(tmp_path / "empty"), str(tmp_path / "archive"), "--codec", "avif@30")
    one_line_error(result, "no image files under", ".png")
    assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope@3", "unknown codec 'nope'"),
        ("avif:turbo", "no preset 'turbo'"),
        ("avif@500", "0..100"),
        ("jpeg@x", "bad quality"),
    ],
)
def test_bad_codec_spec(photos: Path, tmp_path: Path, spec: str, message: str) -> None:
    result = run("archive", str(photos), str(tmp_path / "archive"), "--codec", spec)
    one_line_error(result, message)
    assert not (tmp_path / "archive").exists()


def test_s3_without_credentials(s3_bucket: str, photos: Path, tmp_path: Path) -> None:
    # Only the loopback server's address is known: no keys, no instance metadata lookups.
    drop = ("FSSPEC_S3_KEY", "FSSPEC_S3_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_PROFILE")  # fmt: skip
    env = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_CONFIG_FILE": str(tmp_path / "none")}  # fmt: skip
    result = run("archive", str(photos), f"s3://{s3_bucket}/arch", "--codec", "avif@30", env=env, drop=drop)
    one_line_error(result, "AWS_ACCESS_KEY_ID", "FSSPEC_S3_ENDPOINT_URL")
    result = run(
        "archive", f"s3://{s3_bucket}/photos", str(tmp_path / "archive"), "--codec", "avif@30", env=env, drop=drop
    )
    one_line_error(result, "AWS_ACCESS_KEY_ID")
    assert not (tmp_path / "archive").exists()


def test_dead_dask_address(photos: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(
        "archive",
        str(photos),
        str(tmp_path / "archive"),
        "--codec",
        "avif@30",
        "--dask-address",
        f"tcp://127.0.0.1:{port}",
    )
    one_line_error(result, f"no Dask scheduler at tcp://127.0.0.1:{port}", "dask scheduler")
    assert not (tmp_path / "archive").exists()


def test_models_folder_not_set(photos: Path, tmp_path: Path) -> None:
    result = run("archive", str(photos), str(tmp_path / "archive"), "--codec", "avif@30", drop=("LATENTPRESS_MODELS",))
    one_line_error(result, "LATENTPRESS_MODELS is not set", "--models")
    result = run(
        "archive",
        str(photos),
        str(tmp_path / "archive"),
        "--codec",
        "latent-q",
        env={"LATENTPRESS_MODELS": str(tmp_path)},
    )
    one_line_error(result, "is not in LATENTPRESS_MODELS")
    assert not (tmp_path / "archive").exists()


def test_restore_of_a_folder_that_is_not_an_archive(photos: Path, tmp_path: Path) -> None:
    result = run("restore", str(photos), str(tmp_path / "out"))
    one_line_error(result, "is not a latentpress archive", "manifest.json")
    assert not (tmp_path / "out").exists()


def test_restore_of_an_archive_whose_collection_is_gone(photos: Path, tmp_path: Path) -> None:
    import shutil

    archive = tmp_path / "archive"
    assert run("archive", str(photos), str(archive), "--codec", "jpeg@50", "--metrics", "psnr").returncode == 0
    shutil.rmtree(archive / "collection")
    result = run("restore", str(archive), str(tmp_path / "out"))
    one_line_error(result, "has no collection", "ARCHIVE/collection/")
    assert not (tmp_path / "out").exists()

    from latentpress.flows.restore import restore
    from latentpress.run import RestoreRun

    with pytest.raises(ValueError, match="has no collection"):  # a library user or a deployment run
        restore(RestoreRun(str(archive), str(tmp_path / "out")))


def test_restore_in_the_original_layout_of_several_configurations(photos: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    assert run("archive", str(photos), str(archive), "--codec", "jpeg@40,80", "--local").returncode == 0
    result = run("restore", str(archive), str(tmp_path / "out"))
    one_line_error(result, "--layout original", "--config", "jpeg.default.q40, jpeg.default.q80", "--layout ids")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["ledger", "summary"], ["ledger", "export"], ["report"]])
def test_ledger_tools_on_a_path_without_a_ledger(photos: Path, tmp_path: Path, command: list[str]) -> None:
    extra = (
        [str(tmp_path / "out.csv")]
        if command[-1] == "export"
        else [str(tmp_path / "report")]
        if command == ["report"]
        else []
    )
    result = run(*command, str(photos), *extra)
    one_line_error(result, f"no ledger at {photos}")
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "report").exists()


def test_local_with_a_cluster_is_a_usage_error(photos: Path, tmp_path: Path) -> None:
    result = run("archive", str(photos), str(tmp_path / "archive"), "--codec", "avif@30", "--local", "--workers", "2")
    one_line_error(result, "--local")


LIGHT = """
import sys
from latentpress.cli import main
status = [main(["codecs"])]
try:
    main(["--help"])
except SystemExit as exit:
    status.append(exit.code)
status.append(main(["archive", "/nowhere", "/tmp/nowhere-archive", "--codec", "clric:turbo"]))
status.append(main(["archive", "/nowhere", "/tmp/nowhere-archive", "--codec", "laduree:tiny@31"]))
heavy = sorted(m for m in ("torch", "diffusers", "prefect", "distributed") if m in sys.modules)
print(status, heavy)
"""


def test_help_codecs_and_spec_checks_load_no_heavy_library() -> None:
    done = subprocess.run([sys.executable, "-c", LIGHT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[0, 0, 2, 2] []"
    assert "no preset 'turbo'" in done.stderr and "multiple of 4" in done.stderr
