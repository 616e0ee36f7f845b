"""CLRIC model pieces: grid geometry, upsampling, rate, batched models, integer ARM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentpress.codecs.clric import loss
from latentpress.codecs.clric.fixed import SCALES, IntArm
from latentpress.codecs.clric.grid import OFFSETS, coding_order, context_index, grid_shapes, grid_size, wavefronts
from latentpress.codecs.clric.model import Architecture, LatentFunction, bicubic_taps, laplace_bits, select
from latentpress.codecs.clric.quantize import GROUPS, group_parameters, group_sizes
from latentpress.codecs.clric.quantize import laplace_bits as laplace_bits_np

SHAPES = ((5, 7), (5, 7), (3, 4), (2, 2), (1, 1))


def test_grid_shapes_halve_with_ceiling() -> None:
    assert grid_shapes(64, 96, 7) == ((64, 96), (32, 48), (16, 24), (8, 12), (4, 6), (2, 3), (1, 2))
    assert grid_shapes(5, 7, 4) == ((5, 7), (3, 4), (2, 2), (1, 1))
    assert grid_size(((5, 7), (3, 4))) == 47


def test_context_is_the_causal_neighbours_of_the_same_grid() -> None:
    index = context_index(SHAPES)
    total = grid_size(SHAPES)
    starts = np.cumsum([0] + [h * w for h, w in SHAPES])
    for g, (h, w) in enumerate(SHAPES):
        for i in range(h):
            for j in range(w):
                row = index[starts[g] + i * w + j]
                for (dy, dx), got in zip(OFFSETS, row, strict=True):
                    y, x = i + dy, j + dx
                    inside = 0 <= y < h and 0 <= x < w
                    assert got == (starts[g] + y * w + x if inside else total)


def test_wavefronts_decode_every_value_after_its_context() -> None:
    index = context_index(SHAPES)
    order = coding_order(SHAPES)
    assert sorted(order.tolist()) == list(range(grid_size(SHAPES)))
    step = np.empty(grid_size(SHAPES) + 1, dtype=np.int64)
    step[-1] = -1  # outside every grid: always available
    for t, group in enumerate(wavefronts(SHAPES)):
        step[group] = t
    for position in range(grid_size(SHAPES)):
        assert (step[index[position]] < step[position]).all()


@pytest.mark.parametrize("height, width", [(8, 12), (152, 76)])  # whole matrices; blocks for sides over 32
def test_upsampler_starts_as_bicubic_interpolation(height: int, width: int) -> None:
    arch = Architecture(2, height, width, grids=(1, 1, 1))
    model = LatentFunction(arch, 1)
    coarse = [torch.randn(1, 1, h, w) for h, w in arch.level_shapes]
    features = model.upsampler(coarse)
    assert features.shape == (1, 3, height, width)
    once = F.interpolate(coarse[1], scale_factor=2, mode="bicubic", align_corners=False)
    twice = F.interpolate(
        F.interpolate(coarse[2], scale_factor=2, mode="bicubic", align_corners=False),
        scale_factor=2,
        mode="bicubic",
        align_corners=False,
    )
    torch.testing.assert_close(features[:, 0:1], coarse[0])
    torch.testing.assert_close(features[:, 1:2], once, atol=1e-5, rtol=0)
    torch.testing.assert_close(features[:, 2:3], twice, atol=1e-5, rtol=0)
    taps = bicubic_taps()
    assert taps[0::2].sum() == pytest.approx(1) and taps[1::2].sum() == pytest.approx(1)


def test_gradients_by_pieces_are_the_whole_latent_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entropy model in chunks of grid values, synthesis in bands of rows: the same
    loss and gradients as one graph over the whole latent (odd sizes, two models)."""
    arch = Architecture(4, 37, 53)
    gen = torch.Generator().manual_seed(0)
    model = LatentFunction(arch, 2, gen)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=gen) * (2.0 if parameter is model.grids else 0.1))
    target, lam = torch.randn(2, 4, 37, 53, generator=gen), torch.tensor([0.01, 0.3])
    whole = {}
    for chunk in (10**6, 300):  # one piece; 150 values or 2 rows of 53 per model
        monkeypatch.setattr(loss, "CHUNK_VALUES", chunk)
        for mode in ("noise", "ste"):
            value = loss.loss_backward(model, target, lam, mode, torch.Generator().manual_seed(1))
            grads = [parameter.grad.clone() for parameter in model.parameters()]
            model.zero_grad(set_to_none=True)
            if chunk == 10**6:
                torch.testing.assert_close(
                    value, loss.losses(model, target, lam, mode, torch.Generator().manual_seed(1)).detach()
                )
                whole[mode] = value, grads
                continue
            torch.testing.assert_close(value, whole[mode][0])
            for got, expected in zip(grads, whole[mode][1], strict=True):
                torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_upsampler_handles_odd_sizes() -> None:
    arch = Architecture(4, 5, 7)
    model = LatentFunction(arch, 2)
    latent, bits = model("noise")
    assert latent.shape == (2, 4, 5, 7) and bits.shape == (2,)


