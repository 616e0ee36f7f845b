"""Compression tasks: a codec configuration over a batch of images, or one shared
model fitted per shard."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timezone
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from latentpress.codecs import Codec, CodecConfig, CodecInput, get_codec
from latentpress.config import get_settings
from latentpress.infra import storage
from latentpress.infra.archive import ArchiveLayout, content_id, pack_image, pack_model, unpack_image
from latentpress.infra.collection import Item
from latentpress.infra.container import ContainerError
from latentpress.infra.images import decode_image
from latentpress.infra.latent_store import LatentStore
from latentpress.infra.models import model_id


def stored_and_valid(url: str) -> bool:
    """Whether a complete, checksum-valid container is stored at ``url``."""
    if not storage.exists(url):
        return False
    try:
        unpack_image(storage.read_bytes(url), source=url)
    except ContainerError:
        return False
    return True


class Compressor:
    """Reads codec inputs and writes image containers for one configuration."""

    def __init__(self, archive: str, latents_url: str, vae_name: str, config: CodecConfig) -> None:
        self.layout = ArchiveLayout(archive)
        self.config = config
        self.codec: Codec = get_codec(config.name)
        self.params = config.params()
        latent = self.codec.domain == "latent"
        self.vae_id = model_id(vae_name) if latent else ""
        self.store = LatentStore(latents_url, self.vae_id) if latent else None

    def pack(self, item: Item, payload: bytes, shared_model: str | None = None) -> bytes:
        """The image container of ``payload``."""
        return pack_image(
            codec=self.codec.name,
            codec_version=self.codec.version,
            config=self.config.to_dict(),
            payload=payload,
            width=item.width,
            height=item.height,
            vae_id=self.vae_id,
            shared_model=shared_model,
        )

    def encode(self, codec_input: CodecInput, item: Item) -> tuple[bytes, Any]:
        """The payload and the parameters used (a target size: the codec finds the quality)."""
        if not self.config.target_bpp:
            return self.codec.encode(codec_input, self.params), self.params
        overhead = len(self.pack(item, b""))
        return self.codec.encode_at_bpp(codec_input, self.params, self.config.quality, overhead)

    def status(self, item: Item, status: str, error: str | None = None) -> dict[str, Any]:
        return {"image_id": item.image_id, "config_key": self.config.key, "status": status, "error": error}

    def done(self, item: Item) -> bool:
        return stored_and_valid(self.layout.image(self.config.key, item.image_id))

    def codec_input(self, item: Item) -> tuple[CodecInput, float]:
        """The codec's input for ``item`` and the seconds its latent took to encode."""
        if self.store is not None:
            latent, attrs = self.store.read(item.image_id)
            seconds = float(attrs.get("encode_seconds", 0.0))
            return CodecInput(item.image_id, item.width, item.height, latent=latent, vae_id=self.vae_id), seconds
        image = decode_image(storage.read_bytes(item.source), item.name)
        return CodecInput(item.image_id, item.width, item.height, image=image), 0.0

    def write(self, item: Item, payload: bytes, encode_seconds: float, shared_model: str | None = None,
              params: Any = None) -> dict:
        """Store the statistics sidecar, then the container (whose presence means done).

        ``params``: the parameters used, when the codec chose them (rate control).
        """
        data = self.pack(item, payload, shared_model)
        stats = {
            "encode_seconds": encode_seconds,
            "device": get_settings().device,
            "params": dataclasses.asdict(params or self.params),
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }
        storage.write_bytes_atomic(self.layout.stats(self.config.key, item.image_id), json.dumps(stats).encode())
        storage.write_bytes_atomic(self.layout.image(self.config.key, item.image_id), data)
        return {**self.status(item, "written"), "bytes": len(data)}


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def compress_batch(
    items: list[Item], archive: str, latents_url: str, vae_name: str, config: CodecConfig
) -> list[dict]:
    """Write one container per item that lacks a valid one; a status dict per item.

    Codecs with ``batch_encode`` encode the batch's images together (each image's
    encoding time is its share); if that fails, they are encoded one by one so the
    image at fault is found. A failing image is reported with its error and never
    stops the batch.
    """
    job = Compressor(archive, latents_url, vae_name, config)
    statuses, pending = [], []
    for item in items:
        if job.done(item):
            statuses.append(job.status(item, "skipped"))
            continue
        try:
            pending.append((item, *job.codec_input(item)))
        except (ValueError, KeyError) as exc:  # unreadable input: record, go on
            statuses.append(job.status(item, "failed", _failure(exc)))
    together = _encode_together(job, pending) if job.codec.batch_encode and not config.target_bpp else None
    if together is not None:
        return _in_order(items, statuses + together)
    for item, codec_input, vae_seconds in pending:
        start = time.perf_counter()
        try:
            payload, params = job.encode(codec_input, item)
        except ValueError as exc:  # codec refusal: record, go on
            statuses.append(job.status(item, "failed", _failure(exc)))
            continue
        statuses.append(job.write(item, payload, time.perf_counter() - start + vae_seconds, params=params))
    return _in_order(items, statuses)


def _in_order(items: list[Item], statuses: list[dict]) -> list[dict]:
    position = {item.image_id: i for i, item in enumerate(items)}
    return sorted(statuses, key=lambda s: position[s["image_id"]])


def _encode_together(job: Compressor, pending: list[tuple[Item, CodecInput, float]]) -> list[dict] | None:
    """Statuses of encoding ``pending`` in one call, or ``None`` if the codec refused it
    (or there is at most one image)."""
    if len(pending) < 2:
        return None
    start = time.perf_counter()
    try:
        payloads = job.codec.encode_many([codec_input for _, codec_input, _ in pending], job.params)
    except ValueError:
        return None
    share = (time.perf_counter() - start) / len(pending)
    return [job.write(item, payload, share + vae_seconds) for (item, _, vae_seconds), payload in zip(pending, payloads, strict=True)]


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=[10])
def fit_shard(items: list[Item], archive: str, latents_url: str, vae_name: str, config: CodecConfig) -> list[dict]:
    """Fit one shared model on a shard's images and store it, then each image's container.

    A shard whose images all have containers is skipped. Otherwise the model is
    fitted again on every image of the shard that has a latent (a rerun never
    mixes halves of two fits); each image's encoding time is its share of the fit.
    """
    job = Compressor(archive, latents_url, vae_name, config)
    if all(job.done(item) for item in items):
        return [job.status(item, "skipped") for item in items]
    statuses, members, inputs, vae_seconds = [], [], [], 0.0
    for item in items:
        try:
            codec_input, seconds = job.codec_input(item)
        except (ValueError, KeyError) as exc:
            statuses.append(job.status(item, "failed", _failure(exc)))
            continue
        members.append(item)
        inputs.append(codec_input)
        vae_seconds += seconds
    if not members:
        return statuses
    start = time.perf_counter()
    try:
        fitted = job.codec.fit(inputs, job.params)
    except ValueError as exc:
        return statuses + [job.status(item, "failed", _failure(exc)) for item in members]
    share = (time.perf_counter() - start + vae_seconds) / len(members)
    model = pack_model(
        codec=job.codec.name,
        codec_version=job.codec.version,
        config={"codec": config.name, "preset": config.preset, "quality": config.quality, "images": len(members)},
        model=fitted.model,
        vae_id=job.vae_id,
    )
    shared_id = content_id(model)
    storage.write_bytes_atomic(job.layout.shared(config.key, shared_id), model)
    return statuses + [job.write(item, fitted.payloads[item.image_id], share, shared_id) for item in members]
