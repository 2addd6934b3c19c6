"""HGCN building blocks: shapes, maths against geoopt, aggregation variants, decoder."""

from __future__ import annotations

import argparse

import geoopt
import pytest
import torch

import hyperbolic
from hyperbolic.nn import FermiDiracDecoder, FrechetAggregation, HGCNConv, HypAct, HypLinear
from hyperbolic.nn.hgcn import expmap0, logmap0, mobius_matvec


def _points(N=8, n=5, c=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return geoopt.PoincareBall(c=c).expmap0(0.4 * torch.randn(N, n, generator=g, dtype=torch.float64))


EDGES = torch.tensor([[0, 1, 2, 3, 4, 1, 5, 6], [1, 0, 3, 2, 1, 4, 6, 5]])


@pytest.mark.parametrize("c", [1.0, 0.3])
def test_maps_match_geoopt(c):
    ball, ref = hyperbolic.PoincareBall(5, curvature=-c), geoopt.PoincareBall(c=torch.tensor(c, dtype=torch.float64))
    x = _points(c=c)
    v = 0.7 * torch.randn(8, 5, dtype=torch.float64)
    torch.testing.assert_close(expmap0(v, ball), ref.expmap0(v))
    torch.testing.assert_close(logmap0(x, ball), ref.logmap0(x))
    W = torch.randn(3, 5, dtype=torch.float64)
    torch.testing.assert_close(mobius_matvec(W, x, ball), ref.mobius_matvec(W, x))


def test_linear_and_activation():
    torch.manual_seed(0)
    ball_in = hyperbolic.PoincareBall(4)
    ball_out = hyperbolic.PoincareBall(4, curvature=-4.0)
    lin = HypLinear(5, 4, ball_in).double()
    with torch.no_grad():
        lin.bias.normal_(std=0.3)
    x = _points()
    h = lin(x)
    assert h.shape == (8, 4) and bool((h.norm(dim=-1) < 1).all())
    ref = geoopt.PoincareBall(c=1.0)
    expected = ref.mobius_add(ref.mobius_matvec(lin.weight, x), ref.expmap0(lin.bias))
    torch.testing.assert_close(h, expected)
    act = HypAct(ball_in, ball_out)
    out = act(h)
    assert bool((out.norm(dim=-1) < 0.5).all())  # radius 1/2 at curvature -4
    torch.testing.assert_close(out, geoopt.PoincareBall(c=4.0).expmap0(torch.relu(ref.logmap0(h))).to(out.dtype))
    lin.reset_parameters()
    assert torch.equal(lin.bias, torch.zeros(4, dtype=torch.float64))
    assert repr(lin) == "HypLinear(5, 4, c=1, dropout=0.0, bias=True)" and "c=1 -> c=4" in repr(act)


def test_tangent_aggregation_is_hgcn_formula():
    torch.manual_seed(1)
    conv = HGCNConv(5, 4, aggregation="tangent").double()
    x = _points()
    h = conv.linear(x)
    A = torch.zeros(8, 8, dtype=torch.float64)
    A[EDGES[1], EDGES[0]] = 1
    A = A + torch.eye(8, dtype=torch.float64)
    A = A / A.sum(1, keepdim=True)
    ball = geoopt.PoincareBall()
    expected = ball.expmap0(A @ ball.logmap0(h))
    torch.testing.assert_close(conv.aggregate(h, EDGES, None), expected)
    out = conv(x, EDGES)
    assert out.shape == (8, 4)


def test_frechet_aggregation_variant_and_gradients():
    torch.manual_seed(2)
    manifold = hyperbolic.PoincareBall(4, learnable=True)
    conv = HGCNConv(5, 4, manifold, aggregation="frechet").double()
    x = _points().requires_grad_(True)
    h = conv.linear(x)
    loops = torch.arange(8)
    source = torch.cat([EDGES[0], loops])
    target = torch.cat([EDGES[1], loops])
    expected = FrechetAggregation(manifold)(h[source], target, dim_size=8)
    torch.testing.assert_close(conv.aggregate(h, EDGES, None), expected)
    out = conv(x, EDGES)
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and manifold.log_c.grad is not None
    assert torch.isfinite(manifold.log_c.grad)
    assert "aggregation=frechet" in repr(conv)
    with pytest.raises(ValueError):
        HGCNConv(5, 4, aggregation="mean")


def test_isolated_node_without_self_loops_gets_origin():
    conv = HGCNConv(5, 4, aggregation="frechet", add_self_loops=False).double()
    out = conv.aggregate(conv.linear(_points()), EDGES, None)
    assert torch.equal(out[7], torch.zeros(4, dtype=torch.float64))


@pytest.mark.parametrize("r, theta", [(6.2, 60.0), (3.7, 30.0), (0.5, 90.0)])
def test_frechet_midpoint_radius_against_tangent_average(r, theta):
    # Two points at distance r from the origin and angle theta: the Fréchet midpoint lies at rho with
    # tanh(rho) = tanh(r) cos(theta/2) (the HGCNConv margin docstring), the tangent average at r cos(theta/2).
    half = torch.tensor(theta / 2, dtype=torch.float64).deg2rad()
    directions = torch.stack([torch.stack([half.cos(), half.sin()]), torch.stack([half.cos(), -half.sin()])])
    x = expmap0(r / 2 * directions, hyperbolic.PoincareBall(2))  # ball norm tanh(r/2): distance r
    both = torch.tensor([0, 1])
    frechet = FrechetAggregation(hyperbolic.PoincareBall(2), tol=1e-14)(x, torch.zeros(2, dtype=torch.long))
    rho = 2 * torch.atanh(frechet.norm())
    torch.testing.assert_close(rho, torch.atanh(torch.tanh(torch.tensor(r, dtype=torch.float64)) * half.cos()))
    tangent = HGCNConv(2, 2, aggregation="tangent", add_self_loops=False).double().aggregate(
        x, torch.stack([both, torch.zeros(2, dtype=torch.long)]), None)[0]
    torch.testing.assert_close(2 * torch.atanh(tangent.norm()), r * half.cos())


def test_fermi_dirac():
    dec = FermiDiracDecoder(r=2.0, t=1.0)
    d2 = torch.tensor([0.0, 2.0, 50.0])
    p = dec(d2)
    torch.testing.assert_close(p, 1 / (torch.exp(d2 - 2) + 1))
    assert float(p[1]) == 0.5 and "r=2.0" in repr(dec)


def test_margin_caps_the_radius():
    ball = hyperbolic.PoincareBall(3, curvature=-4.0)
    far = expmap0(torch.full((5, 3), 30.0, dtype=torch.float64), ball, margin=4e-3)
    torch.testing.assert_close(far.norm(dim=-1), torch.full((5,), 0.5 * (1 - 4e-3), dtype=torch.float64))
    conv = HGCNConv(5, 3, ball, aggregation="frechet", margin=4e-3).double()
    with torch.no_grad():
        conv.linear.weight.mul_(50)
    out = conv(_points(), EDGES)
    assert bool((out.norm(dim=-1) <= 0.5 * (1 - 4e-3) + 1e-12).all()) and "margin=0.004" in repr(conv)


@pytest.mark.parametrize("curvature, trained", [("fixed", []), ("output", [2]), ("all", [0, 1, 2])])
def test_benchmark_model_curvature_and_margin_options(curvature, trained, benchmark_script):
    bench = benchmark_script("hgcn")  # its model class carries the benchmark's options
    torch.manual_seed(3)
    model = bench.HGCNLinkPredictor(5, 4, "frechet", margin=0.05, curvature=curvature).double()
    assert [i for i, ball in enumerate(model.balls) if ball.learnable] == trained
    for i, conv in enumerate(model.convs):
        assert conv.manifold_in is model.balls[i] and conv.manifold_out is model.balls[i + 1]
    with torch.no_grad():
        for ball in model.balls:
            if ball.learnable:
                ball.log_c.fill_(0.3)  # c = e^0.3 on every trained ball, so the curvatures matter
    h = model.encode(3 * _points(), EDGES)
    R = model.out_ball.scale(h)
    assert bool((h.norm(dim=-1) <= R * (1 - 0.05) * (1 + 1e-12)).all())
    model.logits(h, torch.tensor([[0, 1], [2, 5], [3, 7]])).sum().backward()
    log_cs = [p for name, p in model.named_parameters() if name.endswith("log_c")]
    assert len(log_cs) == len(trained)
    assert all(torch.isfinite(p.grad) and float(p.grad) != 0 for p in log_cs)
    with pytest.raises(ValueError, match="curvature"):
        bench.HGCNLinkPredictor(5, 4, "frechet", curvature="learned")


def test_benchmark_settings_take_dataset_defaults_unless_given(benchmark_script):
    bench = benchmark_script("hgcn")
    given = argparse.Namespace(margin=None, curvature="all", features=None, feature_scale=None)
    assert bench.settings("airport", given) == {**bench.DEFAULTS["airport"], "curvature": "all"}
    assert bench.settings("disease_lp", given)["margin"] == bench.DEFAULTS["disease_lp"]["margin"]


def test_conv_reset_parameters_and_repr():
    torch.manual_seed(4)
    conv = HGCNConv(5, 4, aggregation="frechet", warm_start=True, tol=1e-9, act=torch.tanh).double()
    conv(_points(), EDGES)
    assert conv.frechet._previous is not None
    with torch.no_grad():
        conv.linear.weight.add_(1.0)
    torch.manual_seed(4)
    conv.linear.reset_parameters()
    reference = {k: v.clone() for k, v in conv.state_dict().items()}
    with torch.no_grad():
        conv.linear.weight.add_(1.0)
    torch.manual_seed(4)
    conv.reset_parameters()
    assert all(torch.equal(v, reference[k]) for k, v in conv.state_dict().items())
    assert conv.frechet._previous is None
    text = repr(conv)
    assert "act=tanh" in text and "tol=1e-09" in text and "max_iter=1000" in text and "warm_start=True" in text
