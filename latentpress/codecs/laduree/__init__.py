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
:mod:`.bitstream` (the model's bytes) and :mod:`.codec` (the registered codec).
"""

from latentpress.codecs.laduree.codec import Laduree, LadureeParams, load_model

__all__ = ["Laduree", "LadureeParams", "load_model"]
