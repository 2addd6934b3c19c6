"""Fréchet means against the mpmath oracle, gradients by gradcheck and against unrolled iterations,
model agreement and bad input."""

from __future__ import annotations

import math

import geoopt
import mpmath
import pytest
import torch
from mpmath import mp

import hyperbolic
from hyperbolic.manifold import OffManifoldError
from hyperbolic.nn import _kernel, frechet_mean, frechet_variance
from hyperbolic.nn._scalar import d1, d2, mm_weight
from hyperbolic.numerics import NonFiniteError

from . import mp_frechet as M

SHAPES = [(10, 2), (10, 16), (100, 2), (100, 16)]


@pytest.fixture(autouse=True)
def _digits():
    with mp.workdps(50):
        yield


def _random_weights(B, t, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, t, generator=g, dtype=torch.float64) + 0.05


def _certified_errors(x, mu, w, sets):
    """mpmath bound on d(mu_b, true mean) for the first ``sets`` sets (unit ball)."""
    errors = []
    for b in range(sets):
        points = [M.ball_to_ref(p) for p in x[b].tolist()]
        weights = [mpmath.mpf(v) for v in w[b].tolist()]
        errors.append(float(M.residual(M.ball_to_ref(mu[b].tolist()), points, weights)))
    return max(errors)


# ----------------------------------------------------------------------------- scalar functions


def test_scalar_functions_against_mpmath():
    us = [0.0, 1e-30, 1e-20, 1e-14, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 0.3, 1, 10, 1e4, 1e8, 1e12, 1e100, 1e300]
    u = torch.tensor(us, dtype=torch.float64)
    g, first, second = mm_weight(u), d1(u), d2(u)
    for k, value in enumerate(us):
        U = mpmath.mpf(value)
        s = mpmath.acosh(1 + 2 * U)
        if value == 0:
            g_ref, d2_ref = mpmath.mpf(4), mpmath.mpf(-2) / 3
        else:
            g_ref = 4 * s / mpmath.sinh(s)
            d2_ref = 2 * (mpmath.sinh(s) - s * mpmath.cosh(s)) / mpmath.sinh(s) ** 3
        assert abs(float(g[k]) - g_ref) <= 4e-16 * g_ref
        assert abs(float(first[k]) - g_ref / 2) <= 4e-16 * g_ref / 2
        assert abs(float(second[k]) - d2_ref) <= 1e-13 * abs(d2_ref) + 1e-300


# ----------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("t,n", SHAPES)
@pytest.mark.parametrize("spread", [0.5, 1.5])
def test_float64_agrees_with_mpmath(t, n, spread):
    x = M.benchmark_sets(8, t, n, spread, seed=t + n)
    w = _random_weights(8, t, seed=n)
    mu, info = frechet_mean(x, w, return_info=True)
    assert bool(info.converged.all())
    assert _certified_errors(x, mu, w, 2) <= 1e-10


@pytest.mark.parametrize("t,n", SHAPES)
@pytest.mark.parametrize("spread", [0.5, 1.5])
def test_float32_agrees_with_mpmath_within_50_iterations(t, n, spread):
    x = M.benchmark_sets(200, t, n, spread, seed=7 * t + n, dtype=torch.float32)
    mu, info = frechet_mean(x, return_info=True)
    assert mu.dtype == torch.float32
    assert bool(info.converged.all()) and int(info.n_iter.max()) <= 50
    assert _certified_errors(x, mu, torch.ones(200, t, dtype=torch.float64), 2) <= 1e-5


def test_distance_to_newton_reference():
    """The certified bound is checked against an actual mpmath solution (damped Newton, 50 digits)."""
    x = M.benchmark_sets(2, 10, 3, 1.5, seed=3)
    w = _random_weights(2, 10, seed=4)
    mu = frechet_mean(x, w)
    for b in range(2):
        ref = M.mean([M.ball_to_ref(p) for p in x[b].tolist()], w[b].tolist())
        assert float(M.dist_ball(mu[b].tolist(), ref)) <= 1e-12


