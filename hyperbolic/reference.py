r"""The geometry of :math:`H^n` in mpmath at any precision: the test oracle and the slow exact path.

A reference point is a tuple of mpmath numbers ``(x0, x1, ..., xn)``: Lorentz coordinates on the
hyperboloid :math:`-x_0^2 + \sum x_i^2 = -1` of curvature -1, time coordinate first. Tangent vectors
are tuples of the same length.

Precision. Every function works at ``mpmath.mp.prec`` bits *plus* what its own cancellation costs: a
Minkowski product of two points at radius ``r`` cancels about :math:`2r\log_2 e` bits, so
:func:`inner`-based formulas raise the working precision by the bit size of the coordinates before
they cancel. Callers therefore choose the accuracy they want (``mp.prec``) without having to know how
far out the points are. Use :func:`working_precision` to pick ``mp.prec`` for a radius.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import mpmath
from mpmath import mp, mpf

__all__ = [
    "Point",
    "working_precision",
    "inner",
    "dist",
    "origin",
    "lift",
    "expmap",
    "logmap",
    "transp",
    "point_at",
    "tangent_frame",
    "near_pair",
    "far_pair",
    "random_direction",
    "rotation",
    "boost",
    "apply",
    "to_poincare",
    "from_poincare",
    "to_halfspace",
    "from_halfspace",
    "radius",
]

Point = tuple


def working_precision(radius: float, extra_bits: int = 200) -> int:
    r"""Bits that make Minkowski products of points at ``radius`` exact to ``extra_bits``:
    :math:`2r\log_2 e + \text{extra}`."""
    return int(2 * radius * math.log2(math.e)) + extra_bits


def _magnitude_bits(*points: Sequence) -> int:
    """Bits cancelled when products of these coordinates are summed: twice the largest exponent."""
    largest = max((abs(c) for p in points for c in p), default=mpf(1))
    return 2 * max(int(mpmath.log(largest + 1, 2)) + 2, 0)


def inner(u: Sequence, v: Sequence) -> mpf:
    r"""Minkowski product :math:`-u_0v_0 + \sum u_iv_i`, exact to ``mp.prec`` bits after cancellation."""
    with mp.workprec(mp.prec + _magnitude_bits(u, v)):
        return -u[0] * v[0] + mpmath.fsum(a * b for a, b in zip(u[1:], v[1:]))


def dist(x: Sequence, y: Sequence) -> mpf:
    r"""Geodesic distance :math:`\operatorname{arcosh}(-\langle x,y\rangle_L)`, accurate to ``mp.prec`` bits.

    Uses :math:`2\operatorname{arsinh}(\tfrac12\sqrt{\langle x-y, x-y\rangle_L})`, which stays accurate when
    the distance is tiny.
    """
    with mp.workprec(mp.prec + _magnitude_bits(x, y)):
        diff = [a - b for a, b in zip(x, y)]
        chord2 = -diff[0] ** 2 + mpmath.fsum(c * c for c in diff[1:])
        return 2 * mpmath.asinh(mpmath.sqrt(max(chord2, mpf(0))) / 2)


def origin(n: int) -> Point:
    """The origin ``(1, 0, ..., 0)`` of :math:`H^n`."""
    return (mpf(1),) + (mpf(0),) * n


def lift(spatial: Sequence) -> Point:
    r"""The point with spatial coordinates ``spatial``: :math:`x_0 = \sqrt{1 + \lVert x_s\rVert^2}`."""
    spatial = [mpf(c) for c in spatial]
    with mp.workprec(mp.prec + _magnitude_bits(spatial)):
        x0 = mpmath.sqrt(1 + mpmath.fsum(c * c for c in spatial))
    return (x0, *spatial)


def radius(x: Sequence) -> mpf:
    """Distance from the origin, :math:`\\operatorname{arcosh}(x_0)`."""
    return dist(origin(len(x) - 1), x)


def expmap(x: Sequence, u: Sequence) -> Point:
    r""":math:`\exp_x(u) = \cosh\lVert u\rVert\,x + \sinh\lVert u\rVert\,u/\lVert u\rVert`."""
    with mp.workprec(mp.prec + _magnitude_bits(x, u)):
        norm = mpmath.sqrt(max(inner(u, u), mpf(0)))
        if norm == 0:
            return tuple(x)
        c, s = mpmath.cosh(norm), mpmath.sinh(norm) / norm
        return tuple(c * a + s * b for a, b in zip(x, u))


def logmap(x: Sequence, y: Sequence) -> Point:
    r""":math:`\log_x(y) = \frac{d}{\sinh d}\,(y - \cosh(d)\,x)`."""
    with mp.workprec(mp.prec + 2 * _magnitude_bits(x, y)):
        d = dist(x, y)
        if d == 0:
            return (mpf(0),) * len(x)
        z = -inner(x, y)
        scale = d / mpmath.sinh(d)
        return tuple(scale * (b - z * a) for a, b in zip(x, y))


def transp(x: Sequence, y: Sequence, v: Sequence) -> Point:
    r"""Parallel transport :math:`v + \frac{\langle y, v\rangle}{1 - \langle x, y\rangle}(x + y)`."""
    with mp.workprec(mp.prec + 2 * _magnitude_bits(x, y, v)):
        factor = inner(y, v) / (1 - inner(x, y))
        return tuple(c + factor * (a + b) for a, b, c in zip(x, y, v))


def random_direction(n: int, rng: random.Random) -> list[mpf]:
    """A uniform unit vector of :math:`S^{n-1}` (normalised Gaussian draw)."""
    while True:
        g = [mpf(rng.gauss(0.0, 1.0)) for _ in range(n)]
        norm = mpmath.sqrt(mpmath.fsum(c * c for c in g))
        if norm > 0:
            return [c / norm for c in g]


def point_at(r, direction: Sequence) -> Point:
    r"""The point at distance ``r`` from the origin along the unit ``direction``:
    :math:`(\cosh r, \sinh r\,\omega)`."""
    r = mpf(r)
    return (mpmath.cosh(r), *(mpmath.sinh(r) * c for c in direction))


def tangent_frame(r, direction: Sequence) -> tuple[Point, list[Point]]:
    r"""Orthonormal frame at ``point_at(r, direction)``: the radial unit vector
    :math:`(\sinh r, \cosh r\,\omega)` and unit vectors :math:`(0, t)` for ``t`` orthonormal to :math:`\omega`."""
    r = mpf(r)
    n = len(direction)
    radial = (mpmath.sinh(r), *(mpmath.cosh(r) * c for c in direction))
    sideways: list[Point] = []
    basis = [list(direction)]
    for k in range(n):
        e = [mpf(1) if i == k else mpf(0) for i in range(n)]
        for b in basis:
            dot = mpmath.fsum(a * c for a, c in zip(e, b))
            e = [a - dot * c for a, c in zip(e, b)]
        norm = mpmath.sqrt(mpmath.fsum(a * a for a in e))
        if norm > mpf(2) ** (-mp.prec // 2):
            e = [a / norm for a in e]
            basis.append(e)
            sideways.append((mpf(0), *e))
        if len(sideways) == n - 1:
            break
    return radial, sideways


def near_pair(r, distance, n: int, rng: random.Random) -> tuple[Point, Point]:
    """Two points at exact distance ``distance``, the first at radius ``r`` (precision.md §1).

    The direction at the first point is uniform over the unit tangent sphere, radial and sideways alike.
    Set ``mp.prec`` to :func:`working_precision` of ``r`` first.
    """
    omega = random_direction(n, rng)
    a = point_at(r, omega)
    radial, sideways = tangent_frame(r, omega)
    coefficients = random_direction(n, rng)
    w = tuple(
        coefficients[0] * radial[i] + mpmath.fsum(c * s[i] for c, s in zip(coefficients[1:], sideways))
        for i in range(n + 1)
    )
    distance = mpf(distance)
    b = tuple(mpmath.cosh(distance) * p + mpmath.sinh(distance) * t for p, t in zip(a, w))
    return a, b


def far_pair(r, n: int, rng: random.Random) -> tuple[Point, Point]:
    """Two points at radius ``r`` in independent uniform directions (typical distance ``2r``)."""
    return point_at(r, random_direction(n, rng)), point_at(r, random_direction(n, rng))


def rotation(n: int, i: int, j: int, angle) -> list[list[mpf]]:
    """Lorentz matrix rotating spatial axes ``i`` and ``j`` (1-based, as in the coordinates) by ``angle``."""
    m = [[mpf(int(a == b)) for b in range(n + 1)] for a in range(n + 1)]
    c, s = mpmath.cos(angle), mpmath.sin(angle)
    m[i][i], m[i][j], m[j][i], m[j][j] = c, -s, s, c
    return m


def boost(n: int, axis: int, t) -> list[list[mpf]]:
    """Lorentz matrix of the hyperbolic translation by ``t`` along spatial ``axis`` (1-based)."""
    m = [[mpf(int(a == b)) for b in range(n + 1)] for a in range(n + 1)]
    c, s = mpmath.cosh(t), mpmath.sinh(t)
    m[0][0], m[0][axis], m[axis][0], m[axis][axis] = c, s, s, c
    return m


def apply(matrix: Sequence[Sequence], x: Sequence) -> Point:
    """Apply a Lorentz matrix to a point or tangent vector."""
    with mp.workprec(mp.prec + _magnitude_bits(x) + _magnitude_bits(*matrix)):
        return tuple(mpmath.fsum(a * b for a, b in zip(row, x)) for row in matrix)


def to_poincare(x: Sequence) -> tuple[mpf, ...]:
    """Poincaré ball coordinates :math:`x_s/(1 + x_0)`."""
    return tuple(c / (1 + x[0]) for c in x[1:])


def from_poincare(p: Sequence) -> Point:
    r""":math:`\big(1 + \lVert p\rVert^2,\ 2p\big)/(1 - \lVert p\rVert^2)`; ``1 - ‖p‖²`` exactly, at the bits it needs."""
    p = [mpf(c) for c in p]
    with mp.workprec(mp.prec + 2 * max((-mpmath.mpf(c).exp for c in p if c), default=0) + 64):
        squared = mpmath.fsum(c * c for c in p)
        gap = 1 - squared
        if gap <= 0:
            raise ValueError(f"Poincaré point with squared norm {mpmath.nstr(squared, 20)} is not inside the ball")
        return ((1 + squared) / gap, *(2 * c / gap for c in p))


def to_halfspace(x: Sequence) -> tuple[tuple[mpf, ...], mpf]:
    """Upper half-space coordinates ``(x_1..x_{n-1}) / (x0 - xn)`` and height ``1 / (x0 - xn)``."""
    with mp.workprec(mp.prec + _magnitude_bits(x)):
        gap = x[0] - x[-1]
        return tuple(c / gap for c in x[1:-1]), 1 / gap


def from_halfspace(horizontal: Sequence, height) -> Point:
    r""":math:`X_0 = \frac{1 + \lVert x\rVert^2 + y^2}{2y}`, :math:`X_i = x_i/y`, :math:`X_n = \frac{\lVert x\rVert^2 + y^2 - 1}{2y}`."""
    horizontal = [mpf(c) for c in horizontal]
    y = mpf(height)
    if y <= 0:
        raise ValueError(f"half-space height {y} is not positive")
    with mp.workprec(mp.prec + _magnitude_bits(horizontal, [y, 1 / y])):
        squared = mpmath.fsum(c * c for c in horizontal) + y * y
        return ((1 + squared) / (2 * y), *(c / y for c in horizontal), (squared - 1) / (2 * y))
