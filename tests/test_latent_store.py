"""Zarr latent store: exact round trips, attributes, completeness, listing, S3."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore

from latentpress.infra.latent_store import LatentStore

ATTRS = {
    "source": "s3://photos/a.jpg",
    "width": 61,
    "height": 75,
    "padding": [3, 5],
    "scaling_factor": 1.0,
    "shift_factor": None,
}


def latent(seed: int, shape: tuple[int, int, int] = (4, 10, 8)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_round_trip_exact_with_attributes(tmp_path: Path) -> None:
    store = LatentStore(str(tmp_path / "latents"), "madebyollin/taesd")
    x = latent(0)
    store.write("0123456789abcdef", x, ATTRS)
    y, attrs = LatentStore(f"file://{tmp_path}/latents", "madebyollin/taesd").read("0123456789abcdef")
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x)
    assert attrs == {**ATTRS, "vae_id": "madebyollin/taesd", "complete": True}
    assert (tmp_path / "latents" / "madebyollin--taesd" / "0123456789abcdef").is_dir()


def test_float16_option(tmp_path: Path) -> None:
    store = LatentStore(str(tmp_path), "taesd", dtype="float16")
    x = latent(1)
    store.write("a", x, ATTRS)
    y, _ = store.read("a")
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x.astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError):
        LatentStore(str(tmp_path), "taesd", dtype="int8")


def test_missing_and_incomplete(tmp_path: Path) -> None:
    store = LatentStore(str(tmp_path), "taesd")
    assert not store.has("a") and store.ids() == []
    with pytest.raises(KeyError, match="'a'|image a"):
        store.read("a")

    # A writer that died after the metadata and data, before the complete flag.
    group = zarr.open_group(LocalStore(str(tmp_path / "taesd")), mode="a", zarr_format=3)
    half = group.create_array("b", shape=(4, 2, 2), dtype="float32", attributes=dict(ATTRS))
    half[...] = 1.0
    store.write("c", latent(2), ATTRS)
    (tmp_path / "taesd" / "d").mkdir()  # a folder without metadata
    assert not store.has("b") and store.has("c") and not store.has("d")
    assert store.ids() == ["c"]
    with pytest.raises(KeyError, match="incomplete"):
        store.read("b")

    store.write("b", latent(3), ATTRS)  # rewriting finishes it
    assert store.ids() == ["b", "c"]
    np.testing.assert_array_equal(store.read("b")[0], latent(3))


def test_numpy_attributes_become_plain_json(tmp_path: Path) -> None:
    store = LatentStore(str(tmp_path), "taesd")
    attrs = {**ATTRS, "width": np.int64(61), "scaling_factor": np.float32(0.5), "padding": (3, 5)}
    store.write("a", latent(0), attrs)
    got = store.read("a")[1]
    assert got["width"] == 61 and type(got["width"]) is int
    assert got["scaling_factor"] == 0.5 and got["padding"] == [3, 5]
    with pytest.raises(TypeError):
        store.write("b", latent(0), {**ATTRS, "source": object()})


def test_vae_groups_are_separate(tmp_path: Path) -> None:
    LatentStore(str(tmp_path), "vae-a").write("x", latent(0), ATTRS)
    assert LatentStore(str(tmp_path), "vae-b").ids() == []


def test_rejects_bad_input(tmp_path: Path) -> None:
    store = LatentStore(str(tmp_path), "taesd")
    with pytest.raises(ValueError, match="image id"):
        store.write("../escape", latent(0), ATTRS)
    with pytest.raises(ValueError, match="missing"):
        store.write("a", latent(0), {"source": "x"})
    with pytest.raises(ValueError, match="C, h, w"):
        store.write("a", latent(0)[0], ATTRS)


def test_concurrent_writers(tmp_path: Path) -> None:
    ids = [f"{n:016x}" for n in range(12)]

    def work(part: list[str]) -> None:
        store = LatentStore(str(tmp_path), "taesd")
        for image_id in part:
            store.write(image_id, latent(int(image_id, 16)), ATTRS)

    threads = [threading.Thread(target=work, args=(ids[k::3],)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = LatentStore(str(tmp_path), "taesd")
    assert store.ids() == ids
    for image_id in ids:
        np.testing.assert_array_equal(store.read(image_id)[0], latent(int(image_id, 16)))


def test_s3_round_trip(s3_root: str) -> None:
    store = LatentStore(f"{s3_root}/latents", "madebyollin/taesd")
    assert store.ids() == [] and not store.has("a")
    x = latent(5)
    store.write("a", x, ATTRS)
    store.write("b", latent(6), ATTRS)
    assert store.has("a") and store.ids() == ["a", "b"]
    y, attrs = store.read("a")
    np.testing.assert_array_equal(y, x)
    assert attrs["complete"] is True and attrs["padding"] == [3, 5]
    with pytest.raises(KeyError):
        store.read("missing")
