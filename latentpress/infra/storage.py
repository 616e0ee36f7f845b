"""Object storage through fsspec: URLs in, bytes out, atomic writes.

Any fsspec URL works (a local path, ``file://``, ``s3://``, ``memory://``). Options
such as an S3 endpoint come from fsspec's configuration (``FSSPEC_S3_ENDPOINT_URL``
and friends), so the same URL means the same place in every Dask worker.

Object stores are opened without fsspec's listing cache (:data:`REMOTE_OPTIONS`):
the flow process, its Dask workers and other runs write to the same archive, and a
listing cached by one process hides what the others wrote since (s3fs answers
``FileNotFoundError`` for an object its cached listing of the folder lacks). Every
listing and lookup asks the store.

Every object store latentpress opens (its own reads and writes, the latent store's
zarr, the ledger's pyarrow) takes its options from :func:`options`, which is also where
S3 requests are configured, on the first ``s3://`` URL (:mod:`.s3_requests`), never
on import.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from datetime import UTC, datetime

import fsspec
from fsspec.implementations.local import LocalFileSystem

from latentpress.infra.faults import retrying
from latentpress.infra.s3_requests import drop_expect_continue

PUT_SECONDS = 60.0
"""Time allowed to a PUT of an empty object; larger ones get more (``PUT_BYTES_PER_SECOND``)."""
PUT_BYTES_PER_SECOND = 1 << 20


REMOTE_OPTIONS = {"use_listings_cache": False}
"""fsspec options of every filesystem that is not local (see the module's description)."""


def options(url: str) -> dict[str, object]:
    """The fsspec options latentpress opens ``url`` with (besides fsspec's configuration);
    for S3, the requests are configured first (:func:`.s3_requests.drop_expect_continue`)."""
    protocol, _ = fsspec.core.split_protocol(url)
    if protocol in (None, "file", "local"):
        return {}
    if protocol in ("s3", "s3a"):
        drop_expect_continue()
    return dict(REMOTE_OPTIONS)


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem serving ``url`` and the path inside it."""
    return fsspec.core.url_to_fs(url, **options(url))


def is_remote(url: str) -> bool:
    """True for URLs that name an object store or other non-local filesystem."""
    fs, _ = filesystem(url)
    return not isinstance(fs, LocalFileSystem)


def join(base: str, *parts: str) -> str:
    """Join URL parts with ``/`` (works for local paths and object-store URLs)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


@retrying
def read_bytes(url: str) -> bytes:
    """Whole object as bytes."""
    fs, path = filesystem(url)
    return fs.cat_file(path)


@retrying
def exists(url: str) -> bool:
    """Whether an object (or a folder or prefix) exists; a storage fault raises
    (fsspec's own ``exists`` says False)."""
    fs, path = filesystem(url)
    return path_exists(fs, path)


def path_exists(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """:func:`exists` for a path of ``fs``."""
    try:
        fs.info(path)
    except FileNotFoundError:
        return False
    return True


@retrying
def size(url: str) -> int:
    """Size of a stored object in bytes."""
    fs, path = filesystem(url)
    return int(fs.size(path))


@retrying
def write_bytes_atomic(url: str, data: bytes) -> None:
    """Write ``data`` so that readers see either nothing or the whole object.

    Local files go to a temporary name in the same folder and are renamed into
    place; object stores make a single PUT, which is atomic by itself.
    """
    fs, path = filesystem(url)
    if isinstance(fs, LocalFileSystem):
        folder = os.path.dirname(path) or "."
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    else:
        put(fs, path, data)


def put(fs: fsspec.AbstractFileSystem, path: str, data: bytes, **options: object) -> None:
    """One PUT of ``data`` to ``path`` of an object store, given up with a
    ``TimeoutError`` (transient) when it outlasts its deadline: a body that a server
    accepts and never reads would otherwise hold the call forever (no read timeout
    runs while a body is being written)."""
    if fs.async_impl:  # fsspec's sync() takes the deadline and cancels the request
        options["timeout"] = PUT_SECONDS + len(data) / PUT_BYTES_PER_SECOND
    fs.pipe_file(path, data, **options)


def list_files(url: str, recursive: bool = True) -> list[str]:
    """Full URLs of the files under ``url``, sorted.

    Temporary files and hidden names are skipped, including everything inside hidden
    folders below ``url`` (``.thumbnails/``, ``.Trash-1000/`` ...).
    """
    return list(file_versions(url, recursive))


def file_versions(url: str, recursive: bool = True) -> dict[str, str]:
    """The files of :func:`list_files` (same order), each with a version string that
    changes when the file does: its size and modification time (or ETag)."""
    return {name: version(info) for name, info in file_infos(url, recursive).items()}


@retrying
def file_infos(url: str, recursive: bool = True) -> dict[str, dict]:
    """The files of :func:`list_files` (same order), each with its fsspec info."""
    fs, root = filesystem(url)
    try:
        info = fs.info(root)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such folder or bucket prefix: {url}") from None
    if info["type"] == "file":
        infos = {root: info}
    else:
        infos = fs.find(root, maxdepth=None if recursive else 1, detail=True)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    out = {}
    for path in sorted(infos):
        below = posixpath.relpath(path, root) if path != root else posixpath.basename(path)
        if path.endswith(".tmp") or any(part.startswith(".") for part in below.split("/")):
            continue
        out[path if isinstance(fs, LocalFileSystem) else f"{protocol}://{path}"] = infos[path]
    return out


def version(info: dict) -> str:
    """A file's version from its fsspec info: size and modification time (or ETag)."""
    stamp = info.get("mtime") or info.get("LastModified") or info.get("ETag") or ""
    return f"{info.get('size')}:{stamp}"


def modified(info: dict) -> float | None:
    """A file's modification time (seconds since the epoch) from its fsspec info, if known."""
    stamp = info.get("mtime") or info.get("LastModified")
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    return float(stamp) if isinstance(stamp, int | float) else None


@retrying
def timed_part_name(extension: str) -> str:
    """A new part's file name, ``part-<UTC time>-<random>.<extension>``: names sort by
    the time they were made, and two made at once differ."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"part-{stamp}-{uuid.uuid4().hex[:8]}.{extension}"


def remove(url: str) -> None:
    """Delete an object if it exists."""
    fs, path = filesystem(url)
    if path_exists(fs, path):
        fs.rm_file(path)
