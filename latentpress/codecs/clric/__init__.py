"""CLRIC: per-image overfitted Cool-Chic-style functions on the VAE latent.

Modules: :mod:`.grid` (grid geometry, contexts, coding order), :mod:`.model`
(networks), :mod:`.train` (overfitting), :mod:`.fixed` (integer entropy model),
:mod:`.quantize` (weight quantization), :mod:`.bitstream` (payload),
:mod:`.rate` (lambda search for a target size), :mod:`.codec` (the registered codec).
"""

from latentpress.codecs.clric.codec import Clric
from latentpress.codecs.clric.params import PRESETS, ClricParams

__all__ = ["PRESETS", "Clric", "ClricParams"]
