"""Collection models in the pipeline: trained once on the collection and stored in the
archive, reused by later runs (only new photos encoded), imported with ``--model``,
charged to the images in the ledger, and refused clearly when they are not models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from pipeline_fixtures import real_crops

from latentpress.flows.archive import archive
from latentpress.flows.restore import restore
from latentpress.infra.layout import read_manifest, unpack_model
from latentpress.infra.ledger import read_ledger, summarize, with_rates
from latentpress.run import RestoreRun, Run

BIN = Path(sys.executable).parent / "latentpress"
SPEC = ["glc:tiny@1.5,3"]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, crop in enumerate(real_crops()[:2]):
        Image.fromarray(crop[:64, :64]).save(folder / f"{index}.png")
    return folder


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_trained_once_reused_by_a_grown_collection(photos: Path, tmp_path: Path) -> None:
    arch = tmp_path / "archive"
    first = archive(Run(str(arch), source=str(photos), codecs=SPEC))
    assert first.ok and first.new_rows == 4 and first.counts("train") == {"ok": 2}
    (model,) = (arch / "models" / "glc.tiny" / "taesd").glob("*.lpm")
    container, settings = unpack_model(model.read_bytes())
    assert (container.codec, settings["preset"], settings["images"], container.vae_id) == ("glc", "tiny", 2, "taesd")
    assert read_manifest(str(arch))["models"] == {"glc.tiny": model.stem}
    ledger = with_rates(read_ledger(str(arch / "ledger")))
    assert set(ledger["shared_model_id"]) == {model.stem}
    assert (ledger["bpp"] == 8 * ledger["bytes"] / (64 * 64)).all()  # the payload
    assert (ledger["amortised_bpp"] == ledger["bpp"] + 8 * model.stat().st_size / 2 / (64 * 64)).all()

    before = snapshot(arch / "images") | {"model": model.stat().st_mtime_ns}
    Image.fromarray(real_crops()[2][:64, :64]).save(photos / "2.png")  # the collection grows
    second = archive(Run(str(arch), source=str(photos), codecs=SPEC))
    assert second.ok and "train" not in second.stages and second.new_rows == 2
    written = {o.image_id for o in second.stages["compress"] if not o.cached}
    assert len(written) == 1 and snapshot(arch / "images").items() >= before.items() - {("model", before["model"])}
    assert list((arch / "models" / "glc.tiny" / "taesd").glob("*.lpm")) == [model]
    assert model.stat().st_mtime_ns == before["model"]
    ledger = with_rates(read_ledger(str(arch / "ledger")))
    assert len(ledger) == 6 and (ledger["amortised_bpp"] - ledger["bpp"] == 8 * model.stat().st_size / 3 / 4096).all()
    summary = summarize(read_ledger(str(arch / "ledger")))
    assert (summary["amortised_bpp"] > summary["bpp"]).all()

    restored = restore(RestoreRun(str(arch), str(tmp_path / "out"), layout="ids"))
    assert [o.status for o in restored.stages["restore"]] == ["ok"] * 6


def test_train_command_then_archive_with_that_model(photos: Path, tmp_path: Path) -> None:
    model = tmp_path / "models" / "mine.lpm"
    done = subprocess.run([str(BIN), "train", str(photos), str(model), "--codec", "glc:tiny", "--steps", "20", "--local"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "step 20/20" in done.stderr and "trained on 2 image(s)" in done.stdout
    container, settings = unpack_model(model.read_bytes())
    assert container.codec == "glc" and settings["images"] == 2

    arch = tmp_path / "archive"
    result = archive(Run(str(arch), source=str(photos), codecs=["glc:tiny@2"], model=str(model)))
    assert result.ok and "train" not in result.stages
    (copied,) = (arch / "models" / "glc.tiny" / "taesd").glob("*.lpm")
    assert copied.read_bytes() == model.read_bytes()  # the archive holds its own copy
    assert set(read_ledger(str(arch / "ledger"))["shared_model_id"]) == {copied.stem}

    with pytest.raises(ValueError, match="glc:tiny"):  # a model of another preset
        archive(Run(str(tmp_path / "other"), source=str(photos), codecs=["glc:fast@2"], model=str(model)))


def test_what_is_not_a_model_is_refused_naming_it(photos: Path, tmp_path: Path) -> None:
    arch = tmp_path / "archive"
    bogus = arch / "models" / "glc.tiny" / "taesd" / "0123456789abcdef.lpm"
    bogus.parent.mkdir(parents=True)
    bogus.write_bytes(b"\x89LPC not a model at all")
    with pytest.raises(ValueError, match=f"{bogus} is not a model"):
        archive(Run(str(arch), source=str(photos), codecs=SPEC))
    done = subprocess.run([str(BIN), "archive", str(photos), str(arch), "--codec", "glc:tiny@2", "--model",
                           str(tmp_path / "absent.lpm")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "absent.lpm does not exist" in done.stderr
    done = subprocess.run([str(BIN), "archive", str(photos), str(arch), "--codec", "avif@20", "--train-steps", "5"],
                          capture_output=True, text=True, timeout=120, env=os.environ)  # fmt: skip
    assert done.returncode == 2 and "collection model" in done.stderr


def test_relic_judging_its_time_in_pixels_gets_the_photos(photos: Path, tmp_path: Path, monkeypatch) -> None:
    """A relic preset that searches its denoising time by pixel LPIPS and DISTS is given
    each photo's pixels by the pipeline (without them the codec refuses the photo)."""
    from dataclasses import replace

    from latentpress.codecs.relic.params import PRESETS

    monkeypatch.setitem(PRESETS, "tiny-pixels", replace(PRESETS["tiny"], time_search="pixels"))
    done = archive(Run(str(tmp_path / "archive"), source=str(photos), codecs=["relic:tiny-pixels@1"]))
    assert done.ok and done.counts("compress") == {"ok": 2} and done.new_rows == 2


