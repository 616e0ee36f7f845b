"""Compressing with a codec that encodes a batch together: one call for the
batch, each image timed by its share, and a refused batch retried image by image."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from latentpress.codecs import CODECS, BatchEncoder, CodecConfig, CodecError, CodecInfo, register_codec
from latentpress.infra.latent_store import LatentStore
from latentpress.infra.layout import ArchiveLayout, unpack_image
from latentpress.pipeline.compress import compress_batch
from latentpress.pipeline.context import RunContext


@dataclass(frozen=True)
class Params:
    quality: float = 1.0


class BatchCodec(BatchEncoder):
    """float16 latents; ``encode_many`` counts its calls and refuses non-finite latents."""

    calls: list[int] = []

    def encode(self, item, params) -> bytes:
        if not np.all(np.isfinite(item.latent)):
            raise CodecError("non-finite latent")
        return item.latent.astype(np.float16).tobytes()

    def encode_many(self, items, params) -> list[bytes]:
        type(self).calls.append(len(items))
        return [self.encode(item, params) for item in items]

    def decode(self, data, context) -> np.ndarray:
        raise NotImplementedError


@pytest.fixture
def batch_codec():
    register_codec(
        CodecInfo(
            "test-batch",
            "a test codec",
            "latent",
            {"default": Params()},
            (1.0,),
            "quality",
            "higher",
            BatchCodec,
            coding="batch",
        )
    )
    BatchCodec.calls = []
    yield BatchCodec
    del CODECS["test-batch"]


def test_batch_encoded_in_one_call(batch_codec, latent_archive) -> None:
    archive, items = latent_archive
    layout, config = ArchiveLayout(archive), CodecConfig("test-batch", "default", 1.0)
    outcomes = compress_batch(items, RunContext(archive, "taesd"), config)
    assert [(o.status, o.cached) for o in outcomes] == [("ok", False)] * 3 and batch_codec.calls == [3]
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

    outcomes = compress_batch(items, RunContext(archive, "taesd"), config)
    assert [o.status for o in outcomes] == ["ok", "rejected", "ok"]
    assert outcomes[1].image_id == items[1].image_id and "non-finite latent" in outcomes[1].reason
    assert batch_codec.calls == [3]
    assert not Path(layout.image(config.key, items[1].image_id)).exists()
    # A rerun skips what was written and tries the refused image alone, unless the
    # ledger records the refusal: then it is not tried again.
    again = compress_batch(items, RunContext(archive, "taesd"), config)
    assert [(o.status, o.cached) for o in again] == [("ok", True), ("rejected", False), ("ok", True)]
    once_more = compress_batch(items, RunContext(archive, "taesd"), config, rejected=frozenset({items[1].image_id}))
    assert [(o.status, o.cached) for o in once_more] == [("ok", True), ("rejected", True), ("ok", True)]
    assert batch_codec.calls == [3]
