"""Float models beyond the conformance suite: higher dimensions, curvature, gradients, accurate forms."""

import random

import geoopt
import mpmath
import pytest
import torch

from hyperbolic import HalfSpace, Lorentz, PoincareBall, reference
from hyperbolic.math import halfspace as halfspace_kernel

MODELS = [Lorentz, PoincareBall, HalfSpace]


def _exact_pairs(n, radius, dim, seed, distance=None):
    rng = random.Random(seed)
    with mpmath.mp.workprec(reference.working_precision(radius + 2)):
        if distance is None:
            return [reference.far_pair(rng.uniform(0, radius), dim, rng) for _ in range(n)]
        return [reference.near_pair(radius, distance, dim, rng) for _ in range(n)]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dim", [3, 5])
def test_higher_dimensions_agree_with_reference(model, dim):
    manifold = model(dim)
    pairs = _exact_pairs(20, 8.0, dim, seed=dim)
    x = manifold.from_reference([a for a, _ in pairs])
    y = manifold.from_reference([b for _, b in pairs])
    truth = torch.tensor([float(reference.dist(a, b)) for a, b in pairs], dtype=torch.float64)
    torch.testing.assert_close(manifold.dist(x, y), truth, rtol=1e-12, atol=0)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("curvature", [-0.25, -3.0])
