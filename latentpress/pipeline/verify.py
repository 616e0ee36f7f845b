"""``verify``: an archive's fixity, and optionally every image container decoded."""

from __future__ import annotations

from dataclasses import dataclass, field

from latentpress.infra import storage
from latentpress.infra.collection import archived_items
from latentpress.infra.fixity import FixityReport, check
from latentpress.infra.layout import ArchiveLayout, read_manifest
from latentpress.pipeline.decode import StoredAt, decode_container
from latentpress.pipeline.outcomes import describe, unless_transient
from latentpress.pipeline.restore import restore_plan


class ArchiveNotIntact(RuntimeError):
    """``verify`` found missing, extra, damaged or undecodable objects."""


@dataclass
class Verification:
    """What ``verify`` found: the fixity check, manifest problems and undecodable containers."""

    fixity: FixityReport
    manifest_error: str | None = None
    decoded: int | None = None
    """Containers decoded to pixels (None when not asked to decode)."""
    undecodable: list[tuple[str, str]] = field(default_factory=list)
    """(path in the archive, why)"""

    @property
    def intact(self) -> bool:
        return self.fixity.intact and self.manifest_error is None and not self.undecodable

    def problems(self) -> list[tuple[str, str, str]]:
        """Every problem found as (kind, path in the archive, why), kinds in a fixed order."""
        fixity = self.fixity
        return ([("missing", path, "listed in the fixity record, not stored") for path in fixity.missing]
                + [("extra", path, "stored, not in the fixity record") for path in fixity.extra]
                + [("damaged", path, why) for path, why in fixity.damaged]
                + [("undecodable", path, why) for path, why in self.undecodable]
                + ([("manifest", "manifest.json", self.manifest_error)] if self.manifest_error else []))  # fmt: skip

    def summary(self, archive: str) -> str:
        """One line: ``archive A is intact: N object(s) match their SHA-256`` or what is
        wrong, counted by kind, and how many objects were checked (and decoded)."""
        decoded = "" if self.decoded is None else f", {self.decoded} container(s) decoded"
        if self.intact:
            return f"archive {archive} is intact: {self.fixity.checked} object(s) match their SHA-256{decoded}"
        kinds = [kind for kind, _, _ in self.problems()]
        counts = ", ".join(f"{kinds.count(kind)} {kind}" for kind in dict.fromkeys(kinds))
        return f"archive {archive} is NOT intact: {counts} ({self.fixity.checked} object(s) checked{decoded})"


def verify(
    archive: str, decode: bool = False, configs: list[str] | None = None, vae: str | None = None
) -> Verification:
    """Check every object of ``archive`` against its fixity record and the manifest's
    structure; with ``decode``, decode to pixels every image container of ``configs``
    (default: those the quality-floor selection chose, else all; latent codecs through
    ``vae``, default the archive's)."""
    result = Verification(check(archive))
    try:
        manifest = read_manifest(archive)
    except (FileNotFoundError, ValueError) as exc:
        result.manifest_error = str(exc)
        return result
    if not decode:
        return result
    result.decoded = 0
    damaged = {path for path, _ in result.fixity.damaged}
    sizes = {item.image_id: (item.width, item.height) for item in archived_items(archive)}
    layout = ArchiveLayout(archive)
    for key, image_ids in restore_plan(archive, manifest, configs, list(sizes)).items():
        for image_id in image_ids:
            path = layout.image_path(key, image_id)
            url = layout.image(key, image_id)
            if path in damaged or not storage.exists(url):
                continue  # already reported, or never stored (a refused or failed image)
            try:
                stored = StoredAt(path, image_id, key, sizes[image_id])
                decode_container(storage.read_bytes(url), vae or manifest["vae"], archive, stored)
            except Exception as exc:  # noqa: BLE001 - whatever a decoder raises, the object is named
                unless_transient(exc)
                result.undecodable.append((path, describe(exc)))
            else:
                result.decoded += 1
    return result
