"""Model resolution: turn a model name into something loaders accept.

A name is, in order of preference, an existing local folder or file, a folder or
file under the configured models directory (``LATENTPRESS_MODELS``), or a hub id
(``owner/repo``) handed to ``from_pretrained`` where a network exists.
"""

from __future__ import annotations

import os
import re

from latentpress.config import MODELS_ENV, get_settings


class ModelNotFoundError(FileNotFoundError):
    """A model name that resolves to nothing here."""


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*\Z")


def is_hub_id(name: str) -> bool:
    """Whether ``name`` has the shape of a hub id (``owner/repo``)."""
    return bool(_HUB_ID.match(name)) and ".." not in name


def _local_path(name: str) -> str | None:
    path = os.path.expanduser(name)
    return path if os.path.exists(path) else None


def resolve_file(name: str) -> str:
    """The local path of the weights file ``name`` (a path, or a name under the models
    directory); ``ModelNotFoundError`` if there is none (files have no hub ids)."""
    path = resolve_model(name)
    if not os.path.exists(path):
        models_dir = get_settings().models_dir
        setting = f"{MODELS_ENV}={models_dir}" if models_dir else f"{MODELS_ENV} is not set"
        raise ModelNotFoundError(f"weights {name!r} not found ({setting})")
    return path


def resolve_model(name: str) -> str:
    """Return the local path or hub id to load the model ``name`` from.

    Raises ``ModelNotFoundError`` when ``name`` is neither an existing path, nor
    found under the models directory, nor a hub id.
    """
    if not name:
        raise ModelNotFoundError("empty model name")
    local = _local_path(name)
    if local is not None:
        return local
    models_dir = get_settings().models_dir
    looked_for = [os.path.abspath(os.path.expanduser(name))]
    if models_dir is not None and not os.path.isabs(name):
        candidate = os.path.join(os.path.expanduser(models_dir), name)
        if os.path.exists(candidate):
            return candidate
        looked_for.append(candidate)
    if is_hub_id(name):
        return name
    setting = f"{MODELS_ENV}={models_dir}" if models_dir else f"{MODELS_ENV} is not set"
    raise ModelNotFoundError(
        f"model {name!r} not found ({setting}); looked for "
        + ", ".join(looked_for)
        + " (and it is not a hub id of the form owner/repo)"
    )


def model_id(name: str) -> str:
    """A short stable id for recording which model was used.

    Paths (existing, absolute, or starting with ``.`` or ``~``) give their basename;
    other names give themselves with ``/`` replaced by ``--`` (``owner--repo``).
    """
    stripped = name.rstrip("/\\") or name
    if _local_path(stripped) is not None or stripped.startswith((".", "~", os.sep)):
        return os.path.basename(os.path.abspath(os.path.expanduser(stripped)))
    return stripped.replace("/", "--")
