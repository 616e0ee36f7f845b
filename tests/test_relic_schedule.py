"""The continuous diffusion schedule relic learns t through."""

from __future__ import annotations

import pytest
import torch

from latentpress.codecs.relic.schedule import T_MAX, add_noise, alpha_bar, ddim_step, noise_std, predict_x0, times


def test_alpha_bar_falls_from_one_to_nearly_zero() -> None:
    t = torch.linspace(0, 1, 101)
    a = alpha_bar(t)
    assert abs(a[0].item() - 1.0) < 1e-6 and a[-1].item() < 2e-4
    assert torch.all(a[1:] <= a[:-1]) and torch.all(a > 0)


def test_predict_x0_inverts_add_noise_and_ddim_reaches_x0() -> None:
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 8, 8, generator=generator)
    noise = torch.randn(3, 4, 8, 8, generator=generator)
    t = torch.tensor([0.1, 0.5, 0.9])
    x_t = add_noise(x0, noise, t)
    torch.testing.assert_close(predict_x0(x_t, noise, t), x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ddim_step(x_t, noise, t, torch.zeros(3)), x0, atol=1e-4, rtol=1e-4)
    assert torch.all(noise_std(t)[1:] > noise_std(t)[:-1])


def test_gradient_reaches_t() -> None:
    x0 = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    logit = torch.zeros(2, requires_grad=True)  # the parameter network's output, before its sigmoid
    t = torch.sigmoid(logit)
    noisy = x0 + 0.3 * torch.randn_like(x0)  # quantization noise stands in for diffusion noise
    eps = 0.5 * noisy  # a denoiser that depends on its input
    loss = ((predict_x0(noisy, eps, t) - x0) ** 2).mean()
    loss.backward()
    assert logit.grad is not None and torch.all(torch.isfinite(logit.grad)) and torch.all(logit.grad != 0)


def test_times_run_down_to_zero() -> None:
    assert times(0.6, 3) == pytest.approx([0.6, 0.4, 0.2, 0.0])
    with pytest.raises(ValueError):
        times(T_MAX + 0.1, 2)
