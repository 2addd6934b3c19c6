"""Manifold ODEs in exp-map charts: closed-form flows, isometries, on-manifold results, round trips,
the dynamics wrapper's gradients, divergence estimators, adjoint, bad input."""

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

pytest.importorskip("torchdiffeq")

from hyperbolic import Lorentz, OffManifoldError, PoincareBall  # noqa: E402
from hyperbolic.nn.flows import (  # noqa: E402
    ChartDomainError,
    ChartDynamics,
    FieldMLP,
    ManifoldCNF,
    ManifoldODE,
    Sphere,
    WrappedNormal,
)
from hyperbolic.nn.flows.functional import HyperbolicChart  # noqa: E402
from hyperbolic.nn.flows.quadrature import hyperbolic_grid  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


A = torch.tensor([[0.4, 0.5], [-0.2, 0.3]], dtype=torch.float64)


class LinearField(nn.Module):
    """g(y) = A y in chart coordinates: exact flow y(t) = e^{tA} y(0), divergence tr A."""

    def __init__(self, matrix):
        super().__init__()
        self.matrix = nn.Parameter(matrix.clone())

    def forward(self, t, y):
        return y @ self.matrix.T


def _closed_form_log_prob(manifold, x, trace_sign=1.0, swap=False):
    chart = HyperbolicChart(manifold)
    base = WrappedNormal(manifold, manifold.origin(), 1.0)
    y0 = chart.to_chart(x)
    y1 = y0 @ torch.linalg.matrix_exp(A).T
    jump = chart.log_det(y1) - chart.log_det(y0)
    return base.log_prob(chart.from_chart(y1)) + trace_sign * torch.trace(A) + (-jump if swap else jump)


def _quadrature(manifold, log_prob, points=321, extent=12.0):
    chart = HyperbolicChart(manifold)
    y, area = hyperbolic_grid(points, extent)
    return float(torch.exp(torch.logsumexp(log_prob(chart.from_chart(y)) + chart.log_det(y), 0)) * area)


def test_linear_field_density_formula_normalises_and_wrong_signs_do_not():
    """Notes §2: the formula log pi(z) + tr A + J(y1) - J(y0) integrates to 1, independent of any solver."""
    manifold = Lorentz(2)
    assert abs(_quadrature(manifold, lambda x: _closed_form_log_prob(manifold, x)) - 1) < 1e-6
    flipped = _quadrature(manifold, lambda x: _closed_form_log_prob(manifold, x, trace_sign=-1.0))
    swapped = _quadrature(manifold, lambda x: _closed_form_log_prob(manifold, x, swap=True))
    assert abs(flipped - 1) > 0.3 and abs(swapped - 1) > 0.1


