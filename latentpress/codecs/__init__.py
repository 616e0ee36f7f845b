"""Codecs: one module (or package) per codec, a registry, and shared entropy coding.

Usable as a plain library::

    from latentpress.codecs import get_codec
    codec = get_codec("avif")
    data = codec.encode(item, codec.params(quality=40))

Importing this package registers every built-in codec's :class:`CodecInfo` without
importing torch; :func:`get_codec` loads an implementation when it is first used.
"""

from latentpress.codecs.base import (
    BatchEncoder,
    Codec,
    CodecError,
    CodecInput,
    CollectionModelCodec,
    DecodeContext,
    ImageEncoder,
    RateControlled,
    ShardModelCodec,
    SharedFit,
)
from latentpress.codecs.registry import CODECS, CodecInfo, codec_info, get_codec, register_codec
from latentpress.codecs.spec import CodecConfig, parse_codec_spec, parse_specs

# Built-in codecs register themselves on import.
from latentpress.codecs import clric, glc, laduree, latent_q, reference, relic, vae_alone  # noqa: E402,F401  isort: skip

__all__ = [
    "CODECS",
    "BatchEncoder",
    "Codec",
    "CodecConfig",
    "CodecError",
    "CodecInfo",
    "CodecInput",
    "CollectionModelCodec",
    "DecodeContext",
    "ImageEncoder",
    "RateControlled",
    "ShardModelCodec",
    "SharedFit",
    "codec_info",
    "get_codec",
    "parse_codec_spec",
    "parse_specs",
    "register_codec",
]
