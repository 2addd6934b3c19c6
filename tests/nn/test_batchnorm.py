"""HyperbolicBatchNorm: the §6 invariants, running statistics, evaluation mode."""

from __future__ import annotations

import pytest
import torch

import hyperbolic
from hyperbolic.nn import HyperbolicBatchNorm, frechet_mean, frechet_variance

from . import mp_frechet as M


def _configured(manifold=None, dim=3, groups=None, momentum=0.1):
    bn = HyperbolicBatchNorm(dim, manifold, groups=groups, momentum=momentum).double()
    with torch.no_grad():
        bn.location.copy_(torch.linspace(-0.4, 0.5, bn.location.numel()).reshape(bn.location.shape))
        bn.log_variance.fill_(-0.6)
    return bn


def _target_ball(bn, c=1.0):
    """The learned location on the unit ball: exp_0 in an orthonormal frame, so at unit-model distance
    ``sqrt(c) |location|`` from the origin (``tanh`` of half of it radially)."""
    v = bn.location.detach().double()
    r = v.norm(dim=-1, keepdim=True)
    return torch.tanh(c**0.5 * r / 2) * v / r


@pytest.mark.parametrize("kind", ["ball", "lorentz"])
def test_training_outputs_have_learned_mean_and_variance(kind):
    x = M.benchmark_sets(1, 40, 3, 1.5, seed=1)[0]
    manifold = hyperbolic.Lorentz(3) if kind == "lorentz" else None
    if kind == "lorentz":
        x = hyperbolic.PoincareBall(3).to_lorentz(x)
    bn = _configured(manifold)
    out = bn(x)
    assert out.shape == x.shape
    mean = frechet_mean(out.unsqueeze(0), manifold=manifold)[0]
    target = _target_ball(bn)[0]
    mean_ball = hyperbolic.Lorentz(3).to_poincare(mean) if kind == "lorentz" else mean
    torch.testing.assert_close(mean_ball, target, rtol=0, atol=1e-6)
    batch_mean = frechet_mean(x.unsqueeze(0), manifold=manifold)
    batch_var = frechet_variance(x.unsqueeze(0), batch_mean, manifold=manifold)[0]
    out_var = frechet_variance(out.unsqueeze(0), mean.unsqueeze(0), manifold=manifold)[0]
    expected = torch.exp(torch.tensor(-0.6, dtype=torch.float64)) * batch_var / (batch_var + bn.eps)
    torch.testing.assert_close(out_var, expected, rtol=1e-6, atol=0)


def test_groups_and_curvature():
    ball = hyperbolic.PoincareBall(2, curvature=-3.0)
    x = M.benchmark_sets(3, 30, 2, 1.0, seed=2).transpose(0, 1) / 3**0.5  # [B, C, n]
    bn = _configured(ball, dim=2, groups=3)
    out = bn(x)
    assert out.shape == (30, 3, 2)
    means = frechet_mean(out.transpose(0, 1), manifold=ball)
    torch.testing.assert_close(means * 3**0.5, _target_ball(bn, 3.0), rtol=0, atol=1e-6)


def test_running_statistics_buffers_state_dict_and_momentum():
    x = M.benchmark_sets(1, 20, 3, 1.0, seed=3)[0]
    bn = _configured(momentum=1.0)
    bn(x)
    mu = frechet_mean(x.unsqueeze(0))
    torch.testing.assert_close(bn.running_mean, mu, rtol=0, atol=1e-12)
    var = frechet_variance(x.unsqueeze(0), mu)
    torch.testing.assert_close(bn.running_var, var * 20 / 19, rtol=1e-12, atol=0)
    assert not bn.running_mean.requires_grad and bn.running_mean.grad_fn is None
    assert int(bn.num_batches_tracked) == 1
    state = bn.state_dict()
    assert {"running_mean", "running_var", "num_batches_tracked", "location", "log_variance"} <= set(state)
    fresh = HyperbolicBatchNorm(3).double()
    fresh.load_state_dict(state)
    bn.eval(), fresh.eval()
    torch.testing.assert_close(fresh(x), bn(x), rtol=0, atol=0)


def test_momentum_convention_and_cumulative_average():
    x1 = M.benchmark_sets(1, 16, 2, 1.0, seed=4)[0]
    x2 = M.benchmark_sets(1, 16, 2, 1.0, seed=5)[0]
    bn = HyperbolicBatchNorm(2, momentum=0.25).double()
    bn(x1)
    v1 = frechet_variance(x1.unsqueeze(0), frechet_mean(x1.unsqueeze(0)))[0] * 16 / 15
    torch.testing.assert_close(bn.running_var[0], 0.75 * 1 + 0.25 * v1)
    # running mean moved a quarter of the way from the origin towards the batch mean
    mu1 = frechet_mean(x1.unsqueeze(0))[0]
    ball = hyperbolic.PoincareBall(2)
    d_total = ball.dist(torch.zeros(2, dtype=torch.float64), mu1)
    torch.testing.assert_close(ball.dist(torch.zeros(2, dtype=torch.float64), bn.running_mean[0]), 0.25 * d_total)
    cumulative = HyperbolicBatchNorm(2, momentum=None).double()
    cumulative(x1), cumulative(x2)
    v2 = frechet_variance(x2.unsqueeze(0), frechet_mean(x2.unsqueeze(0)))[0] * 16 / 15
    torch.testing.assert_close(cumulative.running_var[0], (v1 + v2) / 2)


def test_eval_is_per_sample_and_uses_running_stats():
    x = M.benchmark_sets(1, 12, 3, 1.0, seed=6)[0]
    bn = _configured()
    for _ in range(3):
        bn(x)
    bn.eval()
    out = bn(x)
    single = torch.stack([bn(x[i : i + 1])[0] for i in range(12)])
    torch.testing.assert_close(single, out, rtol=0, atol=1e-14)
    before = bn.running_mean.clone()
    bn(x)
    assert torch.equal(before, bn.running_mean)


def test_gradients_flow_and_float32_and_errors():
    x = M.benchmark_sets(1, 10, 3, 1.0, seed=7)[0].requires_grad_(True)
    bn = _configured()
    bn(x).square().sum().backward()
    assert torch.isfinite(x.grad).all() and bn.location.grad is not None and bn.log_variance.grad is not None
    bn32 = HyperbolicBatchNorm(3)
    out = bn32(x.detach().float())
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="more than one"):
        bn32(x.detach().float()[:1])
    with pytest.raises(ValueError, match="expects input"):
        bn32(torch.zeros(4, 5))
    assert "HyperbolicBatchNorm(3" in repr(bn32) and "momentum=0.1" in repr(bn32)


@pytest.mark.parametrize("manifold", [None, hyperbolic.PoincareBall(3), hyperbolic.Lorentz(3, curvature=-2.0)])
def test_reset_running_stats_stays_on_the_buffers_device(manifold):
    # The origin is built where the buffers live: on the meta device (standing in for a GPU), a tensor
    # made on the CPU meets the radius on the buffers' device and fails.
    bn = HyperbolicBatchNorm(3, manifold).to("meta")
    bn.reset_running_stats()
    assert bn.running_mean.device.type == "meta" and bn.running_mean.dtype == torch.float32