def test_curvature_scales_distances(model, curvature):
    """At curvature -c the distance between the same abstract points is d_unit / sqrt(c)."""
    unit, curved = model(2), model(2, curvature=curvature)
    pairs = _exact_pairs(10, 4.0, 2, seed=1)
    points = [p for pair in pairs for p in pair]
    x_unit, x_curved = unit.from_reference(points), curved.from_reference(points)
    scale = (-curvature) ** -0.5
    torch.testing.assert_close(curved.dist(x_curved[0::2], x_curved[1::2]),
                               scale * unit.dist(x_unit[0::2], x_unit[1::2]), rtol=1e-12, atol=1e-14)
    X = curved.to_lorentz(x_curved)
    torch.testing.assert_close(Lorentz(2, curvature=curvature).dist(X[0::2], X[1::2]),
                               curved.dist(x_curved[0::2], x_curved[1::2]), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(curved.from_lorentz(X), x_curved, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("model", MODELS)
def test_tiny_distances_keep_full_relative_accuracy(model):
    """arcosh(1 + tiny) loses half the digits; the half-angle forms do not."""
    manifold = model(2)
    pairs = _exact_pairs(10, 2.0, 2, seed=3, distance=mpmath.mpf("1e-9"))
    x = manifold.from_reference([a for a, _ in pairs])
    y = manifold.from_reference([b for _, b in pairs])
    d = manifold.dist(x, y)
    torch.testing.assert_close(d, torch.full_like(d, 1e-9), rtol=1e-5, atol=0)


def test_geoopt_loses_tiny_distances_where_we_do_not():
    """The same pairs through geoopt's Lorentz arcosh form: shows the test above can fail."""
    pairs = _exact_pairs(10, 2.0, 2, seed=3, distance=mpmath.mpf("1e-9"))
    ours = Lorentz(2)
    x = ours.from_reference([a for a, _ in pairs])
    y = ours.from_reference([b for _, b in pairs])
    theirs = geoopt.Lorentz().dist(x, y)
    assert float(((theirs - 1e-9).abs() / 1e-9).max()) > 1e-5


@pytest.mark.parametrize("model", MODELS)
def test_gradcheck_of_distance_exp_and_log(model):
    manifold = model(3)
    gen = torch.Generator().manual_seed(0)
    x = manifold.random(4, std=1.0, generator=gen)
    y = manifold.random(4, std=1.0, generator=gen)
    u = manifold.proju(x, 0.3 * torch.randn(x.shape, dtype=torch.float64, generator=gen))
    x, y, u = (t.clone().requires_grad_(True) for t in (x, y, u))
    assert torch.autograd.gradcheck(manifold.dist, (x, y))
    assert torch.autograd.gradcheck(manifold.logmap, (x, y))
    assert torch.autograd.gradcheck(manifold.expmap, (x, u))


@pytest.mark.parametrize("model", MODELS)
def test_learnable_curvature_has_a_gradient(model):
    manifold = model(2, curvature=-2.0, learnable=True)
    assert [name for name, _ in manifold.named_parameters()] == ["log_c"]
    x = manifold.random(5, generator=torch.Generator().manual_seed(1))
    y = manifold.random(5, generator=torch.Generator().manual_seed(2))

    def dist_at(log_c):
        with torch.no_grad():
            manifold.log_c.copy_(log_c)
        return manifold.dist(x, y).sum()

    manifold.dist(x, y).sum().backward()
    analytic = float(manifold.log_c.grad)
    h = 1e-6
    base = float(manifold.log_c.detach())
    with torch.no_grad():
        numeric = (float(dist_at(torch.tensor(base + h, dtype=torch.float64))) - float(dist_at(torch.tensor(base - h, dtype=torch.float64)))) / (2 * h)
    assert analytic == pytest.approx(numeric, rel=1e-6)


def test_zero_distance_has_zero_gradient():
    """d(., y) has its minimum 0 at y: the gradient there is the zero subgradient, not NaN or a spurious
    direction."""
    for manifold in (Lorentz(2), PoincareBall(2), HalfSpace(2)):
        x = manifold.random(3, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
        manifold.dist(x, x.detach().clone()).sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x.grad)), manifold.name


def test_halfspace_distance_survives_radius_700():
    """Textbook cosh d = 1 + rho^2 / (2 y1 y2) is 0/0 here (precision.md §7); our form is finite and exact for far pairs."""
    manifold = HalfSpace(2)
    pairs = _exact_pairs(5, 700.0, 2, seed=9)
    x = manifold.from_reference([a for a, _ in pairs])
    y = manifold.from_reference([b for _, b in pairs])
    truth = torch.tensor([float(reference.dist(a, b)) for a, b in pairs], dtype=torch.float64)
    torch.testing.assert_close(manifold.dist(x, y), truth, rtol=1e-14, atol=0)


def test_halfspace_exponential_map_branches_agree():
    """Both branches of the cancellation-free exp map describe the same point where both are valid."""
    gen = torch.Generator().manual_seed(5)
    y = torch.rand(200, 1, dtype=torch.float64, generator=gen) + 0.1
    v = torch.randn(200, 3, dtype=torch.float64, generator=gen)
    v[:, -1] = v[:, -1].abs() + 0.6  # v_y > 0 and s >= 1/2: the second branch
    dx, y_new = halfspace_kernel.expmap_frame(y, v)
    s = v.norm(dim=-1, keepdim=True)
    vx, vy = v[:, :-1], v[:, -1:]
    dx_first = y * vx / (s / torch.tanh(s) - vy)
    y_first = y / (torch.cosh(s) - vy * torch.sinh(s) / s)
    torch.testing.assert_close(dx, dx_first, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(y_new, y_first, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("radius", [5, 11, 15])
def test_lorentz_transport_error_grows_like_eps_e2r(radius):
    """The bound in the Lorentz docstring: parallel transport between near points (d = 1) at radius r, against
    the exact transport of the stored points in mpmath, errs by at most eps e^{2r} (relative, in the ambient
    coordinates), and by more than eps e^{2r} / 1000 far out: the tangent operations are not the ones
    the precision contract covers."""
    manifold = Lorentz(2)
    with mpmath.mp.workprec(reference.working_precision(radius + 3)):
        pairs = [reference.near_pair(radius, 1, 2, random.Random(i)) for i in range(10)]
    x = manifold.from_reference([a for a, _ in pairs])
    y = manifold.from_reference([b for _, b in pairs])
    u = manifold.proju(x, torch.randn(10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    moved = manifold.transp(x, y, u)
    errors = []
    with mpmath.mp.workprec(600):
        for i in range(10):
            X, Y, U = ([mpmath.mpf(v) for v in t[i].tolist()] for t in (x, y, u))
            X[0], Y[0] = (mpmath.sqrt(1 + P[1] ** 2 + P[2] ** 2) for P in (X, Y))  # the stored points, exactly

            def minkowski(a, b):
                return -a[0] * b[0] + a[1] * b[1] + a[2] * b[2]

            U = [U[k] + minkowski(X, U) * X[k] for k in range(3)]  # tangent at X exactly
            W = [U[k] + minkowski(Y, U) / (1 - minkowski(X, Y)) * (X[k] + Y[k]) for k in range(3)]
            difference = [mpmath.mpf(float(moved[i, k])) - W[k] for k in range(3)]
            errors.append(float(mpmath.norm(difference) / mpmath.norm(W)))
    bound = torch.finfo(torch.float64).eps * mpmath.e ** (2 * radius)
    assert max(errors) <= bound, f"{max(errors):.3g} > eps e^2r = {float(bound):.3g}"
    if radius >= 11:
        assert max(errors) >= bound / 1000


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_one_minus_squared_norm_accurate_near_the_boundary(dtype):
    """1 - |p|^2 is a few ulp of the result off the exact value of the stored floats, where the plain form
    has lost every bit; its gradient is the plain form's, -2p."""
    from hyperbolic.math.poincare import one_minus_squared_norm, one_minus_squared_norm_accurate

    generator = torch.Generator().manual_seed(3)
    direction = torch.nn.functional.normalize(torch.randn(200, 4, generator=generator, dtype=torch.float64), dim=-1)
    gap = torch.logspace(-1, -15 if dtype == torch.float64 else -7, 200, dtype=torch.float64).unsqueeze(-1)
    p = (direction * torch.sqrt(1 - gap)).to(dtype).requires_grad_()
    value = one_minus_squared_norm_accurate(p)
    with mpmath.workdps(60):
        truth = [1 - mpmath.fsum(mpmath.mpf(float(c)) ** 2 for c in row) for row in p.detach().tolist()]
    relative = [abs(float(v) - t) / abs(t) for v, t in zip(value.detach().squeeze(-1).tolist(), truth) if t > 0]
    assert len(relative) > 190 and max(relative) < 4 * torch.finfo(dtype).eps
    plain = one_minus_squared_norm(p.detach())
    assert float(((plain - value.detach()).abs() / value.detach().abs()).max()) > 1e3 * torch.finfo(dtype).eps
    value.sum().backward()
    torch.testing.assert_close(p.grad, -2 * p.detach())
