"""Exponential-map charts of the flows: scalar functions against mpmath, Jacobians and pull-backs against
autograd, smoothness at the chart centre."""

import math

import mpmath
import pytest
import torch
from torch.autograd.functional import jacobian

from hyperbolic import HalfSpace, Lorentz, PoincareBall
from hyperbolic.nn.flows import Sphere, functional
from hyperbolic.nn.flows.functional import HyperbolicChart, SphereChart

pytestmark = pytest.mark.usefixtures("one_thread")


RADII = [0.0, 1e-9, 1e-4, 0.3, 0.999, 1.0, 1.001, 2.5, 3.1, 7.0]


def _mp(f):
    def value(r):
        with mpmath.workdps(60):
            return float(f(mpmath.mpf(r)))

    return value


MPMATH = {
    "sinhc": _mp(lambda r: mpmath.sinh(r) / r if r else mpmath.mpf(1)),
    "sinc": _mp(lambda r: mpmath.sin(r) / r if r else mpmath.mpf(1)),
    "cosh": _mp(mpmath.cosh),
    "cos": _mp(mpmath.cos),
    "alpha_hyperbolic": _mp(
        lambda r: (r * mpmath.cosh(r) - mpmath.sinh(r)) / r**3 if r else mpmath.mpf(1) / 3
    ),
    "alpha_sphere": _mp(lambda r: (mpmath.sin(r) - r * mpmath.cos(r)) / r**3 if r else mpmath.mpf(1) / 3),
    "log_sinhc": _mp(lambda r: mpmath.log(mpmath.sinh(r) / r) if r else mpmath.mpf(0)),
    "log_sinc": _mp(lambda r: mpmath.log(abs(mpmath.sin(r) / r)) if r else mpmath.mpf(0)),
}


@pytest.mark.parametrize("name", sorted(MPMATH))
def test_scalar_functions_match_mpmath(name):
    r = torch.tensor(RADII, dtype=torch.float64)
    got = getattr(functional, name)(r.square())
    want = torch.tensor([MPMATH[name](v) for v in RADII], dtype=torch.float64)
    # log functions vanish at 0: compare absolutely there.
    torch.testing.assert_close(got, want, rtol=4e-15, atol=1e-300 if not name.startswith("log") else 1e-30)


def test_arsinhc_matches_mpmath():
    t = torch.tensor([0.0, 1e-10, 1e-3, 0.5, 4.0, 100.0], dtype=torch.float64)
    want = [1.0] + [float(mpmath.asinh(mpmath.mpf(v)) / v) for v in t.tolist()[1:]]
    torch.testing.assert_close(
        functional.arsinhc(t), torch.tensor(want, dtype=torch.float64), rtol=1e-15, atol=0
    )


def _pulled_back_log_det(embed, metric, y):
    """1/2 log det(D^T G D) of the chart map at y: the log-volume factor with respect to the metric G."""
    D = jacobian(embed, y)
    G = metric(embed(y))
    return 0.5 * torch.logdet(D.T @ G @ D)


def _hyperbolic_metric(manifold):
    def metric(x):
        n = manifold.storage_dim
        if isinstance(manifold, Lorentz):
            return torch.diag(torch.tensor([-1.0] + [1.0] * (n - 1), dtype=x.dtype))
        return manifold.inner(x, torch.eye(n, dtype=x.dtype).unsqueeze(-2), torch.eye(n, dtype=x.dtype))

    return metric


