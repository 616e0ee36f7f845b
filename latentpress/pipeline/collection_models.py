"""Collection models: trained once on a sample of a collection, stored once in the
archive, and used to encode every image of it (photos added later too).

A collection model belongs to a codec, a preset and a VAE, and lives at
``ARCHIVE/models/<codec>.<preset>/<vae-id>/<model-id>.lpm`` (a model container; the
id is the content id of its bytes). Images coded against it name its id.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from latentpress.codecs import CodecConfig, CodecInput, CollectionModelCodec, get_codec
from latentpress.infra import storage
from latentpress.infra.collection import Item
from latentpress.infra.container import ContainerError
from latentpress.infra.latent_store import LatentStore
from latentpress.infra.layout import MODEL_SUFFIX, ArchiveLayout, content_id, model_id_of, pack_model, unpack_model
from latentpress.infra.model_files import model_id

log = logging.getLogger("latentpress.train")


@dataclass(frozen=True)
class TrainedModel:
    """A collection model where it is stored."""

    url: str
    model_id: str
    images: int
    """Images it was trained on."""
    seconds: float
    """Training time (0 for a model found or imported)."""


def sample(items: list[Item], size: int) -> list[Item]:
    """A deterministic sample of ``size`` items (all if fewer): the first by content id,
    which orders images at random but always the same way."""
    return sorted(items, key=lambda item: item.image_id)[:size]


def archived_model(archive: str, config: CodecConfig, vae_id: str) -> TrainedModel | None:
    """The archive's collection model for ``config``'s codec and preset, if it has one."""
    layout = ArchiveLayout(archive)
    urls = layout.stored_models(config.name, config.preset, vae_id)
    if len(urls) > 1:
        folder = layout.models(config.name, config.preset, vae_id)
        raise ValueError(f"{folder} holds {len(urls)} models; keep the one its images use")
    if not urls:
        return None
    _, settings = read_model(urls[0], config, vae_id)
    return TrainedModel(urls[0], model_id_of(urls[0]), int(settings["images"]), 0.0)


def read_model(url: str, config: CodecConfig, vae_id: str) -> tuple[bytes, dict]:
    """A model container's bytes and settings, checked to be a model of ``config``'s
    codec and preset for ``vae_id``; ``ValueError`` naming the object otherwise."""
    data = storage.read_bytes(url)
    try:
        container, settings = unpack_model(data, source=url)
    except ContainerError as exc:
        raise ValueError(f"{url} is not a model: {exc}") from None
    found = (container.codec, settings.get("preset"), container.vae_id)
    if found != (config.name, config.preset, vae_id):
        raise ValueError(
            f"{url} is a model of {found[0]}:{found[1]} for VAE {found[2]!r}, "
            f"not {config.name}:{config.preset} for {vae_id!r}"
        )
    return data, settings


def import_model(url: str, archive: str, config: CodecConfig, vae_name: str) -> TrainedModel:
    """Copy the model at ``url`` into the archive (an archive never depends on anything
    outside it); the archive must not hold another model for that codec and preset."""
    vae_id = model_id(vae_name)
    data, settings = read_model(url, config, vae_id)
    found = archived_model(archive, config, vae_id)
    new_id = content_id(data)
    if found is not None and found.model_id != new_id:
        raise ValueError(
            f"archive {archive} already has model {found.model_id} for {config.name}:{config.preset}; "
            f"its images were coded against it"
        )
    target = ArchiveLayout(archive).model(config.name, config.preset, vae_id, new_id)
    if found is None:
        storage.write_bytes_atomic(target, data)
    return TrainedModel(target, new_id, int(settings["images"]), 0.0)


def train_model(
    items: list[Item],
    latents_url: str,
    vae_name: str,
    config: CodecConfig,
    out: str,
    steps: int | None = None,
) -> TrainedModel:
    """Train a collection model of ``config``'s codec on the latents of ``items`` and
    store it: at the URL ``out`` when it ends in ``.lpm``, else in the archive ``out``."""
    codec = get_codec(config.name)
    if not isinstance(codec, CollectionModelCodec):
        raise TypeError(f"codec {config.name!r} does not train collection models")
    from latentpress.infra.images import decode_image

    vae_id = model_id(vae_name)
    store = LatentStore(latents_url, vae_id)
    with_pixels = codec.training_pixels(config.params())
    inputs = []
    for i in items:
        image = decode_image(storage.read_bytes(i.source), i.name) if len(inputs) < with_pixels else None
        inputs.append(CodecInput(i.image_id, i.width, i.height, image, store.read(i.image_id)[0], vae_id))
    return store_model(train_on(codec, inputs, config, steps), config, vae_id, len(inputs), out)


def train_on(
    codec: CollectionModelCodec, inputs: list[CodecInput], config: CodecConfig, steps: int | None
) -> tuple[bytes, float]:
    """The model's bytes trained on ``inputs`` and the seconds it took; progress logged
    to ``latentpress.train``."""
    name = f"{config.name}:{config.preset}"

    def report(status) -> None:
        log.info("train %s: step %d/%d, %s", name, status.step, status.steps, status.summary())

    start = time.perf_counter()
    model = codec.train(inputs, config.params(), steps=steps, progress=report)
    return model, time.perf_counter() - start


def store_model(trained: tuple[bytes, float], config: CodecConfig, vae_id: str, images: int, out: str) -> TrainedModel:
    """Wrap a model's bytes in a model container and store it (see ``train_model``)."""
    model, seconds = trained
    codec = get_codec(config.name)
    data = pack_model(
        codec=config.name, codec_version=codec.version, vae_id=vae_id, model=model,
        config={"codec": config.name, "preset": config.preset, "images": images, "train_seconds": round(seconds, 3)},
    )  # fmt: skip
    new_id = content_id(data)
    url = out if out.endswith(MODEL_SUFFIX) else ArchiveLayout(out).model(config.name, config.preset, vae_id, new_id)
    storage.write_bytes_atomic(url, data)
    return TrainedModel(url, new_id, images, seconds)


