"""A tuned decoder as a collection model stores it: extra arrays of the model file
(``decoder/`` + each tensor's name in the VAE decoder's state, float16) and the share
of the tuning each anchor quality decodes with (``decoder_blends``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from latentpress.codecs.base import CodecError

if TYPE_CHECKING:
    from latentpress.models.vae import DecoderWeights

ANCHOR_QUALITIES = (1.0, 2.0, 3.0, 4.0)
"""Qualities a blend is chosen at (glc's anchors, relic's whole qualities); between
them the blend is interpolated."""
DECODER = "decoder/"
BLENDS = "decoder_blends"


@dataclass(frozen=True, eq=False)
class TunedDecoder:
    """A VAE decoder tuned on the collection, and how much of the tuning each anchor
    quality uses (``blends``; in between, interpolated)."""

    tuned: dict[str, np.ndarray]
    """The tuned decoder's state, tensor by tensor (float16 values)."""
    blends: np.ndarray
    """(len(ANCHOR_QUALITIES),) in [0, 1]: 0 decodes with the stock decoder, 1 with the tuned one."""

    def blend(self, quality: float) -> float:
        """The blend at ``quality`` (rounded to thousandths, so that nearby qualities
        share one built decoder)."""
        return round(float(np.interp(quality, ANCHOR_QUALITIES, self.blends)), 3)

    def arrays(self) -> dict[str, np.ndarray]:
        """The extra arrays that store it in a model file."""
        return {**{DECODER + name: values for name, values in self.tuned.items()}, BLENDS: self.blends}

    @classmethod
    def from_arrays(cls, extra: dict[str, np.ndarray], codec: str) -> TunedDecoder | None:
        """The tuned decoder of ``codec``'s model file's extra arrays (``None`` without
        one); ``CodecError`` for arrays it does not write."""
        if not extra:
            return None
        tuned = {name.removeprefix(DECODER): values for name, values in extra.items() if name.startswith(DECODER)}
        blends = extra.get(BLENDS)
        if not tuned or blends is None or len(tuned) + 1 != len(extra):
            raise CodecError(f"{codec} model holds extra arrays {codec} does not write: {sorted(extra)[:3]}")
        anchors = len(ANCHOR_QUALITIES)
        if blends.shape != (anchors,) or not np.all((blends >= 0) & (blends <= 1)):
            raise CodecError(f"{codec} model decoder blends must be {anchors} values in [0, 1], got {blends}")
        return cls(tuned, blends)

    @cached_property
    def key(self) -> str:
        """``weights_key`` of the tuned weights."""
        return weights_key(self.tuned)

    def weights(self, quality: float) -> DecoderWeights:
        """The VAE decoder's weights an image at ``quality`` is drawn with."""
        from latentpress.models.vae import DecoderWeights

        return DecoderWeights(self.key, self.tuned, self.blend(quality))


def weights_key(tuned: Mapping[str, np.ndarray]) -> str:
    """A digest of a decoder's weights (names and values), to cache decoders built from them."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(tuned):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tuned[name], np.float32).tobytes())
    return digest.hexdigest()
