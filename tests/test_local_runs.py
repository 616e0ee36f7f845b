"""The whole archive path in this process, as a library user runs it (no Prefect, no
Dask): outcomes per image, reruns that redo nothing, and errors that the next run
finishes once the environment is fixed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from latentpress.codecs import get_codec
from latentpress.flows.archive import archive
from latentpress.flows.evaluate import evaluate
from latentpress.flows.restore import restore
from latentpress.infra.ledger import read_ledger
from latentpress.pipeline.decode import decode_container
from latentpress.run import RestoreRun, Run


def test_archive_and_restore_in_process(mixed_collection: Path, tmp_path: Path) -> None:
    arch = str(tmp_path / "archive")
    result = archive(Run(arch, source=str(mixed_collection), codecs=["webp@40", "jxl@30", "latent-q@1"]))

    assert result.ok and result.new_rows == 9
    assert sorted(i.status for i in result.items) == ["ok"] * 3 + ["rejected"] * 3
    assert {stage: result.counts(stage) for stage in result.stages} == {
        "latents": {"ok": 3}, "compress": {"ok": 9}, "evaluate": {"ok": 9}}  # fmt: skip
    ledger = read_ledger(f"{arch}/ledger")
    assert len(ledger) == 9 and set(ledger["status"]) == {"ok"}
    libraries = ledger.groupby("codec")["codec_library"].unique()  # a reference codec's library, with its version
    assert len(libraries["webp"]) == 1 and re.fullmatch(r"Pillow [\d.]+, libwebp \d+\.\d+\.\d+", libraries["webp"][0])
    assert list(libraries["jxl"]) == [get_codec("jxl").library()]
    assert ledger.loc[ledger["codec"] == "latent-q", "codec_library"].isna().all()
    jxl = ledger[ledger["codec"] == "jxl"]
    assert (jxl["bpp"].between(0.05, 2)).all() and (jxl["psnr"] > 22).all()

    restored = restore(RestoreRun(arch, str(tmp_path / "out"), configs=["latent-q.default.q1"]))
    assert [o.status for o in restored.stages["restore"]] == ["ok"] * 3
    for outcome in restored.stages["restore"]:
        data = (tmp_path / "archive" / "images" / outcome.config_key / f"{outcome.image_id}.lpc").read_bytes()
        expected, _ = decode_container(data, "taesd", arch)
        np.testing.assert_array_equal(np.asarray(Image.open(outcome.path)), expected)

    again = archive(Run(arch, source=str(mixed_collection), codecs=["webp@40", "jxl@30", "latent-q@1"]))
    assert again.ok and again.new_rows == 0
    assert {o.cached for o in again.stages["compress"]} == {True}  # from the ledger: no container opened
    assert "latents" not in again.stages and "evaluate" not in again.stages and len(read_ledger(f"{arch}/ledger")) == 9


RUN = """
import json, sys
from latentpress.codecs import get_codec
from latentpress.flows.archive import archive
from latentpress.run import Run
from latentpress.pipeline.outcomes import errors_by_reason
result = archive(Run(sys.argv[2], source=sys.argv[1], codecs=["avif@30", "latent-q@1"]))
stages = {stage: result.counts(stage) for stage in result.stages}
print(json.dumps([result.ok, result.new_rows, stages, list(errors_by_reason(result.errors))]))
"""


def run_archive(source: Path, arch: str, models: str) -> list:
    """An in-process archive run in a fresh process (no networks loaded before)."""
    import json

    env = {**os.environ, "LATENTPRESS_MODELS": models}
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(source), arch], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_missing_models_end_in_error_and_the_next_run_completes(mixed_collection: Path, tmp_path: Path) -> None:
    arch = str(tmp_path / "archive")
    ok, rows, stages, reasons = run_archive(mixed_collection, arch, str(tmp_path / "no-models-here"))

    assert not ok and rows == 0
    assert any("'taesd' not found" in r for r in reasons) and any("lpips" in r for r in reasons)
    assert stages["compress"] == {"ok": 3, "error": 3}  # avif stored, latent-q had no latent
    assert stages["evaluate"] == {"error": 3}
    assert read_ledger(f"{arch}/ledger").empty  # errors are never recorded as done

    ok, rows, stages, reasons = run_archive(mixed_collection, arch, os.environ["LATENTPRESS_MODELS"])
    assert ok and rows == 6 and reasons == []
    assert stages["compress"] == {"cached": 3, "ok": 3}
    ledger = read_ledger(f"{arch}/ledger")
    assert (
        len(ledger) == 6 and set(ledger["status"]) == {"ok"} and not ledger.duplicated(["image_id", "config_key"]).any()
    )


def test_refusals_are_recorded_once_and_not_retried(mixed_collection: Path, tmp_path: Path) -> None:
    arch = str(tmp_path / "archive")
    # 0.001 bpp leaves no room for a clric stream on these crops: a refusal, not an error.
    first = archive(Run(arch, source=str(mixed_collection), codecs=["clric:fast@bpp0.001"]))
    assert first.ok and first.counts("compress") == {"rejected": 3}
    ledger = read_ledger(f"{arch}/ledger")
    assert list(ledger["status"]) == ["rejected"] * 3 and ledger["error"].str.contains("no room").all()

    second = archive(Run(arch, source=str(mixed_collection), codecs=["clric:fast@bpp0.001"]))
    assert second.counts("compress") == {"rejected": 3}
    assert all(o.cached for o in second.stages["compress"]) and len(read_ledger(f"{arch}/ledger")) == 3
    assert evaluate(Run(arch)).new_rows == 0


LIBRARY = """
import sys
from latentpress.codecs import get_codec
from latentpress.flows.archive import archive
from latentpress.run import Run
result = archive(Run(sys.argv[2], source=sys.argv[1], codecs=["jpeg@50"]))
print(result.ok, result.new_rows, sorted(m for m in ("prefect", "distributed") if m in sys.modules))
"""


def test_library_run_needs_neither_prefect_nor_dask(mixed_collection: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", LIBRARY, str(mixed_collection), str(tmp_path / "archive")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "True 3 []"
