"""The L-tiling model against the mpmath reference: representation, re-normalisation, distance, updates."""

import math
import random

import geoopt
import mpmath
import pytest
import torch

from hyperbolic import OffManifoldError, PrecisionError, reference, registry
from hyperbolic import precision as measurement
from tiling import LTiling, bigint, group


@pytest.fixture(scope="module")
def model():
    return LTiling(max_radius=60)


def _exact_distance(model, x, y):
    return [reference.dist(a, b) for a, b in zip(model.to_reference(x), model.to_reference(y))]


def test_storage_and_points(model):
    assert model.storage_dim == 3 + 9 * model.limbs
    assert model.limbs == bigint.limbs_for_bits(math.ceil(60 * math.log2(math.e) + 1.5))
    origin = model.origin(4)
    assert origin.shape == (4, model.storage_dim)
    assert model.group_elements(origin)[0] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    points = model.random(200, std=8.0, generator=torch.Generator().manual_seed(0))
    model.assert_points(points)
    assert not bool(model._off_manifold_rows(points, 1e-9, 1e-9).any())
    u, _ = model.split(points)
    assert bool((math.sqrt(3) * u[:, 1:].abs() <= u[:, :1] * (1 + 1e-12)).all())


def test_spec_round_trip(model):
    rebuilt = registry.manifold_from_spec(model.spec())
    assert isinstance(rebuilt, LTiling) and rebuilt.limbs == model.limbs
    assert "ltiling" in [entry.label for entry in registry.entries()]


def _push_out_of_domain(model, x, word):
    """The same represented point with T' = T g and u' = L g^{-1} R u (u' outside F)."""
    g = group.word_to_matrix(word)
    g_inv = group.inverse(g)
    u, T = model.split(x)
    T_new = bigint.matmul(T, bigint.from_ints([g] * x.shape[0]), limbs=model.limbs)
    scale = torch.tensor([math.sqrt(3), 1.0, 1.0], dtype=torch.float64)
    A = scale[:, None] * torch.tensor(g_inv, dtype=torch.float64) / scale[None, :]
    return model.pack((A @ u.T).T, T_new)


@pytest.mark.parametrize("radius_std", [1.0, 12.0])
def test_renormalisation_never_changes_the_represented_point(model, radius_std):
    torch.manual_seed(1)
    x = model.random(40, std=radius_std)
    word = [("a", 1), ("b", 2), ("a", 5), ("b", 1)]
    moved = _push_out_of_domain(model, x, word)
    assert bool(model._off_manifold_rows(moved, 1e-9, 1e-9).all())  # u' is outside F
    renormalised = model.renormalize(moved)
    model.assert_points(renormalised)
    with mpmath.mp.workprec(300):
        before = model.to_reference(moved)
        after = model.to_reference(renormalised)
        errors = [float(reference.dist(a, b)) for a, b in zip(before, after)]
    # Four steps back: the float part carries at most a few ulps times e^(distance moved ~ 5).
    assert max(errors) < 1e-13


@pytest.mark.parametrize("radius", [1, 10, 40, 100, 400, 1000])
def test_near_pairs_match_mpmath_to_1e_14_at_every_radius(radius):
    model = LTiling(max_radius=1100)
    pairs = measurement.make_pairs(radius, "near", n_pairs=6, seed=3)
    x = model.from_reference(pairs.first)
    y = model.from_reference(pairs.second)
    d = model.dist(x, y)
    errors = [abs(mpmath.mpf(v) - t) for v, t in zip(d.tolist(), pairs.truth)]
    assert max(errors) <= 1e-14


@pytest.mark.parametrize("radius", [5, 50, 1000])
def test_far_pairs_relative_error(radius):
    model = LTiling(max_radius=1100)
    pairs = measurement.make_pairs(radius, "far", n_pairs=6, seed=4)
    d = model.dist(model.from_reference(pairs.first), model.from_reference(pairs.second))
    assert all(abs(mpmath.mpf(v) - t) / t <= 2e-15 for v, t in zip(d.tolist(), pairs.truth))


def test_float32_is_accurate_at_any_radius():
    model = LTiling(max_radius=1100)
    pairs = measurement.make_pairs(500, "near", n_pairs=6, seed=5)
    d = model.dist(model.from_reference(pairs.first, torch.float32), model.from_reference(pairs.second, torch.float32))
    assert d.dtype == torch.float32
    assert max(abs(float(v) - float(t)) for v, t in zip(d.tolist(), pairs.truth)) < 1e-6


