"""Archive layout on object storage, image containers and the manifest.

```
<archive>/manifest.json                       written last: VAE, configurations, collection models
<archive>/collection/part-<time>-<run>.parquet
                                              ingest results: new and changed items of each run
                                              (infra.collection; before 0.3 one collection.parquet)
<archive>/latents/<vae-id>/<image-id>         Zarr v3 latent store (default location)
<archive>/images/<config-key>/<image-id>.lpc  one container per image and configuration
<archive>/images/<config-key>/<image-id>.json encode statistics, written before the .lpc
<archive>/metadata/<image-id>.lpc             the photo's EXIF, ICC, XMP and IPTC (infra.metadata)
<archive>/shared/<config-key>/<model-id>.lpm  shared models of shard-model codecs (one per shard)
<archive>/models/<codec>.<preset>/<vae-id>/<model-id>.lpm
                                              the collection model of a collection-model codec
<archive>/ledger/                             Parquet ledger (default location)
<archive>/selection.parquet                   the configuration chosen per image for a quality floor
```
An ``.lpc`` object's presence means complete: it is written atomically, last.
Names inside the archive are ids and configuration keys, never input paths.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from latentpress.infra import storage
from latentpress.infra.container import Container, ContainerError, pack, unpack

MANIFEST_FORMAT = 2
"""Format 2 (0.3) no longer lists the images; format 1 manifests are read too (their list ignored)."""
READ_FORMATS = (1, 2)
IMAGE_ID = re.compile(r"^[0-9a-f]{16}\Z")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
IMAGE_SUFFIX = ".lpc"
"""Name ending of an image container (and of a photo's metadata container)."""
MODEL_SUFFIX = ".lpm"
"""Name ending of a model container (collection and shard models)."""
CONFIG_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*\.[a-z0-9_-]+\.(?:q|bpp|lpips|dists|psnr|ms_ssim)[0-9eE.+-]+\Z")


@dataclass(frozen=True)
class ArchiveLayout:
    """URLs of everything stored under one archive root."""

    root: str

    @property
    def manifest(self) -> str:
        return storage.join(self.root, "manifest.json")

    @property
    def selection(self) -> str:
        return storage.join(self.root, "selection.parquet")

    @property
    def latents(self) -> str:
        return storage.join(self.root, "latents")

    @property
    def ledger(self) -> str:
        return storage.join(self.root, "ledger")

    def images(self, config_key: str) -> str:
        """The folder of ``config_key``'s image containers."""
        return storage.join(self.root, "images", check_config_key(config_key))

    def image(self, config_key: str, image_id: str) -> str:
        return storage.join(self.images(config_key), f"{check_image_id(image_id)}{IMAGE_SUFFIX}")

    @staticmethod
    def image_path(config_key: str, image_id: str) -> str:
        """An image container's path inside the archive (as fixity reports name it)."""
        return f"images/{check_config_key(config_key)}/{check_image_id(image_id)}{IMAGE_SUFFIX}"

    def stored_images(self, config_key: str) -> set[str]:
        """Ids of the images with a container stored under ``config_key``."""
        folder = self.images(config_key)
        if not storage.exists(folder):
            return set()
        names = (url.rsplit("/", 1)[-1] for url in storage.list_files(folder, recursive=False))
        return {name.removesuffix(IMAGE_SUFFIX) for name in names if name.endswith(IMAGE_SUFFIX)}

    def metadata(self, image_id: str) -> str:
        return storage.join(self.root, "metadata", f"{check_image_id(image_id)}{IMAGE_SUFFIX}")

    def stats(self, config_key: str, image_id: str) -> str:
        return storage.join(self.images(config_key), f"{check_image_id(image_id)}.json")

    def shared(self, config_key: str, model_id: str) -> str:
        return storage.join(
            self.root, "shared", check_config_key(config_key), f"{check_image_id(model_id)}{MODEL_SUFFIX}"
        )

    def models(self, codec: str, preset: str, vae_id: str) -> str:
        """The folder of the collection models of a codec, preset and VAE."""
        return storage.join(self.root, "models", f"{check_name(codec)}.{check_name(preset)}", check_name(vae_id))

    def model(self, codec: str, preset: str, vae_id: str, model_id: str) -> str:
        return storage.join(self.models(codec, preset, vae_id), f"{check_image_id(model_id)}{MODEL_SUFFIX}")

    def stored_models(self, codec: str, preset: str, vae_id: str) -> list[str]:
        """URLs of the collection models stored for ``codec``, ``preset`` and ``vae_id``."""
        folder = self.models(codec, preset, vae_id)
        if not storage.exists(folder):
            return []
        return [url for url in storage.list_files(folder, recursive=False) if url.endswith(MODEL_SUFFIX)]


def model_id_of(url: str) -> str:
    """The model id a model container's URL names."""
    return url.rsplit("/", 1)[-1].removesuffix(MODEL_SUFFIX)


def ledger_archive(ledger_url: str) -> str | None:
    """The archive holding a ledger at ``<archive>/ledger``, else None."""
    parent, _, name = ledger_url.rstrip("/").rpartition("/")
    return parent if name == "ledger" and parent and not parent.endswith(":/") else None


def content_id(data: bytes) -> str:
    """Id of stored bytes: the first 16 hex digits of their SHA-256 (as image ids)."""
    return hashlib.sha256(data).hexdigest()[:16]


def check_image_id(image_id: str) -> str:
    """``image_id`` if it is a well-formed id, else ValueError (guards paths)."""
    if not isinstance(image_id, str) or not IMAGE_ID.match(image_id):
        raise ValueError(f"malformed image id {image_id!r}")
    return image_id


def check_name(name: str) -> str:
    """``name`` if it is a safe path segment (codec, preset, VAE id), else ValueError."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"malformed name {name!r}")
    return name


def check_config_key(key: str) -> str:
    """``key`` if it is a well-formed configuration key, else ValueError."""
    if not isinstance(key, str) or not CONFIG_KEY.match(key) or ".." in key:
        raise ValueError(f"malformed codec configuration key {key!r}")
    return key


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def pack_image(
    *,
    codec: str,
    codec_version: int,
    config: dict[str, Any],
    payload: bytes,
    width: int,
    height: int,
    vae_id: str,
    image_id: str,
    shared_model: str | None = None,
) -> bytes:
    """An image container: the codec configuration (JSON), the codec's bitstream, the
    id of the image it holds (section ``image``, so that it cannot pass for another
    image) and, for shared-model codecs, the id of the shared model (``shared``)."""
    sections = {"config": _json(config), "payload": payload, "image": check_image_id(image_id).encode()}
    if shared_model is not None:
        sections["shared"] = check_image_id(shared_model).encode()
    return pack(Container("image", codec, codec_version, vae_id, width, height, sections))


def unpack_image(data: bytes, source: str = "", image_id: str | None = None) -> tuple[Container, dict[str, Any]]:
    """Parse and verify an image container; returns it and its configuration. With
    ``image_id``, a container that holds another image is refused (containers written
    before latentpress 0.3 name no image and cannot be checked)."""
    container = unpack(data, source=source)
    where = source or "container"
    names = set(container.sections)
    if container.kind != "image" or not {"config", "payload"} <= names <= {"config", "payload", "shared", "image"}:
        raise ContainerError(f"{where}: not an image container")
    for name, what in (("shared", "shared model id"), ("image", "image id")):
        if name in names:
            try:
                check_image_id(container.sections[name].decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                raise ContainerError(f"{where}: malformed {what}") from None
    if image_id is not None and "image" in names and container.sections["image"].decode("ascii") != image_id:
        raise ContainerError(f"{where}: holds image {container.sections['image'].decode('ascii')}, not {image_id}")
    config = _config(container, source)
    if not isinstance(config, dict) or config.get("codec") != container.codec:
        raise ContainerError(f"{where}: its configuration is not one of codec {container.codec!r}")
    return container, config


def pack_model(*, codec: str, codec_version: int, config: dict[str, Any], model: bytes, vae_id: str) -> bytes:
    """A shared-model container: its configuration (JSON, with ``images``: how many
    images share it) and the model's bitstream."""
    return pack(Container("model", codec, codec_version, vae_id, 0, 0, {"config": _json(config), "model": model}))


def unpack_model(data: bytes, source: str = "") -> tuple[Container, dict[str, Any]]:
    """Parse and verify a shared-model container; returns it and its configuration."""
    container = unpack(data, source=source)
    if container.kind != "model" or set(container.sections) != {"config", "model"}:
        raise ContainerError(f"{source or 'container'}: not a shared-model container")
    return container, _config(container, source)


def _config(container: Container, source: str) -> dict[str, Any]:
    try:
        return json.loads(container.sections["config"])
    except ValueError as exc:
        raise ContainerError(f"{source or 'container'}: config section is not JSON: {exc}") from None


def read_manifest(root: str, missing_ok: bool = False) -> dict[str, Any]:
    """The archive's manifest, checked for well-formed ids and keys (``{}`` for an
    archive without one when ``missing_ok``)."""
    url = ArchiveLayout(root).manifest
    if not storage.exists(url):
        if missing_ok:
            return {}
        raise FileNotFoundError(f"no archive manifest at {url}")
    try:
        manifest = json.loads(storage.read_bytes(url))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{url}: not a JSON manifest ({exc})") from None
    check_manifest(manifest, url)
    return manifest


def check_manifest(manifest: Any, url: str) -> None:
    """ValueError naming ``url`` and the field unless ``manifest`` has the manifest's
    shape: its format, a VAE name and ``configs`` with well-formed keys."""

    def bad(field: str, why: str) -> ValueError:
        return ValueError(f"{url}: malformed manifest field {field!r}: {why}")

    if not isinstance(manifest, dict):
        raise ValueError(f"{url}: the manifest is not a JSON object")
    if manifest.get("format") not in READ_FORMATS:
        raise ValueError(f"{url}: unsupported manifest format {manifest.get('format')!r}")
    if not isinstance(manifest.get("vae"), str):
        raise bad("vae", "missing or not a string")
    entries = manifest.get("configs")
    if not isinstance(entries, list):
        raise bad("configs", "missing or not a list")
    keys = ("key", "codec", "preset", "quality")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or any(k not in entry for k in keys):
            raise bad(f"configs[{index}]", f"not an object with {', '.join(keys)}")
        try:
            check_config_key(entry["key"])
        except ValueError as exc:
            raise bad(f"configs[{index}]", str(exc)) from None


def write_manifest(root: str, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (the last object of a run)."""
    body = {"format": MANIFEST_FORMAT, **manifest}
    storage.write_bytes_atomic(ArchiveLayout(root).manifest, json.dumps(body, indent=1, sort_keys=True).encode())
