"""Random Laplacian features: the kernel, invariance, conventions, caps, MCF far out, gradients and bad input
(../shared/notes/hyla.md §6); h itself is tested in tests/hyperbolic/test_poisson.py."""

import math
import random

import mpmath
import pytest
import torch
from mpmath import mp, mpf

from hyperbolic import HalfSpace, HyperbolicManifold, Lorentz, PoincareBall, PrecisionError, reference
from hyperbolic.nn.hyla import OFFICIAL_MAX_NORM, RandomFourierFeatures, RandomLaplacianFeatures
from hyperbolic.poisson import (
    ball_to_halfspace_boundary,
    log_poisson,
    log_poisson_ball,
    log_poisson_halfspace,
    log_poisson_halfspace_mcf,
    log_poisson_lorentz,
    log_poisson_reference,
)

from ..hyperbolic.poisson_helpers import (
    _Opaque,
    aligned_point,
    assert_close_h,
    halfspace_boundary_to_ball,
    ref_h,
    unit,
)

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _precision():
    with mp.workprec(300):
        yield


# --------------------------------------------------------------------------- MCF half-space far out
def mcf_storage(point, components):
    """MCF half-space storage of an exact point: x^(1) = fl(x), x^(2) = fl(x - x^(1)), ...; y rounded."""
    horizontal, height = reference.to_halfspace(point)
    parts = []
    for c in horizontal:
        rest, row = c, []
        for _ in range(components):
            row.append(float(rest))
            rest = rest - mpf(row[-1])
        parts.append(row)
    flat = [parts[i][j] for j in range(components) for i in range(len(horizontal))]
    return flat + [float(height)]


def mcf_reference_point(storage, components, n):
    """The exact point an MCF storage row represents."""
    horizontal = [mpmath.fsum(mpf(storage[j * (n - 1) + i]) for j in range(components)) for i in range(n - 1)]
    return reference.from_halfspace(horizontal, mpf(storage[-1]))


def points_towards_boundary(radius, boundary, picks):
    """Exact unit ball directions of the half-space ``boundary`` points, and exact points at ``radius``:
    one towards direction ``k`` moved ``sideways`` for each ``(k, sideways)`` in ``picks``, plus one in a
    random direction (call under a working precision for ``radius``)."""
    directions = [halfspace_boundary_to_ball(row) for row in boundary.tolist()]
    points = [aligned_point(radius, directions[k], sideways) for k, sideways in picks]
    rng = random.Random(radius)
    points.append(reference.point_at(radius, reference.random_direction(len(directions[0]), rng)))
    return directions, points


@pytest.mark.parametrize("radius, components", [(60, 3), (100, 4), (400, 13)])
def test_mcf_halfspace_far_out_matches_mpmath(radius, components):
    """Features from MCF storage at radius 60+ agree with the oracle where float64 Poincaré breaks."""
    n = 16
    layer = RandomLaplacianFeatures(HalfSpace(n), n, 64, lambda_scale=0.3, convention="kernel", seed=3)
    boundary, _ = ball_to_halfspace_boundary(layer.omega)
    with mp.workprec(reference.working_precision(radius) + 100):
        directions, points = points_towards_boundary(radius, boundary, ((0, 0.3), (5, 0.0), (9, 2.0)))
        storage = torch.tensor([mcf_storage(p, components) for p in points], dtype=F64)
        exact = [mcf_reference_point(row, components, n) for row in storage.tolist()]
        truth = [[ref_h(p, w) for w in directions] for p in exact]
    h = log_poisson_halfspace_mcf(storage, boundary, components)
    for i in range(len(points)):
        assert_close_h(h[i], truth[i])
    assert h[0, 0].item() > radius - 1  # the aligned rows are the informative ones
    # the features themselves (kernel convention; log-domain shift c = ρ max h so e^{ρh - c} fits
    # float64 at every radius), relative to their amplitude
    rho, D = (n - 1) / 2, layer.n_features
    lam, b = layer.frequencies.tolist(), layer.phases.tolist()
    shift = rho * h.amax().item()
    for i, k in ((0, 0), (1, 5), (2, 9)):
        t = truth[i][k]
        amplitude = mpmath.sqrt(mpf(2) / D) * mpmath.exp(rho * t - mpf(shift))
        want = amplitude * mpmath.cos(mpf(lam[k]) * t + mpf(b[k]))
        got = math.sqrt(2 / D) * math.exp(rho * h[i, k].item() - shift) * math.cos(lam[k] * h[i, k].item() + b[k])
        assert abs(got - float(want)) <= 1e-11 * max(float(amplitude), 1e-300)
    # The float64 Poincaré path cannot even hold these points: its coordinates round onto the sphere.
    ball = torch.tensor([[float(c) for c in reference.to_poincare(p)] for p in exact[:1]], dtype=F64)
    float_ball = log_poisson_ball(ball, layer.omega)[0, 0].item()
    assert not (abs(float_ball - float(truth[0][0])) < 1.0)
    with pytest.raises(PrecisionError):
        PoincareBall(n).from_reference(exact[:1])


