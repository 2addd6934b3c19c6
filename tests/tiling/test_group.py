"""The group G = <g_a, g_b>: orders, the invariant form, inverses, exact reduction."""

import random

import mpmath
import pytest

from hyperbolic import reference
from tiling import group


def _det(T):
    return (T[0][0] * (T[1][1] * T[2][2] - T[1][2] * T[2][1]) - T[0][1] * (T[1][0] * T[2][2] - T[1][2] * T[2][0])
            + T[0][2] * (T[1][0] * T[2][1] - T[1][1] * T[2][0]))


@pytest.mark.parametrize("g", [group.G_A, group.G_B, group.G_A_INV, group.G_B_INV])
def test_generators(g):
    assert group.preserves_form(g)
    assert _det(g) == 1
    assert group.is_identity(group.power(g, 6))
    assert not any(group.is_identity(group.power(g, k)) for k in range(1, 6))
    assert group.is_identity(group.power(group.power(g, 3), 2))  # g^3 is an involution
    assert group.power(g, 5) == group.inverse(g)
    assert group.is_identity(group.matmul(g, group.inverse(g)))


def test_relations_and_named_inverses():
    assert group.inverse(group.G_A) == group.G_A_INV
    assert group.inverse(group.G_B) == group.G_B_INV
    ab = group.matmul(group.G_A, group.G_B)
    assert group.is_identity(group.power(ab, 3))
    assert not group.is_identity(ab)


def test_words_and_inverse_formula():
    rng = random.Random(0)
    word = [(rng.choice("ab"), rng.randint(1, 5)) for _ in range(40)]
    T = group.word_to_matrix(word)
    assert group.preserves_form(T) and _det(T) == 1
    assert group.is_identity(group.matmul(T, group.inverse(T)))
    with pytest.raises(ValueError, match="preserve"):
        group.inverse(((1, 1, 0), (0, 1, 0), (0, 0, 1)))


@pytest.mark.parametrize("radius", [0.3, 5, 60, 400])
def test_exact_reduction_reproduces_the_point(radius):
    rng = random.Random(int(radius * 10))
    with mpmath.mp.workprec(reference.working_precision(radius)):
        point = reference.point_at(radius, reference.random_direction(2, rng))
        red = group.reduce_exact(point, record_letters=True)
        u = red.u
        assert abs(u[1]) * mpmath.sqrt(3) <= u[0] and abs(u[2]) * mpmath.sqrt(3) <= u[0]
        assert group.preserves_form(red.T)
        back = group.point_from_parts(red.T, red.u)
        assert reference.dist(point, back) < mpmath.mpf(2) ** -100
        # The letters applied to the point, inverted, give T.
        T = group.IDENTITY
        for generator, exponent in red.letters:
            T = group.matmul(T, group.power(group.GENERATORS[generator], (6 - exponent) % 6))
        assert T == red.T


def test_exact_reduction_rejects_points_off_the_hyperboloid():
    # A float64 Lorentz point at radius ~21: x0 rounded so that the vector is spacelike; the greedy reduction of
    # such a vector never stops, so it must be refused.
    x = (833753832.123561, 361588222.9516716, 751265205.9049292)
    assert -x[0] ** 2 + x[1] ** 2 + x[2] ** 2 > 0
    with pytest.raises(ValueError, match="not on the hyperboloid"):
        group.reduce_exact([mpmath.mpf(c) for c in x])
    with pytest.raises(ValueError, match="not on the hyperboloid"):
        group.reduce_exact([mpmath.mpf(2), mpmath.mpf(1), mpmath.mpf(0)])
