"""``laduree``: Unicorn's prototype (Zheng et al.), one diffusion decoder per shard.

A shard of ``M`` images is learned by one small conditional latent diffusion model
(a DiT over latent patches, conditioned on the image index through random Fourier
features and gated cross-attention, predicting the clean latent). Image ``i`` is
regenerated from its index alone plus noise the decoder draws from a seed carried in
the model, so an image costs ``ceil(log2 M)`` bits once the model is shared; the
model's quantized weights are the rest of the rate.

Modules, each with one job: :mod:`.model` (the network), :mod:`.latents`
(rescaling, padding), :mod:`.schedule` (diffusers noise schedule and sampler),
:mod:`.train`, :mod:`.sample`, :mod:`.floatq` (small-float weight quantization),
:mod:`.bitstream` (the model's bytes), :mod:`.params` (parameters and presets) and
:mod:`.codec` (the codec). This package registers the codec without importing torch.
"""

from latentpress.codecs.laduree.params import PRESETS, LadureeParams
from latentpress.codecs.registry import CodecInfo, register_codec

INFO = register_codec(
    CodecInfo(
        name="laduree",
        summary="Laduree: a diffusion decoder per shard, an index per image",
        domain="latent",
        presets=PRESETS,
        default_qualities=(108.0, 168.0, 240.0),
        knob="hidden",
        better="higher",
        implementation="latentpress.codecs.laduree.codec:Laduree",
        coding="shard-model",
    )
)

__all__ = ["INFO", "PRESETS", "LadureeParams"]
