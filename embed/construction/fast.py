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

__all__ = ["build_sl2", "build_lorentz", "matrix_bits", "FastResult"]


def matrix_bits(radius: float, depth: int, lorentz: bool) -> int:
    """Bits of the limb matrices for points up to hyperbolic ``radius`` (2x for Lorentz entries ~e^r)."""
    factor = 2.0 if lorentz else 1.0
    return int(math.ceil(factor * radius / math.log(2) + math.log2(depth + 1) + 64))


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
    key = torch.stack([plan.slots, plan.slot, weight_id, parent_is_root], 1)
    keys, inverse = torch.unique(key, dim=0, return_inverse=True)
    return keys, inverse, weights


def _fixed(value, bits: int) -> int:
    return int(mpmath.nint(mpmath.ldexp(value, bits)))


def _sl2_constants(plan: TreePlan, tau: float, bits: int, b: int, L: int):
    keys, inverse, weights = _classes(plan)
    guard = bits + 64
    scale = 1 << guard
    values: list[int] = []
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
        root_turn = (_fixed(mpmath.sqrt(2) / 2, guard),)[0]  # e^{-i pi/4} = (1 - i)/sqrt 2
    for K, k, w, root in keys.tolist():
        if K == 0:  # roots: no constant needed; keep the identity
            values += [scale, 0, 0, scale]
            continue
        C, S = rotations[(K, root)][k]
        if root:
            # half-angle pi k / K - pi / 4
            c_half = (C * root_turn + S * root_turn) >> guard
            s_half = (S * root_turn - C * root_turn) >> guard
        else:
            # half-angle -pi k / K
            c_half, s_half = C, -S
        e_plus, e_minus = E[w]
        values += [
            (-s_half * e_minus) >> guard, (c_half * e_plus) >> guard,
            (-c_half * e_minus) >> guard, (-s_half * e_plus) >> guard,
        ]
    digits, exponent = lb.from_ints(values, guard, b, L, block=4)
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


def build_sl2(plan: TreePlan, tau: float, bits: int, components: int, validate=None) -> FastResult:
    """All nodes' MCF half-plane storage ``[x^(1), ..., x^(m), y]`` (``(n, m + 1)`` float64).

    ``validate(level, nodes, storage_rows)`` is called after every level (it may raise).
    """
    L0 = max(3, math.ceil(bits / 23) + 2)
    b = lb.limb_bits(2, L0)
    L = max(3, math.ceil(bits / b) + 2)
    width = max(L, math.ceil((components + 1) * 53 / b) + 3)
    C, eC, cls = _sl2_constants(plan, tau, bits, b, L)
    storage = torch.zeros(plan.n, components + 1, dtype=torch.float64)
    roots = plan.levels[0]
    storage[roots, -1] = 1.0
    G = torch.zeros(len(roots), 2, 2, L, dtype=torch.float64)
    G[:, 0, 0, 0] = 1
    G[:, 1, 1, 0] = 1
    eG = torch.zeros(len(roots), dtype=torch.int64)
    row = torch.full((plan.n,), -1, dtype=torch.int64)
    row[roots] = torch.arange(len(roots))
    if validate is not None:
        validate(0, roots, storage[roots])
    for level_index, nodes in enumerate(plan.levels[1:], start=1):
        parents = row[plan.parent[nodes]]
        G, eG = lb.matmul(G[parents], eG[parents], C[cls[nodes]], eC[cls[nodes]], L, b)
        a, bb, c, d = G[:, 0, 0], G[:, 0, 1], G[:, 1, 0], G[:, 1, 1]
        numerator = (lb.convolve(a, c) + lb.convolve(bb, d)).unsqueeze(1)
        denominator = lb.convolve(c, c) + lb.convolve(d, d)
        x, y = _halfspace_from_ratio(numerator, 2 * eG, denominator, 2 * eG, components, width, b)
        storage[nodes, :components] = x[:, :, 0]
        storage[nodes, components] = y
        row[nodes] = torch.arange(len(nodes))
        if validate is not None:
            validate(level_index, nodes, storage[nodes])
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
    width = max(L, math.ceil((components + 1) * 53 / b) + 3)
    C, eC, cls = _lorentz_constants(plan, tau, dim, method, bits, b, L)
    h = dim - 1
    storage = torch.zeros(plan.n, components * h + 1, dtype=torch.float64)
    roots = plan.levels[0]
    storage[roots, -1] = 1.0
    G = torch.zeros(len(roots), n1, n1, L, dtype=torch.float64)
    G[:, torch.arange(n1), torch.arange(n1), 0] = 1
    eG = torch.zeros(len(roots), dtype=torch.int64)
    row = torch.full((plan.n,), -1, dtype=torch.int64)
    row[roots] = torch.arange(len(roots))
    if validate is not None:
        validate(0, roots, storage[roots])
    for level_index, nodes in enumerate(plan.levels[1:], start=1):
        parents = row[plan.parent[nodes]]
        G, eG = lb.matmul(G[parents], eG[parents], C[cls[nodes]], eC[cls[nodes]], L, b)
        X = G[:, :, 0, :]  # g e_0, (N, n1, L)
        denominator = X[:, 0] - X[:, dim]
        x, y = _halfspace_from_ratio(X[:, 1:dim], eG, denominator, eG, components, width, b)
        storage[nodes, : components * h] = x.reshape(len(nodes), components * h)
        storage[nodes, -1] = y
        row[nodes] = torch.arange(len(nodes))
        if validate is not None:
            validate(level_index, nodes, storage[nodes])
    return FastResult(storage, L, b)
