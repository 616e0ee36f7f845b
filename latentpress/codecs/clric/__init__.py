"""CLRIC: per-image overfitted Cool-Chic-style functions on the VAE latent.

Modules: :mod:`.params` (parameters and presets), :mod:`.grid` (grid geometry,
contexts, coding order), :mod:`.model` (networks), :mod:`.train` (overfitting),
:mod:`.fixed` (integer entropy model), :mod:`.quantize` (weight quantization),
:mod:`.bitstream` (payload), :mod:`.rate` (lambda search for a target size),
:mod:`.codec` (the codec). This package registers the codec without importing torch.
"""

from latentpress.codecs.clric.params import PRESETS, ClricParams
from latentpress.codecs.registry import CodecInfo, KnobRange, register_codec

INFO = register_codec(
    CodecInfo(
        name="clric",
        summary="CLRIC: a Cool-Chic-style function fit to each latent",
        domain="latent",
        presets=PRESETS,
        default_qualities=(0.03, 0.3, 1.0, 2.0),
        knob="lambda",
        better="lower",
        implementation="latentpress.codecs.clric.codec:Clric",
        coding="batch",
        rate_control=True,
        search=KnobRange(0.01, 10.0, integer=False, steps=17),
    )
)

__all__ = ["INFO", "PRESETS", "ClricParams"]
