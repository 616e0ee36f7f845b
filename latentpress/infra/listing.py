"""Listing a collection: every entry under the source is either a file to read or a
reason it is not archived, so that an archivist can account for every file.

Local folders are walked here, entry by entry, without following links blindly:

- a link is followed only to a regular file inside the source (a loop, a dangling
  link, a link out of the source or to a folder is recorded, not followed);
- only regular files are read: FIFOs, sockets and devices are recorded (a FIFO would
  block the reader forever, ``/dev/zero`` would never end);
- hidden files and folders (a name starting with ``.``) are recorded, and hidden
  folders are not searched;
- a name that is not valid UTF-8 is recorded with its bytes escaped;
- files over ``MAX_FILE_BYTES`` are recorded as too large before anything is read.

Object stores have no links or special files: their keys are sorted into files to
read, hidden keys and other formats the same way.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass, field

from latentpress.infra import storage
from latentpress.infra.faults import retrying
from latentpress.infra.images import IMAGE_EXTENSIONS, has_image_extension

MAX_FILE_BYTES = 2 << 30
"""Files larger than this (2 GiB) are not read (recorded as too large)."""

OTHER_IMAGE_FORMATS = frozenset({"psd", "psb", "svg", "svgz", "xcf", "jxl", "jp2", "j2k", "ico", "eps", "raw", "cr2",
                                 "cr3", "nef", "arw", "dng", "orf", "rw2", "raf", "pef", "srw", "exr", "hdr"})  # fmt: skip
"""Image formats latentpress does not read (named as such in the reason)."""


@dataclass(frozen=True)
class Skipped:
    """An entry of the source that is not archived, and why."""

    url: str
    name: str
    """Its path under the source (bytes that are not UTF-8 escaped as ``\\xNN``)."""
    reason: str


@dataclass
class Listing:
    """What is under a source: image files to read (URL -> version, sorted) and every
    other entry with its reason."""

    files: dict[str, str] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


@retrying
def list_source(url: str) -> Listing:
    """The listing of ``url``, a folder or a prefix; ``FileNotFoundError`` if there is
    nothing there."""
    fs, root = storage.filesystem(url)
    if storage.is_remote(url):
        return _list_remote(fs, root)
    if not os.path.lexists(root):
        raise FileNotFoundError(f"no such folder or bucket prefix: {url}")
    return _list_local(root)


def file_reason(name: str, size: int) -> str | None:
    """Why a regular file named ``name`` of ``size`` bytes is not read, or None."""
    base = posixpath.basename(name)
    if base.startswith("."):
        return "hidden file"
    if not has_image_extension(base):
        ext = posixpath.splitext(base)[1][1:].lower()
        if ext in OTHER_IMAGE_FORMATS:
            return f"unsupported image format (.{ext})"
        return f"not an image file ({'.' + ext if ext else 'no extension'}; read: "\
               f"{', '.join(sorted(IMAGE_EXTENSIONS))})"  # fmt: skip
    if size > MAX_FILE_BYTES:
        return f"file too large ({size} bytes, at most {MAX_FILE_BYTES})"
    return None


def _list_remote(fs, root: str) -> Listing:
    try:
        info = fs.info(root)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such folder or bucket prefix: {fs.unstrip_protocol(root)}") from None
    infos = {root: info} if info["type"] == "file" else fs.find(root, detail=True)
    listing = Listing()
    for path in sorted(infos):
        info = infos[path]
        name = posixpath.relpath(path, root) if path != root else posixpath.basename(path)
        url = fs.unstrip_protocol(path)
        hidden = next((part for part in name.split("/")[:-1] if part.startswith(".")), None)
        reason = f"inside the hidden folder {hidden}" if hidden else file_reason(name, int(info.get("size") or 0))
        if reason:
            listing.skipped.append(Skipped(url, name, reason))
        else:
            listing.files[url] = storage.version(info)
    return listing


def _list_local(root: str) -> Listing:
    listing = Listing()
    real_root = os.path.realpath(root)
    if not os.path.isdir(root):  # one file given as the source
        _local_entry(listing, root, os.path.basename(root), real_root, os.path.dirname(real_root))
        return listing
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            listing.skipped.append(Skipped(folder, _name(folder, root), f"folder cannot be listed: {exc.strerror}"))
            continue
        for entry in entries:
            name = _name(entry.path, root)
            if not _is_utf8(entry.name):
                listing.skipped.append(Skipped(_printable(entry.path), name, "name is not valid UTF-8"))
            elif entry.is_dir(follow_symlinks=False):
                if entry.name.startswith("."):
                    listing.skipped.append(Skipped(entry.path, name, "hidden folder (not searched)"))
                else:
                    folders.append(entry.path)
            else:
                _local_entry(listing, entry.path, name, real_root, real_root)
    listing.files = dict(sorted(listing.files.items()))
    listing.skipped.sort(key=lambda s: s.name)
    return listing


def _local_entry(listing: Listing, path: str, name: str, real_root: str, inside: str) -> None:
    """Sort one non-folder entry of a local source into files or skipped."""
    if os.path.islink(path):
        try:
            target = os.path.realpath(path, strict=True)
        except OSError as exc:
            reason = "symbolic link loop" if exc.errno == 40 else "dangling symbolic link"
            listing.skipped.append(Skipped(path, name, reason))
            return
        if os.path.commonpath([target, inside]) != inside:
            listing.skipped.append(Skipped(path, name, "symbolic link out of the source (not followed)"))
            return
    try:
        info = os.stat(path)
    except OSError as exc:
        listing.skipped.append(Skipped(path, name, f"cannot stat: {exc.strerror}"))
        return
    if stat.S_ISDIR(info.st_mode):
        listing.skipped.append(Skipped(path, name, "symbolic link to a folder (not followed)"))
    elif not stat.S_ISREG(info.st_mode):
        listing.skipped.append(Skipped(path, name, f"not a regular file ({_kind(info.st_mode)})"))
    elif reason := file_reason(name, info.st_size):
        listing.skipped.append(Skipped(path, name, reason))
    else:
        listing.files[path] = f"{info.st_size}:{info.st_mtime}"


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):  # fmt: skip
        if test(mode):
            return kind
    return "unknown kind"


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _name(path: str, root: str) -> str:
    return _printable(os.path.relpath(path, root))