def sample_files(listing: list[str], size: int) -> list[str]:
    """A deterministic sample of file URLs to train on, without reading them: ordered by
    the SHA-256 of the URL (a fixed shuffle), the first ``size``."""
    import hashlib

    return sorted(listing, key=lambda url: hashlib.sha256(url.encode()).hexdigest())[:size]


def train_from_files(
    files: list[str], root: str, vae_name: str, config: CodecConfig, out: str, steps: int | None = None
) -> TrainedModel:
    """Train a collection model on the images ``files`` (under ``root``), encoded with the
    VAE ``vae_name`` here, and store it at ``out`` (see ``train_model``). Files that are
    not usable images are left out (and logged)."""
    from latentpress.models.vae import load_vae
    from latentpress.pipeline.ingest import inspect_image

    codec = get_codec(config.name)
    if not isinstance(codec, CollectionModelCodec):
        raise TypeError(f"codec {config.name!r} does not train collection models")
    from latentpress.infra.images import decode_image

    vae = load_vae(vae_name)
    with_pixels = codec.training_pixels(config.params())
    inputs = []
    for url in files:
        item = inspect_image(url, root)
        if item.status != "ok":
            log.warning("not trained on %s: %s", item.name, item.error)
            continue
        image = decode_image(storage.read_bytes(url), item.name)
        inputs.append(CodecInput(item.image_id, item.width, item.height, latent=vae.encode([image])[0],
                                 vae_id=vae.vae_id, image=image if len(inputs) < with_pixels else None))  # fmt: skip
    if not inputs:
        raise ValueError(f"no usable image to train on among {len(files)} file(s) under {root}")
    return store_model(train_on(codec, inputs, config, steps), config, vae.vae_id, len(inputs), out)
