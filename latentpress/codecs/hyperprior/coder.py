"""Exact range coding of a code ``y`` with a :class:`.prior.ContextPrior`.

``z = round(hyper_analysis(y))`` is coded under the prior's Laplace tables, channel
by channel; then the four parts of ``y`` in order, each value as ``s = round((y -
mean) / step)`` under a Gaussian count table of its spread, the mean, step and spread
computed from the hyperprior and the parts already coded by the exact (integer)
networks. Decoded values are fixed point (``2**-FRACTION`` units), the same on both
sides.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from latentpress.codecs import entropy
from latentpress.codecs.hyperprior import tables
from latentpress.codecs.hyperprior.exact import ExactNets
from latentpress.codecs.hyperprior.prior import PARTS, ContextPrior

ONE = float(1 << tables.FRACTION)
"""One in the fixed point of decoded values."""


class PriorCoder:
    """A trained entropy model, ready to code: its exact networks and ``z`` tables."""

    def __init__(self, prior: ContextPrior) -> None:
        self.prior = prior
        self.exact = ExactNets(prior)
        self.z_loc = np.round(prior.z_loc.double().numpy() * ONE).astype(np.int64)
        log2_scale = prior.z_log_scale.double().numpy() / math.log(2.0)
        self.z_scale = np.round(log2_scale * tables.STEPS_PER_OCTAVE).astype(np.int64)

    @torch.inference_mode()
    def encode(self, y: torch.Tensor, encoder: entropy.Encoder) -> torch.Tensor:
        """Code ``y`` (1, N, h, w) into ``encoder``; the decoded values (fixed point)."""
        hy, wy = y.shape[2:]
        y = y.double()
        z = torch.round(self.prior.hyper_analysis(y.float())).clamp(-tables.Z_RANGE, tables.Z_RANGE).double()
        for c in range(z.shape[1]):
            encoder.categorical(z[0, c].numpy().astype(np.int64), self._z_counts(c), -tables.Z_RANGE)
        features = self.exact.features(z, hy, wy)
        decoded = torch.zeros_like(y)
        for k, (row, col) in enumerate(PARTS):
            mean, delta, ratio_index = self._part(k, features, decoded, row, col)
            values = y[0, :, row::2, col::2].numpy()
            limits = tables.LIMITS[ratio_index]
            symbols = np.clip(np.floor((values - mean) / delta + 0.5), -limits, limits).astype(np.int64)
            for index in np.unique(ratio_index):
                chosen = ratio_index == index
                encoder.categorical(symbols[chosen], tables.gaussian_counts(int(index)), -int(tables.LIMITS[index]))
            decoded[..., row::2, col::2] = torch.from_numpy((mean + delta * symbols) * ONE)
        return decoded

    @torch.inference_mode()
    def decode(self, decoder: entropy.Decoder, height: int, width: int) -> torch.Tensor:
        """The decoded values (fixed point, (1, N, height, width)) of a code read from ``decoder``."""
        hz, wz = -(-height // 4), -(-width // 4)
        z = np.stack([decoder.categorical(self._z_counts(c), -tables.Z_RANGE, hz * wz).reshape(hz, wz)
                      for c in range(self.prior.sizes.hyper_channels)])  # fmt: skip
        features = self.exact.features(torch.from_numpy(z)[None].double(), height, width)
        decoded = torch.zeros((1, self.prior.sizes.channels, height, width), dtype=torch.float64)
        for k, (row, col) in enumerate(PARTS):
            mean, delta, ratio_index = self._part(k, features, decoded, row, col)
            symbols = np.zeros(ratio_index.shape, dtype=np.int64)
            for index in np.unique(ratio_index):
                chosen = ratio_index == index
                limit = int(tables.LIMITS[index])
                symbols[chosen] = decoder.categorical(tables.gaussian_counts(int(index)), -limit, int(chosen.sum()))
            decoded[..., row::2, col::2] = torch.from_numpy((mean + delta * symbols) * ONE)
        return decoded

    def _part(
        self, k: int, features: torch.Tensor, decoded: torch.Tensor, row: int, col: int
    ) -> tuple[np.ndarray, np.ndarray | float, np.ndarray]:
        """Mean (float64, exact), step and spread index of part ``k``'s values."""
        mean, log_delta, log_ratio = self.exact.part(k, features, decoded)
        mean, log_ratio = (t[0, :, row::2, col::2].numpy() for t in (mean, log_ratio))
        delta = 1.0
        if log_delta is not None:
            delta = tables.DELTAS[tables.index_of(log_delta[0, :, row::2, col::2].numpy(), tables.DELTA_LOG2)]
        return mean / ONE, delta, tables.index_of(log_ratio, tables.RATIO_LOG2)

    def _z_counts(self, channel: int) -> np.ndarray:
        return tables.laplace_counts(int(self.z_loc[channel]), int(self.z_scale[channel]))
