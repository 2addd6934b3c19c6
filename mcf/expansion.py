"""Arithmetic on multi-component floats (floating-point expansions).

An m-component expansion is a tensor ``x`` of shape ``(..., m)`` that stands for the exact
sum ``x[..., 0] + ... + x[..., m-1]``. A *valid* expansion has its components ordered by
decreasing magnitude and nonoverlapping in the strong sense

    |x_{i+1}| <= ulp(x_i) / 2,          zeros only at the tail,

so that m components carry about ``m*p`` significant bits (``p`` = 53 for float64, 24 for
float32). Every operation below takes valid expansions and returns a valid expansion with
``m`` components (``m=None``: as many as the widest input). Float operands are tensors of
shape ``(...)`` (or Python numbers) and broadcast against the leading shape. All operations
are elementwise and branch-free on values (masks via ``torch.where``), so they run unchanged
on any device; dtype and device follow the inputs.

Accuracy, with ``S`` the exact result and ``u = 2**-p`` (the tests check these bounds
against mpmath):

=====================  ================================  ===================================
operation              m = 2 (double-word fast path)      general m
=====================  ================================  ===================================
add, sub               3 u^2  (AccurateDWPlusDW)          u^m  (exact sum, then rounded)
add_float              2 u^2  (DWPlusFP)                  u^m
scale                  2 u^2  (DWTimesFP2)                u^m  (exact Scale-Expansion)
mul                    5 u^2  (DWTimesDW1)                (2m + 1) u^m
div, sqrt              4 u^m  (long division / digit recurrence, for all m)
=====================  ================================  ===================================

(relative errors, up to a factor ``1 + 2**(4-p)``). The m = 2 algorithms and their
bounds are from Joldes, Muller and Popescu, "Tight and rigorous error bounds for basic
building blocks of double-word arithmetic", ACM TOMS 2017; their final Fast-Two-Sum is a
Two-Sum here, so the result is a valid pair unconditionally. The general bounds follow from
exact expansion arithmetic (Shewchuk 1997) and one final rounding. All bounds hold while
every component and error term stays clear of underflow; :func:`mcf.representable` tells
when a value is too small for m components. Below that the results are still valid
expansions, and the error exceeds the bound by a few subnormal spacings
``2**(emin - p + 1)`` (tested: at most 4 for add/sub, ``2 m^2`` for mul).

Internally an expansion is a Python list of ``(...)`` tensors, largest component first, so
the loops over the small component axis unroll and nothing is concatenated on the way.
"""

from __future__ import annotations

import torch

from .eft import fast_two_sum, float_format, two_prod, two_sum

__all__ = [
    "from_float",
    "to_float",
    "neg",
    "abs",
    "grow_expansion",
    "expansion_sum",
    "renormalize",
    "add",
    "sub",
    "add_float",
    "scale",
    "mul",
    "div",
    "sqrt",
    "compare",
    "lt",
    "le",
    "eq",
    "ne",
    "gt",
    "ge",
]

Parts = list[torch.Tensor]


# -- helpers --


def _parts(x: torch.Tensor) -> Parts:
    if x.dim() == 0 or x.shape[-1] < 1:
        raise ValueError(f"an expansion needs a trailing component axis, got shape {x.shape}")
    float_format(x.dtype)
    return list(x.unbind(-1))


def _stack(parts: Parts) -> torch.Tensor:
    return torch.stack(torch.broadcast_tensors(*parts), dim=-1)