class _MCFStub(HyperbolicManifold):
    """A stand-in for hyperbolic.HalfSpaceMCF (storage [x^(1), ..., x^(m), y]), enough for dispatch."""

    def __init__(self, dim, components):
        super().__init__(dim)
        self.components = components
        self.name = "halfspace_mcf"

    storage_dim = property(lambda self: self.components * (self.dim - 1) + 1)
    contract = HalfSpace.contract
    _off_manifold_rows = HalfSpace._off_manifold_rows

    def to_reference(self, x):
        return [mcf_reference_point(row, self.components, self.dim) for row in x.reshape(-1, self.storage_dim).tolist()]

    def to_lorentz(self, x):
        raise NotImplementedError

    from_lorentz = from_reference = retr = expmap = inner = proju = projx = egrad2rgrad = to_lorentz


def test_layer_dispatches_mcf_storage_and_reference_route_agrees():
    n, m, radius = 4, 3, 60
    manifold = _MCFStub(n, m)
    layer = RandomLaplacianFeatures(manifold, n, 8, convention="kernel", seed=1)
    boundary, _ = ball_to_halfspace_boundary(layer.omega)
    with mp.workprec(reference.working_precision(radius)):
        direction = halfspace_boundary_to_ball(boundary[2].tolist())
        storage = torch.tensor([mcf_storage(aligned_point(radius, direction, 0.5), m)], dtype=F64)
    native = layer.log_poisson(storage)
    assert native[0, 2].item() > 55
    exact = log_poisson_reference(manifold, storage, boundary)
    torch.testing.assert_close(native, exact, rtol=1e-14, atol=1e-13)


