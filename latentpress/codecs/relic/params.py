"""Relic parameters: the quality knob, the network sizes and the training schedule.

Known without torch, so that ``--codec relic:fast@2.5`` is checked before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from latentpress.codecs.base import ADDED, CodecError, check_loss_weights

QUALITY_RANGE = (1.0, 4.0)
LAMBDA_LOW = 0.03
"""Lambda of quality 1; every quality step multiplies it by ``LAMBDA_STEP``: loss =
bpp + lambda * the latent's distortion (per-channel MSE over the channel's variance,
summed over channels, as ``glc``'s)."""
LAMBDA_STEP = 4.0
DECODE_STEPS = 4
"""DDIM steps the decoder takes from the predicted t down to 0 (fewer when t is small)."""
TIME_SEARCHES = ("predicted", "distance", "pixels")
"""How the encoder picks the denoising time: the parameter network's prediction, or a
search by the latent perceptual distance or by pixel LPIPS plus DISTS (``time_search``)."""


def lambda_of(quality: Any) -> Any:
    """Lambda of a quality (float or tensor) in ``QUALITY_RANGE`` (log-linear: continuous
    and rising)."""
    return LAMBDA_LOW * LAMBDA_STEP ** (quality - QUALITY_RANGE[0])


@dataclass(frozen=True)
class Architecture:
    """Sizes of one relic model (written into the model)."""

    latent_channels: int
    """C: channels of the VAE latent (4 for TAESD, 16 for TAESD3)."""
    unet_channels: tuple[int, int, int] = (32, 64, 64)
    """Widths of the denoiser's three levels (the last one with self-attention)."""
    parameter_channels: tuple[int, int, int] = (32, 64, 128)
    """Widths of the parameter network's stride-2 levels."""
    hyper_channels: int = 32
    feature_channels: int = 64
    context_channels: int = 64

    def check(self) -> None:
        """Raise ``ValueError`` unless the sizes make a network."""
        sizes = (self.latent_channels, *self.unet_channels, *self.parameter_channels, self.hyper_channels,
                 self.feature_channels, self.context_channels)  # fmt: skip
        if not all(isinstance(s, int) and 1 <= s <= 1024 for s in sizes):
            raise ValueError(f"relic sizes out of range: {self}")
        if any(c % 8 for c in self.unet_channels) or len(self.unet_channels) != 3 or len(self.parameter_channels) != 3:
            raise ValueError(f"relic denoiser widths must be three multiples of 8: {self.unet_channels}")


FIT_TIMES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
"""Times the time fit decodes each photo from: the range of the best hand-set times on
Kodak photos (docs/relic.md), finer where they lie; beyond 0.4 its costs are
extrapolated."""


@dataclass(frozen=True)
class TimeFit:
    """Training's last stage: the parameter network's time refitted to pixel LPIPS plus
    DISTS measured on held-out photos decoded from ``times`` (:mod:`.time_fit`)."""

    photos: int
    """Photos held out and measured (0: no fit); they must come with their pixels."""
    qualities: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    windows: int = 3
    """Windows judged per photo and quality."""
    window: int = 16
    """Side of a window's core in latent cells (128 pixels for TAESD)."""
    margin: int = 2
    """Latent cells of context decoded around the core."""
    times: tuple[float, ...] = FIT_TIMES
    steps: int = 300
    learning_rate: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class Training:
    """How a model learns from a collection's latents: the denoiser first, then the
    parameter network and the entropy model with the denoiser frozen."""

    denoiser_steps: int = 6000
    coder_steps: int = 4000
    batch_size: int = 8
    crop: int = 32
    """Side of the latent crops trained on (32: 256 image pixels)."""
    learning_rate: float = 1e-3
    denoiser_learning_rate: float = 5e-4
    rounding: float = 0.2
    """Share of the coder's last steps whose rate is that of rounded values (else noisy)."""
    seed: int = 0
    latent_perceptual: float = 0.0
    """Weight of the latent perceptual distance (``models.latent_distance``, calibrated
    to LPIPS plus DISTS) between the denoised and the original crops, added to the
    codec stage's distortion; 0: the latent's squared error alone."""
    distance_refresh: float = 0.0
    """With ``latent_perceptual``: a held-aside check whose prediction misses the measured
    LPIPS plus DISTS by more than this share of it refits the distance to the codec's
    measured outputs (``models.proxy_check``); 0: never."""
    time_fit: TimeFit = TimeFit(0)
    """The last stage: P's time refitted to pixel LPIPS plus DISTS (:mod:`.time_fit`)."""


