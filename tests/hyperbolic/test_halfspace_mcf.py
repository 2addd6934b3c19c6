"""The MCF half-space beyond the conformance suite: accuracy where float64 fails, exact updates, bad input."""

import random

import mpmath
import pytest
import torch

import mcf
from hyperbolic import HalfSpace, HalfSpaceMCF, OffManifoldError, PrecisionError, io, reference
from hyperbolic.halfspace_mcf import exact_difference
from hyperbolic.precision import make_pairs, measure


@pytest.mark.parametrize("m,radius", [(2, 40.0), (3, 75.0), (4, 100.0)])
def test_near_pairs_accurate_to_1e12_far_beyond_float64(m, radius):
    pairs = make_pairs(radius, "near", n_pairs=10, seed=1)
    ours = measure("mcf", HalfSpaceMCF(2, components=m), torch.float64, pairs)
    plain = measure("float64", HalfSpace(2), torch.float64, pairs)
    assert ours.max_rel_err <= 1e-12
    assert plain.max_rel_err > 1e-2  # the float64 half-space is useless there


def test_three_components_are_usable_at_radius_100():
    pairs = make_pairs(100.0, "near", n_pairs=10, seed=2)
    row = measure("mcf3", HalfSpaceMCF(2, components=3), torch.float64, pairs)
    assert row.median_rel_err < 1e-6 and row.nonfinite == 0


@pytest.mark.parametrize("m,radius", [(2, 72.0), (3, 108.0), (4, 144.0)])
def test_distance_arithmetic_is_exact_to_36m_on_the_stored_points(m, radius):
    """Against the exact distance of the points as stored, dist itself loses nothing up to 36·m: the
    exact-point error above is the rounding of x into m components (precision.md §5), not the formula."""
    for kind in ("near", "far"):
        pairs = make_pairs(radius, kind, n_pairs=5, seed=3)
        row = measure("mcf", HalfSpaceMCF(2, components=m), torch.float64, pairs, against="stored")
        assert row.status == "ok" and row.nonfinite == 0
        assert row.max_rel_err <= 1e-15


def test_measuring_against_an_unknown_reference_is_refused():
    with pytest.raises(ValueError, match="against"):
        measure("mcf", HalfSpaceMCF(2, components=2), torch.float64, make_pairs(1.0, "near", 1), against="x")


def test_exact_difference_of_nearly_equal_expansions():
    """δ = Σa - Σb to one rounding even when it is 2^-150 times the operands."""
    rng = random.Random(0)
    with mpmath.mp.workprec(600):
        values = [mpmath.mpf(rng.uniform(-2, 2)) for _ in range(50)]
        shifts = [mpmath.mpf(2) ** -rng.randint(40, 150) * rng.uniform(-1, 1) for _ in range(50)]
        a = mcf.from_mpmath(values, 4)
        b = mcf.from_mpmath([v + s for v, s in zip(values, shifts)], 4)
        exact = [av - bv for av, bv in zip(mcf.to_mpmath(a), mcf.to_mpmath(b))]
    delta = exact_difference(a, b).tolist()
    for got, want in zip(delta, exact, strict=True):
        assert abs(mpmath.mpf(got) - want) <= abs(want) * mpmath.mpf(2) ** -52


def test_update_adds_a_tiny_increment_exactly():
    """A step of length 1e-3 at radius 60: a float64 x would round the increment away."""
    manifold = HalfSpaceMCF(2, components=3)
    with mpmath.mp.workprec(reference.working_precision(62)):
        point = reference.point_at(60, [mpmath.mpf(1), mpmath.mpf(0)])
    x = manifold.from_reference([point])
    u = manifold.proju(x, torch.tensor([[1e-3, 0.0, 0.0, 0.0]], dtype=torch.float64) * x[..., -1:])
    y = manifold.expmap(x, u)
    with mpmath.mp.workprec(reference.working_precision(62)):
        moved = reference.dist(manifold.to_reference(x)[0], manifold.to_reference(y)[0])
    assert abs(float(moved) - 1e-3) < 1e-12
    plain = HalfSpace(2)
    xf = plain.from_reference([point])
    assert float(plain.dist(xf, plain.expmap(xf, u[..., [0, -1]]))) != pytest.approx(1e-3, rel=1e-6)


def test_storage_layout_and_spec_round_trip(tmp_path):
    manifold = HalfSpaceMCF(3, components=2)
    assert manifold.storage_dim == 5
    x = manifold.random(4, generator=torch.Generator().manual_seed(0))
    assert manifold.horizontal(x).shape == (4, 2, 2) and manifold.height(x).shape == (4, 1)
    io.save_embedding(tmp_path / "e.pt", x, manifold)
    _, points, loaded = io.load_embedding(tmp_path / "e.pt")
    assert isinstance(loaded, HalfSpaceMCF) and loaded.components == 2 and torch.equal(points, x)


def test_bad_input_is_refused_with_the_row_named():
    manifold = HalfSpaceMCF(2, components=2)
    x = manifold.random(3, generator=torch.Generator().manual_seed(1))
    overlapping = x.clone()
    overlapping[1, 1] = overlapping[1, 0]  # second component as large as the first: not renormalised
    with pytest.raises(OffManifoldError, match=r"row \(1,\).*not a renormalised expansion"):
        manifold.assert_points(overlapping)
    infinite = x.clone()
    infinite[2, 0] = float("inf")
    with pytest.raises(ValueError, match=r"row \(2,\)"):
        manifold.assert_points(infinite)
    with pytest.raises(OffManifoldError, match="dtype"):
        manifold.assert_points(x.float())
    with pytest.raises(ValueError, match="components must be a positive integer"):
        HalfSpaceMCF(2, components=0)
    with pytest.raises(ValueError, match="dimension >= 2"):
        HalfSpaceMCF(1)


def test_points_beyond_the_exponent_range_are_refused():
    manifold = HalfSpaceMCF(2, components=8)
    with mpmath.mp.workprec(reference.working_precision(720)):
        far = reference.point_at(715, [mpmath.mpf(0), mpmath.mpf(1)])
    with pytest.raises(PrecisionError, match="ceiling"):
        manifold.from_reference([far])


def test_short_rsgd_on_mammals_matches_the_float64_halfspace():
    """Where float64 is still exact (radius < 10 here), two components must train like one: same recipe,
    same seed, same MAP. (Across seeds the float64 MAP moves by ~1e-3 at this point of training.)"""
    from embed.bench_wordnet import RECIPES
    from embed.train import TrainConfig, Trainer
    from embed.wordnet import load_mammals

    graph = load_mammals()
    config = TrainConfig(**dict(RECIPES["mammals"], epochs=60, eval_every=0, seed=0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        plain = Trainer(graph, HalfSpace(5), config, progress=False).fit().history[-1]
        ours = Trainer(graph, HalfSpaceMCF(5, components=2), config, progress=False).fit().history[-1]
    finally:
        torch.set_num_threads(threads)
    assert plain["map"] > 0.7 and plain["rows"] == graph.num_nodes and not plain["sampled"]
    assert abs(ours["map"] - plain["map"]) <= 0.01
    assert abs(ours["mean_rank"] - plain["mean_rank"]) <= 0.1
