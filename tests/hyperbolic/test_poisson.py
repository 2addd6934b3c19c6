"""The log Poisson kernel h (hyperbolic.poisson): native forms against mpmath, the MCF half-space, the exact
bridge, eigenfunction and Busemann properties, gradients (../shared/notes/hyla.md §6)."""

import random

import mpmath
import pytest
import torch
from mpmath import mp, mpf

from hyperbolic import HalfSpace, Lorentz, PoincareBall, PrecisionError, reference
from hyperbolic.poisson import (
    ball_to_halfspace_boundary,
    log_poisson,
    log_poisson_ball,
    log_poisson_halfspace,
    log_poisson_halfspace_mcf,
    log_poisson_polar,
    log_poisson_reference,
)

from .poisson_helpers import _Opaque, aligned_point, assert_close_h, halfspace_boundary_to_ball, ref_h, unit

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


# An exactly unit boundary direction of H^4 whose half-space image (1, 1, 1) is exact too.
EXACT_OMEGA = torch.full((1, 4), 0.5, dtype=F64)
EXACT_OMEGA_MP = [mpf(1) / 2] * 4


@pytest.fixture(autouse=True)
def _precision():
    with mp.workprec(300):
        yield


# Float Lorentz points are accurate near ω only to radius about 18 (notes §6.1): no off-axis cases beyond it.
NATIVE_CASES = [
    (model, radius, sideways)
    for model in (PoincareBall, Lorentz, HalfSpace)
    for radius in (0.5, 5, 18, 30)
    for sideways in (0.0, 1e-3, 0.3, 3.0)
    if not (model is Lorentz and radius > 18 and sideways > 0)
]


@pytest.mark.parametrize("model,radius,sideways", NATIVE_CASES)
def test_native_forms_match_mpmath(model, radius, sideways):
    """Including x aligned with ω (h ≈ r), where the Gram form cancels and the explicit pairs take over."""
    manifold = model(4)
    x = manifold.from_reference([aligned_point(radius, EXACT_OMEGA_MP, sideways)])
    exact = manifold.to_reference(x)[0]
    assert_close_h(log_poisson(manifold, x, EXACT_OMEGA), [ref_h(exact, EXACT_OMEGA_MP)])


@pytest.mark.parametrize("radius", [0.5, 5, 30])
@pytest.mark.parametrize("model", [PoincareBall, Lorentz, HalfSpace])
def test_native_forms_random_directions(model, radius):
    """Random points and boundary points (unit-normalised exactly in the oracle for the float ω)."""
    rng = random.Random(int(radius * 10))
    manifold = model(3)
    points = [reference.point_at(radius, reference.random_direction(3, rng)) for _ in range(4)]
    x = manifold.from_reference(points)
    omega = torch.tensor([[float(c) for c in reference.random_direction(3, rng)] for _ in range(5)], dtype=F64)
    h = log_poisson(manifold, x, omega)
    exact = manifold.to_reference(x)
    if model is HalfSpace:
        # The half-space path uses the float image of ω; the oracle takes that exact boundary point.
        boundary, _ = ball_to_halfspace_boundary(omega)
        directions = [halfspace_boundary_to_ball(row) for row in boundary.tolist()]
    else:
        directions = [unit(row) for row in omega.tolist()]
    for i, p in enumerate(exact):
        assert_close_h(h[i], [ref_h(p, w) for w in directions])


