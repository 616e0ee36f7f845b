"""Zarr v3 store of image latents: one group per VAE, one array per image.

Layout under the store URL (a local folder or any fsspec URL such as ``s3://``)::

    <store>/<vae-group>/zarr.json           the group
    <store>/<vae-group>/<image-id>/...      one array, shape (C, h, w), one chunk

``<vae-group>`` is the VAE id with ``/`` written as ``--`` (hub ids have a slash).
Each array's attributes are the caller's (:data:`REQUIRED_ATTRS` at least) plus
``vae_id`` and ``complete``. ``complete`` becomes true only after the data is
written, so a writer that died half-way never leaves something that looks
finished; :meth:`LatentStore.write` simply overwrites such leftovers.

One array per image keeps concurrent writers of different images apart. Nothing
relies on consolidated metadata: completeness is read from each array's own
``zarr.json``. Local folders use zarr's ``LocalStore`` (atomic file writes); URLs
with a protocol use ``FsspecStore`` with fsspec's configuration (for example
``FSSPEC_S3_ENDPOINT_URL``), as :mod:`latentpress.infra.storage` does.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

import numpy as np
import zarr
from zarr.storage import FsspecStore, LocalStore

from latentpress.infra import storage
from latentpress.infra.faults import retrying

REQUIRED_ATTRS = ("source", "width", "height", "padding", "scaling_factor", "shift_factor")
"""What a latent needs to be decoded back to its image.

``source``: URL of the original; ``width``, ``height``: its size in pixels (after EXIF
orientation); ``padding``: ``[bottom, right]`` pixels added before encoding (axis order);
``scaling_factor``, ``shift_factor``: the VAE's latent scaling (``shift_factor`` may be
``None``).
"""

DTYPES = ("float32", "float16")

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _checked_key(key: str, what: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError(f"invalid {what} {key!r}: use letters, digits, '.', '_', '-'")
    return key


def _json_value(value: object) -> object:
    """NumPy scalars and arrays as plain JSON values (for ``json.dumps``)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"latent attribute {value!r} is not JSON-serialisable")


def _is_complete(meta: object) -> bool:
    """Whether raw ``zarr.json`` bytes (or a read error) show an array marked complete."""
    if not isinstance(meta, bytes):
        return False
    try:
        doc = json.loads(meta)
    except ValueError:
        return False
    return doc.get("node_type") == "array" and doc.get("attributes", {}).get("complete") is True


class LatentStore:
    """Latents of one VAE in a Zarr v3 store at ``url`` (stored as ``dtype``)."""

    def __init__(self, url: str, vae_id: str, dtype: str = "float32") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.vae_id = vae_id
        self.dtype = dtype
        self.url = storage.join(url, _checked_key(vae_id.replace("/", "--"), "VAE id"))

    def __repr__(self) -> str:
        return f"LatentStore({self.url!r}, dtype={self.dtype!r})"

    def _zarr_store(self, read_only: bool) -> LocalStore | FsspecStore:
        if storage.is_remote(self.url):
            return FsspecStore.from_url(self.url, storage.options(self.url), read_only=read_only)
        _, path = storage.filesystem(self.url)
        return LocalStore(path, read_only=read_only)

    def _meta_path(self, image_id: str) -> str:
        return storage.join(self.url, _checked_key(image_id, "image id"), "zarr.json")

    @retrying
    def has(self, image_id: str) -> bool:
        """Whether a complete latent for ``image_id`` is stored."""
        try:
            return _is_complete(storage.read_bytes(self._meta_path(image_id)))
        except FileNotFoundError:
            return False

    @retrying
    def ids(self) -> list[str]:
        """Sorted ids of all complete latents (one listing, then concurrent reads)."""
        fs, root = storage.filesystem(self.url)
        try:
            entries = fs.ls(root, detail=True)
        except FileNotFoundError:
            return []
        names = [posixpath.basename(e["name"].rstrip("/")) for e in entries if e["type"] == "directory"]
        paths = [f"{root}/{name}/zarr.json" for name in names]
        metas = fs.cat(paths, on_error="return") if paths else {}
        for meta in metas.values():
            if isinstance(meta, Exception) and not isinstance(meta, FileNotFoundError):
                raise meta
        return sorted(n for n, p in zip(names, paths, strict=True) if _is_complete(metas.get(p)))

    @retrying
    def write(self, image_id: str, latent: np.ndarray, attrs: dict[str, Any]) -> None:
        """Store ``latent`` (C, h, w) with ``attrs``, replacing any earlier one.

        ``attrs`` must be JSON values (NumPy scalars are converted; tuples come back
        as lists).
        """
        _checked_key(image_id, "image id")
        if latent.ndim != 3:
            raise ValueError(f"latent must be (C, h, w), got shape {latent.shape}")
        missing = [k for k in REQUIRED_ATTRS if k not in attrs]
        if missing:
            raise ValueError(f"latent attributes missing {missing}")
        plain = json.loads(json.dumps(attrs, default=_json_value))
        # Creating the array also creates the group if absent, race-free (zarr writes
        # parent metadata only if it does not exist yet).
        array = zarr.create_array(
            self._zarr_store(read_only=False),
            name=image_id,
            zarr_format=3,
            shape=latent.shape,
            dtype=self.dtype,
            chunks=latent.shape,
            attributes={**plain, "vae_id": self.vae_id, "complete": False},
            overwrite=True,
        )
        array[...] = latent.astype(self.dtype, copy=False)
        array.update_attributes({"complete": True})

    @retrying
    def read(self, image_id: str) -> tuple[np.ndarray, dict[str, Any]]:
        """The latent as float32 and its attributes; ``KeyError`` if not complete."""
        _checked_key(image_id, "image id")
        try:
            array = zarr.open_array(self._zarr_store(read_only=True), path=image_id, mode="r", zarr_format=3)
        except FileNotFoundError:
            raise KeyError(f"no latent for image {image_id} in {self.url}") from None
        attrs = dict(array.attrs)
        if attrs.get("complete") is not True:
            raise KeyError(f"latent for image {image_id} in {self.url} is incomplete")
        return np.asarray(array[...], dtype=np.float32), attrs
