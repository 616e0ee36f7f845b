"""The originals of one task's photos, prepared for measuring, and the decoded
images its quality searches chose.

A task that searches a quality floor and then evaluates measures each original many
times: every probe of every configuration, then the stored containers. Each
original is read once here, as a ``models.metrics.Reference`` whose LPIPS and DISTS
features are kept, up to ``KEEP_BYTES`` for the whole task, until its evaluation
is done. The pixels of the stream a search chose for a latent codec (a VAE
decoding) are kept too: the evaluation reads the stored container back and uses
them only when its payload is that stream, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from latentpress.infra import storage
from latentpress.infra.collection import Item
from latentpress.infra.images import decode_image

if TYPE_CHECKING:
    from latentpress.models.metrics import KeepBudget, Reference

KEEP_BYTES = 512 << 20
"""Feature maps kept per task: LPIPS's for about 12 MP of photos (42 bytes a pixel),
DISTS's for 1 MP (500 bytes a pixel); beyond it, windows are computed again."""


@dataclass(frozen=True)
class Decoded:
    """A payload, its decoded pixels and the seconds the decoding took."""

    payload: bytes
    pixels: np.ndarray
    seconds: float


class Originals:
    """References of a task's originals by image id, drawing on one keep budget, and
    the decoded streams its searches chose, by image id and configuration key."""

    def __init__(self, keep_bytes: int = KEEP_BYTES) -> None:
        self._references: dict[str, Reference] = {}
        self._decoded: dict[tuple[str, str], Decoded] = {}
        self._keep_bytes = keep_bytes
        self._budget: KeepBudget | None = None

    def get(self, item: Item, image: np.ndarray | None = None) -> Reference:
        """``item``'s reference, read from its source (or made of ``image``, its pixels) the first time."""
        from latentpress.models.metrics import KeepBudget, Reference

        reference = self._references.get(item.image_id)
        if reference is None:
            self._budget = self._budget or KeepBudget(self._keep_bytes)
            pixels = image if image is not None else decode_image(storage.read_bytes(item.source), item.name)
            reference = self._references[item.image_id] = Reference(pixels, budget=self._budget)
        return reference

    def keep_decoded(self, item: Item, config_key: str, decoded: Decoded) -> None:
        """Keep the stream a search chose for ``item`` under ``config_key``, decoded."""
        self._decoded[item.image_id, config_key] = decoded

    def decoded(self, item: Item, config_key: str) -> Decoded | None:
        """The decoded stream kept for ``item`` under ``config_key``, if any."""
        return self._decoded.get((item.image_id, config_key))

    def done(self, item: Item) -> None:
        """Forget ``item``'s reference (its kept features go back to the budget) and its decoded streams."""
        reference = self._references.pop(item.image_id, None)
        if reference is not None:
            reference.release()
        for key in [key for key in self._decoded if key[0] == item.image_id]:
            del self._decoded[key]