@pytest.mark.parametrize("radius,dtype,bound", [(10.0, torch.float64, 1e-10), (5.0, torch.float32, 1e-5)])
@pytest.mark.parametrize("spread", [0.1, 1.5])
def test_near_boundary(radius, dtype, bound, spread):
    x = M.near_boundary_sets(6, 10, 2, radius, spread, seed=5).to(dtype)
    mu, info = frechet_mean(x, return_info=True)
    assert bool(info.converged.all())
    assert _certified_errors(x, mu, torch.ones(6, 10, dtype=torch.float64), 3) <= bound


@pytest.mark.slow
@pytest.mark.parametrize("t,n", SHAPES)
@pytest.mark.parametrize("spread", [0.5, 1.5])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_benchmark_sets_ten_each(t, n, spread, dtype):
    x = M.benchmark_sets(1000, t, n, spread, seed=0, dtype=dtype)
    mu, info = frechet_mean(x, return_info=True)
    assert bool(info.converged.all())
    bound = 1e-10 if dtype == torch.float64 else 1e-5
    assert _certified_errors(x, mu, torch.ones(10, t, dtype=torch.float64), 10) <= bound


# ----------------------------------------------------------------------------- invariances and models


def test_weight_rescaling_and_permutation_invariance():
    x = M.benchmark_sets(5, 12, 4, 1.5, seed=11)
    w = _random_weights(5, 12, seed=12)
    mu = frechet_mean(x, w)
    torch.testing.assert_close(frechet_mean(x, 37.5 * w), mu, rtol=0, atol=1e-13)
    perm = torch.randperm(12)
    torch.testing.assert_close(frechet_mean(x[:, perm], w[:, perm]), mu, rtol=0, atol=1e-13)


def test_mobius_equivariance():
    ball = geoopt.PoincareBall()
    x = M.benchmark_sets(4, 9, 3, 1.0, seed=13)
    a = torch.tensor([0.3, -0.5, 0.2], dtype=torch.float64)
    mu = frechet_mean(x, manifold=ball)
    moved = frechet_mean(ball.mobius_add(a, x), manifold=ball)
    torch.testing.assert_close(moved, ball.mobius_add(a, mu), rtol=0, atol=1e-12)


@pytest.mark.parametrize("curvature", [-1.0, -0.3, -4.0])
def test_ball_and_lorentz_agree_library_and_geoopt(curvature):
    c = -curvature  # geoopt keeps its curvature in float32 unless given a float64 tensor
    unit = M.benchmark_sets(6, 10, 3, 1.5, seed=17)
    w = _random_weights(6, 10, seed=18)
    ball = hyperbolic.PoincareBall(3, curvature=curvature)
    lorentz = hyperbolic.Lorentz(3, curvature=curvature)
    xb = unit / math.sqrt(c)
    xl = ball.to_lorentz(xb)
    mb = frechet_mean(xb, w, ball)
    ml = frechet_mean(xl, w, lorentz)
    torch.testing.assert_close(lorentz.to_poincare(ml), mb, rtol=0, atol=1e-12)
    torch.testing.assert_close(frechet_mean(xb, w, geoopt.PoincareBall(c=torch.tensor(c, dtype=torch.float64))), mb, rtol=0, atol=1e-14)
    torch.testing.assert_close(frechet_mean(xl, w, geoopt.Lorentz(k=torch.tensor(1 / c, dtype=torch.float64))), ml, rtol=0, atol=1e-12)
    # A generic model through its Lorentz bridge.
    half = hyperbolic.HalfSpace(3, curvature=curvature)
    mh = frechet_mean(half.from_lorentz(xl), w, half)
    torch.testing.assert_close(half.to_lorentz(mh), ml, rtol=1e-10, atol=1e-10)


def test_karcher_flow_agrees():
    """A small-step Karcher flow (geoopt's exp/log) converges to the same point."""
    ball = geoopt.PoincareBall()
    x = M.benchmark_sets(3, 10, 2, 1.5, seed=19)
    y = x.mean(1)
    for _ in range(400):
        y = ball.expmap(y, 0.5 * ball.logmap(y.unsqueeze(1), x).mean(1))
    torch.testing.assert_close(frechet_mean(x), y, rtol=0, atol=1e-10)