@dataclass(frozen=True)
class RelicParams:
    """One relic configuration. ``quality`` in [1, 4]: higher, more bits and a closer
    latent; the sizes and schedule only matter when a model is trained."""

    quality: float = 2.0
    unet_channels: tuple[int, int, int] = (32, 64, 64)
    parameter_channels: tuple[int, int, int] = (32, 64, 128)
    hyper_channels: int = 32
    feature_channels: int = 64
    context_channels: int = 64
    denoiser_steps: int = 6000
    coder_steps: int = 4000
    batch_size: int = 8
    crop: int = 32
    sample: int = 256
    """Images of the collection a model is trained on (all when it has fewer)."""
    latent_perceptual: float = 0.0
    """Weight of the latent perceptual distance in the codec stage (``Training``)."""
    distance_refresh: float = field(default=0.0, metadata={ADDED: "0.6.2"})
    """Drift beyond which training refreshes the latent distance (``Training``)."""
    time_fit_photos: int = 0
    """Training images held out of the denoiser's and the codec's stages (the first
    given with their pixels, at most a third) on which the parameter network's time is
    then refitted to pixel LPIPS plus DISTS (:mod:`.time_fit`); 0: no fit."""
    time_search: str = "predicted"
    """Encoding only: ``predicted`` (the parameter network's t), ``distance`` (the time
    whose decoded latent is closest by the latent perceptual distance; about 11
    denoisings of the latent per image) or ``pixels`` (by pixel LPIPS plus DISTS
    against the original; at most 7 denoisings, VAE decodings and measurements),
    :mod:`.time_search`."""
    decoder_steps: int = field(default=0, metadata={ADDED: "0.8.0"})
    """Steps of a last stage that tunes the VAE decoder on the collection's photos to
    draw relic's decoded latents, stored in the model
    (:mod:`latentpress.codecs.tuned_decoder`); 0: the stock decoder draws every image."""

    def architecture(self, latent_channels: int) -> Architecture:
        return Architecture(latent_channels, tuple(self.unet_channels), tuple(self.parameter_channels),
                            self.hyper_channels, self.feature_channels, self.context_channels)  # fmt: skip

    def training(self, steps: int | None = None) -> Training:
        """The schedule; ``steps`` (if given) is the total, split as the preset splits it."""
        denoiser, coder = self.denoiser_steps, self.coder_steps
        if steps is not None:
            denoiser = max(1, round(steps * denoiser / (denoiser + coder)))
            coder = max(1, steps - denoiser)
        return Training(denoiser, coder, self.batch_size, self.crop, latent_perceptual=self.latent_perceptual,
                        distance_refresh=self.distance_refresh, time_fit=TimeFit(self.time_fit_photos))  # fmt: skip

    def validate(self) -> None:
        """Raise ``CodecError`` naming the first field out of range."""
        if not (math.isfinite(self.quality) and QUALITY_RANGE[0] <= self.quality <= QUALITY_RANGE[1]):
            raise CodecError(
                f"relic quality must be in [{QUALITY_RANGE[0]:g}, {QUALITY_RANGE[1]:g}], got {self.quality}"
            )
        try:
            self.architecture(4).check()
        except ValueError as exc:
            raise CodecError(str(exc)) from None
        if min(self.denoiser_steps, self.coder_steps, self.batch_size, self.sample) < 1:
            raise CodecError("relic needs denoiser_steps, coder_steps, batch_size and sample >= 1")
        if not (isinstance(self.decoder_steps, int) and self.decoder_steps >= 0):
            raise CodecError(f"relic decoder_steps must be a count >= 0, got {self.decoder_steps!r}")
        if not (isinstance(self.time_fit_photos, int) and self.time_fit_photos >= 0):
            raise CodecError(f"relic time_fit_photos must be a count >= 0, got {self.time_fit_photos!r}")
        check_loss_weights("relic", self, ("latent_perceptual", "distance_refresh"))
        if self.time_search not in TIME_SEARCHES:
            raise CodecError(f"relic time_search must be one of {TIME_SEARCHES}, got {self.time_search!r}")
        if not 16 <= self.crop <= 256 or self.crop % 16:
            raise CodecError(f"relic crop must be a multiple of 16 in 16..256, got {self.crop}")


PRESETS: dict[str, RelicParams] = {
    "tiny": RelicParams(
        unet_channels=(8, 16, 16),
        parameter_channels=(8, 8, 16),
        hyper_channels=8,
        feature_channels=16,
        context_channels=16,
        denoiser_steps=40,
        coder_steps=40,
        batch_size=4,
        crop=16,
        sample=16,
    ),
    "fast": RelicParams(denoiser_steps=1500, coder_steps=1000, time_fit_photos=6),
    "default": RelicParams(time_fit_photos=12, decoder_steps=300),
    "best": RelicParams(time_fit_photos=12, time_search="pixels", decoder_steps=300),
}
"""``tiny`` trains in seconds (tests); ``fast`` in minutes; ``default`` is the benchmark's;
``fast`` and ``default`` end by fitting the time on held-out photos (about 30 s a
photo of up to 0.4 MP on a CPU core, 5 s more a megapixel); ``best`` trains as
``default`` and encodes with the denoising time searched by pixel LPIPS plus DISTS
(about 30 s a photo and quality on a CPU core instead of 0.1 s). Since 0.9.0 ``default`` and
``best`` end by tuning the VAE decoder on the collection (300 steps, about 15 minutes more on
one core; docs/relic.md)."""
