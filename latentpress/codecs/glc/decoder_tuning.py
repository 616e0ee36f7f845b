"""A last, optional stage: the VAE decoder tuned to draw glc's latents as the photos were.

With the code and the synthesis fixed, a copy of the VAE decoder learns on the
collection's photos to turn what the synthesis gives at a random quality into the
original pixels (LPIPS plus a small pixel MSE, on 128-pixel crops). A decoder tuned on
coarse latents draws them much better than the stock one, but loses some of the detail
that fine latents hold (docs/glc.md). So each anchor quality decodes with its own
blend of the two, ``stock + b * (tuned - stock)``, with ``b`` chosen among
``BLEND_CHOICES`` by true pixel LPIPS plus DISTS on crops of photos the tuning did not
see.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from latentpress.codecs.base import CodecError
from latentpress.codecs.glc.bitstream import TunedDecoder, weights_key
from latentpress.codecs.glc.model import GlcModel
from latentpress.codecs.glc.params import ANCHORS

BLEND_CHOICES = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Blends of the tuning an anchor may decode with (0: the stock decoder)."""
MIN_CROP = 32
"""Fewest pixels a side of a crop (what LPIPS needs)."""
DECODER_PHOTOS = 32
"""Training photos whose pixels the decoder tuning reads (the first ones)."""


@dataclass(frozen=True)
class DecoderStage:
    """How the decoder is tuned."""

    steps: int
    crop: int = 16
    """Latent crop side (16: 128 image pixels)."""
    batch_size: int = 8
    learning_rate: float = 1e-4
    pixel_mse: float = 0.1
    """Weight of the pixels' mean squared error (images in [-1, 1]) beside LPIPS."""
    seed: int = 3
    judge_crops: int = 8
    """Crops of held-aside photos the blends are chosen on."""
    judge_crop: int = 32
    """Latent side of those crops (32: 256 image pixels)."""


class PixelCrops:
    """Random crops of latents and of their photos' pixels at the same place, with
    random left-right flips: of side ``size`` from the photos that have room for it,
    or of the smallest photo's side where none has (at least ``MIN_CROP``)."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]], stride: int, size: int, seed: int) -> None:
        pairs = [(z[:, : image.shape[0] // stride, : image.shape[1] // stride], image) for z, image in pairs]
        self.pairs = [(z, image) for z, image in pairs if min(z.shape[1:]) >= size]
        if not self.pairs:
            size = min(min(z.shape[1:]) for z, _ in pairs)
            self.pairs = pairs
        if size * stride < MIN_CROP:
            raise CodecError(f"glc decoder tuning needs photos of at least {MIN_CROP} pixels a side")
        areas = np.array([z.shape[1] * z.shape[2] for z, _ in self.pairs], np.float64)
        self.weights = areas / areas.sum()
        self.stride, self.size = stride, size
        self.rng = np.random.default_rng(seed)

    def batch(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent crops (N, C, size, size) and pixel crops (N, 3, size*s, size*s) in [-1, 1]."""
        latents, images = [], []
        s, n = self.stride, self.size
        for index in self.rng.choice(len(self.pairs), size=count, p=self.weights):
            z, image = self.pairs[index]
            top = int(self.rng.integers(0, z.shape[1] - n + 1))
            left = int(self.rng.integers(0, z.shape[2] - n + 1))
            latent, pixels = (
                z[:, top : top + n, left : left + n],
                image[top * s : (top + n) * s, left * s : (left + n) * s],
            )
            if self.rng.random() < 0.5:
                latent, pixels = latent[:, :, ::-1], pixels[:, ::-1]
            latents.append(np.ascontiguousarray(latent))
            images.append(np.ascontiguousarray(pixels))
        pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        return torch.from_numpy(np.stack(latents)), pixels


