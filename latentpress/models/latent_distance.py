"""A perceptual distance between latents, calibrated to pixel LPIPS and DISTS.

Training a codec against LPIPS means decoding every step's latents to pixels: a
forward and backward pass through the whole TAESD decoder (about 270 GMAC per
megapixel) and AlexNet on top. This distance looks only at the frozen decoder's
first stages, at 1/8 and 1/4 of the image's resolution (about a tenth of the
decoder), LPIPS-style (Zhang et al. 2018; in a latent space as in E-LatentLPIPS,
Kang et al. 2024, and LPL, Berrada et al. 2025):

- the latent goes through the decoder's layers up to each tap (``TAPS`` by default;
  a weights file names its own);
- each tap's features are unit-normalised across channels at every position;
- the distance is ``sum_k w_k * mean_hw (f_k(a) - f_k(b))^2`` over every channel ``k``
  of every tap, with non-negative weights ``w``.

Zero for identical latents, differentiable in both. The weights are fitted by
non-negative least squares to pixel LPIPS and to pixel DISTS between the decoder's
images of pairs of latents made from real photos (``scripts/calibrate_latent_distance.py``,
which writes them with a record of what they were fitted on and how well they agree
on photos the fit never saw; ``docs/latent-distance.md``). A codec in training can
refresh it with its own outputs (``LatentDistance.refresh``: each tap's weights scaled
to fit pixel measurements of pairs it made). One weights file per VAE,
safetensors, shipped in the package for the TAESD family (``WEIGHTS_FOLDER``) or
named by path or models-folder name. Only ``AutoencoderTiny`` decoders (TAESD,
TAESDXL, TAESD3) are supported. The ledger never sees this distance: it measures the
true pixel metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate, pairwise
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

FORMAT = "latentpress-latent-distance"
VERSION = 1
TAPS = (1, 4)
"""Decoder layers after which features are compared: the first convolution's output
and the end of the first stage, both at the latent's resolution (1/8 of the image).
Adding the end of the second stage (layer 9, at 1/4) agreed a little better with
LPIPS on held-out pairs at six times the cost (docs/latent-distance.md)."""
TARGETS = ("lpips", "dists")
"""The pixel metrics a weights file is calibrated to, one weight vector each."""
WEIGHTS_FOLDER = Path(__file__).parent / "latent_distance_weights"
"""Weights shipped in the package: ``<vae id>.safetensors``."""
NORM_EPS = 1e-10
SCALE_BOUNDS = (0.25, 4.0)
"""How far a refresh may scale a tap's calibrated weights, down and up."""
RELATIVE_FLOOR = 1e-3
"""Measured values below this count as this in a refresh's relative errors."""


class LatentDistanceError(ValueError):
    """A weights file that is not a latent distance for this VAE."""


