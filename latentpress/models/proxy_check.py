"""True pixel LPIPS and DISTS on held-aside crops, beside what the latent distance says.

A codec trained against the latent perceptual distance (``models.latent_distance``)
can learn to fool it: lower the proxy while what LPIPS and DISTS see of the decoded
image gets no better. :class:`HeldAside` keeps a few latent crops of photos the codec
never trains on; at intervals the training codes them, and :meth:`HeldAside.check`
decodes them through the VAE and measures them in pixels, next to the distance's own
prediction for the same crops. A prediction that falls while the measured values do
not is the drift to look for (``ProxyCheck.drift``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from latentpress.models.metrics import KeepBudget, Reference


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

    @property
    def drift(self) -> float:
        """Predicted minus measured LPIPS plus DISTS (negative: the proxy flatters)."""
        return self.predicted - (self.lpips + self.dists)


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

    def check(self, step: int, decoded: torch.Tensor, distance: torch.nn.Module) -> ProxyCheck:
        """Measure ``decoded`` (the codec's decoding of :attr:`crops`) in pixels and by
        ``distance`` (a ``LatentDistance``)."""
        with torch.no_grad():
            predicted = distance(decoded, self.crops, "both").mean().item()
        values = [reference.measure([image], ("lpips", "dists"))[0]
                  for reference, image in zip(self.references, self._images(decoded), strict=True)]  # fmt: skip
        return ProxyCheck(step, float(np.mean([v["lpips"] for v in values])),
                          float(np.mean([v["dists"] for v in values])), predicted)  # fmt: skip

    def _images(self, latents: torch.Tensor) -> list[np.ndarray]:
        arrays = [z for z in latents.detach().float().cpu().numpy()]
        return self.vae.decode(arrays, [self.size] * len(arrays))
