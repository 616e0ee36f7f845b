"""Compression: one container per image and codec configuration, or one shared model
per shard for shard-model codecs.

A container's presence means done: its statistics sidecar is written first, the
container last. An image a codec refuses is ``rejected`` (recorded in the ledger by
:func:`rejected_rows`, never retried); anything else that goes wrong is an ``error``
for the next run to retry.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from latentpress.codecs import (
    Codec,
    CodecConfig,
    CodecError,
    CodecInput,
    DecodeContext,
    get_codec,
)
from latentpress.config import get_settings
from latentpress.infra import storage
from latentpress.infra.collection import Item
from latentpress.infra.container import ContainerError
from latentpress.infra.images import decode_image
from latentpress.infra.latent_store import LatentStore
from latentpress.infra.layout import content_id, model_id_of, pack_image, pack_model, unpack_image
from latentpress.infra.model_files import model_id
from latentpress.pipeline.context import RunContext
from latentpress.pipeline.originals import Decoded, Originals
from latentpress.pipeline.outcomes import Outcome, failure, unless_transient


def stored_and_valid(url: str, image_id: str) -> bool:
    """Whether a complete, checksum-valid container of image ``image_id`` is stored at ``url``."""
    if not storage.exists(url):
        return False
    try:
        unpack_image(storage.read_bytes(url), source=url, image_id=image_id)
    except ContainerError:
        return False
    return True


class Compressor:
    """Reads codec inputs and writes image containers for one configuration of ``run``
    (against the collection model at ``model_url`` for a collection-model codec)."""

    def __init__(
        self, run: RunContext, config: CodecConfig, model_url: str | None = None, originals: Originals | None = None
    ) -> None:
        self.layout = run.layout
        self.config = config
        self.codec: Codec = get_codec(config.name)
        self.params = config.params()
        self.vae_name = run.vae
        latent = self.codec.domain == "latent"
        self.vae_id = model_id(run.vae) if latent else ""
        self.store = LatentStore(run.latents, self.vae_id) if latent else None
        self.model_url = model_url
        self.originals = originals or Originals()
        if self.codec.info.collection_model and model_url is None:
            raise ValueError(f"codec {config.name!r} encodes against a collection model: give its URL")

    @property
    def model_id(self) -> str | None:
        """Id of the collection model images are coded against (None if none)."""
        return model_id_of(self.model_url) if self.model_url else None

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
            image_id=item.image_id,
            shared_model=shared_model,
        )

    def encode(self, codec_input: CodecInput, item: Item) -> tuple[bytes, Any]:
        """The payload and the parameters used (a target size or a quality floor: the
        codec's knob is found for the image)."""
        if self.config.floor is not None:
            return self.search_floor(codec_input, item)
        if not self.config.target_bpp:
            return self.encode_with(codec_input, self.params), self.params
        if not self.codec.info.rate_control:
            raise TypeError(f"codec {self.codec.name!r} has no rate control")
        overhead = len(self.pack(item, b""))
        return self.codec.encode_at_bpp(codec_input, self.params, self.config.quality, overhead)

    def encode_with(self, codec_input: CodecInput, params: Any) -> bytes:
        """The payload of ``codec_input`` with ``params`` (against the collection model
        for a collection-model codec)."""
        if self.codec.info.collection_model:
            return self.codec.encode(codec_input, params, self.model())
        return self.codec.encode(codec_input, params)

    def model(self) -> bytes | None:
        """The collection model's bitstream (None for other codecs)."""
        if self.model_url is None:
            return None
        from latentpress.pipeline.decode import shared_model

        return shared_model(self.model_url)[0]

    def search_floor(self, codec_input: CodecInput, item: Item) -> tuple[bytes, Any]:
        """The smallest payload whose decoded image meets the configuration's floor
        (``pipeline.quality_search``), and the parameters with the knob it took. The
        original is measured through the task's ``originals``: its side of the metric
        once for all probes."""
        from latentpress.pipeline.quality_search import goodness, search

        info, floor = self.codec.info, self.config.floor
        if info.search is None or floor is None:
            raise TypeError(f"codec {self.codec.name!r} cannot search its knob per image")
        reference = self.originals.get(item, codec_input.image)
        # The probes the search may choose, decoded (latent codecs: a VAE decoding each):
        # the smallest that meets the floor and the best that does not, by rank.
        candidates: dict[bool, tuple[float, Decoded]] = {}
        payloads: dict[float, bytes] = {}  # by knob: the guess's encodings serve the search

        def encode(knob: float) -> bytes:
            if knob not in payloads:
                payloads[knob] = self.encode_with(codec_input, info.params(self.config.preset, knob))
            return payloads[knob]

        def measure(payload: bytes) -> float:
            start = time.perf_counter()
            pixels = self.pixels(payload, item)
            seconds = time.perf_counter() - start
            value = reference.measure([pixels], (floor.metric,))[0][floor.metric]
            meets = bool(floor.meets(value))
            rank = len(payload) if meets else -goodness(value, floor)
            if self.codec.domain == "latent" and (meets not in candidates or rank < candidates[meets][0]):
                candidates[meets] = (rank, Decoded(payload, pixels, seconds))
            return value

        values = info.search.values(info.better)
        found = search(values, encode, measure, floor, self.guess(codec_input, item, values, encode))
        kept = candidates.get(found.probe.meets)
        if kept is not None and kept[1].payload == found.probe.payload:
            self.originals.keep_decoded(item, self.config.key, kept[1])
        return found.probe.payload, info.params(self.config.preset, found.probe.knob)

    def guess(self, codec_input: CodecInput, item: Item, values: list[float],
              encode: Callable[[float], bytes]) -> int | None:  # fmt: skip
        """Index of the first of ``values`` expected to meet an LPIPS or DISTS floor,
        found by searching the knob against the latent perceptual distance
        (``models.latent_distance``: no VAE decoding) instead of the metric; None where
        that cannot be had (pixel codecs, other metrics, codecs whose every encoding
        is an expensive fit, VAEs without a calibrated distance)."""
        from latentpress.models.latent_distance import TARGETS, LatentDistanceError, shipped_latent_distance
        from latentpress.pipeline.quality_search import search

        floor = self.config.floor
        if (floor is None or floor.metric not in TARGETS or codec_input.latent is None
                or self.codec.info.coding == "batch"):  # fmt: skip
            return None
        try:
            distance = shipped_latent_distance(self.vae_name)
        except LatentDistanceError:
            return None
        import torch

        context = DecodeContext(item.width, item.height, self.vae_id or None, self.model())
        device = next(distance.parameters()).device
        with torch.no_grad():
            reference = distance.features(torch.from_numpy(codec_input.latent)[None].to(device))

            def estimate(payload: bytes) -> float:
                latent = torch.from_numpy(self.codec.decode(payload, context))[None].to(device)
                return float(distance(latent, reference, floor.metric)[0])

            try:
                return values.index(search(values, encode, estimate, floor).probe.knob)
            except CodecError:
                return None

    def pixels(self, payload: bytes, item: Item) -> np.ndarray:
        """``item``'s pixels decoded from ``payload``, as evaluation decodes its container."""
        context = DecodeContext(item.width, item.height, self.vae_id or None, self.model())
        decoded = self.codec.decode(payload, context)
        if self.codec.domain == "pixels":
            return decoded
        from latentpress.pipeline.decode import latent_pixels

        weights = self.codec.vae_decoder(payload, context)
        return latent_pixels(decoded, self.vae_name, self.vae_id, (item.width, item.height), item.image_id, weights)

    def outcome(self, item: Item, cached: bool = False) -> Outcome:
        return Outcome(item.image_id, self.config.key, "ok", cached=cached)

    def failed(self, item: Item, exc: Exception, bad_input: bool) -> Outcome:
        """``item``'s outcome for ``exc`` (re-raised if transient)."""
        unless_transient(exc)
        return failure(item.image_id, self.config.key, exc, bad_input)

    def done(self, item: Item) -> bool:
        return stored_and_valid(self.layout.image(self.config.key, item.image_id), item.image_id)

    def codec_input(self, item: Item) -> tuple[CodecInput, float]:
        """The codec's input for ``item`` and the seconds its latent took to encode."""
        image = None
        if self.codec.reads_pixels(self.params):
            image = decode_image(storage.read_bytes(item.source), item.name)
        if self.store is not None:
            latent, attrs = self.store.read(item.image_id)
            seconds = float(attrs.get("encode_seconds", 0.0))
            return CodecInput(item.image_id, item.width, item.height, image, latent, self.vae_id), seconds
        return CodecInput(item.image_id, item.width, item.height, image=image), 0.0

    def write(
        self, item: Item, payload: bytes, encode_seconds: float, shared_model: str | None = None, params: Any = None
    ) -> Outcome:
        """Store the statistics sidecar, then the container (whose presence means done).

        ``params``: the parameters used, when the codec chose them (rate control).
        """
        data = self.pack(item, payload, shared_model)
        stats = {
            "encode_seconds": encode_seconds,
            "device": get_settings().device,
            "params": dataclasses.asdict(params or self.params),
            "timestamp": datetime.now(UTC).isoformat(),
        }
        storage.write_bytes_atomic(self.layout.stats(self.config.key, item.image_id), json.dumps(stats).encode())
        storage.write_bytes_atomic(self.layout.image(self.config.key, item.image_id), data)
        return self.outcome(item)

    def write_encoded(self, item: Item, payload: bytes, encode_seconds: float, params: Any = None) -> Outcome:
        """``write`` of a payload this configuration encoded (naming its collection model)."""
        return self.write(item, payload, encode_seconds, self.model_id, params)


Pending = tuple[Item, CodecInput, float]
"""An image to encode: its item, the codec's input, its VAE encoding seconds."""


def compress_batch(
    items: list[Item],
    run: RunContext,
    config: CodecConfig,
    rejected: frozenset[str] = frozenset(),
    model_url: str | None = None,
    originals: Originals | None = None,
) -> list[Outcome]:
    """Write one container per item that lacks a valid one in ``run``'s archive; an
    outcome per item, in order.

    Items in ``rejected`` (ids the ledger records as refused under ``config``) are not
    tried again; ``model_url``: the collection model of a collection-model codec. A
    batch codec encodes the batch's images together (each image's encoding time is
    its share); if that fails, they are encoded one by one so the image at fault is
    found. A failing image never stops the batch. ``originals``: the task's
    originals, measured by quality searches (``pipeline.originals``).
    """
    job = Compressor(run, config, model_url, originals)
    outcomes: list[Outcome] = []
    pending: list[Pending] = []
    for item in items:
        if item.image_id in rejected:
            outcomes.append(Outcome(item.image_id, config.key, "rejected", "refused by an earlier run", cached=True))
            continue
        try:
            if job.done(item):
                outcomes.append(job.outcome(item, cached=True))
                continue
            pending.append((item, *job.codec_input(item)))
        except Exception as exc:  # noqa: BLE001 - the input is missing or unreadable now
            outcomes.append(job.failed(item, exc, bad_input=False))
    batch = job.codec.info.coding == "batch" and config.target is None
    together = _encode_together(job, pending) if batch else None
    outcomes += together if together is not None else [_encode_one(job, *entry) for entry in pending]
    return _in_order(items, outcomes)


def _encode_one(job: Compressor, item: Item, codec_input: CodecInput, vae_seconds: float) -> Outcome:
    start = time.perf_counter()
    try:
        payload, params = job.encode(codec_input, item)
    except Exception as exc:  # noqa: BLE001 - a refusal is recorded, anything else retried later
        return job.failed(item, exc, bad_input=True)
    return job.write_encoded(item, payload, time.perf_counter() - start + vae_seconds, params=params)


def _in_order(items: list[Item], outcomes: list[Outcome]) -> list[Outcome]:
    position = {item.image_id: i for i, item in enumerate(items)}
    return sorted(outcomes, key=lambda o: position[o.image_id])


def _encode_together(job: Compressor, pending: list[Pending]) -> list[Outcome] | None:
    """Outcomes of encoding ``pending`` in one call, or ``None`` if that failed (or there
    is at most one image): the caller then encodes them one by one."""
    if len(pending) < 2 or job.codec.info.coding != "batch":
        return None
    start = time.perf_counter()
    try:
        payloads = job.codec.encode_many([codec_input for _, codec_input, _ in pending], job.params)
    except Exception as exc:  # noqa: BLE001 - one by one finds the image at fault
        unless_transient(exc)
        return None
    share = (time.perf_counter() - start) / len(pending)
    return [
        job.write_encoded(item, payload, share + vae_seconds)
        for (item, _, vae_seconds), payload in zip(pending, payloads, strict=True)
    ]


def fit_shard(items: list[Item], run: RunContext, config: CodecConfig) -> list[Outcome]:
    """Fit one shared model on a shard's images and store it in ``run``'s archive, then
    each image's container.

    A shard whose images all have containers is skipped. Otherwise the model is
    fitted again on every image of the shard that has a latent (a rerun never
    mixes halves of two fits); each image's encoding time is its share of the fit.
    An image the codec refuses (``refusal``) is rejected alone; a fit the codec
    refuses rejects the shard's images.
    """
    job = Compressor(run, config)
    if job.codec.info.coding != "shard-model":
        raise TypeError(f"codec {config.name!r} does not fit shard models")
    if all(job.done(item) for item in items):
        return [job.outcome(item, cached=True) for item in items]
    outcomes: list[Outcome] = []
    members: list[Item] = []
    inputs: list[CodecInput] = []
    vae_seconds = 0.0
    for item in items:
        try:
            codec_input, seconds = job.codec_input(item)
        except Exception as exc:  # noqa: BLE001
            outcomes.append(job.failed(item, exc, bad_input=False))
            continue
        if (reason := job.codec.refusal(codec_input, job.params)) is not None:
            outcomes.append(job.failed(item, CodecError(f"{item.name}: {reason}"), bad_input=True))
            continue
        members.append(item)
        inputs.append(codec_input)
        vae_seconds += seconds
    if not members:
        return outcomes
    start = time.perf_counter()
    try:
        fitted = job.codec.fit(inputs, job.params)
    except Exception as exc:  # noqa: BLE001
        return outcomes + [job.failed(item, exc, bad_input=True) for item in members]
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
    written = [job.write(item, fitted.payloads[item.image_id], share, shared_id) for item in members]
    return _in_order(items, outcomes + written)