def _operand(b: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(b, torch.Tensor):
        return torch.as_tensor(b, dtype=like.dtype, device=like.device)
    if b.dtype != like.dtype:
        raise TypeError(f"operand dtype {b.dtype} differs from the expansion's {like.dtype}")
    return b


def _width(m: int | None, *widths: int) -> int:
    m = max(widths) if m is None else m
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    return m


def _pad(parts: Parts, m: int) -> Parts:
    return parts + [torch.zeros_like(parts[0])] * (m - len(parts))


# -- exact expansion algorithms (Shewchuk) --


def _grow(x: Parts, b: torch.Tensor) -> Parts:
    """Grow-Expansion: ``sum(h) == sum(x) + b`` exactly, ``len(x) + 1`` components.

    For nonoverlapping ``x`` the output is nonoverlapping (bitwise), largest first, with
    zeros possibly anywhere.
    """
    h: Parts = [b] * (len(x) + 1)
    q = b
    for i in range(len(x) - 1, -1, -1):
        q, h[i + 1] = two_sum(q, x[i])
    h[0] = q
    return h


def _expansion_sum(x: Parts, y: Parts) -> Parts:
    """Expansion-Sum: ``sum(h) == sum(x) + sum(y)`` exactly, ``len(x) + len(y)`` components.

    Shewchuk's version that skips the components already final: ``len(x) * len(y)``
    Two-Sums. Runs smallest-first internally; returns largest first.
    """
    h = x[::-1]
    n = len(x)
    for i, f in enumerate(reversed(y)):
        q = f
        for j in range(i, i + n):
            q, h[j] = two_sum(q, h[j])
        h.append(q)
    return h[::-1]


def _scale_expansion(x: Parts, b: torch.Tensor) -> Parts:
    """Scale-Expansion: ``sum(h) == b * sum(x)`` exactly, ``2 * len(x)`` components.

    Shewchuk's algorithm with Two-Sum in place of the final Fast-Two-Sum; exact while the
    Two-Prod error terms do not underflow. Output nonoverlapping, largest first.
    """
    a = x[::-1]
    q, low = two_prod(a[0], b)
    h = [low]
    for ai in a[1:]:
        big, small = two_prod(ai, b)
        q, e = two_sum(q, small)
        h.append(e)
        q, e = two_sum(big, q)
        h.append(e)
    h.append(q)
    return h[::-1]


def _accumulate(terms: Parts) -> Parts:
    """Exact nonoverlapping expansion of the sum of arbitrary floats (repeated Grow)."""
    h = terms[:1]
    for t in terms[1:]:
        h = _grow(h, t)
    return h


# -- rounding an exact expansion to m components --


def _round_tie(
    s: torch.Tensor, e: torch.Tensor, rest: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correct ``(s, e) = Two-Sum(...)`` for a tie broken by the components below.

    If ``e`` is exactly half the gap from ``s`` to its neighbour in the direction of ``e``
    (round-to-even chose ``s``) and the remaining components ``rest`` have the sign of
    ``e``, the exact value lies past the midpoint: take the neighbour ``s + 2e`` and keep
    ``-e``. ``(s + 2e) - s == 2e`` holds exactly when ``2e`` is that gap.
    """
    two_e = e + e
    neighbour = s + two_e
    tie = (torch.sign(e) == torch.sign(rest)) & (e != 0) & (neighbour - s == two_e)
    return torch.where(tie, neighbour, s), torch.where(tie, -e, e)


def _distill(d: Parts, m: int) -> Parts:
    """Round an exact expansion to a valid m-component one.

    ``d`` must be nonoverlapping (bitwise), largest first, zeros anywhere — what
    :func:`_grow`, :func:`_expansion_sum`, :func:`_scale_expansion` and :func:`_accumulate`
    produce. Steps (Priest / Hida-Li-Bailey renormalisation in branch-free form, then one
    extra pass that enforces ``|y_{i+1}| <= ulp(y_i)/2``):

    1. bottom-up Two-Sum chain: ``t_0`` approximates the sum, ``t_1..`` the errors;
    2. top-down: carry a running sum, emit it whenever a Two-Sum leaves a nonzero error;
    3. stable compaction of the zeros to the back (first ``m + 2`` slots);
    4. top-down Two-Sum chain with the tie correction of :func:`_round_tie`.

    Steps 1-3 keep the sum exact (every step is a Two-Sum or a move); step 4 drops what
    lies below the ``m``-th component (relative error <= ``u**m``). Step 4 is what makes
    the nonoverlap strict: without it (the notes' version) up to a few percent of
    tie-heavy inputs come out overlapping. That the result always satisfies
    ``|y_{i+1}| <= ulp(y_i)/2`` is established by testing (hypothesis and fuzzing with
    ties, cancellation and exponent gaps, checked exactly), not by a proof.
    """
    k = len(d)
    if k == 1:
        return _pad(d, m)
    t: Parts = [d[0]] * k
    s = d[-1]
    for i in range(k - 2, -1, -1):
        s, t[i + 1] = two_sum(d[i], s)
    t[0] = s

    v: Parts = []
    s = t[0]
    for i in range(1, k):
        s_new, e = two_sum(s, t[i])
        keep = e != 0
        v.append(torch.where(keep, s_new, 0.0))
        s = torch.where(keep, e, s_new)
    v.append(s)

    slots = min(k, m + 2)
    for j in range(slots):
        for i in range(k - 2, j - 1, -1):
            z = v[i] == 0
            v[i], v[i + 1] = torch.where(z, v[i + 1], v[i]), torch.where(z, v[i], v[i + 1])
    o = _pad(v[:slots], m + 1)

    out: Parts = []
    rem = o[0]
    for i in range(m):
        s, rem = two_sum(rem, o[i + 1])
        if i + 2 < len(o):
            s, rem = _round_tie(s, rem, o[i + 2])
        out.append(s)
    return out


# -- conversions and sign --


def from_float(x: torch.Tensor, m: int) -> torch.Tensor:
    """The m-component expansion ``(x, 0, ..., 0)`` of a float tensor ``(...)``."""
    float_format(x.dtype)
    m = _width(m)
    return torch.cat([x.unsqueeze(-1), x.new_zeros(x.shape + (m - 1,))], dim=-1)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """The sum of the components rounded to the nearest float (ties to even).

    For a valid expansion the rounding is correct: ``fl(x_1 + x_2)`` decides except at an
    exact tie, which the sign of ``x_3`` breaks (see :func:`_round_tie`).
    """
    xs = _parts(x)
    if len(xs) == 1:
        return xs[0]
    if len(xs) == 2:
        return xs[0] + xs[1]
    s, e = two_sum(xs[0], xs[1])
    return _round_tie(s, e, xs[2])[0]


def neg(x: torch.Tensor) -> torch.Tensor:
    """``-x`` (exact)."""
    return -x


def abs(x: torch.Tensor) -> torch.Tensor:
    """``|x|`` (exact): the expansion negated where its leading component is negative."""
    return torch.where(x[..., :1] < 0, -x, x)


# -- addition --


def grow_expansion(x: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
    """Shewchuk's Grow-Expansion: the exact sum ``x + b`` in ``m + 1`` components.

    Not renormalised: the components are nonoverlapping bitwise and largest first, but
    zeros can appear anywhere and the strong nonoverlap can fail. Pass the result to
    :func:`renormalize` with ``nonoverlapping=True``, or use :func:`add_float`.
    """
    xs = _parts(x)
    return _stack(_grow(xs, _operand(b, x)))


def expansion_sum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Shewchuk's Expansion-Sum: the exact sum ``x + y`` in ``m_x + m_y`` components.

    Not renormalised (see :func:`grow_expansion`).
    """
    return _stack(_expansion_sum(_parts(x), _parts(y)))


def renormalize(
    c: torch.Tensor, m: int | None = None, *, nonoverlapping: bool = False
) -> torch.Tensor:
    """Round the exact sum of the floats ``c[..., :]`` to a valid m-component expansion.

    Parameters
    ----------
    c : Tensor (..., n)
        Any floats, in any order, overlapping or not.
    m : int, optional
        Components of the result (default ``n``).
    nonoverlapping : bool
        Promise that ``c`` is already nonoverlapping bitwise and largest first (zeros
        anywhere), e.g. the output of :func:`grow_expansion`; skips the exact accumulation
        (``n(n-1)/2`` Two-Sums).

    Returns
    -------
    Tensor (..., m)
        Valid expansion; relative error at most ``u**m`` (1 + tiny).
    """
    cs = _parts(c)
    m = _width(m, len(cs))
    return _stack(_distill(cs if nonoverlapping else _accumulate(cs), m))


def add(x: torch.Tensor, y: torch.Tensor, m: int | None = None) -> torch.Tensor:
    """``x + y`` as a valid m-component expansion.

    m = 2 with two double-words: AccurateDWPlusDW (20 flops, relative error <= 3u^2).
    Otherwise the exact Expansion-Sum rounded by :func:`renormalize`'s method (<= u^m).
    """
    xs, ys = _parts(x), _parts(y)
    m = _width(m, len(xs), len(ys))
    if m == len(xs) == len(ys) == 2:
        return _stack(_add22(xs, ys))
    return _stack(_distill(_expansion_sum(xs, ys), m))


def sub(x: torch.Tensor, y: torch.Tensor, m: int | None = None) -> torch.Tensor:
    """``x - y`` as a valid m-component expansion (``add`` with ``-y``, same bounds)."""
    return add(x, -y, m)


def _add22(x: Parts, y: Parts) -> Parts:
    # Fast-Two-Sum where JMP prove its precondition; Two-Sum last so the output is a
    # valid pair unconditionally.
    sh, sl = two_sum(x[0], y[0])
    th, tl = two_sum(x[1], y[1])
    vh, vl = fast_two_sum(sh, sl + th)
    return list(two_sum(vh, tl + vl))


def add_float(x: torch.Tensor, b: torch.Tensor | float, m: int | None = None) -> torch.Tensor:
    """``x + b`` for a float tensor ``b (...)``, as a valid m-component expansion.

    This is how to add a small increment to an expansion without rounding it away.
    m = 2: DWPlusFP (10 flops, <= 2u^2); otherwise Grow-Expansion then rounding (<= u^m).
    """
    xs = _parts(x)
    b = _operand(b, x)
    m = _width(m, len(xs))
    if m == len(xs) == 2:
        sh, sl = two_sum(xs[0], b)
        return _stack(list(two_sum(sh, xs[1] + sl)))
    return _stack(_distill(_grow(xs, b), m))


# -- multiplication --


def scale(x: torch.Tensor, b: torch.Tensor | float, m: int | None = None) -> torch.Tensor:
    """``b * x`` for a float tensor ``b (...)``, as a valid m-component expansion.

    m = 2: DWTimesFP2 (<= 2u^2); otherwise the exact Scale-Expansion (2m
    components) rounded to m (<= u^m). Multiplying by a power of two is exact either way
    (and cheaper as ``x * 2.0**k`` while nothing under- or overflows).
    """
    xs = _parts(x)
    b = _operand(b, x)
    m = _width(m, len(xs))
    if m == len(xs) == 2:
        ch, cl1 = two_prod(xs[0], b)
        return _stack(list(two_sum(ch, cl1 + xs[1] * b)))
    return _stack(_distill(_scale_expansion(xs, b), m))


def mul(x: torch.Tensor, y: torch.Tensor, m: int | None = None) -> torch.Tensor:
    """``x * y`` as a valid m-component expansion (truncated product).

    m = 2 with two double-words: DWTimesDW1 (<= 5u^2). Otherwise, with 1-based indices,
    Two-Prod ``x_i * y_j`` (both parts) for ``i + j <= m``, the plain product for
    ``i + j == m + 1``, nothing below; the exact sum of these terms rounded to m. Neglected
    terms and the plain products' roundings bound the relative error by ``(2m + 1) u^m``.
    """
    xs, ys = _parts(x), _parts(y)
    m = _width(m, len(xs), len(ys))
    if m == len(xs) == len(ys) == 2:
        ch, cl1 = two_prod(xs[0], ys[0])
        cl2 = xs[0] * ys[1] + xs[1] * ys[0]
        return _stack(list(two_sum(ch, cl1 + cl2)))
    terms: Parts = []
    for level in range(m):  # 0-based i + j
        for i in range(max(0, level - len(ys) + 1), min(len(xs), level + 1)):
            if level < m - 1:
                terms.extend(two_prod(xs[i], ys[level - i]))
            else:
                terms.append(xs[i] * ys[level - i])
    return _stack(_distill(_accumulate(terms), m))


def div(x: torch.Tensor, y: torch.Tensor, m: int | None = None) -> torch.Tensor:
    """``x / y`` as a valid m-component expansion, by long division.

    ``q_1 = fl(x_1 / y_1)``, ``r = x``; then m times: ``r <- round_m(r - q_k * y)`` (the
    product and difference exact, Scale-Expansion and Expansion-Sum) and
    ``q_{k+1} = fl(r_1 / y_1)``; result ``round_m(q_1 + ... + q_{m+1})``. Each quotient
    digit is off by a few u relative to the remainder it divides, so the neglected rest is
    O((3u)^(m+1)); the final rounding dominates: relative error <= ``4 u^m`` (documented
    bound; roughly ``u^m`` in practice). Remainders carry their own exponents, so this
    stays accurate wherever ``x``, ``y`` and the quotient are representable.

    ``y == 0`` gives ``x_1 / y_1`` (±inf or nan) in the first component and zeros after.
    """
    xs, ys = _parts(x), _parts(y)
    m = _width(m, len(xs), len(ys))
    zero = ys[0] == 0
    ys = [torch.where(zero, 1.0, ys[0])] + [torch.where(zero, 0.0, c) for c in ys[1:]]
    q = [xs[0] / ys[0]]
    r = xs
    for _ in range(m):
        r = _distill(_expansion_sum(r, _scale_expansion(ys, -q[-1])), m)
        q.append(r[0] / ys[0])
    out = _distill(_accumulate(q), m)
    out = [torch.where(zero, x[..., 0] / y[..., 0], out[0])] + [
        torch.where(zero, 0.0, c) for c in out[1:]
    ]
    return _stack(out)


def sqrt(x: torch.Tensor, m: int | None = None) -> torch.Tensor:
    """``sqrt(x)`` as a valid m-component expansion, by a digit recurrence.

    ``s_1 = fl(sqrt(x_1))`` and the exact remainder ``r = x - s_1^2``; then m times: the
    next digit ``d = fl(r_1 / (2 s_1))`` and, exactly, ``r <- r - d (2 s + d)`` where ``s``
    is the root so far (rounded to m + 1 components). Result ``round_m(s_1 + d_2 + ...)``;
    relative error <= ``4 u^m`` (documented bound; roughly ``u^m`` in practice). No
    reciprocal square root is formed, so this works wherever ``x`` and ``sqrt(x)`` are
    representable (Newton on ``1/sqrt(x)`` would need ``1/sqrt(x)`` representable as well).

    ``x == 0`` gives 0 and ``x < 0`` gives nan in the first component (zeros after).
    """
    xs = _parts(x)
    m = _width(m, len(xs))
    positive = xs[0] > 0
    a = [torch.where(positive, xs[0], 1.0)] + [torch.where(positive, c, 0.0) for c in xs[1:]]
    s1 = torch.sqrt(a[0])
    twice = s1 + s1
    r = _distill(_expansion_sum(a, [-c for c in two_prod(s1, s1)]), m + 1)
    root: Parts = [s1]
    digits = [s1]
    for k in range(m):
        d = r[0] / twice
        digits.append(d)
        if k + 1 < m:
            minus_cross = _scale_expansion(root, -(d + d))
            minus_square = list(two_prod(d, -d))
            r = _distill(_expansion_sum(_expansion_sum(r, minus_cross), minus_square), m + 1)
            root = _distill(_grow(root, d), m + 1)
    out = _distill(_accumulate(digits), m)
    out = [torch.where(positive, out[0], torch.sqrt(xs[0]))] + [
        torch.where(positive, c, 0.0) for c in out[1:]
    ]
    return _stack(out)


# -- comparison --


def compare(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact ``sign(x - y)`` as -1, 0 or +1 in the base dtype.

    The exact difference as a nonoverlapping expansion (Expansion-Sum); its sign is the
    sign of its largest nonzero component, which dominates the rest.
    """
    d = _expansion_sum(_parts(x), [-c for c in _parts(y)])
    sign = torch.sign(d[-1])
    for c in reversed(d[:-1]):
        sign = torch.where(c != 0, torch.sign(c), sign)
    return sign


def lt(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x < y`` exactly."""
    return compare(x, y) < 0


def le(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x <= y`` exactly."""
    return compare(x, y) <= 0


def eq(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x == y`` as values (valid expansions of one value need not be identical)."""
    return compare(x, y) == 0


def ne(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x != y`` as values."""
    return compare(x, y) != 0


def gt(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x > y`` exactly."""
    return compare(x, y) > 0


def ge(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x >= y`` exactly."""
    return compare(x, y) >= 0