# --------------------------------------------------------------------------- the exact bridge (tiling route)
def test_unknown_models_go_through_the_exact_bridge():
    opaque = _Opaque(3)
    x = HalfSpace(3).random(5, std=3.0, generator=torch.Generator().manual_seed(2))
    x = torch.cat([x, torch.tensor([[0.25, -0.5, 1e-20]], dtype=F64)])  # radius ~ 46
    layer = RandomLaplacianFeatures(opaque, 3, 16, convention="kernel", seed=0)
    native = RandomLaplacianFeatures(HalfSpace(3), 3, 16, convention="kernel", seed=0)
    torch.testing.assert_close(layer(x), native(x), rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="not differentiable"):
        layer(x.clone().requires_grad_(True))
    lorentz_route = RandomLaplacianFeatures(opaque, 3, 16, convention="kernel", seed=0, route="lorentz")
    torch.testing.assert_close(lorentz_route(x[:5]), native(x[:5]), rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- the kernel
def spherical_function_quad(n, lam, d):
    r"""Φ_λ(d) = ∫_{S^{n-1}} P(x, ω)^{ρ + iλ} dσ(ω) by mpmath quadrature over the polar angle."""
    rho = mpf(n - 1) / 2
    c, s = mpmath.cosh(d), mpmath.sinh(d)

    def integrand(t):
        return (c - s * mpmath.cos(t)) ** (-(rho + 1j * lam)) * mpmath.sin(t) ** (n - 2)

    norm = mpmath.quad(lambda t: mpmath.sin(t) ** (n - 2), [0, mpmath.pi])
    return mpmath.re(mpmath.quad(integrand, [0, mpmath.pi]) / norm)


def test_spherical_function_closed_forms():
    """The oracle itself: n = 2 is the conical Legendre function, n = 3 is sin(λd)/(λ sinh d)."""
    lam, d = mpf("0.8"), mpf("1.3")
    assert spherical_function_quad(2, lam, d) == pytest.approx(float(mpmath.re(mpmath.legenp(-0.5 + 1j * lam, 0, mpmath.cosh(d)))), abs=1e-14)
    assert spherical_function_quad(3, lam, d) == pytest.approx(float(mpmath.sin(lam * d) / (lam * mpmath.sinh(d))), abs=1e-14)


def ball_points_at_distance():
    x = torch.tensor([[0.3, 0.1], [-0.2, 0.4]], dtype=F64)
    d = PoincareBall(2).dist(x[0], x[1]).item()
    return x, d


def moved(x, t=1.0, angle=0.7):
    """Both points moved by the same isometry (a rotation then a boost), exactly in mpmath."""
    G = reference.boost(2, 1, mpf(t))
    R = reference.rotation(2, 1, 2, mpf(angle))
    out = []
    for row in x.tolist():
        p = reference.apply(G, reference.apply(R, reference.from_poincare(row)))
        out.append([float(c) for c in reference.to_poincare(p)])
    return torch.tensor(out, dtype=F64)


@pytest.mark.parametrize("lam", [0.0, 0.8, 2.5])
def test_quadrature_over_boundary_is_the_spherical_function_and_invariant(lam):
    """Equispaced ω (trapezoid rule, exponentially convergent) with b integrated out:
    mean_k e^{ρ(h_x + h_y)} cos(λ(h_x - h_y)) = Φ_λ(d), also after moving both points."""
    x, d = ball_points_at_distance()
    truth = float(mpmath.re(mpmath.legenp(-0.5 + 1j * mpf(lam), 0, mpmath.cosh(mpf(d)))))
    assert truth == pytest.approx(spherical_function_quad(2, mpf(lam), mpf(d)), abs=1e-13)
    layer = RandomLaplacianFeatures(PoincareBall(2), 2, 4096, boundary="fixed_uniform", convention="kernel")
    for points in (x, moved(x), moved(x, t=-1.5, angle=2.0)):
        h = layer.log_poisson(points)
        value = (torch.exp(0.5 * (h[0] + h[1])) * torch.cos(lam * (h[0] - h[1]))).mean().item()
        assert value == pytest.approx(truth, abs=1e-10)


def monte_carlo(layer, x):
    phi = layer(x)
    products = layer.n_features * phi[0] * phi[1]
    return products.mean().item(), products.std().item() / math.sqrt(layer.n_features)


def test_monte_carlo_kernel_fixed_frequency():
    """D = 4e5 kernel-convention features: Σ φ(x)φ(y) ≈ Φ_λ(d) (notes: 0.794 vs 0.792), for the pair
    and for the same pair moved by an isometry (invariance of the kernel)."""
    x, d = ball_points_at_distance()
    lam = 0.8
    truth = spherical_function_quad(2, mpf(lam), mpf(d))
    layer = RandomLaplacianFeatures(PoincareBall(2), 2, 400_000, convention="kernel", seed=11)
    layer.frequencies.fill_(lam)
    for points in (x, moved(x)):
        estimate, se = monte_carlo(layer, points)
        assert abs(estimate - truth) < max(5 * se, 1e-3)
        assert abs(estimate - truth) < 1e-2


def test_monte_carlo_kernel_gaussian_frequencies_h3():
    """λ ~ N(0, s²) in H³: Σ φ(x)φ(y) ≈ k(d) = ∫ sin(λd)/(λ sinh d) N(λ; 0, s²) dλ (mpmath)."""
    s = 1.2
    ball = PoincareBall(3)
    x = torch.tensor([[0.2, -0.1, 0.3], [-0.3, 0.2, 0.1]], dtype=F64)
    d = mpf(ball.dist(x[0], x[1]).item())

    def integrand(lam):
        phi = d / mpmath.sinh(d) if lam == 0 else mpmath.sin(lam * d) / (lam * mpmath.sinh(d))
        return phi * mpmath.npdf(lam, 0, s)

    truth = float(mpmath.quad(integrand, [-mpmath.inf, 0, mpmath.inf]))
    layer = RandomLaplacianFeatures(ball, 3, 400_000, lambda_scale=s, convention="kernel", seed=5)
    estimate, se = monte_carlo(layer, x)
    assert abs(estimate - truth) < max(5 * se, 1e-3)


def test_features_invariant_in_distribution_under_rotations():
    """For a rotation about the origin, y = x q (rows), |y - ω| = |x - ω qᵀ|: the features at y with
    boundary points ω equal those at x with ω qᵀ, which are again uniform on the sphere. So the feature
    process at y has the law of the one at x. (Under translations only the kernel is invariant, see the
    tests above; single features are not, notes §1.)"""
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=F64, generator=g))
    ball = PoincareBall(4)
    x = ball.random(7, std=1.0, generator=g)
    layer = RandomLaplacianFeatures(ball, 4, 200, lambda_scale=0.5, seed=9)
    rotated = RandomLaplacianFeatures(ball, 4, 200, lambda_scale=0.5, seed=9)
    rotated.omega.copy_(layer.omega @ q.T)
    torch.testing.assert_close(layer(x @ q), rotated(x), rtol=1e-11, atol=1e-11)
    big = RandomLaplacianFeatures(ball, 4, 100_000, seed=1).omega @ q.T
    assert big.mean(0).abs().max().item() < 0.02
    torch.testing.assert_close(big.T @ big / big.shape[0], torch.eye(4, dtype=F64) / 4, atol=0.01, rtol=0)