def test_laplace_bits_match_the_cdf() -> None:
    x = torch.arange(-12, 15, dtype=torch.float64)  # bins above the probability floor
    loc, log_scale = torch.tensor(1.3, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64)
    bits = laplace_bits(x, loc.expand_as(x), log_scale.expand_as(x))
    cdf = torch.distributions.Laplace(loc, log_scale.exp()).cdf
    assert float((2.0**-bits).sum()) == pytest.approx(float(cdf(x[-1] + 0.5) - cdf(x[0] - 0.5)), abs=1e-12)
    torch.testing.assert_close(bits, -torch.log2(cdf(x + 0.5) - cdf(x - 0.5)))
    far = laplace_bits(torch.tensor([60.0]), torch.tensor([0.0]), torch.tensor([0.0]))
    assert float(far) == 16.0  # floored at 2**-16
    np.testing.assert_allclose(laplace_bits_np(x.numpy(), 1.3, np.exp(0.7)), bits.numpy(), rtol=1e-12)


def test_laplace_bits_gradient() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.round(torch.randn(64, generator=gen, dtype=torch.float64) * 3)
    loc = (torch.randn(64, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    log_scale = torch.randn(64, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(laplace_bits, (x.requires_grad_(), loc, log_scale))


def test_models_side_by_side_are_independent() -> None:
    model = LatentFunction(Architecture(4, 6, 8), 3, torch.Generator().manual_seed(1))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.3)
    latent, bits = model("noise", torch.Generator().manual_seed(2))
    (latent[1].square().mean() + bits[1]).backward()
    for name, p in model.named_parameters():
        assert p.grad[[0, 2]].abs().max() == 0, name
        assert p.grad[1].abs().max() > 0, name
    picked = select(model, torch.tensor([2, 0]))
    for (_, new), old in zip(picked.named_parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(new.data, old.data[[2, 0]])


def test_group_sizes_match_the_model() -> None:
    for arch in (Architecture(4, 6, 8), Architecture(16, 3, 5, grids=(2, 0, 1), arm_width=5, synthesis_width=7)):
        model = LatentFunction(arch, 1)
        sizes = tuple(sum(p[0].numel() for p in group_parameters(model, g)) for g in GROUPS)
        assert sizes == group_sizes(arch)
        named = {n for n, _ in model.named_parameters()} - {"grids"}
        grouped = {id(p) for g in GROUPS for p in group_parameters(model, g)}
        assert len(grouped) == len(named)


def test_macs_per_latent_position() -> None:
    arch = Architecture(4, 64, 96)  # the paper's grids: one per level
    # ARM: 8*8 + 8*8 + 8*2 per grid value; synthesis: 7*16 + 16*4 + 2 * 9*4*4 per position;
    # upsampling into level k: 4 taps per output, rows then columns, of the 6 - k coarser grids
    arm = (6144 + 1536 + 384 + 96 + 24 + 6 + 2) * 144
    ups = sum(4 * (6 - k) * (64 // 2**k + 32 // 2**k) * (96 // 2**k) for k in range(5)) + 4 * 1 * (1 + 2) * 3
    assert arch.macs_per_latent() == pytest.approx((arm + ups) / 6144 + 112 + 64 + 288)


def test_integer_arm_known_values() -> None:
    eye = np.eye(8, dtype=np.int64) * 4  # 1.0 at shift 2
    w3 = np.zeros((2, 8), np.int64)
    w3[0, 0], w3[1, 1] = 2, 4  # loc = 0.5 * h[0], log-scale = h[1]
    arm = IntArm((eye, eye, w3), (np.zeros(8, np.int64), np.zeros(8, np.int64), np.array([0, -8])), 2, 2)
    context = np.array([[3, -3, 8], [1, 0, 40]] + [[0, 0, 0]] * 6)
    loc, scale = arm(context)
    # relu(x) then relu(x) + x = 2 relu(x): loc = relu(x0), log-scale = 2 relu(x1) - 2
    np.testing.assert_array_equal(loc, [3.0, 0.0, 8.0])
    np.testing.assert_array_equal(scale, [SCALES[64], SCALES[64 - 32], SCALES[-1]])  # log-scale 0, -2, clipped 5
    assert SCALES[64] == 1.0 and SCALES[32] == pytest.approx(np.exp(-2.0))


def test_integer_arm_is_exact_in_any_batch_and_follows_the_float_arm() -> None:
    model = LatentFunction(Architecture(4, 6, 8), 1, torch.Generator().manual_seed(3))
    with torch.no_grad():
        model.arm.w3.normal_(0, 0.3)
        model.arm.b3.normal_(0, 0.3)
    shift = 12
    ints = [
        np.round(p[0].detach().double().numpy() * 2**shift).astype(np.int64)
        for p in (model.arm.w1, model.arm.w2, model.arm.w3, model.arm.b1, model.arm.b2, model.arm.b3)
    ]
    arm = IntArm(tuple(ints[:3]), tuple(b.ravel() for b in ints[3:]), shift, shift)
    context = np.random.default_rng(0).integers(-6, 7, (8, 500))
    loc, scale = arm(context)
    for part in (slice(0, 1), slice(7, 300), slice(499, 500)):
        loc_part, scale_part = arm(context[:, part])
        np.testing.assert_array_equal(loc_part, loc[part])
        np.testing.assert_array_equal(scale_part, scale[part])
    with torch.no_grad():
        ref_loc, ref_log = model.arm(torch.from_numpy(context).float()[None])
    np.testing.assert_allclose(loc, ref_loc[0].numpy(), atol=0.02)
    np.testing.assert_allclose(np.log(scale), ref_log[0].numpy(), atol=1 / 32 + 0.02)
