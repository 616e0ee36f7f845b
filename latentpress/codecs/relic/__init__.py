"""Relic: adaptive quantization of the latent and diffusion denoising, against one
collection model.

After "Lossy Image Compression with Foundation Diffusion Models" (Relic, Azevedo,
Gross, Schroers), with a small denoiser trained on the collection in the place of
Stable Diffusion, and the hyperprior entropy model it shares with ``glc``
(:mod:`latentpress.codecs.hyperprior`) in the place of Entroformer. Modules:
:mod:`.params`, :mod:`.schedule` (the continuous diffusion schedule), :mod:`.model`
(the networks), :mod:`.train`, :mod:`.bitstream` (model and payload bytes) and
:mod:`.codec` (the codec). This package registers the codec without importing torch.
"""

from latentpress.codecs.registry import CodecInfo, KnobRange, register_codec
from latentpress.codecs.relic.params import PRESETS, RelicParams

INFO = register_codec(
    CodecInfo(
        name="relic",
        summary="Relic et al.: adaptive latent quantization, diffusion denoising; one model per collection",
        domain="latent",
        presets=PRESETS,
        default_qualities=(1.0, 2.0, 3.0, 4.0),
        knob="quality",
        better="higher",
        implementation="latentpress.codecs.relic.codec:Relic",
        coding="collection-model",
        search=KnobRange(1.0, 4.0, integer=False, steps=13),
    )
)

__all__ = ["INFO", "PRESETS", "RelicParams"]