def tune_decoder(
    model: GlcModel,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    vae_name: str,
    stage: DecoderStage,
    device: str = "cpu",
    progress: Callable[[int, float, float], None] | None = None,
) -> TunedDecoder:
    """The VAE decoder tuned on ``pairs`` (latent, its photo's (H, W, 3) uint8 pixels)
    for ``model``'s decoded latents, and each anchor's blend; ``progress(step, lpips,
    mse)`` now and then. The blends are chosen on photos kept out of the tuning
    (``split_for_judging``)."""
    from latentpress.models.metrics import lpips_network
    from latentpress.models.vae import load_vae

    if not pairs:
        raise CodecError(f"glc decoder tuning needs photos of at least {MIN_CROP} pixels a side")
    try:
        vae = load_vae(vae_name, device)
    except (OSError, ValueError) as exc:
        raise CodecError(f"glc's decoder tuning needs the VAE {vae_name!r}: {exc}") from None
    train_pairs, judge_pairs = split_for_judging(pairs)
    crops = PixelCrops(train_pairs, vae.stride, stage.crop, stage.seed)
    lpips = lpips_network(device)
    tuned = copy.deepcopy(vae.vae).to(device)
    tuned.decoder.requires_grad_(True).train()
    optimizer = torch.optim.Adam(tuned.decoder.parameters(), lr=stage.learning_rate)
    torch.manual_seed(stage.seed)
    for step in range(1, stage.steps + 1):
        latents, pixels = crops.batch(stage.batch_size)
        quality = 1 + (ANCHORS - 1) * torch.rand(stage.batch_size)
        with torch.no_grad():
            decoded = decoded_latents(model, latents.to(device), quality.to(device))
        image = tuned.decode(decoded).sample.clamp(-1, 1)
        pixels = pixels.to(device)
        distance, mse = lpips(image, pixels).mean(), ((image - pixels) ** 2).mean()
        loss = distance + stage.pixel_mse * mse
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None and (step % 10 == 0 or step == stage.steps):
            progress(step, distance.item(), mse.item())
    state = {name: t.detach().cpu().numpy().astype(np.float16) for name, t in tuned.decoder.state_dict().items()}
    judge = PixelCrops(judge_pairs, vae.stride, stage.judge_crop, stage.seed + 1).batch(stage.judge_crops)
    return TunedDecoder(state, choose_blends(model, state, vae, judge))


def tune_on_collection(
    model: GlcModel,
    latents: list[np.ndarray],
    images: list[np.ndarray | None],
    vae_name: str,
    stage: DecoderStage,
    device: str = "cpu",
    progress: Callable[[int, float, float], None] | None = None,
) -> TunedDecoder | None:
    """``tune_decoder`` on the first ``DECODER_PHOTOS`` training photos whose pixels
    are given (``images[i]`` for ``latents[i]``, ``None`` where not) and large enough to
    measure (``MIN_CROP``); ``None`` (the stock decoder stays) when none is that large,
    ``CodecError`` when no pixels are given at all."""
    pairs = [(z, image) for z, image in zip(latents, images, strict=True) if image is not None]
    if not pairs:
        raise CodecError("glc decoder tuning needs the pixels of its training photos")
    usable = [(z, image) for z, image in pairs if min(image.shape[:2]) >= MIN_CROP][:DECODER_PHOTOS]
    return tune_decoder(model, usable, vae_name, stage, device, progress) if usable else None


def split_for_judging(
    pairs: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
    """The photos to tune on and those to choose the blends on: every eighth photo held
    out (with four to seven photos the last one; with fewer, all serve for both)."""
    if len(pairs) < 4:
        return pairs, pairs
    held = set(range(7, len(pairs), 8)) if len(pairs) >= 8 else {len(pairs) - 1}
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]


def decoded_latents(model: GlcModel, latents: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """What glc's decoder gives for ``latents`` at ``quality`` (rounded code)."""
    decoded, _ = model.code(latents, quality, rounding=True)
    return model.synthesis(decoded)


def choose_blends(
    model: GlcModel, state: dict[str, np.ndarray], vae, judge: tuple[torch.Tensor, torch.Tensor]
) -> np.ndarray:
    """Per anchor quality, the blend of ``BLEND_CHOICES`` whose decodings of the
    ``judge`` crops have the lowest mean pixel LPIPS plus DISTS."""
    from latentpress.models.metrics import KeepBudget, Reference
    from latentpress.models.vae import DecoderWeights

    latents, pixels = judge
    originals = list(pixels.add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy())
    budget = KeepBudget(1 << 30)
    references = [Reference(np.ascontiguousarray(o), str(vae.device), budget) for o in originals]
    sizes = [(o.shape[1], o.shape[0]) for o in originals]
    decoders = [vae.with_decoder(DecoderWeights(weights_key(state), state, blend)) for blend in BLEND_CHOICES]
    blends = np.zeros(ANCHORS, np.float32)
    for anchor in range(ANCHORS):
        with torch.no_grad():
            quality = torch.full((len(latents),), anchor + 1.0, device=vae.device)
            decoded = list(decoded_latents(model, latents.to(vae.device), quality).cpu().numpy())
        images = [decoder.decode(decoded, sizes) for decoder in decoders]
        scores = np.zeros(len(BLEND_CHOICES))
        for index, reference in enumerate(references):
            for choice, measured in enumerate(reference.measure([i[index] for i in images], ("lpips", "dists"))):
                scores[choice] += measured["lpips"] + measured["dists"]
        blends[anchor] = BLEND_CHOICES[int(np.argmin(scores))]
    return blends
