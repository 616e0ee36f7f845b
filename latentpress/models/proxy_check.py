"""True pixel LPIPS and DISTS on held-aside crops, beside what the latent distance says.

A codec trained against the latent perceptual distance (``models.latent_distance``)
can learn to fool it: lower the proxy while what LPIPS and DISTS see of the decoded
image gets no better. :class:`HeldAside` keeps a few latent crops of photos the codec
never trains on; at intervals the training codes them, and :meth:`HeldAside.check`
decodes them through the VAE and measures them in pixels, next to the distance's own
prediction for the same crops. A prediction that falls while the measured values do
not is the drift to look for (``ProxyCheck.drift``). Where prediction and
measurement part by more than a given share, the check refreshes the distance with
every pair measured so far (``LatentDistance.refresh``), so that the codec goes on
learning against a distance fitted to its own outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from latentpress.models.latent_distance import TARGETS, LatentDistance
from latentpress.models.metrics import KeepBudget, Reference

CHECK_EVERY = 250
"""Training steps between two checks of the held-aside crops."""
HELD_CROPS = 4
"""Crops held aside; a check codes each at its own quality."""


@dataclass(frozen=True)
class ProxyCheck:
    """One check: the held-aside crops' measured and predicted distances (means)."""

    step: int
    lpips: float
    """Pixel LPIPS of the crops as the codec decodes them, against the VAE's decoding
    of their latents."""
    dists: float
    predicted: float
    """The latent distance's prediction of LPIPS plus DISTS for the same crops."""
    refreshed: float | None = None
    """The prediction again after this check refreshed the distance (None: it did not)."""
    scales: dict[str, list[float]] | None = None
    """The refresh's factor for each target's taps (``LatentDistance.refresh``)."""

    @property
    def drift(self) -> float:
        """Predicted minus measured LPIPS plus DISTS (negative: the proxy flatters)."""
        return self.predicted - (self.lpips + self.dists)

    def summary(self) -> str:
        """The check's figures, for a progress line."""
        line = f"held aside: LPIPS {self.lpips:.4f}, DISTS {self.dists:.4f}, predicted {self.predicted:.4f}"
        if self.refreshed is not None:
            line += f", after refreshing the distance {self.refreshed:.4f}"
        return line


class HeldAside:
    """Latent crops (K, C, h, w) of photos kept out of training, and their reference
    images (the VAE's decodings of the crops), made once."""

    def __init__(self, crops: torch.Tensor, vae_name: str, device: str = "cpu") -> None:
        from latentpress.models.vae import load_vae

        self.crops = crops.to(device)
        self.vae = load_vae(vae_name, device)
        self.size = (crops.shape[3] * self.vae.stride, crops.shape[2] * self.vae.stride)
        budget = KeepBudget(1 << 28)  # the references' features, kept for every check
        self.references = [Reference(image, device, budget) for image in self._images(self.crops)]
        self.terms: list[torch.Tensor] = []
        """Every measured pair's channel terms (``LatentDistance.channel_terms``) ..."""
        self.measured: dict[str, list[float]] = {target: [] for target in TARGETS}
        """... and its pixel LPIPS and DISTS, the pairs a refresh fits."""

    def check(
        self, step: int, decoded: torch.Tensor, distance: LatentDistance, refresh_beyond: float = 0.0
    ) -> ProxyCheck:
        """Measure ``decoded`` (the codec's decoding of :attr:`crops`) in pixels and by
        ``distance``; refresh ``distance`` if its prediction misses the measured LPIPS
        plus DISTS by more than ``refresh_beyond`` times it (0: never)."""
        with torch.no_grad():
            terms = distance.channel_terms(decoded, distance.features(self.crops))
            predicted = distance.weigh(terms, "both").mean().item()
        values = [reference.measure([image], TARGETS)[0]
                  for reference, image in zip(self.references, self._images(decoded), strict=True)]  # fmt: skip
        self.terms.append(terms)
        for target in TARGETS:
            self.measured[target].extend(v[target] for v in values)
        means = {target: float(np.mean([v[target] for v in values])) for target in TARGETS}
        refreshed = scales = None
        if refresh_beyond and abs(predicted - sum(means.values())) > refresh_beyond * sum(means.values()):
            scales = distance.refresh(torch.cat(self.terms), {t: torch.tensor(v) for t, v in self.measured.items()})
            refreshed = distance.weigh(terms, "both").mean().item()
        return ProxyCheck(step, means["lpips"], means["dists"], predicted, refreshed, scales)

    def _images(self, latents: torch.Tensor) -> list[np.ndarray]:
        arrays = [z for z in latents.detach().float().cpu().numpy()]
        return self.vae.decode(arrays, [self.size] * len(arrays))
