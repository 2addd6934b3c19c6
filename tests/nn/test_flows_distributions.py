"""Base distributions: wrapped normal on H^n and S^n, von Mises-Fisher; log-densities against mpmath and
numerical integration, samplers against their own densities."""

import math

import mpmath
import pytest
import torch

from hyperbolic import Lorentz, PoincareBall, reference
from hyperbolic.nn.flows import Sphere, VonMisesFisher, WrappedNormal
from hyperbolic.nn.flows.distributions import log_bessel_iv
from hyperbolic.nn.flows.quadrature import integrate_hyperbolic, integrate_sphere

pytestmark = pytest.mark.usefixtures("one_thread")


def _wn_reference_log_prob(manifold, loc, scale, x):
    """The wrapped-normal log-density at 50 digits from the exact Lorentz coordinates (curvature -1 units)."""
    sqrt_c = math.sqrt(-float(manifold.curvature))
    with mpmath.workdps(50):
        mu = manifold.to_reference(loc)[0]
        points = manifold.to_reference(x)
        n = manifold.dim
        o = reference.origin(n)
        out = []
        for point in points:
            u = reference.logmap(mu, point)
            v = reference.transp(mu, o, u)[1:]
            d = reference.dist(mu, point)
            value = mpmath.mpf(0)
            for vi, si in zip(v, scale.tolist()):
                vi = vi / sqrt_c  # Riemannian units at curvature -c
                value += -((vi / si) ** 2) / 2 - mpmath.log(si) - mpmath.log(2 * mpmath.pi) / 2
            if d != 0:
                value -= (n - 1) * mpmath.log(mpmath.sinh(d) / d)
            out.append(float(value))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("model", [Lorentz, PoincareBall])
@pytest.mark.parametrize("dim", [2, 4])
@pytest.mark.parametrize("curvature", [-1.0, -0.6])
def test_wrapped_normal_log_prob_matches_mpmath(model, dim, curvature):
    manifold = model(dim, curvature=curvature)
    g = torch.Generator().manual_seed(dim)
    loc = manifold.random(1, std=1.2, generator=g)
    scale = 0.4 + torch.rand(dim, dtype=torch.float64, generator=g)
    wn = WrappedNormal(manifold, loc[0], scale, validate_args=True)
    x = torch.cat([manifold.random(20, std=2.0, generator=g), loc])  # includes x = loc
    torch.testing.assert_close(
        wn.log_prob(x), _wn_reference_log_prob(manifold, loc, scale, x), rtol=1e-11, atol=1e-11
    )


@pytest.mark.parametrize("model", [Lorentz, PoincareBall])
def test_wrapped_normal_integrates_to_one_on_h2(model):
    manifold = model(2)
    loc = manifold.from_lorentz(
        torch.tensor([math.sqrt(1 + 0.8**2 + 0.5**2), 0.8, -0.5], dtype=torch.float64)
    )
    wn = WrappedNormal(manifold, loc, torch.tensor([0.5, 1.1], dtype=torch.float64))
    total = integrate_hyperbolic(wn.log_prob, manifold, points=241, extent=12.0)
    assert abs(total - 1) < 1e-6


@pytest.mark.parametrize("space", ["hyperbolic", "sphere"])
def test_wrapped_normal_samples_have_the_right_tangent_law(space):
    manifold = Lorentz(3) if space == "hyperbolic" else Sphere(3)
    g = torch.Generator().manual_seed(7)
    loc = manifold.random(generator=g) if space == "hyperbolic" else Sphere(3).random(generator=g)
    scale = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64) * (1.0 if space == "hyperbolic" else 0.3)
    wn = WrappedNormal(manifold, loc, scale, validate_args=True)
    v = torch.randn(20000, 3, dtype=torch.float64, generator=g) * scale
    x = wn.from_tangent(v)
    manifold.assert_points(x)
    torch.testing.assert_close(wn.to_tangent(x), v, rtol=1e-9, atol=1e-11)
    samples = wn.sample((20000,), generator=g)
    tangent = wn.to_tangent(samples)
    assert (tangent.mean(0).abs() < 5 * scale / math.sqrt(20000)).all()
    torch.testing.assert_close(tangent.std(0), scale, rtol=0.05, atol=0)


def test_wrapped_normal_on_the_sphere_integrates_to_one():
    sphere = Sphere(2)
    loc = torch.tensor([0.6, -0.48, 0.64], dtype=torch.float64)
    wn = WrappedNormal(sphere, loc, torch.tensor([0.25, 0.3], dtype=torch.float64))
    assert abs(integrate_sphere(wn.log_prob, 800, 400) - 1) < 1e-4


def test_wrapped_normal_is_reparameterised():
    manifold = Lorentz(2)
    loc = manifold.random(1, generator=torch.Generator().manual_seed(0))[0]
    scale = torch.tensor([0.7, 1.3], dtype=torch.float64, requires_grad=True)

    def samples(scale):  # the same standard-normal draws at every call: a smooth function of the scale
        torch.manual_seed(0)
        return WrappedNormal(manifold, loc, scale).rsample((10,))

    assert torch.autograd.gradcheck(samples, (scale,))
    samples(scale).sum().backward()
    assert bool((scale.grad != 0).all())


