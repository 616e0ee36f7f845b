"""GLC: learned transform coding in the latent space, against one collection model.

After "Generative Latent Coding for Ultra-Low Bitrate Image Compression" (Jia et
al.), with the TAESD family's latents in the place of VQGAN's. Modules:
:mod:`.params` (parameters and presets), :mod:`.model` (the networks), :mod:`.train`,
:mod:`.perceptual` (the last, perceptual stage), :mod:`.bitstream` (model and payload
bytes) and :mod:`.codec` (the codec); the entropy model is
:mod:`latentpress.codecs.hyperprior`'s, shared with ``relic``. This package registers
the codec without importing torch.
"""

from latentpress.codecs.glc.params import PRESETS, GlcParams
from latentpress.codecs.registry import CodecInfo, KnobRange, register_codec

INFO = register_codec(
    CodecInfo(
        name="glc",
        summary="GLC: a learned transform of the latent, one model per collection",
        domain="latent",
        presets=PRESETS,
        default_qualities=(1.0, 2.0, 3.0, 4.0),
        knob="quality",
        better="higher",
        implementation="latentpress.codecs.glc.codec:Glc",
        coding="collection-model",
        search=KnobRange(1.0, 4.0, integer=False, steps=13),
    )
)

__all__ = ["INFO", "PRESETS", "GlcParams"]
