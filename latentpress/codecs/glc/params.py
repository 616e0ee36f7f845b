"""GLC parameters: the quality knob, the network sizes and the training schedule.

Known without torch, so that ``--codec glc:fast@2.5`` is checked before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from latentpress.codecs.base import ADDED, CodecError, check_loss_weights

ANCHORS = 4
"""Qualities the model learns scalers at (``quality`` 1 to 4); between them the
scalers are interpolated, so the knob is continuous."""
LAMBDAS = (0.03, 0.12, 0.48, 1.92)
"""Rate-distortion trade-off of each anchor during training: loss = bpp + lambda * the
latent's distortion (per-channel MSE over the channel's variance, summed over
channels; :mod:`.train`). Anchor 1 costs the fewest bits."""
CHANNEL_WEIGHTINGS = ("off", "on", "auto")
"""Values of ``GlcParams.channel_weighting``."""
AUTO_WEIGHTED_CHANNELS = 8
"""``channel_weighting="auto"`` weighs the channels of latents with at least this many:
TAESD3's 16, whose measured sensitivities differ ninefold, not the four of TAESD and
TAESDXL, which differ little (docs/glc.md)."""


@dataclass(frozen=True)
class Architecture:
    """Sizes of one GLC model (written into the model)."""

    latent_channels: int
    """C: channels of the VAE latent (4 for TAESD, 16 for TAESD3)."""
    channels: int = 64
    """N: channels of the code ``y``."""
    hyper_channels: int = 32
    """Channels of the hyperprior ``z``."""
    context_channels: int = 64
    """Width of each part's parameter network."""
    blocks: int = 2
    """Depth-wise convolution blocks at each resolution of the transforms."""
    stride: int = 2
    """1: ``y`` at the latent's resolution (1/8 of the image); 2: at 1/16."""
    identity: bool = False
    """Transforms learned as residuals around a rearrangement of the latent (space to
    depth into the first ``C * stride**2`` code channels, and back), so that coding can
    keep every detail of the latent at high rates (:mod:`.model`). False in models
    written before this existed."""

    @property
    def rearranged_channels(self) -> int:
        """Code channels the latent takes when rearranged space to depth."""
        return self.latent_channels * self.stride**2

    def check(self) -> None:
        """Raise ``ValueError`` unless the sizes make a network."""
        sizes = (self.latent_channels, self.channels, self.hyper_channels, self.context_channels)
        if not all(1 <= s <= 1024 for s in sizes) or not 0 <= self.blocks <= 16 or self.stride not in (1, 2):
            raise ValueError(f"GLC sizes out of range: {self}")
        if self.identity and self.rearranged_channels > self.channels:
            raise ValueError(
                f"GLC code of {self.channels} channels cannot hold the rearranged latent "
                f"({self.latent_channels} x {self.stride}x{self.stride})"
            )


@dataclass(frozen=True)
class Training:
    """How a model learns from a collection's latents."""

    steps: int = 4000
    batch_size: int = 8
    crop: int = 32
    """Side of the latent crops trained on (32: 256 image pixels)."""
    learning_rate: float = 1e-3
    rounding: float = 0.2
    """Share of the last steps that round ``y`` (straight-through) instead of adding noise."""
    seed: int = 0
    latent_perceptual: float = 0.0
    """Weight of the latent perceptual distance (``models.latent_distance``, calibrated
    to LPIPS plus DISTS) added to the distortion; 0: the latent's MSE alone."""
    adversarial: float = 0.0
    """Weight of a latent discriminator's verdict (``hyperprior.adversarial``) added to
    the distortion from ``ADVERSARIAL_FROM`` of the steps on; 0: none."""
    distance_refresh: float = 0.0
    """With ``latent_perceptual``: a held-aside check whose prediction misses the measured
    LPIPS plus DISTS by more than this share of it refits the distance to the codec's
    measured outputs (``models.proxy_check``); 0: never."""


