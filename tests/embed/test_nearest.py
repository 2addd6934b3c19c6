"""The charted nearest-node search against the mpmath distance, and its exact fallback far out."""

import random

import mpmath
import pytest
import torch

from embed.nearest import chart_nearest
from embed.train import TrainConfig, Trainer
from hyperbolic import HalfSpaceMCF, Lorentz, reference
from tiling import BinaryTiling

from .test_train import tree_closure


def _clusters(radius, count, dim, seed):
    """``count`` mpmath points in four clusters around centres at ``radius``, at distances 0.05 to 3 from them."""
    rng = random.Random(seed)
    points = []
    for _ in range(4):
        omega = reference.random_direction(dim, rng)
        centre = reference.point_at(radius, omega)
        radial, sideways = reference.tangent_frame(radius, omega)
        points.append(centre)
        for _ in range(count // 4 - 1):
            c = reference.random_direction(dim, rng)
            w = [c[0] * radial[i] + mpmath.fsum(a * s[i] for a, s in zip(c[1:], sideways)) for i in range(dim + 1)]
            d = mpmath.mpf(rng.uniform(0.05, 3.0))
            points.append(tuple(mpmath.cosh(d) * p + mpmath.sinh(d) * t for p, t in zip(centre, w)))
    return points


def _mpmath_order(points, rows, k):
    return [sorted(range(len(points)), key=lambda j: reference.dist(points[row], points[j]))[:k] for row in rows]


@pytest.mark.parametrize("manifold", [Lorentz(3), HalfSpaceMCF(3, components=2), BinaryTiling(3, max_radius=40)],
                         ids=["lorentz", "halfspace-mcf2", "binary-tiling"])
def test_charted_search_orders_like_the_mpmath_distance(manifold):
    with mpmath.workprec(400):
        exact = _clusters(9.0, 40, 3, seed=1)
        points = manifold.from_reference(exact)
        search = chart_nearest(manifold, points, slack=4)
        assert search is not None
        rows = torch.tensor([0, 7, 13, 22, 39])
        assert search(rows, 6).tolist() == _mpmath_order(exact, rows.tolist(), 6)


def test_points_beyond_the_float64_view_are_searched_exactly():
    manifold = HalfSpaceMCF(3, components=2)
    with mpmath.workprec(400):
        exact = _clusters(45.0, 40, 3, seed=2)  # float64 Poincaré coordinates put all of them on the boundary
        points = manifold.from_reference(exact)
        assert chart_nearest(manifold, points) is None
        trainer = Trainer(tree_closure(3, 3), manifold, TrainConfig(epochs=1), init=points, progress=False)
        rows = torch.tensor([0, 9, 10, 31])
        assert trainer._nearest(rows, 5).tolist() == _mpmath_order(exact, rows.tolist(), 5)


def test_charted_search_checks_k():
    manifold = Lorentz(2)
    search = chart_nearest(manifold, manifold.random(5, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="k must lie in"):
        search(torch.tensor([0]), 6)
