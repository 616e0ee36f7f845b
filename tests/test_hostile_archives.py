"""Archives that lie: containers stored under another image or configuration, images
that declare more pixels than anything ingest accepts, damaged payloads, malformed
manifests and ledger ids that would name paths. Each gives a clear error naming the
object; nothing is written outside the output folder."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.codecs import CodecError
from latentpress.flows.archive import archive
from latentpress.flows.restore import restore
from latentpress.infra.container import ContainerError
from latentpress.infra.images import MAX_PIXELS
from latentpress.infra.layout import pack_image, read_manifest, unpack_image
from latentpress.pipeline.decode import StoredAt, decode_container
from latentpress.run import RestoreRun, Run


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory: pytest.TempPathFactory, kodak_crop: np.ndarray) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    photos = root / "photos"
    photos.mkdir()
    Image.fromarray(kodak_crop[:64, :96]).save(photos / "a.png")
    Image.fromarray(kodak_crop[64:128, 32:128]).save(photos / "b.png")
    result = archive(Run(str(root / "archive"), source=str(photos), codecs=["avif@30", "latent-q@1"]))
    assert result.ok
    return root / "archive"


def stored(archive_dir: Path, key: str) -> dict[str, Path]:
    return {p.stem: p for p in sorted((archive_dir / "images" / key).glob("*.lpc"))}


def copy_of(archive_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(archive_dir, tmp_path / "archive"))


def test_a_container_names_its_image(small_archive: Path) -> None:
    (first, path), (second, _) = stored(small_archive, "latent-q.default.q1").items()
    data = path.read_bytes()
    unpack_image(data, source=str(path), image_id=first)
    with pytest.raises(ContainerError, match=f"holds image {first}, not {second}"):
        unpack_image(data, source=str(path), image_id=second)


def test_swapped_containers_are_refused_by_restore(small_archive: Path, tmp_path: Path) -> None:
    arch = copy_of(small_archive, tmp_path)
    images = stored(arch, "latent-q.default.q1")
    (a, path_a), (b, path_b) = images.items()
    path_a.write_bytes(path_b.read_bytes())  # b's container under a's id
    avif = stored(arch, "avif.default.q30")
    shutil.copyfile(avif[b], path_b)  # an avif container under a latent-q key

    result = restore(RestoreRun(str(arch), str(tmp_path / "out"), configs=["latent-q.default.q1"]))
    reasons = {o.image_id: o.reason for o in result.stages["restore"]}
    assert {o.status for o in result.stages["restore"]} == {"error"}
    assert f"holds image {b}, not {a}" in reasons[a]
    assert "holds configuration avif.default.q30, not latent-q.default.q1" in reasons[b]
    assert (tmp_path / "out" / "restored.csv").exists()
    assert not list((tmp_path / "out").rglob("*.png"))


def test_an_image_larger_than_ingest_accepts_is_refused_before_decoding(tmp_path: Path) -> None:
    side = 16384  # 2**28 pixels, more than MAX_PIXELS; a tiny latent-q stream of a constant latent
    assert side * side > MAX_PIXELS
    payload = struct.pack("<BHIIf", 1, 4, side // 8, side // 8, 1.0)
    data = pack_image(codec="latent-q", codec_version=1, config={"codec": "latent-q", "preset": "default", "quality": 1.0},
                      payload=payload, width=side, height=side, vae_id="taesd", image_id="0123456789abcdef")  # fmt: skip
    assert len(data) < 400
    with pytest.raises(ContainerError, match=f"declares a {side}x{side} image, over the limit"):
        decode_container(data, "taesd", str(tmp_path), StoredAt("bomb.lpc"))


def test_library_errors_from_a_payload_become_codec_errors(small_archive: Path) -> None:
    image_id, path = next(iter(stored(small_archive, "avif.default.q30").items()))
    container, config = unpack_image(path.read_bytes())
    payload = container.sections["payload"]
    damaged = payload[:40] + bytes(len(payload) - 40)  # the AVIF header survives, the data is gone
    data = pack_image(codec="avif", codec_version=container.codec_version, config=config, payload=damaged,
                      width=container.width, height=container.height, vae_id="", image_id=image_id)  # fmt: skip
    with pytest.raises(CodecError, match="damaged.lpc"):
        decode_container(data, "taesd", str(small_archive), StoredAt("damaged.lpc", image_id, "avif.default.q30"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("configs"), "'configs': missing or not a list"),
        (lambda m: m.update(format=9), "unsupported manifest format 9"),
        (lambda m: m["configs"][0].update(key="../../etc"), "'configs[0]': malformed codec configuration key"),
        (lambda m: m["configs"].append({"key": "x"}), "not an object with key, codec, preset, quality"),
        (lambda m: m.update(vae=3), "'vae': missing or not a string"),
    ],
)
def test_malformed_manifests_name_the_field(small_archive: Path, tmp_path: Path, change, message: str) -> None:
    arch = copy_of(small_archive, tmp_path)
    manifest = json.loads((arch / "manifest.json").read_text())
    change(manifest)
    (arch / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="manifest.json: ") as caught:
        read_manifest(str(arch))
    assert message in str(caught.value)


def test_report_writes_no_file_outside_its_folder(small_archive: Path, tmp_path: Path) -> None:
    from latentpress.infra.ledger import read_ledger
    from latentpress.report.build import write_report

    arch = copy_of(small_archive, tmp_path)
    ledger = read_ledger(str(arch / "ledger"))
    hostile = ledger.assign(image_id=ledger["image_id"].where(ledger["image_id"] != ledger["image_id"].iloc[0],
                                                               "../../escaped"))  # fmt: skip
    part = next((arch / "ledger").rglob("*.parquet"))
    shutil.rmtree(arch / "ledger")
    part.parent.mkdir(parents=True)
    hostile.drop(columns=["codec"]).to_parquet(part)  # codec is the partition column
    out = tmp_path / "deep" / "er" / "report"
    write_report(str(arch / "ledger"), str(out), archive=str(arch))
    written = {p.resolve() for p in tmp_path.rglob("*.png")} - {p.resolve() for p in arch.rglob("*.png")}
    assert written and all(out.resolve() in p.parents for p in written)
    assert not list(tmp_path.rglob("escaped*"))


def test_one_damaged_container_fails_its_image_alone(small_archive: Path, tmp_path: Path) -> None:
    arch = copy_of(small_archive, tmp_path)
    (bad, path), (good, _) = stored(arch, "avif.default.q30").items()
    container, config = unpack_image(path.read_bytes())
    payload = container.sections["payload"]
    path.write_bytes(pack_image(codec="avif", codec_version=container.codec_version, config=config,
                                payload=payload[:40] + bytes(len(payload) - 40), width=container.width,
                                height=container.height, vae_id="", image_id=bad))  # fmt: skip
    result = restore(RestoreRun(str(arch), str(tmp_path / "out"), configs=["avif.default.q30"]))
    outcomes = {o.image_id: o for o in result.stages["restore"]}
    assert outcomes[good].status == "ok" and Path(outcomes[good].path).exists()
    assert outcomes[bad].status == "error" and "CodecError" in outcomes[bad].reason
    index = (tmp_path / "out" / "restored.csv").read_text().splitlines()
    assert len(index) == 3 and any(line.startswith(f"{bad},avif.default.q30,error") for line in index)


def test_a_manifest_naming_an_unknown_codec_is_a_clear_error(small_archive: Path, tmp_path: Path) -> None:
    arch = copy_of(small_archive, tmp_path)
    manifest = json.loads((arch / "manifest.json").read_text())
    manifest["configs"][0]["codec"] = "nope"
    (arch / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ValueError, match=f"manifest configuration {manifest['configs'][0]['key']}: unknown codec 'nope'"
    ):
        restore(RestoreRun(str(arch), str(tmp_path / "out"), layout="ids"))


def test_a_tiny_container_declaring_a_huge_image_is_refused_by_restore(small_archive: Path, tmp_path: Path) -> None:
    arch = copy_of(small_archive, tmp_path)
    (image_id, path), _ = stored(arch, "latent-q.default.q1").items()
    side = 8192  # under the pixel limit: only the image's recorded size gives it away
    payload = struct.pack("<BHIIf", 1, 4, side // 8, side // 8, 1.0)
    path.write_bytes(pack_image(codec="latent-q", codec_version=1, config={"codec": "latent-q", "preset": "default",
                                "quality": 1.0}, payload=payload, width=side, height=side, vae_id="taesd",
                                image_id=image_id))  # fmt: skip
    assert path.stat().st_size < 400
    result = restore(RestoreRun(str(arch), str(tmp_path / "out"), configs=["latent-q.default.q1"]))
    outcome = next(o for o in result.stages["restore"] if o.image_id == image_id)
    assert outcome.status == "error" and f"declares a {side}x{side} image, but the image is" in outcome.reason
