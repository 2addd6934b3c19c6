"""The vectorised float reduction into F: letter table, exact group elements, pauses before float64 overflows."""

import math
import random

import mpmath
import pytest
import torch

from hyperbolic import reference
from tiling import LTiling, bigint, group, reduction


def _points(n, radius, seed):
    generator = torch.Generator().manual_seed(seed)
    r = radius * torch.rand(n, dtype=torch.float64, generator=generator)
    theta = 2 * math.pi * torch.rand(n, dtype=torch.float64, generator=generator)
    spatial = torch.stack([torch.sinh(r) * torch.cos(theta), torch.sinh(r) * torch.sin(theta)], -1)
    return torch.cat([torch.sqrt(1 + spatial.square().sum(-1, keepdim=True)), spatial], -1)


def test_letters_are_the_inverses_of_the_applied_generators():
    # Letter 1 + [axis 1] + 2 [p > 0]: the note's rule applies g_b^-1, g_a, g_a^-1, g_b; V absorbs the inverse.
    absorbed = {1: group.G_B, 2: group.G_A_INV, 3: group.G_A, 4: group.G_B_INV}
    for letter, matrix in absorbed.items():
        assert tuple(map(tuple, reduction._letter_matrix(letter))) == matrix
    table, column_sums = reduction.word_table(3)
    rng = random.Random(0)
    for _ in range(20):
        digits = [rng.randrange(5) for _ in range(3)]
        code = digits[0] * 25 + digits[1] * 5 + digits[2]
        expected = group.IDENTITY
        for d in digits:
            expected = group.matmul(expected, reduction._letter_matrix(d))
        assert table[:, code].to(torch.int64).reshape(3, 3).tolist() == [list(r) for r in expected]
        assert column_sums[code] == max(sum(abs(expected[i][j]) for i in range(3)) for j in range(3))


@pytest.mark.parametrize("radius", [3.0, 8.0])
def test_reduction_keeps_the_point_and_yields_group_elements(radius):
    w = _points(300, radius, seed=int(radius))
    tangent = torch.randn(300, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    tangent = tangent + (-w[:, :1] * tangent[:, :1] + (w[:, 1:] * tangent[:, 1:]).sum(-1, keepdim=True)) * w
    out, (carried,), V, paused = reduction.reduce_into_domain(w, [tangent])
    assert not bool(paused.any())
    assert not bool(reduction.outside_domain(out).any())
    s3 = math.sqrt(3)
    scale = torch.tensor([s3, 1.0, 1.0], dtype=torch.float64)
    A = scale[:, None] * V / scale  # L V R
    # float error of the reduction: a few ulps of the largest coordinate, carried back by |L V R| ~ e^r.
    tolerance = 1e-14 * math.exp(2 * radius)
    assert torch.allclose((A @ out.unsqueeze(-1)).squeeze(-1), w, rtol=0, atol=tolerance)
    assert torch.allclose((A @ carried.unsqueeze(-1)).squeeze(-1), tangent, rtol=0, atol=tolerance * 10)
    for matrix in V.to(torch.int64).tolist()[:50]:
        assert group.preserves_form(matrix)


def test_far_points_pause_and_the_model_finishes_them_exactly(monkeypatch):
    model = LTiling(max_radius=40)
    X = _points(2000, 25.0, seed=5)
    expected = model.from_lorentz(X)
    # Pretend float64 held only 2^30: rows pause early and are finished with multi-limb products of T and V.
    monkeypatch.setattr(reduction, "_EXACT", float(2**30))
    _, _, V, paused = reduction.reduce_into_domain(X)
    assert bool(paused.any()) and float(V.abs().max()) < 2**30
    assert torch.equal(model.from_lorentz(X), expected)


def test_reduction_agrees_with_the_exact_greedy_reduction():
    model = LTiling(max_radius=20)
    rng = random.Random(3)
    with mpmath.mp.workprec(200):
        points = [reference.point_at(rng.uniform(0, 12), reference.random_direction(2, rng)) for _ in range(40)]
        floats = torch.tensor([[float(c) for c in p] for p in points], dtype=torch.float64)
    x = model.from_lorentz(floats)
    exact = [group.reduce_exact(p).T for p in points]
    # Only a point within rounding (~1e-16) of a tile boundary could land in the neighbouring tile; none of
    # these random points is that close, so every tile must be the exact reduction's.
    for i, (T, row) in enumerate(zip(exact, bigint.to_ints(model.split(x)[1]), strict=True)):
        assert T == tuple(map(tuple, row)), i
    with mpmath.mp.workprec(200):
        for i, represented in enumerate(model.to_reference(x)):
            assert reference.dist(represented, points[i]) < 1e-13 * float(points[i][0]), i
