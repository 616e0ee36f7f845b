"""The compress task with a codec that encodes a batch together: one call for the
batch, each image timed by its share, and a refused batch retried image by image."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from latentpress.codecs import CODECS, Codec, CodecConfig, CodecError, register_codec
from latentpress.infra.archive import ArchiveLayout, unpack_image
from latentpress.infra.latent_store import LatentStore
from latentpress.tasks.compress import compress_batch


@dataclass(frozen=True)
class Params:
    quality: float = 1.0


@pytest.fixture
def batch_codec():
    """float16 latents; ``encode_many`` counts its calls and refuses non-finite latents."""

    @register_codec("test-batch")
    class BatchCodec(Codec):
        domain = "latent"
        batch_encode = True
        presets = {"default": Params()}
        default_qualities = (1.0,)
        calls: list[int] = []

        def encode(self, item, params) -> bytes:
            if not np.all(np.isfinite(item.latent)):
                raise CodecError("non-finite latent")
            return item.latent.astype(np.float16).tobytes()

        def encode_many(self, items, params) -> list[bytes]:
            type(self).calls.append(len(items))
            return super().encode_many(items, params)

        def decode(self, data, context) -> np.ndarray:
            raise NotImplementedError

    yield BatchCodec
    del CODECS["test-batch"]


def test_batch_encoded_in_one_call(batch_codec, latent_archive) -> None:
    archive, items = latent_archive
    layout, config = ArchiveLayout(archive), CodecConfig("test-batch", "default", 1.0)
    statuses = compress_batch.fn(items, archive, layout.latents, "taesd", config)
    assert [s["status"] for s in statuses] == ["written"] * 3 and batch_codec.calls == [3]
    store = LatentStore(layout.latents, "taesd")
    for item in items:
        container, _ = unpack_image(Path(layout.image(config.key, item.image_id)).read_bytes())
        latent, attrs = store.read(item.image_id)
        assert container.sections["payload"] == latent.astype(np.float16).tobytes()
        stats = json.loads(Path(layout.stats(config.key, item.image_id)).read_bytes())
        assert stats["encode_seconds"] >= attrs["encode_seconds"] > 0  # its share of the batch, VAE included


def test_refused_batch_is_encoded_one_by_one(batch_codec, latent_archive) -> None:
    archive, items = latent_archive
    layout, config = ArchiveLayout(archive), CodecConfig("test-batch", "default", 1.0)
    store = LatentStore(layout.latents, "taesd")
    latent, attrs = store.read(items[1].image_id)
    latent[0, 0, 0] = np.nan
    store.write(items[1].image_id, latent, attrs)

    statuses = compress_batch.fn(items, archive, layout.latents, "taesd", config)
    assert [s["status"] for s in statuses] == ["written", "failed", "written"]
    assert statuses[1]["image_id"] == items[1].image_id and "non-finite latent" in statuses[1]["error"]
    assert batch_codec.calls == [3]
    assert not Path(layout.image(config.key, items[1].image_id)).exists()
    # A rerun skips what was written and tries the refused image alone.
    again = compress_batch.fn(items, archive, layout.latents, "taesd", config)
    assert [s["status"] for s in again] == ["skipped", "failed", "skipped"]