# --------------------------------------------------------------------------- conventions, buffers, caps
def test_conventions_are_the_documented_formulas():
    ball = PoincareBall(5)
    x = ball.random(6, std=1.0, generator=torch.Generator().manual_seed(0))
    official = RandomLaplacianFeatures(ball, 5, 30, lambda_scale=0.5, convention="official", seed=4)
    kernel = RandomLaplacianFeatures(ball, 5, 30, lambda_scale=0.5, convention="kernel", seed=4)
    for name in ("omega", "frequencies", "phases"):
        assert torch.equal(getattr(official, name), getattr(kernel, name))
    om, lam, b = official.omega, official.frequencies, official.phases
    P = (1 - x.square().sum(-1, keepdim=True)) / (x.unsqueeze(1) - om).square().sum(-1)
    torch.testing.assert_close(official(x), P**2 * torch.cos(lam / 2 * torch.log(P) + b), rtol=1e-12, atol=0)
    torch.testing.assert_close(kernel(x), math.sqrt(2 / 30) * P**2 * torch.cos(lam * torch.log(P) + b), rtol=1e-12, atol=0)
    # official: inputs renormalised to ‖x‖ <= 1 - 1e-5
    far = torch.nn.functional.normalize(x, dim=-1) * (1 - 1e-9)
    clipped = torch.nn.functional.normalize(x, dim=-1) * OFFICIAL_MAX_NORM
    # (the two clipped points differ by rounding, amplified by (n-1)/(1 - ‖x‖²))
    torch.testing.assert_close(official(far), official(clipped), rtol=1e-9, atol=0)


def test_sampling_is_reproducible_and_survives_state_dict():
    a = RandomLaplacianFeatures(PoincareBall(3), 3, 50, seed=7)
    b = RandomLaplacianFeatures(PoincareBall(3), 3, 50, seed=7)
    c = RandomLaplacianFeatures(PoincareBall(3), 3, 50, seed=8)
    assert torch.equal(a.omega, b.omega) and torch.equal(a.phases, b.phases)
    assert not torch.equal(a.omega, c.omega)
    torch.testing.assert_close(a.omega.norm(dim=-1), torch.ones(50, dtype=F64), rtol=0, atol=1e-15)
    assert bool((a.phases >= 0).all() and (a.phases < 2 * math.pi).all())
    before = a.omega.clone()
    a.reset_parameters()
    assert torch.equal(a.omega, before)  # a seed reproduces its draws
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.omega, a.omega) and torch.equal(c.frequencies, a.frequencies)
    assert set(a.state_dict()) == {"omega", "frequencies", "phases", "log_shift", "manifold.log_c"}
    gen = torch.Generator().manual_seed(1)
    d = RandomLaplacianFeatures(PoincareBall(3), 3, 50, generator=gen)
    first = d.omega.clone()
    d.reset_parameters()
    assert not torch.equal(first, d.omega)  # a generator draws afresh
    assert "convention='official'" in repr(a) and "n_features=50" in repr(a)
    fixed = RandomLaplacianFeatures(PoincareBall(2), 2, 8, boundary="fixed_uniform")
    torch.testing.assert_close(torch.atan2(fixed.omega[:, 1], fixed.omega[:, 0]) % (2 * math.pi),
                               torch.arange(8, dtype=F64) * math.pi / 4, rtol=0, atol=1e-15)


