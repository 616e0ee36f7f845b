"""Checks a command makes before it starts any work, server or cluster.

Each check raises :class:`UsageError` with one line that names the problem and the
fix. None of them writes anything, and none imports torch or Prefect, so a mistake
is answered in about a second.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from latentpress.config import MODELS_ENV

S3_HINT = (
    "S3 needs credentials and, for a server other than AWS, its address: set AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (or FSSPEC_S3_KEY and FSSPEC_S3_SECRET) and FSSPEC_S3_ENDPOINT_URL"
)
PREFLIGHT_RETRY_SECONDS = 10.0
"""How long a check rides out storage faults (connection refused or reset, timeouts)
before it calls the storage unreachable: short, since a wrong address is a mistake
to answer quickly, but longer than a blip."""


class UsageError(Exception):
    """A mistake in the command line or its environment, found before any work."""


def check_source(source: str) -> dict[str, str]:
    """The image files under ``source`` (URL -> version); ``UsageError`` if it does not
    exist, cannot be listed, or holds no image file."""
    from latentpress.infra.faults import retry
    from latentpress.infra.images import IMAGE_EXTENSIONS
    from latentpress.infra.listing import list_source

    check_credentials(source, "source")
    try:  # the listing without its own long retries: a wrong address is answered quickly
        listing = retry(list_source.__wrapped__, PREFLIGHT_RETRY_SECONDS, source).files
    except FileNotFoundError:
        raise UsageError(f"source {source} does not exist (a folder or an s3://bucket/prefix of images)") from None
    except Exception as exc:  # noqa: BLE001 - storage libraries raise many kinds
        raise UsageError(f"cannot list source {source}: {_storage_problem(exc)}") from None
    if not listing:
        extensions = ", ".join(f".{e}" for e in sorted(IMAGE_EXTENSIONS))
        raise UsageError(f"no image files under {source} (looked for {extensions})")
    return listing


def check_target(url: str, what: str = "archive") -> None:
    """``UsageError`` unless ``url`` can be written: a local path whose nearest existing
    parent is a writable folder, or a bucket that exists and answers."""
    from latentpress.infra import storage

    if not storage.is_remote(url):
        path = os.path.abspath(os.path.expanduser(url))
        if os.path.exists(path) and not os.path.isdir(path):
            raise UsageError(f"{what} {url} is a file, not a folder")
        parent = path
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"cannot create {what} {url}: {parent} is not a writable folder")
        return
    from latentpress.infra.faults import retry

    check_credentials(url, what)
    fs, path = storage.filesystem(url)
    bucket = path.split("/", 1)[0]
    try:
        found = retry(storage.path_exists, PREFLIGHT_RETRY_SECONDS, fs, bucket)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"cannot reach {what} {url}: {_storage_problem(exc)}") from None
    if not found:
        raise UsageError(f"{what} {url}: bucket {bucket!r} does not exist (create it first)")


def check_credentials(url: str, what: str) -> None:
    """``UsageError`` if ``url`` is on S3 and no credentials are configured (s3fs
    would otherwise go on without signing, and every request be refused)."""
    from latentpress.infra import storage

    if not url.startswith(("s3://", "s3a://")):
        return
    fs, _ = storage.filesystem(url)
    if getattr(fs, "anon", False) or getattr(fs, "key", None) or getattr(fs, "session", None):
        return
    import botocore.session

    if botocore.session.get_session().get_credentials() is None:
        raise UsageError(f"no credentials for {what} {url}: {S3_HINT}")


def check_file(url: str, what: str) -> None:
    """``UsageError`` unless the object ``url`` exists and can be read."""
    from latentpress.infra import storage

    check_credentials(url, what)
    try:
        found = storage.exists(url)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"cannot read {what} {url}: {_storage_problem(exc)}") from None
    if not found:
        raise UsageError(f"{what} {url} does not exist")


def check_archive(archive: str, needs: str = "manifest.json") -> None:
    """``UsageError`` unless ``archive`` holds ``needs``: the ``manifest.json`` of a
    finished run, or a ``collection`` after ``ingest``."""
    from latentpress.infra import storage
    from latentpress.infra.collection import collection_parts

    check_credentials(archive, "archive")
    try:
        found = (
            bool(collection_parts(archive)) if needs == "collection" else storage.exists(storage.join(archive, needs))
        )
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"cannot read archive {archive}: {_storage_problem(exc)}") from None
    if not found and needs == "collection":
        raise UsageError(f"archive {archive} has no collection (ARCHIVE/collection/, made by `latentpress ingest` or "
                         "`archive`): nothing says which images it holds")  # fmt: skip
    if not found:
        raise UsageError(f"{archive} is not a latentpress archive: no {needs} there (made by `latentpress archive` "
                         "or compress)")  # fmt: skip


def check_ledger(ledger: str) -> None:
    """``UsageError`` unless ``ledger`` holds ledger rows."""
    from latentpress.infra.ledger import has_ledger

    check_credentials(ledger, "ledger")
    try:
        found = has_ledger(ledger)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"cannot read ledger {ledger}: {_storage_problem(exc)}") from None
    if not found:
        raise UsageError(f"no ledger at {ledger} (an archive's ledger is ARCHIVE/ledger; none before its first run)")


def check_models(vaes: list[str] = (), files: tuple[str, ...] = ()) -> None:
    """``UsageError`` unless every autoencoder of ``vaes`` (a name under the models
    folder, a folder or a hub id) and every weights file of ``files`` can be found."""
    from latentpress.infra.model_files import ModelNotFoundError, resolve_file, resolve_model

    folder = os.environ.get(MODELS_ENV)
    if folder and not os.path.isdir(os.path.expanduser(folder)):
        raise UsageError(f"{MODELS_ENV}={folder} is not a folder (it should hold taesd/, lpips/, torchvision/ ...)")
    for name, resolve in [(v, resolve_model) for v in vaes] + [(f, resolve_file) for f in files]:
        try:
            resolve(name)
        except ModelNotFoundError:
            if not folder:
                raise UsageError(
                    f"{MODELS_ENV} is not set: point it at the folder of pretrained models "
                    f"(taesd/, lpips/, torchvision/), e.g. `export {MODELS_ENV}=/data/models`, or pass --models"
                ) from None
            raise UsageError(f"model {name!r} is not in {MODELS_ENV}={folder}") from None


def check_dask(address: str, timeout: float = 2.0) -> None:
    """``UsageError`` unless a Dask scheduler accepts connections at ``address``."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or not parsed.port:
        raise UsageError(f"bad --dask-address {address!r}: expected tcp://HOST:PORT")
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"no Dask scheduler at {address} ({reason}): start one with `dask scheduler`, or leave out --dask-address"
        ) from None


def _storage_problem(exc: Exception) -> str:
    """One line for a storage library's exception, with what S3 needs where it is that."""
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError") or "credential" in str(exc).lower():
        return f"no credentials. {S3_HINT}"
    if name == "EndpointConnectionError" or isinstance(exc, ConnectionError):
        return f"cannot connect ({exc}). {S3_HINT}"
    if isinstance(exc, PermissionError):
        return f"access denied ({exc})"
    return f"{name}: {exc}"