def test_dim_and_leading_axes():
    x = M.benchmark_sets(6, 5, 3, 1.0, seed=23).reshape(2, 3, 5, 3)
    mu = frechet_mean(x)
    assert mu.shape == (2, 3, 3)
    torch.testing.assert_close(frechet_mean(x.movedim(2, 0), dim=0), mu, rtol=0, atol=0)
    w = torch.rand(2, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(frechet_mean(x.movedim(2, 0), w.movedim(2, 0), dim=0), frechet_mean(x, w))


def test_frechet_variance():
    x = M.benchmark_sets(3, 8, 2, 1.0, seed=29)
    w = _random_weights(3, 8, seed=30)
    mu = frechet_mean(x, w)
    var = frechet_variance(x, mu, w)
    ball = geoopt.PoincareBall()
    expected = (w * ball.dist(x, mu.unsqueeze(1)) ** 2).sum(-1) / w.sum(-1)
    torch.testing.assert_close(var, expected, rtol=1e-12, atol=0)
    assert torch.allclose(frechet_variance(x, mu), (ball.dist(x, mu.unsqueeze(1)) ** 2).mean(-1))
    # the mean minimises the variance
    assert bool((frechet_variance(x, 0.99 * mu, w) > var).all())


# ----------------------------------------------------------------------------- gradients


def test_gradcheck_points_and_weights_ball():
    x = (M.benchmark_sets(2, 4, 3, 1.0, seed=31)).requires_grad_(True)
    w = _random_weights(2, 4, seed=32).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: frechet_mean(a, b), (x, w))


def test_gradcheck_lorentz_points_weights():
    lorentz = hyperbolic.Lorentz(2, curvature=-0.7)
    x = lorentz.to_lorentz(M.benchmark_sets(2, 4, 2, 1.0, seed=33) / math.sqrt(0.7)).requires_grad_(True)
    w = _random_weights(2, 4, seed=34).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: frechet_mean(a, b, lorentz), (x, w))


@pytest.mark.parametrize("model", ["ball", "lorentz", "geoopt-ball", "geoopt-lorentz"])
def test_gradcheck_curvature(model):
    unit = M.benchmark_sets(2, 4, 2, 1.0, seed=35)
    w = _random_weights(2, 4, seed=36)

    def f(param):
        if model == "ball":
            m = hyperbolic.PoincareBall(2)
            m.log_c = param
            return frechet_mean(unit * 0.8, w, m)
        if model == "lorentz":
            m = hyperbolic.Lorentz(2)
            m.log_c = param
            return frechet_mean(hyperbolic.Lorentz(2).to_lorentz(unit), w, m)
        if model == "geoopt-ball":
            m = geoopt.PoincareBall(c=1.0)
            del m.isp_c  # geoopt stores c as softplus(isp_c); make it a function of the input
            m.isp_c = param
            return frechet_mean(unit * 0.8, w, m)
        m = geoopt.Lorentz(k=1.0)
        del m.k
        m.k = param.exp()
        return frechet_mean(hyperbolic.Lorentz(2).to_lorentz(unit), w, m)

    param = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (param,))


def test_gradcheck_recentred_and_newton_phase_sets():
    """The two other forward paths: a set centred beyond distance 4.1 (iterated after translation to the
    origin) and a set of far-apart points (finished by Newton steps)."""
    x = torch.cat([M.near_boundary_sets(1, 4, 3, 5.0, 0.5, seed=51), M.benchmark_sets(1, 4, 3, 2.0, seed=52)])
    w = _random_weights(2, 4, seed=53)
    mu, info = frechet_mean(x, w, return_info=True)
    assert float(1 - mu[0].square().sum()) < _kernel._RECENTRE_BELOW
    assert int(info.n_iter[1]) > _kernel._NEWTON_AFTER
    assert torch.autograd.gradcheck(lambda a, b: frechet_mean(a, b), (x.requires_grad_(True), w.requires_grad_(True)))


def test_gradcheck_points_beside_a_degenerate_set_and_a_zero_weight_point():
    x = M.benchmark_sets(3, 4, 2, 1.0, seed=54).requires_grad_(True)
    w = _random_weights(3, 4, seed=55)
    w[1] = 0
    w[2, 0] = 0
    assert torch.autograd.gradcheck(lambda a: frechet_mean(a, w), (x,))


def test_weight_gradients_sum_to_zero():
    x = M.benchmark_sets(3, 10, 4, 1.5, seed=37)
    w = _random_weights(3, 10, seed=38).requires_grad_(True)
    (frechet_mean(x, w) * torch.randn(3, 4, dtype=torch.float64)).sum().backward()
    assert (w * w.grad).sum(-1).abs().max() <= 1e-10 * w.grad.abs().max()


