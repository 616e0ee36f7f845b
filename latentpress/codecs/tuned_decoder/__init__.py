"""The VAE decoder tuned on a collection, for the codecs whose latents it draws.

A codec's decoded latents are not the VAE's own: coarse codes lose detail the stock
decoder cannot draw back. A copy of the decoder tuned on the collection's photos, to
draw what the codec decodes at a random quality as the original pixels were, draws
them much better (docs/glc.md). Shared by glc and relic, which depend on this package
and never on each other: the tuning (:mod:`.tuning`), the blend each quality decodes
with (:mod:`.blends`) and how both are stored in a collection model (:mod:`.stored`).
"""

from latentpress.codecs.tuned_decoder.blends import BLEND_CHOICES
from latentpress.codecs.tuned_decoder.stored import ANCHOR_QUALITIES, TunedDecoder, weights_key
from latentpress.codecs.tuned_decoder.tuning import (
    DECODER_PHOTOS,
    MIN_CROP,
    DecoderStage,
    Decoding,
    split_for_judging,
    tune_decoder,
    tune_on_collection,
)

__all__ = [
    "ANCHOR_QUALITIES",
    "BLEND_CHOICES",
    "DECODER_PHOTOS",
    "MIN_CROP",
    "DecoderStage",
    "Decoding",
    "TunedDecoder",
    "split_for_judging",
    "tune_decoder",
    "tune_on_collection",
    "weights_key",
]