def far_points(n, radius, count=5, seed=0):
    rng = random.Random(seed)
    with mp.workprec(reference.working_precision(radius)):
        return [reference.point_at(radius, reference.random_direction(n, rng)) for _ in range(count)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_caps_keep_features_finite_far_out(dtype):
    """n = 16, a point right at a boundary point's horosphere depth: h = 100 in a float64 half-space
    (e^{ρh} = e^{750} overflows) and h = 14 in a float32 ball (e^{105} overflows float32). Each of the
    three controls keeps the features finite, at the values its definition gives."""
    n = 16
    probe = RandomLaplacianFeatures(PoincareBall(n), n, 300, seed=2)
    others = far_points(n, 30 if dtype == torch.float64 else 12)
    if dtype == torch.float64:
        manifold = HalfSpace(n)
        boundary, _ = ball_to_halfspace_boundary(probe.omega[:1])
        aligned = torch.cat([boundary, torch.tensor([[math.exp(-100.0)]], dtype=F64)], dim=-1)
    else:
        manifold = PoincareBall(n)
        aligned = (math.tanh(7.0) * probe.omega[:1]).to(dtype)
    x = torch.cat([aligned, manifold.from_reference(others, dtype=dtype)])
    layer = RandomLaplacianFeatures(manifold, n, 300, convention="kernel", seed=2)
    assert layer.log_poisson(x)[0, 0].item() > (99 if dtype == torch.float64 else 13.9)
    assert not bool(torch.isfinite(layer(x)).all())
    # Each control against its definition, built from the uncapped h (checked against mpmath elsewhere) and
    # the layer's draws: phi = sqrt(2/D) e^a cos(lambda h + b) with the amplitude a it prescribes. Errors are
    # measured against the envelope sqrt(2/D) e^a (near a zero of the cosine, relative errors mean nothing),
    # plus the dtype's smallest normal number where the envelope underflows.
    tol = 1e-9 if dtype == torch.float64 else 1e-4

    def assert_features(out, h, amplitude, what, tol=tol):
        assert out.dtype == dtype and bool(torch.isfinite(out).all()), what
        envelope = math.sqrt(2 / 300) * torch.exp(amplitude)
        expected = envelope * torch.cos(layer.frequencies * h + layer.phases)
        error = (out.double() - expected).abs()
        assert bool((error <= tol * envelope + torch.finfo(dtype).tiny).all()), what

    h = layer.log_poisson(x).double()
    for option, value, amplitude in (("amplitude_cap", 50.0, (layer.rho * h).clamp_max(50.0)),
                                     ("log_scale", True, layer.rho * h - (layer.rho * h).amax(0))):
        capped = RandomLaplacianFeatures(manifold, n, 300, convention="kernel", seed=2, **{option: value})
        assert_features(capped(x), h, amplitude, option)
    # radius_cap: rows beyond radius 10 get the features of the point at radius 10 in the same direction.
    capped = RandomLaplacianFeatures(manifold, n, 300, convention="kernel", seed=2, radius_cap=10.0)
    spatial = manifold.to_lorentz(x).double()[:, 1:]
    moved = math.tanh(5.0) * spatial / spatial.norm(dim=-1, keepdim=True)
    h_moved = RandomLaplacianFeatures(PoincareBall(n), n, 300, convention="kernel", seed=2).log_poisson(moved)
    # (a float32 ball resolves 1 - |x| = 9e-5 at radius 10 to about 7e-4 relative: h to about 1e-3)
    assert_features(capped(x), h_moved, layer.rho * h_moved, "radius_cap", 1e-9 if dtype == torch.float64 else 3e-2)


def test_log_scale_is_a_frozen_column_rescaling():
    ball = PoincareBall(4)
    x = ball.random(10, std=2.0, generator=torch.Generator().manual_seed(1))
    plain = RandomLaplacianFeatures(ball, 4, 12, convention="kernel", seed=0)
    scaled = RandomLaplacianFeatures(ball, 4, 12, convention="kernel", seed=0, log_scale=True)
    train = scaled(x)
    shift = scaled.log_shift.clone()
    torch.testing.assert_close(train, plain(x) * torch.exp(-shift), rtol=1e-12, atol=0)
    torch.testing.assert_close(shift, (1.5 * scaled.log_poisson(x)).amax(0))
    scaled.eval()
    torch.testing.assert_close(scaled(x[:3] * 0.5), plain(x[:3] * 0.5) * torch.exp(-shift), rtol=1e-12, atol=0)
    assert torch.equal(scaled.log_shift, shift)


def test_radius_cap_other_models():
    """A point beyond the cap gets the features of the point at the cap in its direction."""
    lorentz = Lorentz(3)
    x = lorentz.from_reference(far_points(3, 25, count=3))
    capped = RandomLaplacianFeatures(lorentz, 3, 20, convention="kernel", radius_cap=4.0, seed=0)
    at_cap = lorentz.from_reference(
        [reference.point_at(4.0, unit(p[1:])) for p in lorentz.to_reference(x)]
    )
    torch.testing.assert_close(capped(x), capped(at_cap), rtol=1e-9, atol=1e-12)
    official = RandomLaplacianFeatures(HalfSpace(3), 3, 20, seed=0)
    ball_official = RandomLaplacianFeatures(PoincareBall(3), 3, 20, seed=0)
    hs = HalfSpace(3).from_reference(lorentz.to_reference(x))
    torch.testing.assert_close(official(hs), ball_official(lorentz.to_poincare(x)), rtol=1e-8, atol=1e-8)


def test_same_features_in_every_model_and_curvature():
    rng = random.Random(4)
    points = [reference.point_at(r, reference.random_direction(3, rng)) for r in (0.3, 2.0, 6.0)]
    outs = []
    for model in (PoincareBall, Lorentz, HalfSpace):
        for curvature in (-1.0, -4.0):
            m = model(3, curvature=curvature)
            x = m.from_reference(points)
            layer = RandomLaplacianFeatures(m, 3, 25, lambda_scale=0.7, convention="kernel", seed=6)
            outs.append(layer(x))
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=1e-11, atol=1e-12)