@dataclass(frozen=True)
class Calibration:
    """A calibrated distance's weights (non-negative, one vector per target) and its record."""

    vae_id: str
    taps: tuple[int, ...]
    weights: dict[str, torch.Tensor]
    record: dict
    """What it was calibrated on and how well it agrees (free-form, JSON)."""

    def to_bytes(self) -> bytes:
        metadata = {"format": FORMAT, "version": str(VERSION), "vae_id": self.vae_id,
                    "taps": json.dumps(list(self.taps)), "record": json.dumps(self.record, sort_keys=True)}  # fmt: skip
        return save({name: w.float().contiguous() for name, w in self.weights.items()}, metadata)

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Calibration:
        """Parse a weights file; ``LatentDistanceError`` naming ``where`` for anything else."""
        try:
            tensors = load(data)
            metadata = _metadata(data)
        except (SafetensorError, ValueError, json.JSONDecodeError) as exc:
            raise LatentDistanceError(f"{where}: not a safetensors file ({exc})") from None
        if metadata.get("format") != FORMAT or metadata.get("version") != str(VERSION):
            raise LatentDistanceError(f"{where}: not a latentpress latent distance of version {VERSION}")
        try:
            taps = tuple(int(t) for t in json.loads(metadata["taps"]))
            record = json.loads(metadata.get("record", "{}"))
        except (KeyError, ValueError, TypeError) as exc:
            raise LatentDistanceError(f"{where}: malformed metadata ({exc})") from None
        if set(tensors) != set(TARGETS) or len({w.shape for w in tensors.values()}) != 1:
            raise LatentDistanceError(
                f"{where}: expected weight vectors {TARGETS} of one shape, found {sorted(tensors)}"
            )
        if any(w.ndim != 1 or not torch.isfinite(w).all() or (w < 0).any() for w in tensors.values()):
            raise LatentDistanceError(f"{where}: weights must be finite, non-negative vectors")
        return cls(metadata.get("vae_id", ""), taps, tensors, record)


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header."""
    if len(data) < 8:
        raise ValueError("too short")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError("header longer than the file")
    return json.loads(data[8 : 8 + size]).get("__metadata__", {})


class LatentDistance(torch.nn.Module):
    """The calibrated distance on a frozen ``AutoencoderTiny`` decoder."""

    def __init__(self, decoder: torch.nn.Module, calibration: Calibration) -> None:
        super().__init__()
        layers = getattr(decoder, "layers", None)
        if layers is None or type(decoder).__name__ != "DecoderTiny":
            raise LatentDistanceError(f"the latent distance needs a TAESD-family decoder, not {type(decoder).__name__}")
        self.taps = calibration.taps
        self.stages = torch.nn.ModuleList(layers[a + 1 : b + 1] for a, b in pairwise((-1, *self.taps)))
        self.stages.requires_grad_(False).eval()
        self.tap_channels = tuple(_out_channels(stage) for stage in self.stages)
        channels = sum(self.tap_channels)
        for name, weights in calibration.weights.items():
            if weights.shape != (channels,):
                raise LatentDistanceError(f"{name} weights have {weights.shape[0]} entries; this decoder's taps "
                                          f"{self.taps} have {channels} channels")  # fmt: skip
            self.register_buffer(f"weights_{name}", weights.float().clone())
        self.calibration = calibration
        self.calibrated = calibration
        """The weights as loaded, before any :meth:`refresh`."""

    def features(self, latent: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, h, w) raw latents -> each tap's unit-normalised features."""
        x = torch.tanh(latent / 3) * 3  # the decoder's own input clamp
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x / (x.pow(2).sum(1, keepdim=True) + NORM_EPS).sqrt())
        return out

    def channel_terms(self, latent: torch.Tensor, reference: list[torch.Tensor]) -> torch.Tensor:
        """(B, K): the mean squared difference of every channel of every tap between
        ``latent`` and the features of a reference (``features`` of it, computed once)."""
        terms = [(f - r).pow(2).mean((2, 3)) for f, r in zip(self.features(latent), reference, strict=True)]
        return torch.cat(terms, 1)

    def forward(self, latent: torch.Tensor, reference: torch.Tensor | list[torch.Tensor],
                target: str = "lpips") -> torch.Tensor:  # fmt: skip
        """(B,) the distance calibrated to ``target`` (``lpips``, ``dists``, or ``both``:
        their sum) between ``latent`` and ``reference`` (latents, or their features)."""
        if isinstance(reference, torch.Tensor):
            with torch.no_grad():
                reference = self.features(reference)
        return self.weigh(self.channel_terms(latent, reference), target)

    def weigh(self, terms: torch.Tensor, target: str = "lpips") -> torch.Tensor:
        """(B,) the distance calibrated to ``target`` from (B, K) :meth:`channel_terms`."""
        names = TARGETS if target == "both" else (target,)
        if any(name not in TARGETS for name in names):
            raise ValueError(f"target must be one of {TARGETS} or 'both', got {target!r}")
        return sum(terms @ getattr(self, f"weights_{name}") for name in names)

    def refresh(self, terms: torch.Tensor, measured: dict[str, torch.Tensor]) -> dict[str, list[float]]:
        """Refit to pairs a codec made: ``terms`` (N, K) their :meth:`channel_terms`,
        ``measured`` their pixel value of each target. Each tap's loaded weights are
        scaled, one factor per tap and target within ``SCALE_BOUNDS``, by bounded least
        squares of the relative error (scipy's ``lsq_linear``; relative, so that the
        small distances of good reconstructions count as much as the large ones): a few
        dozen pairs cannot refit every channel's weight, but they can say how much each
        tap's damage costs on this codec's outputs. Returns the factors;
        :attr:`calibration` records them."""
        from scipy.optimize import lsq_linear

        taps = list(pairwise(accumulate(self.tap_channels, initial=0)))  # each tap's columns
        scales = {}
        for name, values in measured.items():
            loaded = self.calibrated.weights[name].to(terms)
            truth = values.double().cpu().numpy()
            columns = torch.stack([terms[:, a:b] @ loaded[a:b] for a, b in taps], 1).double().cpu().numpy()
            relative = 1 / np.maximum(truth, RELATIVE_FLOOR)
            fit = lsq_linear(columns * relative[:, None], truth * relative, bounds=SCALE_BOUNDS)
            scales[name] = [float(f) for f in fit.x]
            factors = torch.cat([torch.full((b - a,), f) for (a, b), f in zip(taps, fit.x, strict=True)])
            getattr(self, f"weights_{name}").copy_(loaded * factors.to(loaded))
        weights = {name: getattr(self, f"weights_{name}").detach().cpu().clone() for name in TARGETS}
        record = {**self.calibrated.record, "refreshed": {"pairs": len(terms), "tap_scales": scales}}
        self.calibration = replace(self.calibrated, weights=weights, record=record)
        return scales


def _out_channels(stage: torch.nn.Module) -> int:
    """Channels out of a run of decoder layers (its last convolution's)."""
    convs = [m for m in stage.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise LatentDistanceError("a tap of the latent distance must follow a convolution")
    return convs[-1].out_channels


def weights_file(vae_id: str) -> Path:
    """The package's weights file for the VAE ``vae_id``."""
    return WEIGHTS_FOLDER / f"{vae_id.replace('/', '--')}.safetensors"


def load_latent_distance(
    vae_name: str = "taesd", weights: str | None = None, device: str | None = None
) -> LatentDistance:
    """The latent distance of the VAE ``vae_name`` with ``weights`` (a path or a name
    under the models folder; default: the package's file for that VAE)."""
    from latentpress.infra.model_files import model_id, resolve_file
    from latentpress.models.vae import load_vae

    vae = load_vae(vae_name, device)
    path = Path(resolve_file(weights)) if weights else weights_file(model_id(vae_name))
    if not path.is_file():
        raise LatentDistanceError(f"no calibrated latent distance for VAE {model_id(vae_name)!r} ({path} is missing): "
                                  f"run scripts/calibrate_latent_distance.py --vae {vae_name}")  # fmt: skip
    calibration = Calibration.from_bytes(path.read_bytes(), str(path))
    if calibration.vae_id != model_id(vae_name):
        raise LatentDistanceError(f"{path} is calibrated for VAE {calibration.vae_id!r}, not {model_id(vae_name)!r}")
    return LatentDistance(vae.vae.decoder, calibration).to(vae.device)


@lru_cache(maxsize=4)
def shipped_latent_distance(vae_name: str) -> LatentDistance:
    """:func:`load_latent_distance` with the package's weights, built once per process."""
    return load_latent_distance(vae_name)
