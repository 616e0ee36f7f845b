"""A discriminator on VAE latents, for training a codec's decoder towards latents that
look like those of real photos (the adversarial term of GLC and MS-ILLM, moved into
the latent space where it is cheap on a CPU).

The discriminator is a small patch network with spectral normalisation: it sees a
standardised latent crop and gives a logit for every fourth latent position, each
seeing 20x20 latent values (160x160 image pixels), high for a real photo's latent.
It learns with the non-saturating logistic loss; the codec's term is
``softplus(-D(decoded))``, its mean per crop. It lives only during training: nothing
of it is stored in a model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from latentpress.codecs.hyperprior.training import latent_statistics


class LatentDiscriminator(nn.Module):
    """Patch logits of a latent crop (B, C, h, w) -> (B, 1, h/4, w/4)."""

    def __init__(self, channels: int, mean: np.ndarray, std: np.ndarray, width: int = 64) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.layers = nn.Sequential(
            spectral_norm(nn.Conv2d(channels, width, 3, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * width, 1, 3, padding=1)),
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.layers((latent - self.mean) / self.std)


class Adversary:
    """A discriminator and its optimiser, trained alongside a codec."""

    def __init__(self, latents: list[np.ndarray], learning_rate: float = 2e-4, device: str = "cpu") -> None:
        mean, std = latent_statistics(latents)
        self.network = LatentDiscriminator(len(mean), mean, std).to(device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=learning_rate, betas=(0.5, 0.9))

    def codec_loss(self, decoded: torch.Tensor) -> torch.Tensor:
        """(B,) how unlike real latents the discriminator finds each decoded crop
        (``softplus(-logit)`` averaged over its patches); differentiable in ``decoded``."""
        return F.softplus(-self.network(decoded)).mean((1, 2, 3))

    def update(self, real: torch.Tensor, decoded: torch.Tensor) -> float:
        """One step of the discriminator on ``real`` against ``decoded`` crops; its loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.softplus(-self.network(real)).mean() + F.softplus(self.network(decoded.detach())).mean()
        loss.backward()
        self.optimizer.step()
        return loss.item()