def test_dtype_and_shape_follow_inputs():
    layer = RandomLaplacianFeatures(None, 3, 9, seed=0)
    x = PoincareBall(3).random(2, 4, std=0.5, dtype=torch.float32)
    out = layer(x)
    assert out.shape == (2, 4, 9) and out.dtype == torch.float32
    assert layer.omega.dtype == F64


# --------------------------------------------------------------------------- gradients
def test_gradcheck_ball_function_including_aligned_pairs():
    layer = RandomLaplacianFeatures(PoincareBall(3), 3, 7, lambda_scale=1.0, convention="kernel", seed=1)
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(5, 3, dtype=F64, generator=g), dim=-1)
    x = x * torch.tensor([[0.1], [0.5], [0.7], [0.9], [0.95]], dtype=F64)
    x[0] = layer.omega[0] * 0.9
    x[1] = layer.omega[2] * 0.99 + 1e-3
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(layer, (x,))
    assert torch.autograd.gradgradcheck(lambda p: log_poisson_ball(p, layer.omega, analytic_gradient=False), (x,))
    with pytest.raises(RuntimeError):
        torch.autograd.gradgradcheck(lambda p: log_poisson_ball(p, layer.omega), (x,))


@pytest.mark.parametrize("model", [Lorentz, HalfSpace])
def test_gradcheck_other_models(model):
    manifold = model(3)
    layer = RandomLaplacianFeatures(manifold, 3, 7, lambda_scale=1.0, convention="kernel", seed=1)
    x = manifold.random(4, std=1.5, generator=torch.Generator().manual_seed(2))
    aligned = manifold.from_lorentz(torch.cat([torch.tensor([math.cosh(2.0)], dtype=F64), math.sinh(2.0) * layer.omega[3]]).unsqueeze(0))
    x = torch.cat([x, aligned])
    if model is Lorentz:
        spatial = x[:, 1:].clone().requires_grad_(True)

        def features(s):
            return layer(torch.cat([torch.sqrt(1 + s.square().sum(-1, keepdim=True)), s], dim=-1))

        assert torch.autograd.gradcheck(features, (spatial,))
    else:
        assert torch.autograd.gradcheck(layer, (x.clone().requires_grad_(True),))