@pytest.mark.parametrize("radius", [0.5, 5, 30, 300])
def test_polar_form(radius):
    """h from (distance, unit direction): exact at every radius, h = s at ω = u and h = -s at ω = -u.
    Directions and boundary points are exactly unit floats (a rounded unit vector moves the point by
    eps e^r, which no formula can undo)."""
    s = mpf(radius)
    e1 = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=F64)
    tilted = torch.tensor([[0.5, -0.5, 0.5, -0.5]], dtype=F64)
    omegas = torch.cat([EXACT_OMEGA, -EXACT_OMEGA, e1, -e1, tilted])
    for u in (EXACT_OMEGA, e1):
        x = reference.point_at(s, [mpf(c) for c in u[0].tolist()])
        h = log_poisson_polar(torch.tensor([radius], dtype=F64), u, omegas)
        assert_close_h(h, [ref_h(x, [mpf(c) for c in w]) for w in omegas.tolist()])
    h = log_poisson_polar(torch.tensor([radius], dtype=F64), EXACT_OMEGA, EXACT_OMEGA)
    assert h.item() == radius
    assert log_poisson_polar(torch.tensor([radius], dtype=F64), EXACT_OMEGA, -EXACT_OMEGA).item() == -radius


def test_halfspace_special_boundary_points():
    """ω = e_n maps to ∞ (h = log y); ω = -e_n maps to 0."""
    omega = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], dtype=F64)
    boundary, at_infinity = ball_to_halfspace_boundary(omega)
    assert at_infinity.tolist() == [True, False]
    assert boundary[1].tolist() == [0.0, 0.0]
    x = torch.tensor([[0.3, -0.2, 0.05], [1e3, 2.0, 1e-200]], dtype=F64)
    h = log_poisson(HalfSpace(3), x, omega)
    assert torch.equal(h[:, 0], torch.log(x[:, -1]))
    for row, point in enumerate(HalfSpace(3).to_reference(x)):
        assert_close_h(h[row], [ref_h(point, [0, 0, 1]), ref_h(point, [0, 0, -1])])