@pytest.mark.parametrize("model", [Lorentz, PoincareBall])
@pytest.mark.parametrize("adjoint", [False, True])
def test_linear_field_solver_matches_closed_form(model, adjoint):
    manifold = model(2)
    ode = ManifoldODE(manifold, LinearField(A), atol=1e-10, rtol=1e-10, adjoint=adjoint)
    cnf = ManifoldCNF(ode)
    x = manifold.random(30, std=1.5, generator=torch.Generator().manual_seed(0))
    z, delta = cnf(x)
    chart = HyperbolicChart(manifold)
    y1 = chart.to_chart(x) @ torch.linalg.matrix_exp(A).T
    torch.testing.assert_close(chart.to_chart(z), y1, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(cnf.log_prob(x), _closed_form_log_prob(manifold, x), rtol=1e-8, atol=1e-8)


class LorentzBoost(nn.Module):
    """Killing field of the boost along x1 in Lorentz coordinates: an isometry flow."""

    def forward(self, t, z):
        return torch.stack([z[..., 1], z[..., 0], torch.zeros_like(z[..., 0])], dim=-1)


class PoincareBoost(nn.Module):
    """The same Killing field in Poincaré-ball coordinates: dp/dt = (1 + |p|^2)/2 e_1 - p_1 p."""

    def forward(self, t, p):
        e1 = torch.zeros_like(p)
        e1[..., 0] = 1
        return (1 + p.square().sum(-1, keepdim=True)) / 2 * e1 - p[..., :1] * p


class Rotation(nn.Module):
    """Killing field w x z on S^2: rotation about w at angular speed |w|."""

    def __init__(self, w):
        super().__init__()
        self.register_buffer("w", w)

    def forward(self, t, z):
        return torch.linalg.cross(self.w.expand_as(z), z)


@pytest.mark.parametrize("model, field", [(Lorentz, LorentzBoost), (PoincareBall, PoincareBoost)])
def test_hyperbolic_isometry_flow_keeps_the_density(model, field):
    """A boost moves points away from the chart centre (J changes) but preserves volume: Delta = 0."""
    manifold = model(2)
    ode = ManifoldODE(manifold, field(), field_on="manifold", atol=1e-9, rtol=1e-9)
    x = manifold.random(4, generator=torch.Generator().manual_seed(1))
    z, delta = ode.integrate(x, divergence="exact")
    c, s = math.cosh(1.0), math.sinh(1.0)
    boost = torch.tensor([[c, s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(manifold.to_lorentz(z), manifold.to_lorentz(x) @ boost.T, rtol=1e-6, atol=1e-6)
    assert delta.abs().max() < 1e-6


@pytest.mark.parametrize("switch_radius", [None, 0.8])
def test_sphere_rotation_flow_keeps_the_density(switch_radius):
    sphere = Sphere(2)
    w = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    ode = ManifoldODE(sphere, Rotation(w), segments=8, switch_radius=switch_radius, step_size=1 / 32)
    x = sphere.random(16, generator=torch.Generator().manual_seed(2))
    z, delta = ode.integrate(x, divergence="exact")
    k = w / w.norm()
    K = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=torch.float64)
    R = torch.eye(3, dtype=torch.float64) + math.sin(w.norm()) * K + (1 - math.cos(w.norm())) * K @ K
    # rk4 with h = 1/32 at angular speed 2.3: local error ~ (h w)^5 / 120 per step.
    torch.testing.assert_close(z, x @ R.T, rtol=0, atol=1e-6)
    assert delta.abs().max() < 1e-6


class BoundedHyperbolicField(nn.Module):
    """A manifold field on H^n with bounded Riemannian speed (so the flow cannot blow up in finite time).

    Lorentz: an MLP gives the spatial part f_s, and f_0 = <z_s, f_s>/z_0 makes it tangent, with speed
    sqrt(|f_s|^2 - f_0^2) <= |f_s|. Poincaré: the MLP output times (1 - |p|^2/R^2)/2, speed |MLP|.
    """

    def __init__(self, manifold):
        super().__init__()
        self.manifold = manifold
        self.mlp = FieldMLP(manifold.storage_dim, manifold.dim, hidden=16)

    def forward(self, t, z):
        out = self.mlp(t, z)
        if isinstance(self.manifold, Lorentz):
            f0 = (z[..., 1:] * out).sum(-1, keepdim=True) / z[..., :1]
            return torch.cat([f0, out], dim=-1)
        R2 = 1 / -self.manifold.curvature.to(z)
        return out * (1 - z.square().sum(-1, keepdim=True) / R2) / 2


def _random_ode(manifold, field_on=None, **kwargs):
    torch.manual_seed(3)
    if isinstance(manifold, Sphere):
        field = FieldMLP(manifold.storage_dim, hidden=16)
        last = field.layers[-1]
    elif field_on == "manifold":
        field = BoundedHyperbolicField(manifold)
        last = field.mlp.layers[-1]
    else:
        field = FieldMLP(manifold.dim, hidden=16)
        last = field.layers[-1]
    ode = ManifoldODE(manifold, field.double(), field_on=field_on, **kwargs)
    with torch.no_grad():  # after construction, which re-initialises a field with reset_parameters
        last.weight.mul_(3.0)
    return ode


@pytest.mark.parametrize(
    "manifold, field_on",
    [
        (Lorentz(2), "chart"),
        (Lorentz(3), "manifold"),
        (Lorentz(5, curvature=-2.0), "chart"),
        (PoincareBall(3), "manifold"),
        (Sphere(2), None),
        (Sphere(5), None),
    ],
)
def test_points_stay_on_the_manifold(manifold, field_on):
    ode = _random_ode(manifold, field_on, atol=1e-8, rtol=1e-8)
    x = manifold.random(64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        z = ode(x)
    if isinstance(manifold, Sphere):
        defect = (z.square().sum(-1) - 1).abs()
    elif isinstance(manifold, Lorentz):
        R2 = 1 / -float(manifold.curvature)
        defect = (-(z[:, 0] ** 2) + z[:, 1:].square().sum(-1) + R2).abs() / R2
    else:
        defect = (z.square().sum(-1) >= 1).to(torch.float64)
    assert defect.max() < 1e-10
    manifold.assert_points(z)


@pytest.mark.parametrize(
    "manifold, kwargs",
    [
        (Lorentz(2), {}),
        (PoincareBall(2), {"field_on": "manifold"}),
        (Sphere(2), {}),
        (Sphere(3), {"switch_radius": 1.0, "segments": 8}),
    ],
)
def test_inverse_undoes_forward(manifold, kwargs):
    ode = _random_ode(
        manifold, atol=1e-10, rtol=1e-10, step_size=1 / 32 if isinstance(manifold, Sphere) else None, **kwargs
    )
    cnf = ManifoldCNF(ode)
    x = manifold.random(16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        z, delta = cnf(x)
        back, delta_back = cnf.inverse(z, divergence="exact")
    torch.testing.assert_close(back, x, rtol=0, atol=1e-6)
    # Delta from data to latent and from latent to data are negatives of each other.
    torch.testing.assert_close(delta_back, -delta, rtol=0, atol=1e-5)


def test_sphere_dynamic_switching_agrees_with_the_schedule():
    sphere = Sphere(2)
    x = sphere.random(32, generator=torch.Generator().manual_seed(6))
    results = []
    for kwargs in ({"segments": 4}, {"segments": 16, "switch_radius": 0.7}):
        ode = _random_ode(sphere, step_size=1 / 32, **kwargs)
        with torch.no_grad():
            results.append(ode.integrate(x, divergence="exact"))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=1e-6)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=0, atol=1e-5)


def test_sphere_chart_leaving_its_domain_is_an_error():
    sphere = Sphere(2)
    ode = ManifoldODE(sphere, Rotation(torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64)), segments=1)
    with pytest.raises(ChartDomainError, match="more segments"):
        ode(torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))


def _gradcheck_dynamics(ode, state, divergence, noise=None):
    dynamics = ChartDynamics(ode, divergence, noise)
    name = next(n for n, _ in dynamics.named_parameters() if n.endswith("layers.0.bias"))
    weight = dict(dynamics.named_parameters())[name].detach().clone().requires_grad_(True)
    t = torch.tensor(0.3, dtype=torch.float64)

    def fn(weight, *state):
        return functional_call(dynamics, {name: weight}, (t, state))

    inputs = (weight, *[s.detach().clone().requires_grad_(True) for s in state])
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("divergence", [None, "exact", "hutchinson"])
def test_dynamics_gradcheck_hyperbolic_chart_field(divergence):
    ode = _random_ode(Lorentz(2))
    y = torch.randn(4, 2, dtype=torch.float64)
    state = (y,) if divergence is None else (y, torch.zeros(4, dtype=torch.float64))
    noise = torch.randn(4, 2, dtype=torch.float64) if divergence == "hutchinson" else None
    _gradcheck_dynamics(ode, state, divergence, noise)


@pytest.mark.parametrize("model", [Lorentz, PoincareBall])
def test_dynamics_gradcheck_hyperbolic_manifold_field(model):
    ode = _random_ode(model(2, curvature=-0.7), "manifold")
    y = torch.randn(3, 2, dtype=torch.float64)
    _gradcheck_dynamics(ode, (y, torch.zeros(3, dtype=torch.float64)), "exact")


@pytest.mark.parametrize("divergence", [None, "exact", "hutchinson"])
def test_dynamics_gradcheck_sphere(divergence):
    sphere = Sphere(2)
    ode = _random_ode(sphere)
    p = sphere.random(4, generator=torch.Generator().manual_seed(7))
    y = 0.5 * torch.randn(4, 2, dtype=torch.float64)
    y[0] = 0  # the chart centre, where every segment starts
    state = (y, p) if divergence is None else (y, torch.zeros(4, dtype=torch.float64), p)
    noise = torch.randn(4, 2, dtype=torch.float64) if divergence == "hutchinson" else None
    _gradcheck_dynamics(ode, state, divergence, noise)


@pytest.mark.parametrize("manifold", [Lorentz(3), Sphere(3)])
def test_hutchinson_estimator_averages_to_the_exact_trace(manifold):
    ode = _random_ode(manifold)
    n, probes = manifold.dim, 20000
    y = 0.4 * torch.randn(1, n, dtype=torch.float64).expand(probes, n)
    state = [y, torch.zeros(probes, dtype=torch.float64)]
    if isinstance(manifold, Sphere):
        state.append(manifold.random(1, generator=torch.Generator().manual_seed(8)).expand(probes, n + 1))
    t = torch.tensor(0.5, dtype=torch.float64)
    with torch.no_grad():
        exact = ChartDynamics(ode, "exact")(t, tuple(state))[1][0]
        noise = torch.randint(0, 2, (probes, n), generator=torch.Generator().manual_seed(9)).double() * 2 - 1
        estimates = ChartDynamics(ode, "hutchinson", noise)(t, tuple(state))[1]
    assert abs(float(estimates.mean() - exact)) < 5 * float(estimates.std()) / math.sqrt(probes) + 1e-12


@pytest.mark.parametrize("manifold", [Lorentz(2), Sphere(2)])
def test_adjoint_gradients_match_backpropagation(manifold):
    x = manifold.random(8, generator=torch.Generator().manual_seed(10))
    grads = []
    step = 1 / 32 if isinstance(manifold, Sphere) else None  # fixed steps: the adjoint differs by O(step^4)
    for adjoint in (False, True):
        ode = _random_ode(manifold, atol=1e-10, rtol=1e-10, adjoint=adjoint, step_size=step)
        loss = -ManifoldCNF(ode).log_prob(x).mean()
        grads.append(torch.autograd.grad(loss, list(ode.parameters())))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)


