"""The binary half-space tiling against the mpmath reference."""

import math
import random

import geoopt
import mpmath
import pytest
import torch

from hyperbolic import OffManifoldError, PrecisionError, reference, registry
from hyperbolic import precision as measurement
from tiling import BinaryTiling, bigint


@pytest.mark.parametrize("dim", [2, 3])
def test_points_and_box(dim):
    model = BinaryTiling(dim, max_radius=40)
    assert model.storage_dim == dim + 1 + (dim - 1) * model.limbs
    x = model.random(200, std=8.0, generator=torch.Generator().manual_seed(0))
    model.assert_points(x)
    xh, xn, _, _ = model.split(x)
    assert bool(((xh >= 0) & (xh < 1)).all()) and bool(((xn >= 1) & (xn < 2)).all())
    assert isinstance(registry.manifold_from_spec(model.spec()), BinaryTiling)


@pytest.mark.parametrize("dim", [2, 3])
def test_renormalisation_keeps_the_point(dim):
    model = BinaryTiling(dim, max_radius=60)
    torch.manual_seed(1)
    x = model.random(30, std=10.0)
    # Move the floats out of the box by an exact similarity of the chart: p = 2^j (x + k) unchanged.
    xh, xn, j, k = model.split(x)
    shift = torch.randint(-3, 4, xh.shape, dtype=torch.int64)
    a = torch.randint(-4, 5, j.shape, dtype=torch.int64)
    k_new = bigint.sub(k, bigint.from_int64(shift, 1), limbs=model.limbs)  # x + shift, k - shift
    # scale by 2^a: x -> 2^a x, x_n -> 2^a x_n, j -> j - a needs k -> 2^a k (only for a >= 0 exactly)
    a = a.clamp_min(0)
    k_new = bigint.shift_left(k_new, a.unsqueeze(-1), model.limbs)
    scale = torch.exp2(a.to(torch.float64)).unsqueeze(-1)
    moved = model.pack((xh + shift) * scale, xn * scale, j - a, k_new)
    renormalised = model.renormalize(moved)
    model.assert_points(renormalised)
    with mpmath.mp.workprec(300):
        errors = [float(reference.dist(p, q))
                  for p, q in zip(model.to_reference(moved), model.to_reference(renormalised))]
    assert max(errors) < 1e-15


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("radius", [1, 40, 1000])
def test_near_and_far_pairs_match_mpmath(dim, radius):
    model = BinaryTiling(dim, max_radius=1100)
    for kind, bound in (("near", 1e-14), ("far", 2e-15)):
        pairs = measurement.make_pairs(radius, kind, n_pairs=4, dim=dim, seed=6)
        d = model.dist(model.from_reference(pairs.first), model.from_reference(pairs.second))
        errors = [abs(mpmath.mpf(v) - t) / (1 if kind == "near" else t) for v, t in zip(d.tolist(), pairs.truth)]
        assert max(errors) <= bound


def test_reference_round_trip():
    model = BinaryTiling(3, max_radius=60)
    rng = random.Random(3)
    with mpmath.mp.workprec(reference.working_precision(50)):
        points = [reference.point_at(r, reference.random_direction(3, rng)) for r in (0, 1, 10, 50)]
        back = model.to_reference(model.from_reference(points))
        assert max(float(reference.dist(p, q)) for p, q in zip(points, back)) < 1e-15


def test_exp_log_transport_and_gradients():
    model = BinaryTiling(3, max_radius=60)
    torch.manual_seed(4)
    x = model.random(200, std=6.0)
    for length in (1e-8, 0.5, 3.0):
        v = model.proju(x, torch.randn(200, model.storage_dim, dtype=torch.float64))
        v = v / model.norm(x, v, keepdim=True) * length
        y = model.expmap(x, v)
        model.assert_points(y)
        assert torch.allclose(model.dist(x, y), torch.full((200,), length, dtype=torch.float64),
                              rtol=1e-13, atol=1e-15)
        assert torch.allclose(model.logmap(x, y), v, atol=1e-13 * max(1, length))
    w = model.proju(x, torch.randn(200, model.storage_dim, dtype=torch.float64))
    y = model.expmap(x, 0.3 * v / 3)
    assert torch.allclose(model.norm(y, model.transp(x, y, w)), model.norm(x, w), rtol=1e-10)
    leaf = x.clone().requires_grad_()
    model.dist(leaf, y).sum().backward()
    assert bool((leaf.grad[:, model.dim:] == 0).all()) and bool(torch.isfinite(leaf.grad).all())


def test_distance_gradcheck():
    model = BinaryTiling(2, max_radius=30)
    torch.manual_seed(5)
    x, y = model.random(5, std=3.0), model.random(5, std=3.0)
    near = model.expmap(x, model.proju(x, 0.05 * torch.randn(5, model.storage_dim, dtype=torch.float64)))
    for other in (y, near):
        a = x[:, :2].clone().requires_grad_()
        b = other[:, :2].clone().requires_grad_()

        def distance(a, b, other=other):
            return model.dist(torch.cat([a, x[:, 2:]], -1), torch.cat([b, other[:, 2:]], -1))

        assert torch.autograd.gradcheck(distance, (a, b))


def test_optimiser_and_errors():
    model = BinaryTiling(2, max_radius=40)
    torch.manual_seed(6)
    target = model.random(20, std=5.0)
    point = geoopt.ManifoldParameter(model.random(20, std=5.0), manifold=model)
    optimiser = geoopt.optim.RiemannianSGD([point], lr=0.05, momentum=0.5)
    start = model.dist(point, target).mean().item()
    for _ in range(30):
        optimiser.zero_grad()
        model.dist(point, target).square().sum().backward()
        optimiser.step()
    assert model.dist(point, target).mean().item() < 0.5 * start
    small = BinaryTiling(2, max_radius=5)
    with pytest.raises(PrecisionError, match="beyond the .* ceiling"):
        small.from_reference(measurement.make_pairs(60, "near", n_pairs=1).first)
    bad = model.origin(2)
    bad[1, 0] = 1.5
    with pytest.raises(OffManifoldError, match=r"row \(1,\)"):
        model.assert_points(bad)
    with pytest.raises(ValueError, match="dimension >= 2"):
        BinaryTiling(1)
    assert math.isfinite(model.contract().max_radius)


def test_transport_too_far_for_the_chart_is_an_error_not_nan():
    """Transport runs in the float chart of its start point; across a few hundred units that chart overflows,
    which must raise, while nearby rows of the same batch still work."""
    model = BinaryTiling(3, max_radius=300)
    rng = random.Random(0)
    with mpmath.workprec(2000):
        near = reference.near_pair(40, 3.0, 3, rng)
        far = (reference.point_at(40, reference.random_direction(3, rng)),
               reference.point_at(260, reference.random_direction(3, rng)))
        x = model.from_reference([near[0], far[0]])
        y = model.from_reference([near[1], far[1]])
    v = model.proju(x, torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    assert torch.isfinite(model.transp(x[:1], y[:1], v[:1])).all()
    with pytest.raises(PrecisionError, match=r"transport of row \(1,\) over a distance of 2\d\d"):
        model.transp(x, y, v)