# --------------------------------------------------------------------------- MCF half-space
def test_mcf_single_component_equals_halfspace():
    x = HalfSpace(3).random(6, std=2.0, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    omega, inf = ball_to_halfspace_boundary(torch.nn.functional.normalize(torch.randn(5, 3, dtype=F64, generator=g), dim=-1))
    assert torch.equal(log_poisson_halfspace_mcf(x, omega, 1, inf), log_poisson_halfspace(x, omega, inf))


def test_mcf_storage_layout_is_checked():
    with pytest.raises(ValueError, match="components"):
        log_poisson_halfspace_mcf(torch.ones(2, 6, dtype=F64), torch.zeros(3, 2, dtype=F64), 2)


# --------------------------------------------------------------------------- the exact bridge (tiling route)
def test_reference_route_refuses_heights_below_float64():
    far = reference.from_halfspace([mpf(0), mpf(0)], mpf("1e-400"))

    class Far(_Opaque):
        def to_reference(self, x):
            return [far]

    omega, inf = ball_to_halfspace_boundary(torch.tensor([[1.0, 0.0, 0.0]], dtype=F64))
    with pytest.raises(PrecisionError, match="below the float64 range"):
        log_poisson_reference(Far(3), torch.tensor([[0.0, 0.0, 1.0]], dtype=F64), omega, inf)


# --------------------------------------------------------------------------- geometry of h
def hyperbolic_laplacian_ball(f, x):
    """Δ_H f = ((1-|x|²)²/4) Δ_E f + ((n-2)(1-|x|²)/2) <x, ∇f> by autograd, at one point x (n,)."""
    x = x.clone().requires_grad_(True)
    value = f(x)
    (grad,) = torch.autograd.grad(value, x, create_graph=True)
    trace = sum(torch.autograd.grad(grad[i], x, retain_graph=True)[0][i] for i in range(x.shape[0]))
    gap = 1 - x.detach().square().sum()
    n = x.shape[0]
    return (gap**2 / 4 * trace + (n - 2) * gap / 2 * (x.detach() * grad.detach()).sum()).item(), value.item()


@pytest.mark.parametrize("n", [2, 3, 5])
def test_laplacian_eigenfunctions(n):
    """Δh = -(n-1) and Δ e^{ρh}cos(λh+b) = -(λ²+ρ²) e^{ρh}cos(λh+b)."""
    g = torch.Generator().manual_seed(n)
    omega = torch.nn.functional.normalize(torch.randn(1, n, dtype=F64, generator=g), dim=-1)
    rho, lam, b = (n - 1) / 2, 0.7, 0.4
    for _ in range(3):
        x = 0.8 * torch.nn.functional.normalize(torch.randn(n, dtype=F64, generator=g), dim=0) * torch.rand(1, dtype=F64, generator=g)

        def h(p):
            return log_poisson_ball(p.unsqueeze(0), omega, analytic_gradient=False)[0, 0]

        lap_h, _ = hyperbolic_laplacian_ball(h, x)
        assert lap_h == pytest.approx(-(n - 1), abs=1e-9)
        lap_f, f = hyperbolic_laplacian_ball(lambda p: torch.exp(rho * h(p)) * torch.cos(lam * h(p) + b), x)
        assert lap_f == pytest.approx(-(lam**2 + rho**2) * f, abs=1e-9 * max(1, abs(f)))


def test_busemann_properties():
    """h(0) = 0, |h(x)| <= d(0, x), and the Busemann cocycle h_ω(gx) = h_{g⁻¹ω}(x) + h_ω(g0)."""
    ball = PoincareBall(3)
    g = torch.Generator().manual_seed(5)
    omega = torch.nn.functional.normalize(torch.randn(20, 3, dtype=F64, generator=g), dim=-1)
    # zero up to the rounding of ‖ω‖ = 1 in floats
    assert log_poisson_ball(torch.zeros(1, 3, dtype=F64), omega).abs().max().item() <= 1e-15
    x = ball.random(30, std=1.5, generator=g)
    d = ball.dist(ball.origin(dtype=F64), x).unsqueeze(-1)
    assert bool((log_poisson_ball(x, omega).abs() <= d + 1e-12).all())
    # An isometry in mpmath: boost along axis 1 by 0.8 after a rotation.
    G = [[mpf(0)] * 4 for _ in range(4)]
    boost, rot = reference.boost(3, 1, mpf("0.8")), reference.rotation(3, 2, 3, mpf("0.6"))
    for i in range(4):
        for j in range(4):
            G[i][j] = mpmath.fsum(boost[i][k] * rot[k][j] for k in range(4))
    # g⁻¹ of a Lorentz matrix is J Gᵀ J.
    J = [1, -1, -1, -1]
    Ginv = [[G[j][i] * J[i] * J[j] for j in range(4)] for i in range(4)]
    xs = [reference.from_poincare(row) for row in x[:5].tolist()]
    gx = torch.tensor([[float(c) for c in reference.to_poincare(reference.apply(G, p))] for p in xs], dtype=F64)
    g0 = torch.tensor([[float(c) for c in reference.to_poincare(reference.apply(G, reference.origin(3)))]], dtype=F64)
    w = omega[0].tolist()
    ideal = reference.apply(Ginv, (mpf(1), *[mpf(c) for c in w]))
    w_back = torch.tensor([[float(c / ideal[0]) for c in ideal[1:]]], dtype=F64)
    lhs = log_poisson_ball(gx, omega[:1])
    rhs = log_poisson_ball(x[:5], w_back) + log_poisson_ball(g0, omega[:1])
    torch.testing.assert_close(lhs, rhs, rtol=1e-11, atol=1e-11)


# --------------------------------------------------------------------------- gradients
def test_gradcheck_mcf_components():
    x = HalfSpace(3).random(3, std=1.0, generator=torch.Generator().manual_seed(3))
    storage = torch.cat([x[:, :2], 1e-17 * torch.ones(3, 2, dtype=F64), x[:, 2:]], dim=-1).requires_grad_(True)
    g = torch.Generator().manual_seed(4)
    omega, _ = ball_to_halfspace_boundary(torch.nn.functional.normalize(torch.randn(4, 3, dtype=F64, generator=g), dim=-1))
    omega = torch.cat([omega, x[:1, :2].detach() + 1e-3])
    assert torch.autograd.gradcheck(lambda s: log_poisson_halfspace_mcf(s, omega, 2), (storage,))