def test_reference_bridge_round_trip(model):
    rng = random.Random(2)
    with mpmath.mp.workprec(reference.working_precision(50)):
        points = [reference.point_at(r, reference.random_direction(2, rng)) for r in (0, 0.5, 3, 20, 50)]
        x = model.from_reference(points)
        back = model.to_reference(x)
        assert max(float(reference.dist(p, q)) for p, q in zip(points, back)) < 1e-15
    lorentz = model.to_lorentz(x[:3])
    assert torch.allclose(model.dist(model.from_lorentz(lorentz), x[:3]), torch.zeros(3, dtype=torch.float64),
                          atol=1e-12)


def test_exp_log_dist_consistency(model):
    torch.manual_seed(3)
    x = model.random(300, std=6.0)
    for length in (1e-8, 0.1, 1.0, 3.0):
        v = model.proju(x, torch.randn(300, model.storage_dim, dtype=torch.float64))
        v = v / model.norm(x, v, keepdim=True) * length
        y = model.expmap(x, v)
        model.assert_points(y)
        assert torch.allclose(model.dist(x, y), torch.full((300,), length, dtype=torch.float64),
                              rtol=1e-13, atol=1e-15)
        assert torch.allclose(model.logmap(x, y), v, atol=1e-13 * max(length, 1))


def test_small_distances_keep_relative_accuracy(model):
    x = model.random(50, std=10.0, generator=torch.Generator().manual_seed(4))
    v = model.proju(x, torch.randn(50, model.storage_dim, dtype=torch.float64))
    v = v / model.norm(x, v, keepdim=True) * 1e-9
    y = model.expmap(x, v)
    with mpmath.mp.workprec(200):
        truth = _exact_distance(model, x, y)
    d = model.dist(x, y)
    assert max(abs(float(a) - float(t)) / float(t) for a, t in zip(d.tolist(), truth)) < 1e-6


def test_transport_preserves_norm_and_tangency(model):
    torch.manual_seed(5)
    x = model.random(100, std=5.0)
    v = model.proju(x, torch.randn(100, model.storage_dim, dtype=torch.float64))
    y = model.expmap(x, 0.5 * v)
    w = model.proju(x, torch.randn(100, model.storage_dim, dtype=torch.float64))
    moved = model.transp(x, y, w)
    assert torch.allclose(model.norm(y, moved), model.norm(x, w), rtol=1e-10)
    assert torch.allclose(model.inner(y, y, moved), torch.zeros(100, dtype=torch.float64), atol=1e-10)
    assert bool((moved[:, 3:] == 0).all())


def test_gradients_flow_to_the_float_part_only(model):
    torch.manual_seed(6)
    x = model.random(20, std=15.0).requires_grad_()
    y = model.random(20, std=15.0)
    model.dist(x, y).sum().backward()
    assert bool((x.grad[:, 3:] == 0).all())
    assert bool(torch.isfinite(x.grad).all()) and bool((x.grad[:, :3] != 0).any())


def test_distance_gradcheck(model):
    torch.manual_seed(7)
    x = model.random(6, std=3.0)
    y = model.random(6, std=3.0)
    near = model.expmap(x, model.proju(x, 0.1 * torch.randn(6, model.storage_dim, dtype=torch.float64)))
    for other in (y, near):
        u = x[:, :3].clone().requires_grad_()
        v = other[:, :3].clone().requires_grad_()

        def distance(u, v, other=other):
            return model.dist(torch.cat([u, x[:, 3:]], -1), torch.cat([v, other[:, 3:]], -1))

        assert torch.autograd.gradcheck(distance, (u, v))


def test_riemannian_gradient_matches_the_formula(model):
    """d d / d u = R Q_hat R v / sqrt(d_c^2 - Q11^-2) (tiling.md §6) for far tiles."""
    x = model.random(5, std=8.0, generator=torch.Generator().manual_seed(8))
    y = model.random(5, std=8.0, generator=torch.Generator().manual_seed(9))
    u = x[:, :3].clone().requires_grad_()
    model.dist(torch.cat([u, x[:, 3:]], -1), y).sum().backward()
    _, Tx = model.split(x)
    _, Ty = model.split(y)
    log_q, q_hat, _, _ = model._form_matrix(Tx, Ty)
    r = torch.tensor([1 / math.sqrt(3), 1.0, 1.0], dtype=torch.float64)
    rv = r * y[:, :3]
    d_c = ((r * x[:, :3]).unsqueeze(-1) * q_hat * rv.unsqueeze(-2)).sum((-2, -1))
    expected = r * (q_hat * rv.unsqueeze(-2)).sum(-1) / torch.sqrt(d_c**2 - torch.exp(-2 * log_q)).unsqueeze(-1)
    assert torch.allclose(u.grad, expected, rtol=1e-10)