def _unrolled_mm(x, w, iterations=300):
    """Plain-torch MM (no custom Function), differentiated by autograd through every iteration."""
    s = (x * x).sum(-1)
    mu = (w.unsqueeze(-1) * x).sum(1) / w.sum(-1, keepdim=True)
    for _ in range(iterations):
        u = ((x - mu.unsqueeze(1)) ** 2).sum(-1) / ((1 - s) * (1 - (mu * mu).sum(-1, keepdim=True)))
        r = torch.acosh(1 + 2 * u.clamp_min(1e-30))
        alpha = w * 4 * r / torch.sinh(r) / (1 - s)
        b = (alpha.unsqueeze(-1) * x).sum(1)
        A = (alpha * (1 + s)).sum(-1)
        eta = 2 / (A + torch.sqrt(A * A - 4 * (b * b).sum(-1)))
        mu = eta.unsqueeze(-1) * b
    return mu


def test_ift_matches_unrolled_iterations():
    x = M.benchmark_sets(2, 6, 3, 1.0, seed=39).requires_grad_(True)
    w = _random_weights(2, 6, seed=40).requires_grad_(True)
    g = torch.randn(2, 3, dtype=torch.float64)
    gx, gw = torch.autograd.grad((frechet_mean(x, w) * g).sum(), (x, w))
    ux, uw = torch.autograd.grad((_unrolled_mm(x, w) * g).sum(), (x, w))
    assert (gx - ux).norm() <= 1e-8 * ux.norm()
    assert (gw - uw).norm() <= 1e-8 * uw.norm()


# ----------------------------------------------------------------------------- edge cases


def test_degenerate_sets_give_origin_and_zero_gradient():
    x = M.benchmark_sets(3, 5, 2, 1.0, seed=41).requires_grad_(True)
    w = torch.ones(3, 5, dtype=torch.float64)
    w[1] = 0
    w = w.requires_grad_(True)
    with _no_warning():
        mu, info = frechet_mean(x, w, return_info=True)
    assert info.degenerate.tolist() == [False, True, False]
    assert not bool(info.converged[1])
    assert torch.equal(mu[1], torch.zeros(2, dtype=torch.float64))
    mu.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(w.grad).all()
    assert torch.equal(x.grad[1], torch.zeros(5, 2, dtype=torch.float64))
    # Lorentz: the origin (R, 0, ...)
    lorentz = hyperbolic.Lorentz(2, curvature=-0.25)
    ml = frechet_mean(hyperbolic.PoincareBall(2, curvature=-0.25).to_lorentz(x.detach() * 2), w.detach(), lorentz)
    torch.testing.assert_close(ml[1], torch.tensor([2.0, 0, 0], dtype=torch.float64))


def _no_warning():
    import warnings

    class _Ctx:
        def __enter__(self):
            self.c = warnings.catch_warnings()
            self.c.__enter__()
            warnings.simplefilter("error")

        def __exit__(self, *exc):
            return self.c.__exit__(*exc)

    return _Ctx()


def test_empty_sets_and_single_points():
    x = torch.zeros(4, 0, 3, dtype=torch.float64)
    mu, info = frechet_mean(x, return_info=True)
    assert torch.equal(mu, torch.zeros(4, 3, dtype=torch.float64)) and bool(info.degenerate.all())
    single = M.benchmark_sets(5, 1, 3, 1.0, seed=43)
    torch.testing.assert_close(frechet_mean(single), single[:, 0], rtol=0, atol=1e-15)
    one = M.benchmark_sets(1, 7, 1, 1.0, seed=44)  # B = 1, n = 1
    mu1 = frechet_mean(one.requires_grad_(True))
    assert mu1.shape == (1, 1)
    mu1.sum().backward()
    assert one.grad.shape == (1, 7, 1) and torch.isfinite(one.grad).all()
    assert frechet_mean(torch.zeros(0, 5, 2, dtype=torch.float64)).shape == (0, 2)