def _vmf_log_normalizer(p, kappa):
    with mpmath.workdps(40):
        k = mpmath.mpf(kappa)
        nu = mpmath.mpf(p) / 2 - 1
        return float(
            nu * mpmath.log(k)
            - mpmath.mpf(p) / 2 * mpmath.log(2 * mpmath.pi)
            - mpmath.log(mpmath.besseli(nu, k))
        )


@pytest.mark.parametrize("p", [2, 3, 4, 7])
@pytest.mark.parametrize("kappa", [1e-3, 0.5, 1.0, 10.0, 300.0])
def test_vmf_log_normalizer_matches_mpmath(p, kappa):
    loc = torch.zeros(p, dtype=torch.float64)
    loc[0] = 1
    got = VonMisesFisher(loc, kappa).log_normalizer()
    assert abs(float(got) - _vmf_log_normalizer(p, kappa)) < 1e-12 * max(
        1.0, abs(_vmf_log_normalizer(p, kappa))
    )


@pytest.mark.parametrize("p", [2, 3, 5])
@pytest.mark.parametrize("kappa", [0.7, 6.0])
def test_vmf_integrates_to_one_by_mpmath_quadrature(p, kappa):
    """Integrate C_p(kappa) exp(kappa w) over S^{p-1} as |S^{p-2}| * int_{-1}^{1} (1 - w^2)^{(p-3)/2} ... dw."""
    loc = torch.zeros(p, dtype=torch.float64)
    loc[-1] = 1
    vmf = VonMisesFisher(loc, kappa)

    def density(w):
        x = torch.zeros(p, dtype=torch.float64)
        x[-1] = float(w)
        x[0] = math.sqrt(max(0.0, 1 - float(w) ** 2))
        return mpmath.e ** float(vmf.log_prob(x))

    with mpmath.workdps(20):
        sphere_area = 2 * mpmath.pi ** (mpmath.mpf(p - 1) / 2) / mpmath.gamma(mpmath.mpf(p - 1) / 2)
        total = sphere_area * mpmath.quad(
            lambda w: density(w) * (1 - w * w) ** (mpmath.mpf(p - 3) / 2), [-1, 1]
        )
    assert abs(float(total) - 1) < 1e-9


def test_vmf_on_s2_integrates_to_one_on_a_grid():
    loc = torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64)
    for kappa in (0.0, 1.0, 8.0):
        assert abs(integrate_sphere(VonMisesFisher(loc, kappa).log_prob, 400, 200) - 1) < 1e-3


@pytest.mark.parametrize("p", [3, 5])
@pytest.mark.parametrize("kappa", [0.5, 4.0])
def test_vmf_samples_have_the_right_mean_resultant_length(p, kappa):
    """E<mu, x> = I_{p/2}(kappa) / I_{p/2-1}(kappa) (mpmath); 20,000 samples, 5 standard errors."""
    torch.manual_seed(p)
    loc = torch.randn(p, dtype=torch.float64)
    loc = loc / loc.norm()
    x = VonMisesFisher(loc, kappa, validate_args=True).sample((20000,))
    Sphere(p - 1).assert_points(x)
    w = x @ loc
    with mpmath.workdps(30):
        truth = float(mpmath.besseli(mpmath.mpf(p) / 2, kappa) / mpmath.besseli(mpmath.mpf(p) / 2 - 1, kappa))
    assert abs(float(w.mean()) - truth) < 5 * float(w.std()) / math.sqrt(20000)


def test_log_bessel_gradcheck():
    kappa = torch.tensor([0.3, 2.0, 40.0], dtype=torch.float64, requires_grad=True)
    for order in (0.0, 0.5, 2.5):
        assert torch.autograd.gradcheck(lambda k, o=order: log_bessel_iv(o, k), (kappa,))
        assert torch.autograd.gradgradcheck(lambda k, o=order: log_bessel_iv(o, k), (kappa,))


def test_vmf_p3_log_prob_is_differentiable_in_kappa():
    kappa = torch.tensor([0.5, 3.0], dtype=torch.float64, requires_grad=True)
    loc = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    x = torch.tensor([0.6, 0.0, 0.8], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda k: VonMisesFisher(loc, k).log_prob(x), (kappa,))


def test_distributions_refuse_points_off_the_manifold():
    manifold = Lorentz(2)
    wn = WrappedNormal(manifold, manifold.origin(), 1.0, validate_args=True)
    with pytest.raises(ValueError, match="support"):
        wn.log_prob(torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="last axis"):
        WrappedNormal(manifold, torch.zeros(4, dtype=torch.float64), 1.0)
    with pytest.raises(ValueError, match="scale"):
        WrappedNormal(manifold, manifold.origin(), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError):
        WrappedNormal(manifold, manifold.origin(), -1.0, validate_args=True)
    with pytest.raises(ValueError, match="away from"):
        WrappedNormal(Sphere(2), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), 0.3)
    vmf = VonMisesFisher(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), 1.0, validate_args=True)
    with pytest.raises(ValueError, match="support"):
        vmf.log_prob(torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="concentration > 0"):
        VonMisesFisher(torch.tensor([1.0, 0.0], dtype=torch.float64), 0.0)


def test_distributions_follow_the_input_dtype():
    manifold = Lorentz(2)
    wn = WrappedNormal(manifold, manifold.origin(), 1.0)
    x32 = manifold.random(5).float()
    assert wn.log_prob(x32).dtype == torch.float32
    vmf = VonMisesFisher(Sphere(2).origin(), 2.0)
    assert vmf.log_prob(Sphere(2).random(4).float()).dtype == torch.float32