def test_rff_baseline():
    rff = RandomFourierFeatures(4, 200_000, scale=0.7, seed=0)
    x = torch.tensor([[0.1, 0.2, -0.3, 0.4], [0.5, -0.1, 0.0, 0.2]], dtype=F64)
    k = (rff(x[:1]) * rff(x[1:])).sum().item()
    assert k == pytest.approx(math.exp(-0.49 * (x[0] - x[1]).square().sum().item() / 2), abs=1e-2)
    assert "scale=0.7" in repr(rff)
    with pytest.raises(ValueError, match="last axis 4"):
        rff(torch.zeros(2, 3, dtype=F64))


# --------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_clearly():
    ball = PoincareBall(3)
    with pytest.raises(ValueError, match="does not match"):
        RandomLaplacianFeatures(ball, 4, 10)
    with pytest.raises(ValueError, match="convention"):
        RandomLaplacianFeatures(ball, 3, 10, convention="paper")
    with pytest.raises(ValueError, match="n_features"):
        RandomLaplacianFeatures(ball, 3, 0)
    with pytest.raises(ValueError, match="fixed_uniform"):
        RandomLaplacianFeatures(ball, 3, 10, boundary="fixed_uniform")
    with pytest.raises(ValueError, match="lambda_scale"):
        RandomLaplacianFeatures(ball, 3, 10, lambda_scale=-1)
    with pytest.raises(ValueError, match="radius_cap"):
        RandomLaplacianFeatures(ball, 3, 10, radius_cap=0)
    with pytest.raises(TypeError, match="HyperbolicManifold"):
        RandomLaplacianFeatures("poincare", 3, 10)
    with pytest.raises(ValueError, match="either a generator or a seed"):
        RandomLaplacianFeatures(ball, 3, 10, seed=1, generator=torch.Generator())
    layer = RandomLaplacianFeatures(ball, 3, 10)
    with pytest.raises(ValueError, match="non-finite"):
        layer(torch.tensor([[0.1, math.nan, 0.0]], dtype=F64))
    with pytest.raises(ValueError, match="not a point"):
        layer(torch.tensor([[0.9, 0.9, 0.0]], dtype=F64))
    with pytest.raises(ValueError, match="last axis"):
        layer(torch.zeros(2, 4, dtype=F64))
    with pytest.raises(ValueError, match="route"):
        log_poisson(ball, torch.zeros(1, 3, dtype=F64), layer.omega, route="fast")
    with pytest.raises(ValueError, match="not positive"):
        log_poisson_halfspace(torch.tensor([[0.0, 0.0, -1.0]], dtype=F64), torch.zeros(2, 2, dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        log_poisson_lorentz(torch.ones(2, 4, dtype=F64), torch.zeros(2, 2, dtype=F64))


@pytest.mark.parametrize(
    "options",
    [{}, {"convention": "kernel"}, {"amplitude_cap": 2.0, "convention": "kernel"}, {"log_scale": True}, {"radius_cap": 1.0}],
)
def test_one_pass_ball_features_equal_the_composed_path(options):
    """The fused ball path (_BallFeatures) gives the values and gradients of h -> amplitude -> phase."""
    ball = PoincareBall(4)
    layer = RandomLaplacianFeatures(ball, 4, 40, lambda_scale=2.0, seed=3, **options)
    x = ball.random(9, std=1.5, generator=torch.Generator().manual_seed(6))
    x[0] = layer.omega[1] * 0.999
    x.requires_grad_(True)
    fused = layer(x)
    composed_layer = RandomLaplacianFeatures(ball, 4, 40, lambda_scale=2.0, seed=3, **options)
    h = composed_layer.log_poisson(x)
    composed = torch.exp(composed_layer.log_amplitude(h)) * torch.cos(composed_layer.phase(h))
    torch.testing.assert_close(fused, composed, rtol=1e-11, atol=1e-13)
    weights = torch.randn(fused.shape, dtype=F64, generator=torch.Generator().manual_seed(0))
    (g_fused,) = torch.autograd.grad((fused * weights).sum(), x)
    (g_composed,) = torch.autograd.grad((composed * weights).sum(), x)
    torch.testing.assert_close(g_fused, g_composed, rtol=1e-9, atol=1e-11)
    if options.get("log_scale"):
        torch.testing.assert_close(layer.log_shift, composed_layer.log_shift)


def test_gradcheck_one_pass_ball_features_with_caps():
    ball = PoincareBall(3)
    layer = RandomLaplacianFeatures(ball, 3, 11, lambda_scale=1.5, seed=2, amplitude_cap=1.0, log_scale=True)
    x = ball.random(6, std=1.0, generator=torch.Generator().manual_seed(1))
    x[0] = layer.omega[4] * 0.95
    layer(x)  # fit the shift in training mode, then freeze it
    layer.eval()
    assert torch.autograd.gradcheck(layer, (x.clone().requires_grad_(True),))
    plain = RandomLaplacianFeatures(ball, 3, 11, lambda_scale=1.5, seed=2, convention="kernel")
    assert torch.autograd.gradcheck(plain, (x.clone().requires_grad_(True),))
    from hyperbolic.poisson import _BallLogPoisson

    assert torch.autograd.gradcheck(lambda p: _BallLogPoisson.apply(p, layer.omega), (x.clone().requires_grad_(True),))


@pytest.mark.parametrize("radius, components", [(60, 3), (150, 6)])
def test_halfspace_mcf_model_far_out(radius, components):
    """hyperbolic.HalfSpaceMCF points (its own from_reference rounding) at radius 60 and 150: the
    layer dispatches to the MCF form and matches mpmath on the exactly represented points, including
    points on a boundary point's horosphere at depth ~r (features e^{7.5 r} with the log-domain shift)."""
    from hyperbolic import HalfSpaceMCF

    n = 16
    manifold = HalfSpaceMCF(n, components=components)
    layer = RandomLaplacianFeatures(manifold, n, 32, lambda_scale=0.3, convention="kernel", log_scale=True, seed=8)
    boundary, _ = ball_to_halfspace_boundary(layer.omega)
    with mp.workprec(reference.working_precision(radius) + 100):
        directions, points = points_towards_boundary(radius, boundary, ((0, 0.2), (3, 0.0), (7, 1.0)))
        x = manifold.from_reference(points)
        exact = manifold.to_reference(x)
        truth = [[ref_h(p, w) for w in directions] for p in exact]
    h = layer.log_poisson(x)
    for i in range(len(points)):
        assert_close_h(h[i], truth[i])
    assert min(h[0, 0].item(), h[1, 3].item(), h[2, 7].item()) > radius - 2
    features = layer(x)
    assert bool(torch.isfinite(features).all()) and features.abs().max().item() <= math.sqrt(2 / 32) * (1 + 1e-12)
    torch.testing.assert_close(h, log_poisson_reference(manifold, x, boundary), rtol=1e-14, atol=1e-13)


def test_official_renormalisation_passes_the_gradient_straight_through():
    """The published code renormalises rows beyond 1 - 1e-5 in place, unrecorded: the gradient is the
    features' gradient at the renormalised point, radial part included (a differentiable radial
    projection would remove it). A radius cap, in contrast, is differentiable."""
    g = torch.Generator().manual_seed(0)
    direction = torch.nn.functional.normalize(torch.randn(3, 5, dtype=F64, generator=g), dim=-1)
    x = direction * torch.tensor([[0.3], [1 - 1e-7], [1 - 1e-9]], dtype=F64)
    layer = RandomLaplacianFeatures(PoincareBall(5), 5, 16, lambda_scale=0.5, seed=2)
    weights = torch.randn(3, 16, dtype=F64, generator=g)
    leaf = x.clone().requires_grad_(True)
    (layer(leaf) * weights).sum().backward()

    renormalised = x * torch.clamp(OFFICIAL_MAX_NORM / x.norm(dim=-1, keepdim=True), max=1.0)
    at = renormalised.clone().requires_grad_(True)
    poisson = (1 - at.square().sum(-1, keepdim=True)) / (at[:, None, :] - layer.omega[None]).square().sum(-1)
    (poisson**2 * torch.cos(layer.frequencies / 2 * torch.log(poisson) + layer.phases) * weights).sum().backward()
    torch.testing.assert_close(leaf.grad, at.grad, rtol=1e-9, atol=0)
    assert (leaf.grad[1:] * direction[1:]).sum(-1).abs().min() > 1e-3 * leaf.grad[1:].norm(dim=-1).min()

    capped = RandomLaplacianFeatures(PoincareBall(5), 5, 16, lambda_scale=0.5, seed=2, radius_cap=3.0, convention="kernel")
    leaf = x.clone().requires_grad_(True)
    (capped(leaf) * weights).sum().backward()
    radial = (leaf.grad[1:] * direction[1:]).sum(-1).abs()
    assert radial.max() <= 1e-12 * leaf.grad[1:].norm(dim=-1).max()
