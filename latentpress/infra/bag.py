"""An archive exported as a BagIt bag (RFC 8493), for transfer to a repository or a
preservation system whose own tools check it.

``OUT/data/`` holds every object of the fixity record, and the record itself (its
parts folded into one ``manifest-sha256.txt``), so it is a complete latentpress archive; ``OUT/manifest-sha256.txt`` is the record with
``data/`` before each path; ``bagit.txt``, ``bag-info.txt`` (with the Payload-Oxum)
and ``tagmanifest-sha256.txt`` complete the bag. Every object is checked against its
recorded digest on the way: a damaged archive is not exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from latentpress import __version__
from latentpress.infra import storage
from latentpress.infra.fixity import FIXITY_NAME, manifest_text, read, sha256

BAGIT_VERSION = "1.0"


class DamagedArchive(ValueError):
    """An object does not match its recorded digest, or is missing."""


@dataclass(frozen=True)
class BagSummary:
    """What :func:`export_bag` wrote."""

    files: int
    payload_bytes: int


def export_bag(archive: str, out: str) -> BagSummary:
    """Copy ``archive`` into a new bag at ``out`` (which must not hold a bag yet)."""
    if storage.exists(storage.join(out, "bagit.txt")):
        raise FileExistsError(f"{out} already holds a bag")
    recorded = read(archive)
    digests, total = {}, 0
    for path, digest in sorted(recorded.items()):
        if any(c in path for c in "%\r\n"):
            raise ValueError(f"{path!r}: a name BagIt would need escaped; latentpress never writes one")
        try:
            data = storage.read_bytes(storage.join(archive, path))
        except FileNotFoundError:
            raise DamagedArchive(
                f"{archive}: {path} is listed in the fixity record but missing "
                f"(`latentpress verify` lists every problem)"
            ) from None
        if sha256(data) != digest:
            raise DamagedArchive(
                f"{archive}: {path} does not match its recorded SHA-256 (`latentpress verify` lists every problem)"
            )
        storage.write_bytes_atomic(storage.join(out, "data", path), data)
        digests[f"data/{path}"] = digest
        total += len(data)
    record = manifest_text(recorded).encode()  # the record, folded: the payload is an archive of its own
    storage.write_bytes_atomic(storage.join(out, "data", FIXITY_NAME), record)
    digests[f"data/{FIXITY_NAME}"] = sha256(record)
    total += len(record)
    tags = {
        "bagit.txt": f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n",
        "bag-info.txt": (
            f"Bag-Software-Agent: latentpress {__version__}\nBagging-Date: {date.today().isoformat()}\n"
            f"External-Description: latentpress archive {archive}\nPayload-Oxum: {total}.{len(digests)}\n"
        ),
        "manifest-sha256.txt": manifest_text(digests),
    }
    tags["tagmanifest-sha256.txt"] = manifest_text({name: sha256(text.encode()) for name, text in tags.items()})
    for name in sorted(tags, key=lambda name: name == "bagit.txt"):  # bagit.txt last: a bag only once complete
        storage.write_bytes_atomic(storage.join(out, name), tags[name].encode())
    return BagSummary(len(digests), total)
