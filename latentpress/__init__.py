"""latentpress: compress large photo collections with generative latent codecs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("latentpress")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
