"""Laduree's denoiser: a small DiT over latent patches that knows images by index.

Reading order, as the data flows:

1. the noisy latent (N, C, H, W) is cut into ``patch x patch`` patches, each linearly
   embedded to ``hidden`` features, plus fixed 2-D sine-cosine positions;
2. the timestep becomes a sinusoidal embedding and an MLP; one shared projection
   gives six modulation vectors that every block offsets by its own learned table
   (adaLN-single, as PixArt-alpha, instead of DiT's per-block adaLN MLP: the weights
   are the rate, and this saves ``6 * hidden**2`` of them per block);
3. the image index becomes ``index_tokens`` tokens of Gaussian random Fourier
   features (a fixed projection drawn from the seed, never trained, so nothing grows
   with the number of images), each projected to ``hidden`` by one shared linear map;
4. ``depth`` blocks: modulated self-attention, gated cross-attention to the index
   tokens (CAG: the residual branch scaled by a learned per-feature gate ``alpha``,
   zero at the start), modulated MLP;
5. a modulated final layer predicts the clean latent's patches (x0 prediction).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentpress.codecs.laduree.params import Architecture

TIMESTEP_FEATURES = 256
FOURIER_SCALE = 1.0
"""Standard deviation of the random frequencies (cycles per index step)."""


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift`` with per-sample (N, D) shift and scale."""
    return x * (1 + scale[:, None]) + shift[:, None]


@lru_cache(maxsize=32)
def sincos_positions(rows: int, cols: int, dim: int) -> torch.Tensor:
    """(rows * cols, dim) fixed 2-D sine-cosine position embedding (row-major tokens)."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (np.arange(quarter, dtype=np.float64) / quarter)
    r, c = np.meshgrid(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64), indexing="ij")
    angles = [np.outer(axis.ravel(), omega) for axis in (r, c)]
    table = np.concatenate([f(a) for a in angles for f in (np.sin, np.cos)], axis=1)
    return torch.from_numpy(table.astype(np.float32))


class TimestepEmbedding(nn.Module):
    """Diffusion timestep -> (N, hidden): sinusoidal features, then an MLP."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(TIMESTEP_FEATURES, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = TIMESTEP_FEATURES // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / half)
        angles = t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([torch.cos(angles), torch.sin(angles)], dim=1))


class IndexEmbedding(nn.Module):
    """Image index -> (N, index_tokens, hidden) via fixed Gaussian random Fourier features."""

    def __init__(self, arch: Architecture, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        shape = (arch.index_tokens, arch.index_frequencies)
        freqs = torch.randn(shape, generator=generator, dtype=torch.float64, device="cpu")
        freqs = freqs * FOURIER_SCALE
        self.register_buffer("freqs", freqs, persistent=False)
        self.proj = nn.Linear(2 * arch.index_frequencies, arch.hidden)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        # float64 phases, reduced to one turn, keep large indices exact
        turns = torch.remainder(index.double()[:, None, None] * self.freqs[None], 1.0)
        angles = (2 * math.pi * turns).float()
        return self.proj(torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1))


class Attention(nn.Module):
    """Multi-head attention of queries ``x`` over ``context`` (itself for self-attention)."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(hidden, hidden)
        self.kv = nn.Linear(hidden, 2 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q = self.q(x).view(n, length, self.heads, -1).transpose(1, 2)
        k, v = self.kv(context).view(n, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(n, length, dim))


class GatedCrossAttention(nn.Module):
    """CAG: ``x + alpha * CrossAttention(norm(x), index tokens)``, alpha per feature."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.attention = Attention(hidden, heads)
        self.alpha = nn.Parameter(torch.zeros(hidden))

    def forward(self, x: torch.Tensor, index_tokens: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * self.attention(self.norm(x), index_tokens)


class Block(nn.Module):
    """Modulated self-attention, gated cross-attention to the index, modulated MLP."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        hidden = arch.hidden
        self.table = nn.Parameter(torch.zeros(6, hidden))
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attention = Attention(hidden, arch.heads)
        self.cross = GatedCrossAttention(hidden, arch.heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, arch.mlp_ratio * hidden),
            nn.GELU(approximate="tanh"),
            nn.Linear(arch.mlp_ratio * hidden, hidden),
        )

    def forward(self, x: torch.Tensor, mod: torch.Tensor, index_tokens: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = (mod + self.table).unbind(1)
        h = modulate(self.norm1(x), shift1, scale1)
        x = x + gate1[:, None] * self.attention(h, h)
        x = self.cross(x, index_tokens)
        h = modulate(self.norm2(x), shift2, scale2)
        return x + gate2[:, None] * self.mlp(h)


class Denoiser(nn.Module):
    """(noisy latent, timestep, index) -> predicted clean latent, all sizes a patch multiple."""

    def __init__(self, arch: Architecture, seed: int) -> None:
        super().__init__()
        arch.check()
        self.arch = arch
        hidden, patch_dim = arch.hidden, arch.channels * arch.patch**2
        self.patch_embed = nn.Linear(patch_dim, hidden)
        self.timestep = TimestepEmbedding(hidden)
        self.modulation = nn.Linear(hidden, 6 * hidden)
        self.index = IndexEmbedding(arch, seed)
        self.blocks = nn.ModuleList(Block(arch) for _ in range(arch.depth))
        self.final_norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Linear(hidden, 2 * hidden)
        self.head = nn.Linear(hidden, patch_dim)
        for zero in (self.modulation, self.final_modulation, self.head):
            nn.init.zeros_(zero.weight)
            nn.init.zeros_(zero.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        n, c, height, width = x.shape
        p = self.arch.patch
        rows, cols = height // p, width // p
        patches = x.reshape(n, c, rows, p, cols, p).permute(0, 2, 4, 1, 3, 5)
        tokens = self.patch_embed(patches.reshape(n, rows * cols, -1))
        tokens = tokens + sincos_positions(rows, cols, self.arch.hidden).to(x.device)
        t_emb = F.silu(self.timestep(t))
        mod = self.modulation(t_emb).view(n, 6, -1)
        index_tokens = self.index(index)
        for block in self.blocks:
            tokens = block(tokens, mod, index_tokens)
        shift, scale = self.final_modulation(t_emb).chunk(2, dim=1)
        out = self.head(modulate(self.final_norm(tokens), shift, scale))
        out = out.view(n, rows, cols, c, p, p).permute(0, 3, 1, 4, 2, 5)
        return out.reshape(n, c, height, width)
