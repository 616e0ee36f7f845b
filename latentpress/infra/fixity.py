"""Fixity: the SHA-256 of every object of an archive, recorded and checked.

The record lists every object of the archive but itself and the lease. It is
``ARCHIVE/manifest-sha256.txt``, one ``<sha256 hex>  <path>`` line each, paths relative
to the archive root and sorted: BagIt's payload manifest format (RFC 8493, section
2.1.3), which ``sha256sum -c manifest-sha256.txt`` also reads; followed by the parts
under ``ARCHIVE/fixity/``, one per writing run that changed something, in name (time)
order, with a line for each object the run added or changed and ``removed  <path>``
for each one that is gone. A run appends a part instead of rewriting the whole
record; every ``FOLD_PARTS`` parts (and in ``latentpress ledger compact``) the parts
are folded into ``manifest-sha256.txt``, written whole first, the parts removed after,
so that a fold killed half-way leaves a record that reads the same. Every writing run
records under its lease, last.

An object keeps the digest it was first recorded with unless a run wrote it: modified
after ``since`` (less ``CLOCK_SKEW_SECONDS``), the start of the recording run or of a
killed run whose lease it took over (``infra.lease``); a failed run records too. Damage
that happens between runs stays visible to :func:`check` instead of being recorded
as the object's new content.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from latentpress.infra import storage
from latentpress.infra.container import ContainerError, unpack
from latentpress.infra.layout import IMAGE_SUFFIX, MODEL_SUFFIX

FIXITY_NAME = "manifest-sha256.txt"
PARTS_FOLDER = "fixity"
UNLISTED = frozenset({FIXITY_NAME, "lease.json"})
"""Objects the record leaves out: itself (with its parts), and the lease of a run in progress."""
FOLD_PARTS = 32
"""Parts after which a run folds the record into ``manifest-sha256.txt``: one whole
rewrite every so many runs that change something, and never many parts to read."""
CLOCK_SKEW_SECONDS = 60.0
"""How far an object store's clock may lag this machine's."""
REMOVED = "removed"
_LINE = re.compile(r"([0-9a-f]{64}) {2}(\S(?:.*\S)?)")
_PART_LINE = re.compile(r"([0-9a-f]{64}|removed) {2}(\S(?:.*\S)?)")


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


def record(archive: str, since: float, fold: bool = False) -> int:
    """Record the archive's fixity for the runs that wrote since ``since`` (epoch seconds):
    a part with what changed, if anything did (the first record is written whole);
    then fold the parts when there are ``FOLD_PARTS`` of them, or ``fold``. The number
    of objects listed."""
    previous, parts = read_parts(archive)
    digests = {}
    for path, info in stored_objects(archive).items():
        changed = storage.modified(info)
        if path in previous and changed is not None and changed < since - CLOCK_SKEW_SECONDS:
            digests[path] = previous[path]
        else:
            digests[path] = sha256(storage.read_bytes(storage.join(archive, path)))
    changes = {path: digest for path, digest in digests.items() if previous.get(path) != digest}
    changes |= {path: REMOVED for path in previous if path not in digests}
    first = not previous and not parts
    if changes and not first:  # a run that changed nothing (a no-op rerun) writes nothing
        name = storage.timed_part_name("txt")
        storage.write_bytes_atomic(storage.join(archive, PARTS_FOLDER, name), manifest_text(changes).encode())
        parts.append(name)
    if (changes and first) or (parts and (fold or len(parts) >= FOLD_PARTS)):
        storage.write_bytes_atomic(storage.join(archive, FIXITY_NAME), manifest_text(digests).encode())
        for name in parts:
            storage.remove(storage.join(archive, PARTS_FOLDER, name))
    return len(digests)


def manifest_text(digests: dict[str, str]) -> str:
    """``<sha256>  <path>`` lines sorted by path: a BagIt manifest (path -> hex digest)."""
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(digests.items()))


def read(archive: str, missing_ok: bool = False) -> dict[str, str]:
    """The recorded digests (path -> hex): ``manifest-sha256.txt`` with its parts;
    ``ValueError`` naming the file and line if one is malformed."""
    digests, parts = read_parts(archive)
    if not digests and not parts and not missing_ok:
        raise FileNotFoundError(f"{storage.join(archive, FIXITY_NAME)}: no fixity record "
                                f"(every archive, compress or evaluate run writes one)")  # fmt: skip
    return digests


def read_parts(archive: str) -> tuple[dict[str, str], list[str]]:
    """The recorded digests, and the names of the parts under ``fixity/`` they include."""
    digests = _read_lines(storage.join(archive, FIXITY_NAME), _LINE)
    folder = storage.join(archive, PARTS_FOLDER)
    names = (
        sorted(u.rsplit("/", 1)[-1] for u in storage.list_files(folder, recursive=False))
        if storage.exists(folder)
        else []
    )
    names = [name for name in names if name.endswith(".txt")]
    for name in names:
        for path, digest in _read_lines(storage.join(folder, name), _PART_LINE).items():
            if digest == REMOVED:
                digests.pop(path, None)
            else:
                digests[path] = digest
    return digests, names


def _read_lines(url: str, line: re.Pattern[str]) -> dict[str, str]:
    """One record file's ``<digest>  <path>`` lines (path -> digest; empty if absent)."""
    try:
        text = storage.read_bytes(url).decode("utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as exc:
        raise ValueError(f"{url}: not UTF-8 text ({exc})") from None
    digests = {}
    for number, text_line in enumerate(text.splitlines(), 1):
        match = line.fullmatch(text_line)
        if match is None or match[2] in digests:
            raise ValueError(
                f"{url}, line {number}: not '<sha256>  <path>' or a path listed twice: {text_line[:120]!r}"
            )
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
        elif path.endswith((IMAGE_SUFFIX, MODEL_SUFFIX)):
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
        relative = path[len(root) :] if path.startswith(root) else path
        if relative not in UNLISTED and not relative.startswith(PARTS_FOLDER + "/"):
            out[relative] = info
    return out


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
