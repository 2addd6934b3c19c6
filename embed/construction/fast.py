r"""The fast construction: level by level, exact-enough isometry matrices in integer limbs.

Why matrices. A direction error :math:`\epsilon` at a node moves its child sideways by
:math:`\epsilon \sinh s`, and the whole subtree with it: a node at radius :math:`r` needs its directions and
its position to about :math:`r \log_2 e` bits. So every node carries the isometry :math:`g` that maps the
base point to it and its frame to the node's frame, normalised so that the parent lies in frame direction
"up" (2-D) or :math:`e_1` (r-D). A child is :math:`g\,C` with a constant matrix :math:`C` per
(number of slots, slot, edge weight), computed once in high precision: no trigonometry per node.

* **2-D**: :math:`g \in SL(2, \mathbb R)` acting on the upper half-plane, base point :math:`i`;
  :math:`\mathrm{Rot}(\theta) = \begin{pmatrix}\cos\frac\theta2 & \sin\frac\theta2\\ -\sin\frac\theta2 &
  \cos\frac\theta2\end{pmatrix}` turns directions at :math:`i` by :math:`\theta`,
  :math:`A(s) = \mathrm{diag}(e^{s/2}, e^{-s/2})` moves up by :math:`s`. Child :math:`j` of a root with
  :math:`d` children: :math:`\mathrm{Rot}(2\pi j/d - \pi/2)\,A(s)\,\mathrm{Rot}(\pi)` (the Poincaré angle
  :math:`2\pi j/d`); child :math:`k = 1..c` of another node:
  :math:`g\,\mathrm{Rot}(-2\pi k/(c+1))\,A(s)\,\mathrm{Rot}(\pi)` (clockwise from the parent, the slot
  order the published circle inversion produces). The point is
  :math:`g(i) = \bigl((ac + bd) + i\bigr)/(c^2 + d^2)`.
* **r-D**: Lorentz matrices, child :math:`g\,H_k\,B(s)\,P` (:mod:`embed.construction.reference`), point
  :math:`X = g e_0`, half-space :math:`x = X_{1..n-1}/(X_0 - X_n)`, :math:`y = 1/(X_0 - X_n)`.

Arithmetic. Matrices are blocks of :mod:`embed.construction.limbs` (exact products, one rounding per
level, relative to the block norm), so a node at depth :math:`l` carries an error of about
:math:`l\,2^{-\text{bits}}\lVert g\rVert^2` hyperbolic units. The half-space coordinates are produced by an
exact long division: the horizontal coordinate as ``m`` float components
:math:`x^{(1)}, x^{(2)}, \dots` (each the rounded quotient of the exact remainder), the height as one
float. All nodes of one depth are one batched tensor operation.
"""

from __future__ import annotations

import math

import mpmath
import torch

from . import limbs as lb
from .plan import TreePlan

__all__ = ["build_sl2", "build_lorentz", "matrix_bits", "FastResult", "GUARD_BITS"]

#: Bits kept beyond what a point at the radius bound needs (errors below 2^-40 of a unit distance; the
#: acceptance test asks for 1e-12 relative).
GUARD_BITS = 40


def _cancellation_limbs(plan: TreePlan, tau: float, b: int, lorentz: bool) -> int:
    """Limbs a child step can cancel: a product of norm :math:`e^{(r - s)/2}` from terms of
    :math:`e^{(r + s)/2}` (squared for Lorentz matrices)."""
    step = tau * float(plan.weight.max())
    cancellation = (2.0 if lorentz else 1.0) * step / (2 * math.log(2))
    return math.ceil(cancellation / b)


def matrix_bits(radius: float, depth: int, lorentz: bool) -> int:
    """Bits of the limb matrices for points up to hyperbolic ``radius`` (2x for Lorentz entries ~e^r)."""
    factor = 2.0 if lorentz else 1.0
    return int(math.ceil(factor * radius / math.log(2) + math.log2(depth + 1) + GUARD_BITS))


class FastResult:
    """Storage rows of every node plus per-level facts for validation."""

    def __init__(self, storage: torch.Tensor, limbs: int, digit_bits: int):
        self.storage = storage
        self.limbs = limbs
        self.digit_bits = digit_bits


