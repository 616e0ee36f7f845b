"""Codecs: one module (or package) per codec, a registry, and shared entropy coding.

Usable as a plain library::

    from latentpress.codecs import get_codec
    codec = get_codec("avif")
    data = codec.encode(item, codec.params(quality=40))
"""

from latentpress.codecs.base import Codec, CodecError, CodecInput, DecodeContext, SharedFit
from latentpress.codecs.registry import CODECS, get_codec, register_codec
from latentpress.codecs.spec import CodecConfig, parse_codec_spec

# Built-in codecs register themselves on import.
from latentpress.codecs import clric, latent_q, reference  # noqa: E402,F401  isort: skip
from latentpress.codecs import laduree  # noqa: E402,F401  isort: skip

__all__ = [
    "CODECS",
    "Codec",
    "CodecConfig",
    "CodecError",
    "CodecInput",
    "DecodeContext",
    "get_codec",
    "parse_codec_spec",
    "register_codec",
    "SharedFit",
]
