"""Tuning a copy of the VAE decoder to draw a codec's decoded latents as the photos were.

With the codec trained and fixed, the copy learns on the collection's photos to turn
what the codec decodes at a random quality into the original pixels (LPIPS plus a
small pixel MSE, on 128-pixel crops). A decoder tuned on coarse latents draws them
much better than the stock one but loses some of the detail fine latents hold, so the
blend each anchor quality decodes with is then chosen on photos the tuning did not
see (:mod:`.blends`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from latentpress.codecs.base import CodecError
from latentpress.codecs.tuned_decoder.blends import choose_blends
from latentpress.codecs.tuned_decoder.stored import ANCHOR_QUALITIES, TunedDecoder

MIN_CROP = 32
"""Fewest pixels a side of a crop (what LPIPS needs)."""
DECODER_PHOTOS = 32
"""Training photos whose pixels the decoder tuning reads (the first ones)."""

Decoding = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A codec's decoded latents (N, C, h, w) of latents (N, C, h, w) at qualities (N,),
computed without gradients on the latents' device."""


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
    """Random crops of latents and of their photos' pixels at the same place (never
    mirrored: ``hyperprior.training.Crops``), of side ``size`` from the photos that have room for it,
    or of the smallest photo's side where none has (at least ``MIN_CROP``)."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]], stride: int, size: int, seed: int) -> None:
        pairs = [(z[:, : image.shape[0] // stride, : image.shape[1] // stride], image) for z, image in pairs]
        self.pairs = [(z, image) for z, image in pairs if min(z.shape[1:]) >= size]
        if not self.pairs:
            size = min(min(z.shape[1:]) for z, _ in pairs)
            self.pairs = pairs
        if size * stride < MIN_CROP:
            raise CodecError(f"VAE decoder tuning needs photos of at least {MIN_CROP} pixels a side")
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
            latents.append(np.ascontiguousarray(z[:, top : top + n, left : left + n]))
            images.append(np.ascontiguousarray(image[top * s : (top + n) * s, left * s : (left + n) * s]))
        pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        return torch.from_numpy(np.stack(latents)), pixels


def tune_decoder(
    decoding: Decoding,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    vae_name: str,
    stage: DecoderStage,
    device: str = "cpu",
    progress: Callable[[int, float, float], None] | None = None,
) -> TunedDecoder:
    """The VAE decoder tuned on ``pairs`` (latent, its photo's (H, W, 3) uint8 pixels)
    for the codec's ``decoding``, and each anchor's blend; ``progress(step, lpips,
    mse)`` now and then. The blends are chosen on photos kept out of the tuning
    (``split_for_judging``)."""
    from latentpress.models.metrics import lpips_network
    from latentpress.models.vae import load_vae

    if not pairs:
        raise CodecError(f"VAE decoder tuning needs photos of at least {MIN_CROP} pixels a side")
    try:
        vae = load_vae(vae_name, device)
    except (OSError, ValueError) as exc:
        raise CodecError(f"VAE decoder tuning needs the VAE {vae_name!r}: {exc}") from None
    train_pairs, judge_pairs = split_for_judging(pairs)
    crops = PixelCrops(train_pairs, vae.stride, stage.crop, stage.seed)
    lpips = lpips_network(device)
    tuned = copy.deepcopy(vae.vae).to(device)
    tuned.decoder.requires_grad_(True).train()
    optimizer = torch.optim.Adam(tuned.decoder.parameters(), lr=stage.learning_rate)
    low, high = ANCHOR_QUALITIES[0], ANCHOR_QUALITIES[-1]
    torch.manual_seed(stage.seed)
    for step in range(1, stage.steps + 1):
        latents, pixels = crops.batch(stage.batch_size)
        quality = low + (high - low) * torch.rand(stage.batch_size)
        with torch.no_grad():
            decoded = decoding(latents.to(device), quality.to(device))
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
    return TunedDecoder(state, choose_blends(decoding, state, vae, judge))


def tune_on_collection(
    decoding: Decoding,
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
        raise CodecError("VAE decoder tuning needs the pixels of its training photos")
    usable = [(z, image) for z, image in pairs if min(image.shape[:2]) >= MIN_CROP][:DECODER_PHOTOS]
    return tune_decoder(decoding, usable, vae_name, stage, device, progress) if usable else None


def split_for_judging(
    pairs: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
    """The photos to tune on and those to choose the blends on: every eighth photo held
    out (with four to seven photos the last one; with fewer, all serve for both)."""
    if len(pairs) < 4:
        return pairs, pairs
    held = set(range(7, len(pairs), 8)) if len(pairs) >= 8 else {len(pairs) - 1}
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]