def test_float32_follows_the_input():
    manifold = Lorentz(2)
    ode = ManifoldODE(manifold, FieldMLP(2))
    x = manifold.random(8).float()
    with torch.no_grad():
        z = ode(x)
    assert z.dtype == torch.float32
    manifold.assert_points(z)
    sphere_ode = ManifoldODE(Sphere(2), FieldMLP(3))
    assert sphere_ode(Sphere(2).random(8).float()).dtype == torch.float32


def test_bad_input_is_refused():
    lorentz, sphere = Lorentz(2), Sphere(2)
    ode = ManifoldODE(lorentz, FieldMLP(2).double())
    with pytest.raises(OffManifoldError, match="not a point"):
        ode(torch.tensor([[1.0, 0.5, 0.5]], dtype=torch.float64))
    with pytest.raises(OffManifoldError, match="last axis"):
        ode(torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="batch"):
        ode(lorentz.origin())
    with pytest.raises(ValueError, match="non-finite"):
        ode(torch.tensor([[math.nan, 0.0, 0.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="sphere"):
        ManifoldODE(sphere, FieldMLP(2), field_on="chart")
    with pytest.raises(ValueError, match="global chart"):
        ManifoldODE(lorentz, FieldMLP(2), segments=4)
    with pytest.raises(ValueError, match="switch_radius"):
        ManifoldODE(sphere, FieldMLP(3), switch_radius=4.0)
    with pytest.raises(TypeError, match="manifold"):
        ManifoldODE(object(), FieldMLP(3))
    with pytest.raises(ValueError, match="divergence"):
        ode.integrate(lorentz.origin(2), divergence="approximate")
    with pytest.raises(ValueError, match="noise"):
        ode.integrate(lorentz.origin(2), divergence="hutchinson")


def test_reprs_are_informative():
    ode = ManifoldODE(Sphere(2), FieldMLP(3), switch_radius=1.0)
    text = repr(ManifoldCNF(ode))
    for piece in (
        "ManifoldCNF",
        "ManifoldODE",
        "sphere(dim=2)",
        "rk4",
        "switch_radius=1.0",
        "FieldMLP",
        "VonMisesFisher",
    ):
        assert piece in text
    assert "dopri5" in repr(ManifoldODE(Lorentz(2), FieldMLP(2)))


def test_reset_parameters_reaches_a_field_without_its_own():
    """A field without ``reset_parameters`` (``nn.Sequential``) has its layers re-initialised, as PyG's
    ``reset`` does; the same seed gives the same parameters."""
    field = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    weight = field[0].weight.clone()
    ode = ManifoldODE(Lorentz(2), field)
    assert torch.equal(field[0].weight, weight)  # the construction leaves such a field as given
    torch.manual_seed(11)
    ode.reset_parameters()
    reference = {k: v.clone() for k, v in ode.state_dict().items()}
    with torch.no_grad():
        for p in ode.parameters():
            p.add_(1.0)
    torch.manual_seed(11)
    ode.reset_parameters()
    assert all(torch.equal(v, reference[k]) for k, v in ode.state_dict().items())
    assert not torch.equal(field[0].weight, weight)