def test_zero_weight_points_are_ignored_even_far_away():
    x = M.benchmark_sets(2, 6, 2, 0.5, seed=45)
    far = x.clone()
    far[:, 0] = torch.tensor([0.999999, 0.0], dtype=torch.float64)
    w = torch.ones(2, 6, dtype=torch.float64)
    w[:, 0] = 0
    torch.testing.assert_close(frechet_mean(far, w), frechet_mean(x[:, 1:]), rtol=0, atol=1e-13)


def test_bad_input():
    x = M.benchmark_sets(2, 4, 2, 1.0, seed=47)
    with pytest.raises(OffManifoldError):
        frechet_mean(x * 3)
    boundary = x / x.norm(dim=-1, keepdim=True)  # on the boundary: pulled inside, finite
    assert torch.isfinite(frechet_mean(boundary)).all()
    bad = x.clone()
    bad[1, 2, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        frechet_mean(bad)
    with pytest.raises(ValueError, match="non-negative"):
        frechet_mean(x, -torch.ones(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="do not match"):
        frechet_mean(x, torch.ones(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="set axis"):
        frechet_mean(x, dim=-1)
    with pytest.raises(TypeError):
        frechet_mean(x, manifold=geoopt.Sphere())
    with pytest.raises(ValueError, match="not hyperbolic"):
        frechet_mean(x, manifold=geoopt.Stereographic(k=0.5))


def test_dtype_and_device_follow_input():
    x = M.benchmark_sets(3, 4, 2, 1.0, seed=49, dtype=torch.float32)
    ball = hyperbolic.PoincareBall(2)
    mu = frechet_mean(x, manifold=ball)
    assert mu.dtype == torch.float32 and mu.device == x.device
    assert frechet_variance(x, mu, manifold=ball).dtype == torch.float32


def test_warns_when_not_converged():
    x = M.benchmark_sets(3, 10, 2, 1.5, seed=51)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        _, info = frechet_mean(x, max_iter=2, return_info=True)
    assert not bool(info.converged.all()) and int(info.n_iter.max()) == 2


def test_far_apart_points_converge_fast():
    """Points far apart (MM alone needs hundreds of steps here): the safeguarded Newton phase finishes."""
    g = torch.Generator().manual_seed(53)
    directions = torch.randn(2, 2, 16, generator=g, dtype=torch.float64)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    radii = torch.tensor([[16.5, 7.6], [12.0, 12.0]], dtype=torch.float64)
    x = torch.tanh(radii / 2).unsqueeze(-1) * directions
    w = torch.tensor([[1.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    mu, info = frechet_mean(x, w, return_info=True)
    assert bool(info.converged.all()) and int(info.n_iter.max()) <= 60
    assert _certified_errors(x, mu, w, 2) <= 1e-10


def test_lorentzian_centroid_start_is_the_midpoint_of_two_points():
    """The start (normalised sum of the hyperboloid points) is already the mean of two equal-weight
    points, near or far apart: one MM step confirms it, in the dense and in the segment kernel."""
    from hyperbolic.nn.aggregation import segment_frechet_mean

    g = torch.Generator().manual_seed(59)
    directions = torch.randn(3, 2, 16, generator=g, dtype=torch.float64)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    radii = torch.tensor([[0.3, 0.2], [6.2, 6.2], [16.0, 3.0]], dtype=torch.float64)
    x = torch.tanh(radii / 2).unsqueeze(-1) * directions
    mu, info = frechet_mean(x, return_info=True)
    assert bool(info.converged.all()) and int(info.n_iter.max()) == 1
    assert _certified_errors(x, mu, torch.ones(3, 2, dtype=torch.float64), 3) <= 1e-10
    seg, seg_info = segment_frechet_mean(x.reshape(6, 16), torch.arange(3).repeat_interleave(2), return_info=True)
    assert int(seg_info.n_iter.max()) == 1
    torch.testing.assert_close(seg, mu, rtol=0, atol=1e-13)


def test_cancellation_free_discriminant_agrees(monkeypatch):
    from hyperbolic.nn import _kernel

    x = M.benchmark_sets(20, 10, 3, 1.5, seed=55)
    plain = frechet_mean(x)
    monkeypatch.setattr(_kernel, "_DISC_RECOMPUTE", 2.0)  # always the expanded form
    torch.testing.assert_close(frechet_mean(x), plain, rtol=0, atol=1e-13)