def _classes(plan: TreePlan) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct (slots, slot, weight, parent-is-root) per non-root node: ``(keys, inverse, weights)``."""
    is_child = plan.parent >= 0
    parent_is_root = torch.zeros(plan.n, dtype=torch.int64)
    parent_is_root[is_child] = (plan.parent[plan.parent[is_child]] < 0).to(torch.int64)
    weights, weight_id = torch.unique(plan.weight, return_inverse=True)
    columns = [plan.slots, plan.slot, weight_id, parent_is_root]
    sizes = [int(c.max()) + 1 for c in columns]
    key = torch.zeros(plan.n, dtype=torch.int64)
    for column, size in zip(columns, sizes):
        key = key * size + column
    unique, inverse = torch.unique(key, return_inverse=True)
    keys = []
    for size in reversed(sizes):
        keys.append(unique % size)
        unique = unique // size
    return torch.stack(keys[::-1], 1), inverse, weights


def _fixed(value, bits: int) -> int:
    return int(mpmath.nint(mpmath.ldexp(value, bits)))


def _sl2_constants(plan: TreePlan, tau: float, bits: int, b: int, L: int):
    keys, inverse, weights = _classes(plan)
    guard = -(-(bits + 64) // b) * b  # a whole number of digits: no shifting of the integers
    scale = 1 << guard
    rotations: dict[int, list[tuple[int, int]]] = {}
    with mpmath.workprec(guard + 32):
        E = {}
        for index, w in enumerate(weights.tolist()):
            half = mpmath.mpf(tau) * mpmath.mpf(w) / 2
            E[index] = (_fixed(mpmath.exp(half), guard), _fixed(mpmath.exp(-half), guard))
        needed: dict[tuple[int, int], int] = {}
        for K, k, _, root in keys.tolist():
            if K:
                needed[(K, root)] = max(needed.get((K, root), 0), k)
        for (K, root), top in needed.items():
            # e^{i pi k / K}, k = 0..top, by repeated products of fixed-point integers (error <= k units).
            c1 = _fixed(mpmath.cospi(mpmath.mpf(1) / K), guard)
            s1 = _fixed(mpmath.sinpi(mpmath.mpf(1) / K), guard)
            powers = [(scale, 0)]
            c, s = scale, 0
            for _ in range(top):
                c, s = (c * c1 - s * s1 + (scale >> 1)) >> guard, (c * s1 + s * c1 + (scale >> 1)) >> guard
                powers.append((c, s))
            rotations[(K, root)] = powers
        root_turn = _fixed(mpmath.sqrt(2) / 2, guard)  # e^{-i pi/4} = (1 - i)/sqrt 2
    # Rot(theta) A(s) Rot(pi) = [[-sin/E, cos E], [-cos/E, -sin E]] with E = e^{s/2}, theta/2 the half-angle:
    # -pi k / K, or pi k / K - pi / 4 for children of the root.
    entries: list[int] = []
    for K, k, w, root in keys.tolist():
        if K == 0:  # roots have no parent: their class is never used
            entries += [scale, 0, 0, scale]
            continue
        C, S = rotations[(K, root)][k]
        if root:
            C, S = (C + S) * root_turn >> guard, (S - C) * root_turn >> guard
        else:
            S = -S
        plus, minus = E[w]
        entries += [-S * minus >> guard, C * plus >> guard, -C * minus >> guard, -S * plus >> guard]
    digits, exponent = lb.from_ints(entries, guard, b, L, block=4)
    return digits.reshape(-1, 2, 2, L), exponent, inverse


def _halfspace_from_ratio(numerators: torch.Tensor, eN: torch.Tensor, denominator: torch.Tensor,
                          eD: torch.Tensor, components: int, width: int, b: int):
    """``numerators / denominator`` as ``components`` float components each, and ``1 / denominator``.

    ``numerators`` ``(N, k, Ln)`` with exponents ``eN`` ``(N,)``; ``denominator`` ``(N, Ld)`` with ``eD``.
    """
    N, k = numerators.shape[0], numerators.shape[1]
    D, eD = lb.normalize(denominator, eD, width, b)
    R, eR = lb.normalize(numerators, eN.unsqueeze(-1).expand(N, k), width, b)
    R = torch.cat([R.new_zeros(N, k, 1), R], -1)
    eR = eR + 1
    mD, eDbits = lb.mantissa(D, eD, b)
    out = []
    for _ in range(components):
        mR, eRbits = lb.mantissa(R, eR, b)
        x = torch.ldexp(mR / mD[:, None], (eRbits - eDbits[:, None]).to(torch.float64))
        out.append(x)
        dx, ex = lb.from_float(x, b)
        T = lb.convolve(dx, D[:, None, :])
        R = lb.carry(lb.subtract_aligned(R, eR, T, ex + eD[:, None]), b)
    height = torch.ldexp(1.0 / mD, (-eDbits).to(torch.float64))
    return torch.stack(out, 1), height  # (N, components, k), (N,)


def _level_radii(plan: TreePlan, tau: float) -> tuple[list[float], list[float], float]:
    """Per level: the largest and the smallest radius bound ``tau * root-path weight``, and the largest."""
    path = torch.zeros(plan.n, dtype=torch.float64)
    high, low = [0.0], [0.0]
    for level in plan.levels[1:]:
        path[level] = path[plan.parent[level]] + plan.weight[level]
        high.append(tau * float(path[level].max()))
        low.append(tau * float(path[level].min()))
    return high, low, max(high)


def _level_precision(plan: TreePlan, tau: float, components: int, b: int, L: int):
    """What each level needs, in digits of ``b`` bits (never more than ``L``):

    * ``k``: float components of the horizontal coordinate (radius bound in bits + guard, in 53-bit floats;
      the lower components of shallower points are exactly zero);
    * ``point``: matrix digits that the point formulas need (a node at radius ``r`` has entries up to
      :math:`e^{r/2}`; its point needs them to :math:`\varepsilon e^{-r/2}`);
    * ``constant``: digits of the child constants applied at the previous level. An error
      :math:`\\delta` there is a local error :math:`\\delta e^{s}` at the child, seen as
      :math:`\\delta e^{s + D}` by descendants :math:`D` further down, so the constant needs only the
      remaining height of the tree below the parent level, not the full radius.
    """
    high, low, top = _level_radii(plan, tau)
    slack = math.log2(plan.max_depth + 1) + GUARD_BITS
    k, point, constant = [1], [1], [L]
    for level in range(1, len(plan.levels)):
        k.append(min(components, max(1, math.ceil((high[level] / math.log(2) + GUARD_BITS) / 53))))
        point.append(min(L, math.ceil((high[level] / math.log(2) + slack) / b) + 2))
        remaining = top - low[level - 1]
        constant.append(min(L, math.ceil((remaining / math.log(2) + slack) / b) + 2))
    return k, point, constant


def _run_levels(plan: TreePlan, n1: int, L: int, b: int, cancel: int, constants, constant_digits: list[int],
                storage: torch.Tensor, place, validate, leaf_digits: list[int] | None = None) -> None:
    """The level loop shared by both builds: every node's isometry ``G = G_parent C_class`` (one batched
    limb product per depth), then ``place(level, nodes, G, eG)`` writes the nodes' storage rows.

    Inner nodes carry ``L`` limbs (their descendants need the full precision). With ``leaf_digits``, a
    leaf's isometry is only ever used for its own point, so it is computed from operands truncated to
    ``leaf_digits[level]`` limbs (plus the ``cancel`` limbs a step can lose) and rounded to that many: the
    precision ``place`` would otherwise truncate it to, at a fraction of the cost.
    """
    C, eC, cls = constants
    roots = plan.levels[0]
    storage[roots, -1] = 1.0
    G = torch.zeros(len(roots), n1, n1, L, dtype=torch.float64)
    G[:, torch.arange(n1), torch.arange(n1), 0] = 1
    eG = torch.zeros(len(roots), dtype=torch.int64)
    row = torch.full((plan.n,), -1, dtype=torch.int64)
    row[roots] = torch.arange(len(roots))
    inner = torch.zeros(plan.n, dtype=torch.bool)
    inner[plan.parent[plan.parent >= 0]] = True
    if validate is not None:
        validate(0, roots, storage[roots])
    for level_index, nodes in enumerate(plan.levels[1:], start=1):
        Lc = constant_digits[level_index]
        P = L if leaf_digits is None else min(L, leaf_digits[level_index])
        groups = [(nodes, L)] if P == L else [(nodes[inner[nodes]], L), (nodes[~inner[nodes]], P)]
        groups = [(members, digits) for members, digits in groups if len(members)]
        next_G, next_eG = G, eG
        placed, placed_e = [], []
        for members, digits in groups:
            parents = row[plan.parent[members]]
            operand = min(L, digits + cancel)
            H, eH = lb.matmul(G[parents][..., :operand], eG[parents], C[cls[members], :, :, :min(Lc, operand)],
                              eC[cls[members]], digits, b, keep=digits + 2 + cancel)
            placed.append(H[..., :P])
            placed_e.append(eH)
            if digits == L:
                next_G, next_eG = H, eH
                row[members] = torch.arange(len(members))
        order = torch.cat([members for members, _ in groups])
        place(level_index, order, torch.cat(placed), torch.cat(placed_e))
        G, eG = next_G, next_eG
        if validate is not None:
            validate(level_index, nodes, storage[nodes])


def build_sl2(plan: TreePlan, tau: float, bits: int, components: int, validate=None) -> FastResult:
    """All nodes' MCF half-plane storage ``[x^(1), ..., x^(m), y]`` (``(n, m + 1)`` float64).

    ``validate(level, nodes, storage_rows)`` is called after every level (it may raise).
    """
    L0 = max(3, math.ceil(bits / 23) + 2)
    b = lb.limb_bits(2, L0)
    L = max(3, math.ceil(bits / b) + 2)
    needed, point_digits, constant_digits = _level_precision(plan, tau, components, b, L)
    storage = torch.zeros(plan.n, components + 1, dtype=torch.float64)

    def place(level_index, nodes, G, eG):
        short = G[..., : point_digits[level_index]]
        a, bb, c, d = short[:, 0, 0], short[:, 0, 1], short[:, 1, 0], short[:, 1, 1]
        numerator = (lb.convolve(a, c) + lb.convolve(bb, d)).unsqueeze(1)
        denominator = lb.convolve(c, c) + lb.convolve(d, d)
        k = needed[level_index]
        width = min(2 * L - 1, math.ceil((k + 1) * 53 / b) + 3)
        x, y = _halfspace_from_ratio(numerator, 2 * eG, denominator, 2 * eG, k, width, b)
        storage[nodes, :k] = x[:, :, 0]
        storage[nodes, components] = y

    _run_levels(plan, 2, L, b, _cancellation_limbs(plan, tau, b, lorentz=False), _sl2_constants(plan, tau, bits, b, L),
                constant_digits, storage, place, validate, leaf_digits=point_digits)
    return FastResult(storage, L, b)


def _lorentz_constants(plan: TreePlan, tau: float, dim: int, method: str, bits: int, b: int, L: int):
    from .reference import lorentz_constants

    keys, inverse, weights = _classes(plan)
    guard = bits + 64
    n1 = dim + 1
    values: list[int] = []
    cache: dict = {}
    digits = int(guard * 0.30103) + 20
    with mpmath.workdps(digits):
        for K, k, w, root in keys.tolist():
            if K == 0:
                values += [(1 << guard) if i == j else 0 for i in range(n1) for j in range(n1)]
                continue
            key = (K, w, root)
            if key not in cache:
                s = mpmath.mpf(tau) * mpmath.mpf(weights[w].item())
                cache[key] = lorentz_constants(K, dim, s, method, bool(root), digits)
            M = cache[key][k]
            values += [_fixed(M[i][j], guard) for i in range(n1) for j in range(n1)]
    D, E = lb.from_ints(values, guard, b, L, block=n1 * n1)
    return D.reshape(-1, n1, n1, L), E, inverse


def build_lorentz(plan: TreePlan, tau: float, dim: int, bits: int, components: int, method: str = "codes",
                  validate=None) -> FastResult:
    """r-D: MCF half-space storage ``[x^(1) (dim-1), ..., x^(m) (dim-1), y]`` of every node."""
    n1 = dim + 1
    L0 = max(3, math.ceil(bits / 20) + 2)
    b = lb.limb_bits(n1, L0)
    L = max(3, math.ceil(bits / b) + 2)
    needed, _, constant_digits = _level_precision(plan, tau, 2 * components, b, L)
    needed = [min(components, k) for k in needed]
    constant_digits = [min(L, 2 * c) for c in constant_digits]
    h = dim - 1
    storage = torch.zeros(plan.n, components * h + 1, dtype=torch.float64)

    def place(level_index, nodes, G, eG):
        X = G[:, :, 0, :]  # g e_0, (N, n1, L)
        denominator = X[:, 0] - X[:, dim]
        k = needed[level_index]
        width = min(2 * L - 1, math.ceil((k + 1) * 53 / b) + 3)
        x, y = _halfspace_from_ratio(X[:, 1:dim], eG, denominator, eG, k, width, b)
        storage[nodes, : k * h] = x.reshape(len(nodes), k * h)
        storage[nodes, -1] = y

    _run_levels(plan, n1, L, b, _cancellation_limbs(plan, tau, b, lorentz=True),
                _lorentz_constants(plan, tau, dim, method, bits, b, L), constant_digits, storage, place, validate)
    return FastResult(storage, L, b)
