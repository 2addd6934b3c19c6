r"""The group :math:`G = \langle g_a, g_b\rangle` of the L-tiling of :math:`H^2` and its exact arithmetic.

Conventions (``../shared/notes/tiling.md`` §1-5). Lorentz form :math:`J = \mathrm{diag}(-1, 1, 1)`, time first.

.. math::

    g_a = \begin{pmatrix} 2&1&0\\ 0&0&-1\\ 3&2&0 \end{pmatrix},\qquad
    g_b = \begin{pmatrix} 2&-1&0\\ 0&0&-1\\ -3&2&0 \end{pmatrix},\qquad
    g^\top M_3\, g = M_3 = \mathrm{diag}(3, -1, -1),\quad \det g = 1 .

With :math:`L = \mathrm{diag}(\sqrt3, 1, 1)` and :math:`R = L^{-1}`, :math:`L g R` is a Lorentz isometry. A point is
stored as :math:`(T, u)` with :math:`T \in G` and :math:`u` in the fundamental domain

.. math::

    F = \{u \in H^2 : \sqrt3\,|u_1| \le u_0,\ \sqrt3\,|u_2| \le u_0\},

and represents :math:`x = L\,T\,R\,u`. In the coordinates :math:`\tilde u = R u = (u_0/\sqrt3, u_1, u_2)` the group
acts by its integer matrices, :math:`F = \{|\tilde u_1| \le \tilde u_0,\ |\tilde u_2| \le \tilde u_0\}`, and
:math:`-\langle x, y\rangle_L = \tilde u^\top\, T_u^\top M_3 T_v\, \tilde v`.

Reduction into :math:`F` (§5): while :math:`u \notin F` apply :math:`g_a` if :math:`u_1 \le -|u_2|`, :math:`g_b` if
:math:`u_1 \ge |u_2|`, :math:`g_b^{-1}` if :math:`u_2 < -|u_1|`, else :math:`g_a^{-1}`; each step lowers
:math:`u_0` (:math:`u_0' = 2u_0 \pm \sqrt3\,u_{1,2}`), and :math:`T` absorbs the inverse of the step. Here
the functions do it *exactly*, with Python integers in fixed point, for conversions from the mpmath
reference and for compression; :mod:`tiling.ltiling` does it in floats on tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import mpmath
from mpmath import mp

__all__ = [
    "G_A",
    "G_B",
    "G_A_INV",
    "G_B_INV",
    "GENERATORS",
    "M3",
    "IDENTITY",
    "matmul",
    "inverse",
    "power",
    "is_identity",
    "preserves_form",
    "reduce_exact",
    "ExactReduction",
    "word_to_matrix",
    "point_from_parts",
]

Matrix = tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]

G_A: Matrix = ((2, 1, 0), (0, 0, -1), (3, 2, 0))
G_B: Matrix = ((2, -1, 0), (0, 0, -1), (-3, 2, 0))
G_A_INV: Matrix = ((2, 0, -1), (-3, 0, 2), (0, -1, 0))
G_B_INV: Matrix = ((2, 0, 1), (3, 0, 2), (0, -1, 0))
IDENTITY: Matrix = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
M3 = (3, -1, -1)  # the diagonal of the invariant form

# Relative defect |<x, x>_L + 1| / x0^2 accepted from a reference point (rounding of its coordinates).
_DEFECT_TOLERANCE = 1e-10

# Letters of words: (generator, exponent) with generator "a" or "b" and exponent mod 6.
GENERATORS = {"a": G_A, "b": G_B}


def matmul(A: Sequence[Sequence[int]], B: Sequence[Sequence[int]]) -> Matrix:
    """Exact product of 3x3 integer matrices."""
    return tuple(tuple(sum(A[i][k] * B[k][j] for k in range(3)) for j in range(3)) for i in range(3))


def inverse(T: Sequence[Sequence[int]]) -> Matrix:
    r""":math:`T^{-1} = M_3^{-1} T^\top M_3` for :math:`T` preserving :math:`M_3` (an integer matrix)."""
    if not preserves_form(T):
        raise ValueError(f"matrix {T} does not preserve the form diag(3, -1, -1); it has no inverse in G")
    out = []
    for i in range(3):
        row = []
        for j in range(3):
            value = T[j][i] * M3[j]
            if i == 0:
                value //= 3  # exact: T^T M3 T = M3 makes the first row of M3^{-1} T^T M3 integral
            else:
                value = -value
            row.append(value)
        out.append(tuple(row))
    return tuple(out)


def power(g: Matrix, exponent: int) -> Matrix:
    """:math:`g^e` for :math:`e \\ge 0`."""
    out = IDENTITY
    for _ in range(exponent):
        out = matmul(out, g)
    return out


def is_identity(T) -> bool:
    return all(T[i][j] == (i == j) for i in range(3) for j in range(3))


def preserves_form(T) -> bool:
    r""":math:`T^\top M_3 T = M_3` exactly."""
    return all(
        sum(T[k][i] * M3[k] * T[k][j] for k in range(3)) == (M3[i] if i == j else 0)
        for i in range(3)
        for j in range(3)
    )


def word_to_matrix(word: Sequence[tuple[str, int]]) -> Matrix:
    """The product :math:`g_{c_1}^{e_1} g_{c_2}^{e_2} \\cdots` of a word of (generator, exponent) syllables."""
    T = IDENTITY
    for generator, exponent in word:
        T = matmul(T, power(GENERATORS[generator], exponent % 6))
    return T


# Steps in the coordinates ũ = R u: the generator applied to the point, its letter, and the inverse that T absorbs.
_STEPS = {
    "a": (G_A, ("a", 1), G_A_INV),
    "b": (G_B, ("b", 1), G_B_INV),
    "B": (G_B_INV, ("b", 5), G_B),
    "A": (G_A_INV, ("a", 5), G_A),
}


def _apply(g: Matrix, v: list[int]) -> list[int]:
    return [g[i][0] * v[0] + g[i][1] * v[1] + g[i][2] * v[2] for i in range(3)]


class ExactReduction:
    """Result of :func:`reduce_exact`.

    Attributes
    ----------
    T : Matrix
        The group element (Python integers), :math:`x = L T R u`.
    u : tuple of mpmath.mpf
        The point in :math:`F`, on the hyperboloid, accurate to ``2^-fraction_bits`` (before rounding).
    letters : list of (str, int)
        The generators applied to the point, in order: :math:`s_n \\cdots s_1 \\tilde x = \\tilde u`, so
        :math:`T = s_1^{-1} s_2^{-1} \\cdots s_n^{-1}`.
    """

    __slots__ = ("T", "u", "letters")

    def __init__(self, T, u, letters):
        self.T, self.u, self.letters = T, u, letters


def reduce_exact(point: Sequence, fraction_bits: int = 128, record_letters: bool = False) -> ExactReduction:
    r"""Reduce a reference point into :math:`F` with exact integer decisions.

    Parameters
    ----------
    point : sequence of mpmath numbers
        Lorentz coordinates ``(x0, x1, x2)`` at curvature -1 (accurate at the current ``mp.prec``).
    fraction_bits : int
        Fractional bits of the fixed-point coordinates kept *after* the reduction; the working fixed point
        has :math:`\log_2 x_0` more, so the rounding of the input is not amplified by the group element.
    record_letters : bool
        Keep the applied generators (for compression).

    Notes
    -----
    :math:`\tilde x = R x` is held as integers :math:`U = \mathrm{round}(2^P \tilde x)`. The steps multiply
    :math:`U` by integer matrices (exact), the tests :math:`|\tilde u_{1,2}| \le \tilde u_0` and the guard
    "the step must lower :math:`\tilde u_0`" are integer comparisons. The only rounding is the initial one,
    :math:`2^{-P}` per coordinate, amplified by at most :math:`\lVert T^{-1}\rVert \approx x_0`, hence the
    extra bits.
    """
    x0 = mpmath.mpf(point[0])
    if not mpmath.isfinite(x0) or x0 < 1:
        raise ValueError(f"reference point has time coordinate {x0}, not >= 1")
    magnitude_bits = int(mpmath.log(x0, 2)) + 2
    with mp.workprec(max(mp.prec, fraction_bits) + 2 * magnitude_bits + 64):
        x0, x1, x2 = (mpmath.mpf(c) for c in point)
        defect = x1 * x1 + x2 * x2 - x0 * x0 + 1  # zero on H^2
        # The greedy steps lower x0 only while x is timelike; a spacelike vector would never stop.
        if not x1 * x1 + x2 * x2 < x0 * x0 or abs(defect) > _DEFECT_TOLERANCE * x0 * x0:
            raise ValueError(
                f"reference point ({mpmath.nstr(x0, 8)}, {mpmath.nstr(x1, 8)}, {mpmath.nstr(x2, 8)}) is not on "
                f"the hyperboloid -x0^2 + x1^2 + x2^2 = -1 (defect {mpmath.nstr(defect, 3)}); float Lorentz "
                "coordinates far out are rounded off it: recompute x0 from (x1, x2) or use LTiling.from_lorentz"
            )
    P = fraction_bits + magnitude_bits
    with mp.workprec(P + magnitude_bits + 64):
        scale = mpmath.ldexp(1, P)
        U = [
            int(mpmath.nint(mpmath.mpf(point[0]) / mpmath.sqrt(3) * scale)),
            int(mpmath.nint(mpmath.mpf(point[1]) * scale)),
            int(mpmath.nint(mpmath.mpf(point[2]) * scale)),
        ]
    V: Matrix = IDENTITY
    letters: list[tuple[str, int]] = []
    while abs(U[1]) > U[0] or abs(U[2]) > U[0]:
        u1, u2 = U[1], U[2]
        if u1 <= -abs(u2):
            key = "a"
        elif u1 >= abs(u2):
            key = "b"
        elif u2 < -abs(u1):
            key = "B"
        else:
            key = "A"
        g, letter, g_inverse = _STEPS[key]
        moved = _apply(g, U)
        if moved[0] >= U[0]:
            break
        U = moved
        V = matmul(V, g_inverse)
        if record_letters:
            letters.append(letter)
    with mp.workprec(P + 64):
        scale = mpmath.ldexp(1, -P)
        u1, u2 = U[1] * scale, U[2] * scale
    u = (mpmath.sqrt(1 + u1 * u1 + u2 * u2), u1, u2)
    return ExactReduction(V, u, letters)


def point_from_parts(T: Sequence[Sequence[int]], u: Sequence) -> tuple:
    r"""The reference point :math:`L T R u` (mpmath, at ``mp.prec`` plus the bits of :math:`T`)."""
    bits = max(abs(int(v)).bit_length() for row in T for v in row)
    with mp.workprec(mp.prec + 2 * bits + 64):
        u = [mpmath.mpf(c) for c in u]
        s3 = mpmath.sqrt(3)
        tilde = (u[0] / s3, u[1], u[2])
        y = [mpmath.fsum(int(T[i][j]) * tilde[j] for j in range(3)) for i in range(3)]
        return (y[0] * s3, y[1], y[2])