@pytest.mark.parametrize("model", [Lorentz, PoincareBall])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("curvature", [-1.0, -0.3])
def test_hyperbolic_log_det_matches_autograd(model, dim, curvature):
    manifold = model(dim, curvature=curvature)
    chart = HyperbolicChart(manifold)
    metric = _hyperbolic_metric(manifold)
    torch.manual_seed(dim)
    for y in 1.5 * torch.randn(5, dim, dtype=torch.float64):
        truth = _pulled_back_log_det(chart.from_chart, metric, y)
        torch.testing.assert_close(chart.log_det(y), truth, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dim", [2, 3])
def test_sphere_log_det_matches_autograd(dim):
    chart = SphereChart(dim)
    sphere = Sphere(dim)
    torch.manual_seed(dim)
    for p in sphere.random(5):
        y = torch.randn(dim, dtype=torch.float64)
        y = y / y.norm() * torch.rand(()) * 2.8
        truth = _pulled_back_log_det(
            lambda v, p=p: chart.from_chart(p, v), lambda x: torch.eye(dim + 1, dtype=x.dtype), y
        )
        torch.testing.assert_close(chart.log_det(y), truth, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("p0", [1.0, -1.0, 0.0, 0.3, -0.999])
def test_sphere_frame_is_orthonormal(p0):
    n = 3
    rest = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    p = torch.cat([torch.tensor([p0], dtype=torch.float64), rest / rest.norm() * math.sqrt(1 - p0 * p0)])
    E = SphereChart.frame(p.expand(n, n + 1), torch.eye(n, dtype=torch.float64))  # rows E e_i
    torch.testing.assert_close(E @ E.T, torch.eye(n, dtype=torch.float64), atol=1e-15, rtol=0)
    torch.testing.assert_close(E @ p, torch.zeros(n, dtype=torch.float64), atol=1e-15, rtol=0)
    u = torch.randn(n + 1, dtype=torch.float64)
    u = u - (u @ p) * p
    torch.testing.assert_close(SphereChart.frame(p, SphereChart.coordinates(p, u)), u, atol=1e-15, rtol=0)


@pytest.mark.parametrize("model", [Lorentz, PoincareBall, HalfSpace])
def test_hyperbolic_chart_round_trip(model):
    manifold = model(3, curvature=-2.0)
    chart = HyperbolicChart(manifold)
    # Radius <= ~9 (unit radius <= ~13): the float Poincaré and half-space models keep ~1e-10 there.
    y = 1.5 * torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x = chart.from_chart(y)
    manifold.assert_points(x)
    torch.testing.assert_close(chart.to_chart(x), y, rtol=1e-10, atol=1e-10)
    distance = manifold.dist(manifold.origin(50), x)
    torch.testing.assert_close(distance, y.norm(dim=-1), rtol=1e-10, atol=1e-12)


def test_sphere_chart_round_trip_and_expmap():
    sphere, chart = Sphere(3), SphereChart(3)
    g = torch.Generator().manual_seed(2)
    p = sphere.random(50, generator=g)
    y = torch.randn(50, 3, dtype=torch.float64, generator=g)
    y = y / y.norm(dim=-1, keepdim=True) * torch.rand(50, 1, dtype=torch.float64, generator=g) * 3.0
    x = chart.from_chart(p, y)
    torch.testing.assert_close(x, sphere.expmap(p, SphereChart.frame(p, y)), rtol=0, atol=1e-14)
    torch.testing.assert_close(chart.to_chart(p, x), y, rtol=0, atol=1e-12)


def _check_pullback(embed, y, g, f_tangent):
    """D embed(y) g == f (the pulled-back velocity pushes forward to the tangent vector)."""
    pushed = jacobian(embed, y) @ g
    torch.testing.assert_close(pushed, f_tangent, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("model", [Lorentz, PoincareBall])
@pytest.mark.parametrize("curvature", [-1.0, -2.5])
def test_hyperbolic_pullback_inverts_the_chart_differential(model, curvature):
    manifold = model(3, curvature=curvature)
    chart = HyperbolicChart(manifold)
    g = torch.Generator().manual_seed(3)
    for scale in (0.0, 1e-6, 0.5, 2.0):
        y = scale * torch.randn(3, dtype=torch.float64, generator=g)
        z = chart.from_chart(y)
        f = manifold.proju(z, torch.randn(manifold.storage_dim, dtype=torch.float64, generator=g))
        _check_pullback(chart.from_chart, y, chart.pullback(y, z, f), f)


def test_sphere_pullback_inverts_the_chart_differential():
    sphere, chart = Sphere(3), SphereChart(3)
    g = torch.Generator().manual_seed(4)
    for scale in (0.0, 1e-6, 0.5, 1.5, 2.9):
        p = sphere.random(generator=g)
        y = torch.randn(3, dtype=torch.float64, generator=g)
        y = scale * y / y.norm()
        z = chart.from_chart(p, y)
        f = sphere.proju(z, torch.randn(4, dtype=torch.float64, generator=g))
        _check_pullback(lambda v, p=p: chart.from_chart(p, v), y, chart.pullback(p, y, z, f), f)
        # An ambient (non-tangent) vector is projected first.
        torch.testing.assert_close(chart.pullback(p, y, z, f + 3.0 * z), chart.pullback(p, y, z, f))


def test_chart_maps_have_exact_second_derivatives_at_the_centre():
    """Series in r^2 make the maps polynomial near y = 0: gradgradcheck passes at y = 0 exactly."""
    sphere = Sphere(2)
    p = sphere.random(generator=torch.Generator().manual_seed(5))
    f = sphere.proju(p, torch.tensor([0.3, -0.2, 0.7], dtype=torch.float64))
    chart_s, chart_h = SphereChart(2), HyperbolicChart(Lorentz(2, curvature=-1.7))
    y = torch.zeros(2, dtype=torch.float64, requires_grad=True)

    def sphere_velocity(v):
        z = chart_s.from_chart(p, v)
        return chart_s.pullback(p, v, z, f + v.sum() * z.roll(1))

    def hyperbolic_velocity(v):
        z = chart_h.from_chart(v)
        return chart_h.pullback(v, z, torch.cat([v.sum().reshape(1), v]) + 0.1)

    for fn in (
        lambda v: chart_s.from_chart(p, v),
        chart_h.from_chart,
        chart_s.log_det,
        chart_h.log_det,
        sphere_velocity,
        hyperbolic_velocity,
    ):
        assert torch.autograd.gradcheck(fn, (y,))
        assert torch.autograd.gradgradcheck(fn, (y,))
