"""Fixity: the SHA-256 of every object of an archive, recorded and checked.

``ARCHIVE/manifest-sha256.txt`` lists every object of the archive but itself and the
lease, one ``<sha256 hex>  <path>`` line each, paths relative to the archive root and
sorted: BagIt's payload manifest format (RFC 8493, section 2.1.3), which
``sha256sum -c manifest-sha256.txt`` also reads, so a copy of the archive can be
checked without latentpress. Every writing run records it last, under its lease.

An object keeps the digest it was first recorded with unless the run that records
it wrote it (modified after the run started, less ``CLOCK_SKEW_SECONDS``): damage
that happens between runs stays visible to :func:`check` instead of being recorded
as the object's new content.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from latentpress.infra import storage
from latentpress.infra.container import ContainerError, unpack

FIXITY_NAME = "manifest-sha256.txt"
UNLISTED = frozenset({FIXITY_NAME, "lease.json"})
"""Objects the record leaves out: itself, and the lease of a run in progress."""
CLOCK_SKEW_SECONDS = 60.0
"""How far an object store's clock may lag this machine's."""
_LINE = re.compile(r"([0-9a-f]{64}) {2}(\S(?:.*\S)?)")


@dataclass
class FixityReport:
    """What :func:`check` found: objects by problem, each a path in the archive."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    damaged: list[tuple[str, str]] = field(default_factory=list)
    """(path, what is wrong)"""

    @property
    def intact(self) -> bool:
        return not (self.missing or self.extra or self.damaged)


def record(archive: str, since: float) -> int:
    """Write the archive's fixity record for a run that started at ``since`` (epoch
    seconds), unless it would not change; the number of objects listed."""
    previous = read(archive, missing_ok=True)
    digests = {}
    for path, info in stored_objects(archive).items():
        changed = storage.modified(info)
        if path in previous and changed is not None and changed < since - CLOCK_SKEW_SECONDS:
            digests[path] = previous[path]
        else:
            digests[path] = sha256(storage.read_bytes(storage.join(archive, path)))
    if digests != previous:  # a run that changed nothing (a no-op rerun) rewrites nothing
        storage.write_bytes_atomic(storage.join(archive, FIXITY_NAME), manifest_text(digests).encode())
    return len(digests)


def manifest_text(digests: dict[str, str]) -> str:
    """``<sha256>  <path>`` lines sorted by path: a BagIt manifest (path -> hex digest)."""
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(digests.items()))


def read(archive: str, missing_ok: bool = False) -> dict[str, str]:
    """The recorded digests (path -> hex); ``ValueError`` naming the line if malformed."""
    url = storage.join(archive, FIXITY_NAME)
    try:
        text = storage.read_bytes(url).decode("utf-8")
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise FileNotFoundError(f"{url}: no fixity record (every archive, compress or evaluate run writes one)") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{url}: not UTF-8 text ({exc})") from None
    digests = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _LINE.fullmatch(line)
        if match is None or match[2] in digests:
            raise ValueError(f"{url}, line {number}: not '<sha256>  <path>' or a path listed twice: {line[:120]!r}")
        digests[match[2]] = match[1]
    return digests


def check(archive: str) -> FixityReport:
    """Hash every object of ``archive`` against its record, and unpack every image
    container (its own checksums): missing, extra and damaged objects by path."""
    recorded = read(archive)
    report = FixityReport()
    present = stored_objects(archive)
    report.missing = sorted(set(recorded) - set(present))
    for path in present:
        if path not in recorded:
            report.extra.append(path)
            continue
        try:
            data = storage.read_bytes(storage.join(archive, path))
        except FileNotFoundError:  # removed while we looked
            report.missing.append(path)
            continue
        report.checked += 1
        if sha256(data) != recorded[path]:
            report.damaged.append((path, "SHA-256 differs from the record"))
        elif path.endswith((".lpc", ".lpm")):
            try:
                unpack(data, path)
            except ContainerError as exc:
                report.damaged.append((path, str(exc)))
    return report


def stored_objects(archive: str) -> dict[str, dict]:
    """Every object under ``archive`` (path relative to it -> fsspec info) but the unlisted."""
    try:
        infos = storage.file_infos(archive)
    except FileNotFoundError:
        return {}
    _, root = storage.filesystem(archive)
    root = root.rstrip("/") + "/"
    out = {}
    for name, info in infos.items():
        path = name.split("://", 1)[-1]
        relative = path[len(root):] if path.startswith(root) else path
        if relative not in UNLISTED:
            out[relative] = info
    return out


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
