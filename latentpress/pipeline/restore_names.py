"""Where ``restore --layout original`` writes each image: the source's relative path,
made safe.

Names come from the archive's manifest, so they are untrusted on the way back. Each
is split on ``/`` and ``\\``; empty, ``.`` and ``..`` parts are dropped (so no path is
absolute and none climbs out of OUT); control characters and the characters Windows
forbids (``<>:"|?*``) become ``_``; trailing dots and spaces go; a part whose stem is
a Windows device name (``CON``, ``NUL``, ``COM1`` ...) gets a leading ``_``; a part
is cut to ``MAX_PART_BYTES`` of UTF-8. The file's extension becomes the output
format's (``a/b/photo.JPG`` restored as PNG is ``a/b/photo.png``).

Collisions (two names made equal by the above, by the new extension, by letter case,
which macOS and Windows ignore, or a file where another image needs a folder) are
resolved the same way every time: names are taken in order of (name, image id); a
later name that collides becomes ``<stem>.<first 8 hex of its id><ext>`` in the same
folder, failing that ``<image id><ext>`` at the top of OUT (then ``<image id>.2<ext>`` ...).
"""

from __future__ import annotations

import re
from itertools import chain, count

from latentpress.infra.layout import check_image_id

MAX_PART_BYTES = 200
"""Longest folder or file name written, in bytes of UTF-8 (common filesystems allow 255)."""
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def original_paths(names: dict[str, str], extension: str) -> dict[str, str]:
    """Per image id, the relative POSIX path under OUT of its restored file, each
    unique (also ignoring case) and never a folder of another."""
    files: set[str] = set()
    folders: set[str] = set()
    out = {}
    for image_id, name in sorted(names.items(), key=lambda item: (item[1], item[0])):
        check_image_id(image_id)
        wanted = safe_path(name, extension) or f"{image_id}{extension}"
        folder, _, file = wanted.rpartition("/")
        stem = file.removesuffix(extension)
        candidates = chain([wanted, _join(folder, _part(f"{stem}.{image_id[:8]}") + extension),
                            f"{image_id}{extension}"], (f"{image_id}.{n}{extension}" for n in count(2)))  # fmt: skip
        chosen = next(path for path in candidates if _free(path, files, folders))
        files.add(chosen.casefold())
        parts = chosen.casefold().split("/")[:-1]
        folders.update("/".join(parts[: n + 1]) for n in range(len(parts)))
        out[image_id] = chosen
    return out


def safe_path(name: str, extension: str) -> str:
    """``name`` as a relative POSIX path of safe parts, its extension replaced by
    ``extension``; empty when nothing of it is usable."""
    parts = [_part(p) for p in re.split(r"[/\\]", name) if p not in ("", ".", "..")]
    parts = [p for p in parts if p]
    if not parts:
        return ""
    stem = parts[-1].rsplit(".", 1)[0] if "." in parts[-1].lstrip(".") else parts[-1]
    parts[-1] = (_part(stem[: MAX_PART_BYTES - len(extension)]) or "_") + extension
    return "/".join(parts)


def _part(part: str) -> str:
    """One folder or file name made safe (see the module's docstring)."""
    part = _UNSAFE.sub("_", part).rstrip(". ")
    if part.split(".")[0].strip().casefold() in _DEVICES:
        part = f"_{part}"
    return part.encode()[:MAX_PART_BYTES].decode(errors="ignore").rstrip(". ")


def _join(folder: str, file: str) -> str:
    return f"{folder}/{file}" if folder else file


def _free(path: str, files: set[str], folders: set[str]) -> bool:
    """Whether ``path`` is neither a taken file or folder nor inside a taken file."""
    key = path.casefold()
    parts = key.split("/")
    return (
        key not in files
        and key not in folders
        and not any("/".join(parts[: n + 1]) in files for n in range(len(parts) - 1))
    )