def test_relic_fitting_its_time_gets_held_out_photos_pixels(tmp_path: Path, monkeypatch) -> None:
    """A relic preset that fits its time on held-out photos gets their pixels from the
    pipeline, in an archive run and in ``train_from_files`` (without them the codec
    refuses to train)."""
    from dataclasses import replace

    from latentpress.codecs import CodecConfig
    from latentpress.codecs.relic.params import PRESETS
    from latentpress.pipeline.collection_models import train_from_files

    monkeypatch.setitem(PRESETS, "tiny-fit", replace(PRESETS["tiny"], time_fit_photos=1))
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, crop in enumerate(real_crops()[:3]):
        Image.fromarray(crop[:64, :64]).save(folder / f"{index}.png")
    done = archive(Run(str(tmp_path / "archive"), source=str(folder), codecs=["relic:tiny-fit@1"]))
    assert done.ok and done.counts("train") == {"ok": 3} and done.new_rows == 3
    files = sorted(str(p) for p in folder.glob("*.png"))
    trained = train_from_files(
        files, str(folder), "taesd", CodecConfig("relic", "tiny-fit", 1.0), str(tmp_path / "m.lpm")
    )
    assert trained.images == 3 and (tmp_path / "m.lpm").stat().st_size > 0


def test_relic_end_to_end_trained_once_and_restored(photos: Path, tmp_path: Path) -> None:
    arch = tmp_path / "archive"
    first = archive(Run(str(arch), source=str(photos), codecs=["relic:tiny@1,4"]))
    assert first.ok and first.counts("train") == {"ok": 2} and first.new_rows == 4
    (model,) = (arch / "models" / "relic.tiny" / "taesd").glob("*.lpm")
    ledger = with_rates(read_ledger(str(arch / "ledger")))
    assert set(ledger["shared_model_id"]) == {model.stem} and set(ledger["codec"]) == {"relic"}
    by_quality = ledger.groupby("quality")["bytes"].sum()
    assert by_quality[1.0] < by_quality[4.0]  # more quality, more bits
    assert ledger["lpips"].between(0, 1).all()

    second = archive(Run(str(arch), source=str(photos), codecs=["relic:tiny@1,4"]))
    assert second.ok and "train" not in second.stages
    restored = restore(RestoreRun(str(arch), str(tmp_path / "out"), layout="ids"))
    assert [o.status for o in restored.stages["restore"]] == ["ok"] * 4
