"""The entropy-model networks in integer arithmetic, bit for bit the same on both sides.

``HyperSynthesis`` and the ``PartNet``\\ s hold weights on a ``2**-WEIGHT_BITS``
grid and biases on a ``2**-FRACTION`` grid (``quantize_in_place`` puts them there
after training). Here every value is an integer held in a float64 tensor:
activations in units of ``2**-FRACTION``, weights in units of ``2**-WEIGHT_BITS``.
A convolution's sums are then exact integers below ``2**53`` (activations are
clamped to ``ACTIVATION_LIMIT`` and weights checked against ``WEIGHT_LIMIT`` when a
model is loaded), so their order (threads, BLAS blocking) cannot change a bit; each
layer rescales by a floor division by a power of two. The same integers come out on
every thread count, and from encoder and decoder alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentpress.codecs.base import CodecError
from latentpress.codecs.hyperprior.prior import ContextPrior, PartNet, split_outputs
from latentpress.codecs.hyperprior.tables import FRACTION

WEIGHT_BITS = 10
"""Weights are multiples of ``2**-WEIGHT_BITS``."""
WEIGHT_LIMIT = (1 << 15) - 1
"""Largest integer weight magnitude a model may hold (int16)."""
BIAS_LIMIT = 1 << 30
EXACT_PREFIXES = ("hyper_synthesis.", "parts.")
"""State-dict names of the networks evaluated here."""
ACTIVATION_LIMIT = float(1 << 20)
"""Activations (fixed point) are clamped to +-this: sums stay below 2**53."""
_ONE = float(1 << FRACTION)


def quantize_in_place(model: ContextPrior) -> None:
    """Round the exact networks' weights and biases to their grids (after training)."""
    with torch.no_grad():
        for module in exact_modules(model):
            for name, parameter in module.named_parameters():
                bits = WEIGHT_BITS if name.endswith("weight") else FRACTION
                parameter.copy_(torch.round(parameter * (1 << bits)) / (1 << bits))


def exact_modules(model: ContextPrior) -> list[torch.nn.Module]:
    return [model.hyper_synthesis, *model.parts]


def check_weights(model: ContextPrior) -> None:
    """``CodecError`` unless the exact networks' weights are on their grids and in range."""
    for module in exact_modules(model):
        for name, parameter in module.named_parameters():
            bits = WEIGHT_BITS if name.endswith("weight") else FRACTION
            scaled = parameter.detach().double() * (1 << bits)
            limit = WEIGHT_LIMIT if name.endswith("weight") else BIAS_LIMIT
            if not torch.equal(scaled, torch.round(scaled)) or scaled.abs().max() > limit:
                raise CodecError(f"model: entropy network weight {name} is not on its {2**-bits} grid or too large")


class ExactNets:
    """Integer evaluation of a model's hyper-synthesis and part networks."""

    def __init__(self, model: ContextPrior) -> None:
        check_weights(model)
        self.learned_step = model.sizes.learned_step
        self.hyper = [_layer(layer) for layer in model.hyper_synthesis.layers]
        self.parts = [_part(net) for net in model.parts]

    def features(self, z: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Hyperprior features (fixed point) of integer ``z`` (1, Nz, h, w), cropped to
        the code's size."""
        x = z.double() * _ONE
        for index, layer in enumerate(self.hyper):
            x = _apply(layer, x)
            if index < len(self.hyper) - 1:
                x = _leaky(x)
        return x[..., :height, :width]

    def part(
        self, k: int, features: torch.Tensor, decoded: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Mean, log2 step (``None`` when the prior's step is 1) and log2 spread (each
        fixed point, (1, N, h, w)) of part ``k`` from the features and the decoded code
        values so far (fixed point)."""
        context, hidden, out = self.parts[k]
        x = features if context is None else torch.cat([features, _apply(context, decoded)], 1)
        return split_outputs(_apply(out, _leaky(_apply(hidden, x))), self.learned_step)


Layer = tuple[torch.Tensor, torch.Tensor, bool, int, int]
"""Integer weight, integer bias, transposed, stride, padding."""


def _layer(module: torch.nn.Module) -> Layer:
    weight = torch.round(module.weight.detach().double() * (1 << WEIGHT_BITS))
    bias = torch.round(module.bias.detach().double() * _ONE)
    transposed = isinstance(module, torch.nn.ConvTranspose2d)
    return weight, bias, transposed, module.stride[0], module.padding[0]


def _part(net: PartNet) -> tuple[Layer | None, Layer, Layer]:
    return (None if net.context is None else _layer(net.context)), _layer(net.hidden), _layer(net.out)


def _apply(layer: Layer, x: torch.Tensor) -> torch.Tensor:
    weight, bias, transposed, stride, padding = layer
    conv = F.conv_transpose2d if transposed else F.conv2d
    sums = conv(x, weight, None, stride=stride, padding=padding)
    out = torch.floor(sums / (1 << WEIGHT_BITS)) + bias[None, :, None, None]
    return out.clamp(-ACTIVATION_LIMIT, ACTIVATION_LIMIT)


def _leaky(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU of slope 1/8, exact: negative values floor-divided by 8."""
    return torch.where(x < 0, torch.floor(x / 8), x)
