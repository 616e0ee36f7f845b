"""End to end through Prefect and Dask: archive, ledger, restore, idempotent reruns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.codecs import get_codec
from latentpress.flows.prefect_flows import archive_flow, compress_flow, ingest_flow, restore_flow
from latentpress.infra import storage
from latentpress.infra.collection import read_collection
from latentpress.infra.latent_store import LatentStore
from latentpress.infra.layout import ArchiveLayout, read_manifest, unpack_image
from latentpress.infra.ledger import read_ledger, with_rates
from latentpress.pipeline.decode import decode_container
from latentpress.run import Cluster, RestoreRun, Run

pytestmark = pytest.mark.e2e

CODECS = ["jpeg@50", "latent-q@0.5"]


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder`` with its modification time and contents."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()
    }


def test_archive_evaluate_restore_and_rerun(mixed_collection: Path, tmp_path: Path, cluster: Cluster) -> None:
    archive = tmp_path / "archive"
    report = archive_flow(Run(str(archive), source=str(mixed_collection), codecs=CODECS, cluster=cluster))

    # Good images (a CMYK JPEG in a subfolder among them) archived, bad ones recorded with reasons.
    by_name = {item.name: item for item in read_collection(str(archive))}
    assert {n for n, i in by_name.items() if i.status == "ok"} == {"a.png", "b.jpg", "nested/c_cmyk.jpg"}
    for bad in ("truncated.jpg", "empty.png", "notes.png"):
        assert by_name[bad].status == "rejected" and bad in by_name[bad].error
    assert "empty" in by_name["empty.png"].error or "zero" in by_name["empty.png"].error
    assert sum(i.status == "rejected" for i in report.items) == 3 and report.ok

    # One ok ledger row per (good image, configuration); rate from the stored object's size.
    ledger = read_ledger(str(archive / "ledger"))
    assert len(ledger) == 6 and set(ledger["status"]) == {"ok"}
    assert sorted(set(ledger["config_key"])) == ["jpeg.default.q50", "latent-q.default.q0.5"]
    for row in ledger.itertuples():
        stored = archive / "images" / row.config_key / f"{row.image_id}.lpc"
        assert row.bytes == stored.stat().st_size
        assert row.bpp == pytest.approx(8 * stored.stat().st_size / (row.width * row.height))
        assert 0 <= row.lpips < 0.6 and 0 <= row.dists < 0.6 and 0 < row.ms_ssim <= 1
        assert row.encode_seconds > 0 and row.decode_seconds > 0
    jpeg = ledger[ledger["codec"] == "jpeg"]
    assert (jpeg["psnr"] > 25).all()
    latent = ledger[ledger["codec"] == "latent-q"]
    assert (latent["psnr"] > 17).all() and set(latent["vae_id"]) == {"taesd"}

    # Each stored latent-q container decodes to exactly the encoder's reconstruction.
    store = LatentStore(str(archive / "latents"), "taesd")
    codec = get_codec("latent-q")
    for image_id in latent["image_id"]:
        container, config = unpack_image(
            (archive / "images" / "latent-q.default.q0.5" / f"{image_id}.lpc").read_bytes()
        )
        assert config == {"codec": "latent-q", "preset": "default", "quality": 0.5}
        latent_in, _ = store.read(image_id)
        from latentpress.codecs import DecodeContext

        decoded = codec.decode(container.sections["payload"], DecodeContext(container.width, container.height, "taesd"))
        np.testing.assert_array_equal(decoded, np.round(latent_in / 0.5).astype(np.float32) * np.float32(0.5))

    # Restore writes images of the original sizes, equal to the decoded containers.
    out = tmp_path / "restored"
    restored = restore_flow(RestoreRun(str(archive), str(out), layout="ids", cluster=cluster)).stages["restore"]
    assert {(o.status, o.cached) for o in restored} == {("ok", False)} and len(restored) == 6
    for item in (i for i in by_name.values() if i.status == "ok"):
        for key in ("jpeg.default.q50", "latent-q.default.q0.5"):
            restored = np.asarray(Image.open(out / key / f"{item.image_id}.png"))
            assert restored.shape == (item.height, item.width, 3)
            expected, _ = decode_container(
                (archive / "images" / key / f"{item.image_id}.lpc").read_bytes(), "taesd", str(archive)
            )
            np.testing.assert_array_equal(restored, expected)
    assert "nested/c_cmyk.jpg" in (out / "restored.csv").read_text()

    # A second run does no codec work, rewrites no object and adds no ledger row.
    before = snapshot(archive / "images") | {f"ledger/{k}": v for k, v in snapshot(archive / "ledger").items()}
    again = archive_flow(Run(str(archive), source=str(mixed_collection), codecs=CODECS, cluster=cluster))
    after = snapshot(archive / "images") | {f"ledger/{k}": v for k, v in snapshot(archive / "ledger").items()}
    assert again.new_rows == 0 and after == before
    assert {(o.status, o.cached) for o in again.stages["compress"]} == {("ok", True)}
    assert len(read_ledger(str(archive / "ledger"))) == 6


def test_rerun_finishes_only_missing_work(mixed_collection: Path, tmp_path: Path, cluster: Cluster) -> None:
    archive = tmp_path / "archive"
    archive_flow(Run(str(archive), source=str(mixed_collection), codecs=["jpeg@40"], cluster=cluster))
    # Lose one container, as if the run had stopped before writing it.
    lost = next((archive / "images" / "jpeg.default.q40").glob("*.lpc"))
    kept = {p: p.stat().st_mtime_ns for p in (archive / "images").rglob("*.lpc") if p != lost}
    lost.unlink()
    ledger_files = set((archive / "ledger").rglob("*.parquet"))

    report = archive_flow(
        Run(
            str(archive),
            source=str(mixed_collection),
            codecs=["jpeg@40", "webp@30"],
            cluster=cluster,
        )
    )

    written = {(o.config_key, o.image_id) for o in report.stages["compress"] if o.status == "ok" and not o.cached}
    assert ("jpeg.default.q40", lost.stem) in written
    assert len(written) == 4  # the lost one and three webp
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert ledger_files <= set((archive / "ledger").rglob("*.parquet"))
    ledger = read_ledger(str(archive / "ledger"))
    # The lost container's image already had its row: no duplicate, webp rows added.
    assert len(ledger) == 6 and not ledger.duplicated(["image_id", "config_key"]).any()
    manifest = read_manifest(str(archive))
    assert [c["key"] for c in manifest["configs"]] == ["jpeg.default.q40", "webp.default.q30"]


def test_archive_evaluates_earlier_containers_the_ledger_lacks(
    mixed_collection: Path, tmp_path: Path, cluster: Cluster
) -> None:
    archive = str(tmp_path / "archive")
    ingest_flow(Run(archive, source=str(mixed_collection), cluster=cluster))
    compress_flow(Run(archive, codecs=["webp@30"], cluster=cluster))  # stopped before evaluating
    assert len(read_ledger(ArchiveLayout(archive).ledger)) == 0

    report = archive_flow(Run(archive, source=str(mixed_collection), codecs=["jpeg@40"], cluster=cluster))

    ledger = read_ledger(ArchiveLayout(archive).ledger)
    assert report.new_rows == 6 and len(ledger) == 6 and set(ledger["status"]) == {"ok"}
    assert ledger.groupby("config_key").size().to_dict() == {"jpeg.default.q40": 3, "webp.default.q30": 3}
    assert [c["key"] for c in read_manifest(archive)["configs"]] == ["jpeg.default.q40", "webp.default.q30"]


def test_compress_then_evaluate_on_s3(mixed_collection: Path, s3_root: str, cluster: Cluster) -> None:
    source = f"{s3_root}/photos"
    for path in mixed_collection.rglob("*"):
        if path.is_file():
            storage.write_bytes_atomic(f"{source}/{path.relative_to(mixed_collection).as_posix()}", path.read_bytes())
    archive, ledger = f"{s3_root}/archive", f"{s3_root}/elsewhere/ledger"

    report = archive_flow(
        Run(
            archive,
            source=source,
            codecs=["webp@50", "latent-q@1"],
            ledger=ledger,
            cluster=cluster,
        )
    )

    assert sum(i.status == "rejected" for i in report.items) == 3 and report.new_rows == 6
    frame = read_ledger(ledger)
    assert len(frame) == 6 and set(frame["status"]) == {"ok"}
    for row in frame.itertuples():
        url = ArchiveLayout(archive).image(row.config_key, row.image_id)
        assert row.bytes == storage.size(url)
    assert not storage.exists(f"{archive}/ledger")
    restored = restore_flow(RestoreRun(archive, f"{s3_root}/restored", layout="ids", cluster=cluster))
    assert {o.status for o in restored.stages["restore"]} == {"ok"}
    again = compress_flow(Run(archive, codecs=["webp@50", "latent-q@1"], ledger=ledger, cluster=cluster))
    assert {(o.status, o.cached) for o in again.stages["compress"]} == {("ok", True)}


def test_ingest_reads_again_only_changed_files(mixed_collection: Path, tmp_path: Path, cluster: Cluster) -> None:
    archive = str(tmp_path / "archive")
    first = {i.source: i for i in ingest_flow(Run(archive, source=str(mixed_collection), cluster=cluster))}
    changed = mixed_collection / "a.png"
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(changed)
    second = {i.source: i for i in ingest_flow(Run(archive, source=str(mixed_collection), cluster=cluster))}
    assert second[str(changed)].image_id != first[str(changed)].image_id
    assert (second[str(changed)].width, second[str(changed)].height) == (48, 40)
    for source, item in first.items():
        if source != str(changed):
            assert second[source] == item
    assert read_collection(archive) == list(ingest_flow(Run(archive, source=str(mixed_collection), cluster=cluster)))


def test_laduree_archive_one_model_per_shard(tmp_path: Path, cluster: Cluster) -> None:
    from pipeline_fixtures import real_crops

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, crop in enumerate(real_crops()):
        Image.fromarray(crop[:64, :64]).save(photos / f"{i}.png")
    archive = tmp_path / "archive"
    report = archive_flow(
        Run(
            str(archive),
            source=str(photos),
            codecs=["laduree:tiny@32"],
            shard_size=2,
            cluster=cluster,
        )
    )

    assert {(o.status, o.cached) for o in report.stages["compress"]} == {("ok", False)}
    models = sorted((archive / "shared" / "laduree.tiny.q32").glob("*.lpm"))
    assert len(models) == 2  # shards of 2 and 1 images
    ledger = with_rates(read_ledger(str(archive / "ledger")))
    assert len(ledger) == 3 and set(ledger["status"]) == {"ok"}
    assert set(ledger["shared_model_id"]) == {m.stem for m in models}
    for row in ledger.itertuples():
        image_bytes = (archive / "images" / row.config_key / f"{row.image_id}.lpc").stat().st_size
        model_bytes = (archive / "shared" / row.config_key / f"{row.shared_model_id}.lpm").stat().st_size
        assert row.shared_model_bytes == model_bytes
        assert row.bpp == pytest.approx(8 * image_bytes / (64 * 64))
        assert row.amortised_bpp == pytest.approx(8 * (image_bytes + model_bytes / row.shared_images) / (64 * 64))
    out = tmp_path / "restored"
    restored = restore_flow(RestoreRun(str(archive), str(out), layout="ids", cluster=cluster))
    assert {o.status for o in restored.stages["restore"]} == {"ok"}
    assert {Image.open(p).size for p in (out / "laduree.tiny.q32").glob("*.png")} == {(64, 64)}