def test_riemannian_sgd_and_adam_train_it(model):
    torch.manual_seed(10)
    target = model.random(30, std=6.0)
    for optimiser_class, kwargs in ((geoopt.optim.RiemannianSGD, {"momentum": 0.5, "lr": 0.05}),
                                    (geoopt.optim.RiemannianAdam, {"lr": 0.5})):
        point = geoopt.ManifoldParameter(model.random(30, std=6.0), manifold=model)
        optimiser = optimiser_class([point], **kwargs)
        start = model.dist(point, target).mean().item()
        for _ in range(30):
            optimiser.zero_grad()
            model.dist(point, target).square().sum().backward()
            optimiser.step()
        model.assert_points(point.detach())
        assert model.dist(point, target).mean().item() < 0.5 * start


def test_capacity_overflow_is_raised():
    small = LTiling(max_radius=10)
    assert small.limbs == 1
    with pytest.raises(PrecisionError, match="beyond the .* ceiling"):
        small.from_reference(measurement.make_pairs(50, "near", n_pairs=1).first)
    x = small.random(5, std=2.0, generator=torch.Generator().manual_seed(0))
    v = small.proju(x, torch.randn(5, small.storage_dim, dtype=torch.float64))
    v = v / small.norm(x, v, keepdim=True) * 40
    with pytest.raises(PrecisionError, match=r"row \d+: the group element outgrew 1 limbs"):
        small.expmap(x, v)


def test_bad_input_raises_clear_errors(model):
    u = model.origin(1)[:, :3]
    rotation_of_F = [[[1, 0, 0], [0, 0, -1], [0, 1, 0]]]  # preserves M3 and F, but is not in G
    with pytest.raises(OffManifoldError, match=r"row \(0,\).*not an element of the L-tiling group"):
        model.from_parts(rotation_of_F, u)
    with pytest.raises(OffManifoldError, match="not an element"):
        model.from_parts([[[2, 1, 0], [0, 1, 0], [0, 0, 1]]], u)
    valid = model.from_parts([group.G_A], u)
    assert model.group_elements(valid)[0] == [list(r) for r in group.G_A]
    with pytest.raises(OffManifoldError, match="not on the hyperboloid"):
        model.from_parts([group.IDENTITY], torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64))
    broken = model.origin(3)
    broken[1, 3 + model.limbs] = 1  # T_01 = 1: no longer a group element
    with pytest.raises(OffManifoldError, match=r"row \(1,\)"):
        model.assert_points(broken)
    outside = model.origin(2)
    outside[0, 1:3] = torch.tensor([3.0, 0.0])
    outside[0, 0] = math.sqrt(10.0)
    with pytest.raises(OffManifoldError, match=r"row \(0,\)"):
        model.assert_points(outside)
    with pytest.raises(OffManifoldError, match="last axis"):
        model.dist(torch.zeros(2, 5, dtype=torch.float64), torch.zeros(2, 5, dtype=torch.float64))


def test_from_reference_names_the_row_off_the_hyperboloid():
    model = LTiling(max_radius=30)
    good = [mpmath.mpf(1), mpmath.mpf(0), mpmath.mpf(0)]
    bad = [mpmath.mpf(833753832.123561), mpmath.mpf(361588222.9516716), mpmath.mpf(751265205.9049292)]
    with pytest.raises(OffManifoldError, match="reference point 1: .*not on the hyperboloid"):
        model.from_reference([good, bad])


@pytest.mark.parametrize("t_syllables, v_syllables", [(16, 2), (32, 4), (16, 16), (48, 20)])
def test_absorbing_the_reduction_is_exact_in_every_path(t_syllables, v_syllables):
    # |T| < 2^48 and small V: one float64 product; |T| >= 2^48 or |V| >= 2^26: limb products (GEMM, multi-limb).
    model = LTiling(max_radius=100)
    rng = random.Random(t_syllables * 100 + v_syllables)

    def word(syllables):  # alternating generators: entries grow about 2 bits per syllable
        return group.word_to_matrix([("ab"[i % 2], rng.choice([1, 2, 4, 5])) for i in range(syllables)])

    Ts, Vs = [word(t_syllables) for _ in range(8)], [word(v_syllables) for _ in range(8)]
    V = torch.tensor(Vs, dtype=torch.float64)
    assert float(V.abs().max()) < 2**53
    expected = [[list(r) for r in group.matmul(a, b)] for a, b in zip(Ts, Vs)]
    for storage in (torch.float64, torch.float32):  # limbs as stored in float64 or float32 points
        T = bigint.from_ints(Ts, model.limbs).to(storage)
        product = model._absorb(T, V, torch.arange(8))
        assert bigint.to_ints(product.to(torch.int64)) == expected
