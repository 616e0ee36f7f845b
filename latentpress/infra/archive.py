"""Archive layout on object storage, image containers and the manifest.

```
<archive>/manifest.json                       written last: collection, configs, items
<archive>/collection.parquet                  ingest result (every item, failed ones too)
<archive>/latents/<vae-id>/<image-id>         Zarr v3 latent store (default location)
<archive>/images/<config-key>/<image-id>.lpc  one container per image and configuration
<archive>/images/<config-key>/<image-id>.json encode statistics, written before the .lpc
<archive>/shared/<config-key>/<model-id>.lpm  shared models of shard-model codecs (one per shard)
<archive>/models/<codec>.<preset>/<vae-id>/<model-id>.lpm
                                              the collection model of a collection-model codec
<archive>/ledger/                             Parquet ledger (default location)
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

MANIFEST_FORMAT = 1
IMAGE_ID = re.compile(r"^[0-9a-f]{16}$")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
CONFIG_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*\.[a-z0-9_-]+\.(?:q|bpp)[0-9eE.+-]+$")


@dataclass(frozen=True)
class ArchiveLayout:
    """URLs of everything stored under one archive root."""

    root: str

    @property
    def manifest(self) -> str:
        return storage.join(self.root, "manifest.json")

    @property
    def collection(self) -> str:
        return storage.join(self.root, "collection.parquet")

    @property
    def latents(self) -> str:
        return storage.join(self.root, "latents")

    @property
    def ledger(self) -> str:
        return storage.join(self.root, "ledger")

    def image(self, config_key: str, image_id: str) -> str:
        return storage.join(self.root, "images", check_config_key(config_key), f"{check_image_id(image_id)}.lpc")

    def stats(self, config_key: str, image_id: str) -> str:
        return storage.join(self.root, "images", check_config_key(config_key), f"{check_image_id(image_id)}.json")

    def shared(self, config_key: str, model_id: str) -> str:
        return storage.join(self.root, "shared", check_config_key(config_key), f"{check_image_id(model_id)}.lpm")

    def models(self, codec: str, preset: str, vae_id: str) -> str:
        """The folder of the collection models of a codec, preset and VAE."""
        return storage.join(self.root, "models", f"{check_name(codec)}.{check_name(preset)}", check_name(vae_id))

    def model(self, codec: str, preset: str, vae_id: str, model_id: str) -> str:
        return storage.join(self.models(codec, preset, vae_id), f"{check_image_id(model_id)}.lpm")


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
    shared_model: str | None = None,
) -> bytes:
    """An image container: the codec configuration (JSON), the codec's bitstream and,
    for shared-model codecs, the id of the shared model (section ``shared``)."""
    sections = {"config": _json(config), "payload": payload}
    if shared_model is not None:
        sections["shared"] = check_image_id(shared_model).encode()
    return pack(Container("image", codec, codec_version, vae_id, width, height, sections))


def unpack_image(data: bytes, source: str = "") -> tuple[Container, dict[str, Any]]:
    """Parse and verify an image container; returns it and its configuration."""
    container = unpack(data, source=source)
    names = set(container.sections)
    if container.kind != "image" or names not in ({"config", "payload"}, {"config", "payload", "shared"}):
        raise ContainerError(f"{source or 'container'}: not an image container")
    if "shared" in names:
        try:
            check_image_id(container.sections["shared"].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise ContainerError(f"{source or 'container'}: malformed shared model id") from None
    return container, _config(container, source)


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
    manifest = json.loads(storage.read_bytes(url))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{url}: unsupported manifest format {manifest.get('format')!r}")
    for item in manifest["items"]:
        check_image_id(item["image_id"])
    for config in manifest["configs"]:
        check_config_key(config["key"])
    return manifest


def write_manifest(root: str, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (the last object of a run)."""
    body = {"format": MANIFEST_FORMAT, **manifest}
    storage.write_bytes_atomic(ArchiveLayout(root).manifest, json.dumps(body, indent=1, sort_keys=True).encode())
