"""Per-image rate control by quality: ``--target-quality`` searches each searchable
codec's knob image by image for the cheapest stream that meets the floor."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.cli import _configs, build_parser, main
from latentpress.codecs import (
    CodecConfig,
    CodecError,
    CodecInput,
    DecodeContext,
    codec_info,
    get_codec,
    parse_codec_spec,
)
from latentpress.codecs.registry import KnobRange
from latentpress.codecs.spec import key_floor, with_floor
from latentpress.infra.latent_store import LatentStore
from latentpress.infra.layout import ArchiveLayout, check_config_key
from latentpress.infra.ledger import latest_rows, read_ledger
from latentpress.infra.model_files import model_id
from latentpress.models.metrics import compute_metrics, metric
from latentpress.models.vae import load_vae
from latentpress.pipeline.quality_search import search
from latentpress.pipeline.selection import read_selection
from latentpress.quality_floors import parse_target

FLOOR = 0.18


def test_knob_ranges_go_from_worst_to_best() -> None:
    assert KnobRange(1, 5).values("higher") == [1.0, 2.0, 3.0, 4.0, 5.0]
    steps = KnobRange(0.1, 10.0, integer=False, steps=5).values("lower")
    assert steps[0] == pytest.approx(10.0) and steps[-1] == pytest.approx(0.1)
    assert np.allclose(np.diff(np.log(steps)), -math.log(100) / 4)


def _bytes(knob: float) -> bytes:
    return b"x" * int(knob)


def test_search_finds_the_first_passing_value_in_few_probes() -> None:
    values = [float(v) for v in range(1, 101)]  # the stream grows with the knob, the error falls
    measured: list[float] = []

    def measure(payload: bytes) -> float:
        measured.append(len(payload))
        return 1.0 / len(payload)

    found = search(values, _bytes, measure, parse_target("lpips<=0.0251"))  # first passing: 40
    assert found.probe.knob == 40 and found.probe.meets and found.probes == len(measured) <= 8
    assert 39 in measured  # the next cheaper value was tried and failed


def test_search_keeps_the_smallest_passing_stream_and_the_best_when_none_passes() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    quality = {1: 0.5, 2: 0.5, 3: 0.1, 4: 0.3, 5: 0.1}  # not monotone: 3 passes, 4 does not
    found = search(values, _bytes, lambda p: quality[len(p)], parse_target("lpips<=0.2"))
    assert found.probe.knob == 3 and found.probe.meets
    best = search(
        values, _bytes, lambda p: {1: 0.9, 2: 0.8, 3: 0.7, 4: 0.6, 5: 0.5}[len(p)], parse_target("lpips<=0.2")
    )
    assert best.probe.knob == 5 and not best.probe.meets and best.probe.value == 0.5
    psnr = search(values, _bytes, lambda p: 20.0 + 3 * len(p), parse_target("psnr>=30"))
    assert psnr.probe.knob == 4


def test_values_the_codec_cannot_code_fail_and_none_at_all_is_a_codec_error() -> None:
    def picky(knob: float) -> bytes:
        if knob < 3:
            raise CodecError("too coarse")
        return _bytes(knob)

    assert search([1.0, 2.0, 3.0, 4.0], picky, lambda p: 0.1, parse_target("lpips<=0.2")).probe.knob == 3

    def never(knob: float) -> bytes:
        raise CodecError("no")

    with pytest.raises(CodecError, match="no knob value could be coded"):
        search([1.0, 2.0], never, lambda p: 0.0, parse_target("lpips<=0.2"))


def test_floor_points_in_specs_keys_and_containers() -> None:
    configs = parse_codec_spec("avif:fast@20,lpips0.15,ms-ssim0.95")
    assert [c.key for c in configs] == ["avif.fast.q20", "avif.fast.lpips0.15", "avif.fast.ms_ssim0.95"]
    assert all(check_config_key(c.key) for c in configs)
    assert str(configs[1].floor) == "lpips<=0.15" and str(key_floor(configs[2].key)) == "ms_ssim>=0.95"
    assert key_floor("avif.fast.q20") is None and key_floor("clric.fast.bpp0.1") is None
    for config in configs:
        assert CodecConfig.from_dict(config.to_dict()) == config
    assert configs[1].to_dict()["target"] == "lpips" and configs[1].params() == codec_info("avif").presets["fast"]
    with pytest.raises(ValueError, match="unknown configuration target"):
        CodecConfig.from_dict({"codec": "avif", "preset": "fast", "quality": 1, "target": "ssim"})
    with pytest.raises(ValueError, match="cannot search"):
        parse_codec_spec("vae@lpips0.1")
    with pytest.raises(ValueError, match="MS-SSIM is at most 1"):
        parse_codec_spec("avif@ms_ssim2")
    target = parse_target("lpips<=0.2")
    assert with_floor(["avif@20", "vae", "latent-q", "avif@40"], target) == [
        "avif@20",
        "vae",
        "latent-q",
        "avif@40",
        "avif:default@lpips0.2",
        "latent-q:default@lpips0.2",
    ]


def test_archive_searches_unless_told_not_to() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["archive", "src", "arch", "--codec", "jpeg@30", "--codec", "vae", "--target-quality", "psnr>=30"]
    )
    assert [c.key for c in _configs(args)] == ["jpeg.default.q30", "vae.default.q16", "jpeg.default.psnr30"]
    args = parser.parse_args(
        ["archive", "src", "arch", "--codec", "jpeg@30", "--target-quality", "psnr>=30", "--no-search"]
    )
    assert [c.key for c in _configs(args)] == ["jpeg.default.q30"]


def test_one_metric_equals_the_full_measurement(kodak_crop: np.ndarray) -> None:
    distorted = np.asarray(Image.open(io.BytesIO(_jpeg(kodak_crop, 20))))
    every = compute_metrics(kodak_crop, distorted)
    for name, value in every.items():
        assert metric(name, kodak_crop, distorted) == pytest.approx(value, rel=1e-6)
    with pytest.raises(ValueError, match="unknown metric"):
        metric("ssim", kodak_crop, distorted)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    codec = get_codec("jpeg")
    item = CodecInput("0" * 16, image.shape[1], image.shape[0], image=image)
    return codec.encode(item, codec.params("default", quality))


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, kodak_dir: Path) -> Path:
    """Real crops, busy to smooth, archived with JPEG and latent-q searched for LPIPS <= FLOOR."""
    root = tmp_path_factory.mktemp("search")
    (root / "photos").mkdir()
    for n, box in ((1, (300, 200, 460, 328)), (3, (0, 0, 160, 128)), (6, (100, 100, 260, 228))):
        with Image.open(kodak_dir / f"kodim{n:02d}.png") as img:
            img.convert("RGB").crop(box).save(root / "photos" / f"kodim{n:02d}.png")
    assert main(["archive", str(root / "photos"), str(root / "archive"), "--codec", "jpeg@30",
                 "--codec", "latent-q@0.5", "--target-quality", f"lpips<={FLOOR}", "--local"]) == 0  # fmt: skip
    return root / "archive"


def test_each_image_gets_the_cheapest_knob_that_meets_the_floor(searched: Path, kodak_dir: Path) -> None:
    ledger = latest_rows(read_ledger(str(searched / "ledger")))
    rows = ledger[ledger["config_key"] == f"jpeg.default.lpips{FLOOR:g}"]
    assert len(rows) == 3 and (rows["status"] == "ok").all()
    fixed = ledger[ledger["config_key"] == "jpeg.default.q30"].set_index("image_id")
    knobs = set()
    for row in rows.itertuples():
        quality = json.loads(row.params)["quality"]
        knobs.add(quality)
        assert row.lpips <= FLOOR  # measured by evaluation, from the stored bytes
        original = np.asarray(Image.open(row.source).convert("RGB"))
        cheaper = np.asarray(Image.open(io.BytesIO(_jpeg(original, int(quality) - 1))))
        assert metric("lpips", original, cheaper) > FLOOR  # one step cheaper misses the floor
        if fixed.loc[row.image_id, "lpips"] <= FLOOR:  # a fixed point that passes is never smaller
            assert row.bytes <= fixed.loc[row.image_id, "bytes"]
    assert len(knobs) >= 2  # a setting per image, not one for all
    latent = ledger[ledger["config_key"] == f"latent-q.default.lpips{FLOOR:g}"]
    steps = codec_info("latent-q").search.values("lower")
    for row in latent.itertuples():
        step = json.loads(row.params)["quality"]
        assert row.lpips <= FLOOR or step == pytest.approx(steps[-1])  # met, or the finest step tried


def test_the_selection_takes_the_searched_streams(searched: Path) -> None:
    target, chosen = read_selection(ArchiveLayout(str(searched)).selection)
    assert str(target) == f"lpips<={FLOOR:g}" and len(chosen) == 3
    ledger = latest_rows(read_ledger(str(searched / "ledger")))
    passing = ledger[ledger["lpips"] <= FLOOR]
    for row in chosen.itertuples():
        assert row.meets and row.bytes == passing[passing["image_id"] == row.image_id]["bytes"].min()
    assert chosen["config_key"].map(lambda key: key_floor(key) is not None).any()  # a search won somewhere


def test_clric_searches_its_lambda_per_image(kodak_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    with Image.open(kodak_dir / "kodim03.png") as img:
        img.convert("RGB").crop((0, 0, 160, 128)).save(tmp_path / "photos" / "kodim03.png")
    assert main(["archive", str(tmp_path / "photos"), str(tmp_path / "archive"), "--codec", "clric:fast@lpips0.2",
                 "--local"]) == 0  # fmt: skip
    (row,) = (
        latest_rows(read_ledger(str(tmp_path / "archive" / "ledger")))
        .query("config_key == 'clric.fast.lpips0.2'")
        .itertuples()
    )
    assert row.status == "ok" and row.lpips <= 0.2
    lambdas = codec_info("clric").search.values("lower")
    found = lambdas.index(pytest.approx(json.loads(row.params)["quality"]))
    assert found > 0  # not the coarsest: check that the next coarser lambda misses the floor
    codec, store = get_codec("clric"), ArchiveLayout(str(tmp_path / "archive")).latents
    latent, _ = LatentStore(store, model_id("taesd")).read(row.image_id)
    item = CodecInput(row.image_id, row.width, row.height, latent=latent, vae_id=model_id("taesd"))
    coarser = codec.encode(item, codec.params("fast", lambdas[found - 1]))
    decoded = codec.decode(coarser, DecodeContext(row.width, row.height, model_id("taesd")))
    pixels = load_vae("taesd").decode([decoded], [(row.width, row.height)])[0]
    original = np.asarray(Image.open(row.source).convert("RGB"))
    assert metric("lpips", original, pixels) > 0.2


@pytest.mark.parametrize(("codec_name", "steps"), [("glc", 600), ("relic", 300)])
def test_collection_model_codecs_search_their_quality_per_image(
    kodak_dir: Path, tmp_path: Path, codec_name, steps
) -> None:
    """glc and relic under a floor: a first run stores the knob's two ends; a floor
    between them is then searched photo by photo against the same collection model,
    and the selection takes the searched streams where they are smaller."""
    photos, archive = tmp_path / "photos", str(tmp_path / "archive")
    photos.mkdir()
    for n, box in ((1, (300, 200, 428, 296)), (3, (0, 0, 128, 96)), (6, (100, 100, 228, 196))):
        with Image.open(kodak_dir / f"kodim{n:02d}.png") as img:
            img.convert("RGB").crop(box).save(photos / f"kodim{n:02d}.png")
    spec = [f"{codec_name}:tiny@1,4", "--train-steps", str(steps)]  # enough steps for quality to grow with the knob
    assert main(["archive", str(photos), archive, "--codec", *spec, "--local"]) == 0
    ends = latest_rows(read_ledger(archive + "/ledger")).pivot(index="image_id", columns="quality", values="lpips")
    floor = round(float(np.median((ends[1.0] + ends[4.0]) / 2)), 3)
    assert (ends[4.0] < floor).sum() >= 2  # the floor can be met by most photos

    assert main(["archive", str(photos), archive, "--codec", *spec, "--target-quality", f"lpips<={floor}",
                 "--local"]) == 0  # fmt: skip
    ledger = latest_rows(read_ledger(archive + "/ledger"))
    rows = ledger[ledger["config_key"] == f"{codec_name}.tiny.lpips{floor:g}"]
    assert len(rows) == 3 and (rows["status"] == "ok").all()
    assert rows["shared_model_id"].nunique() == 1 and set(rows["shared_model_id"]) == set(ledger["shared_model_id"])
    values = codec_info(codec_name).search.values("higher")
    fixed = ledger[ledger["quality"] == 1.0].set_index("image_id")
    for row in rows.itertuples():
        knob = json.loads(row.params)["quality"]
        assert any(knob == pytest.approx(v) for v in values)
        assert row.lpips <= floor or knob == pytest.approx(values[-1])
        # the cheapest end passes: the search finds it (the same stream, in a container that
        # names the floor, so a few bytes larger) or a smaller one
        if fixed.loc[row.image_id, "lpips"] <= floor:
            assert knob == pytest.approx(values[0]) or row.bytes <= fixed.loc[row.image_id, "bytes"]
    assert len({json.loads(p)["quality"] for p in rows["params"]}) >= 2  # a setting per photo
    _, chosen = read_selection(ArchiveLayout(archive).selection)
    assert chosen["config_key"].map(lambda key: key_floor(key) is not None).any()


def test_a_guess_gives_the_same_answer_in_fewer_probes_when_right() -> None:
    """Every first passing index of a monotone knob, from every guess: the answer is
    that of the plain search; a right guess costs two probes, and a guess never costs
    more than twice the plain search's probes plus two."""
    values = [float(v) for v in range(13)]
    for first in range(14):  # 13: nothing passes

        def measure(payload: bytes, first: int = first) -> float:
            return 0.1 if len(payload) >= first else 0.5 - 0.01 * len(payload)

        plain = search(values, _bytes, measure, parse_target("lpips<=0.2"))
        for guess in range(-1, 14):
            guided = search(values, _bytes, measure, parse_target("lpips<=0.2"), guess=guess)
            assert guided.probe == plain.probe
            assert guided.probes <= 2 * plain.probes + 2
            if guess == first and 0 < first < 13:
                assert guided.probes == 2