@dataclass(frozen=True)
class GlcParams:
    """One GLC configuration. ``quality`` in [1, 4]: higher, more bits and a closer
    latent; the sizes and schedule below only matter when a model is trained."""

    quality: float = 2.0
    channels: int = 64
    hyper_channels: int = 32
    context_channels: int = 64
    blocks: int = 2
    stride: int = 2
    identity: bool = False
    """Transforms around the rearranged latent (``Architecture.identity``) wherever the
    code has room for it: ``channels`` >= C * stride**2 (64 for TAESD3 at stride 2)."""
    steps: int = 4000
    batch_size: int = 8
    crop: int = 32
    learning_rate: float = 4e-3
    sample: int = 256
    """Images of the collection a model is trained on (all when it has fewer)."""
    perceptual_steps: int = 200
    """Steps of the last, perceptual stage (LPIPS through the VAE decoder; :mod:`.perceptual`)."""
    latent_perceptual: float = 0.0
    """Weight of the latent perceptual distance in the rate-distortion stage (``Training``)."""
    adversarial: float = field(default=0.0, metadata={ADDED: "0.6.1"})
    """Weight of the latent discriminator in the rate-distortion stage (``Training``)."""
    distance_refresh: float = field(default=0.0, metadata={ADDED: "0.6.2"})
    """Drift beyond which training refreshes the latent distance (``Training``)."""
    decoder_steps: int = field(default=0, metadata={ADDED: "0.7.0"})
    """Steps of a last stage that tunes the VAE decoder on the collection's photos and
    stores it in the model (:mod:`latentpress.codecs.tuned_decoder`); 0: the stock decoder draws every image."""
    channel_weighting: str = field(default="off", metadata={ADDED: "0.9.0"})
    """``on``: weigh each latent channel's error in the rate-distortion stage by how much
    it costs pixel LPIPS plus DISTS, measured on the collection's photos before training
    (:mod:`latentpress.models.channel_sensitivity`); ``off``: the channels alike;
    ``auto``: on for latents of ``AUTO_WEIGHTED_CHANNELS`` channels or more."""

    def architecture(self, latent_channels: int) -> Architecture:
        arch = Architecture(latent_channels, self.channels, self.hyper_channels, self.context_channels, self.blocks,
                            self.stride)  # fmt: skip
        return replace(arch, identity=self.identity and arch.rearranged_channels <= self.channels)

    def weighs_channels(self, latent_channels: int) -> bool:
        """Whether training weighs the channels of a ``latent_channels``-channel latent."""
        if self.channel_weighting == "auto":
            return latent_channels >= AUTO_WEIGHTED_CHANNELS
        return self.channel_weighting == "on"

    def training(self, steps: int | None = None) -> Training:
        return Training(
            steps or self.steps,
            self.batch_size,
            self.crop,
            self.learning_rate,
            latent_perceptual=self.latent_perceptual,
            adversarial=self.adversarial,
            distance_refresh=self.distance_refresh,
        )

    def validate(self) -> None:
        """Raise ``CodecError`` naming the first field out of range."""
        if not (math.isfinite(self.quality) and 1.0 <= self.quality <= ANCHORS):
            raise CodecError(f"glc quality must be in [1, {ANCHORS}], got {self.quality}")
        try:
            self.architecture(4).check()
        except ValueError as exc:
            raise CodecError(str(exc)) from None
        if self.steps < 1 or self.batch_size < 1 or not 4 <= self.crop <= 256 or self.crop % (2 * self.stride * 2):
            raise CodecError(
                f"glc needs steps >= 1, batch_size >= 1 and a crop in 4..256 divisible by "
                f"{4 * self.stride}, got {self.steps}, {self.batch_size}, {self.crop}"
            )
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0) or self.sample < 1:
            raise CodecError("glc needs learning_rate > 0 and sample >= 1")
        if self.perceptual_steps < 0 or self.decoder_steps < 0:
            raise CodecError(
                f"glc perceptual_steps and decoder_steps must be >= 0, got {self.perceptual_steps}, {self.decoder_steps}"
            )
        if self.channel_weighting not in CHANNEL_WEIGHTINGS:
            raise CodecError(
                f"glc channel_weighting must be one of {', '.join(CHANNEL_WEIGHTINGS)}, got {self.channel_weighting!r}"
            )
        check_loss_weights("glc", self, ("latent_perceptual", "adversarial", "distance_refresh"))


PRESETS: dict[str, GlcParams] = {
    "tiny": GlcParams(
        channels=16,
        hyper_channels=8,
        context_channels=16,
        blocks=1,
        steps=60,
        batch_size=4,
        crop=16,
        learning_rate=3e-3,
        sample=16,
        perceptual_steps=0,
    ),
    "fast": GlcParams(steps=1500, learning_rate=4e-3, perceptual_steps=60, decoder_steps=300, channel_weighting="auto"),
    "default": GlcParams(decoder_steps=300, channel_weighting="auto"),
}
"""``tiny`` trains in seconds (tests); ``fast`` in minutes; ``default`` is the benchmark's (4,000
steps: about 35 minutes on one CPU core, and as good on the benchmark as 12,000 steps at a quarter
of the learning rate: docs/glc.md). Since 0.7.0 ``fast`` and ``default`` also tune the VAE decoder
(300 steps, about 13 minutes more on one core). Since 0.9.0 both weigh TAESD3's channels by
what they cost in pixels (``channel_weighting="auto"``; TAESD's and TAESDXL's alike)."""
