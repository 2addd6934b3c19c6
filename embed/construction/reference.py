r"""The slow reference path: the construction in mpmath at a chosen number of bits, node by node.

* 2-D: the published algorithm (Sala et al. 2018) in the Poincaré disk with complex mpmath numbers. The
  root sits at 0 and its ``d`` children at :math:`\tanh(s/2) e^{2\pi i j/d}`. A node :math:`h` at
  :math:`x \ne 0` is moved to 0 by the circle inversion
  :math:`\sigma(z) = a + (|a|^2 - 1)/\overline{(z - a)}`, :math:`a = x/|x|^2` (an isometric involution;
  :math:`|a|^2 - 1 = (1 - |x|^2)/|x|^2` is formed without cancellation); its parent lands at angle
  :math:`\theta_0`, and child :math:`k = 1..c` goes to
  :math:`\sigma(\tanh(s_k/2)\, e^{i(\theta_0 + 2\pi k/(c+1))})`.
* r-D: the same algorithm as the fast path, in mpmath: every node carries a Lorentz matrix :math:`g`
  (its position is :math:`g e_0`, its parent lies in direction :math:`e_1` of its frame) and a child is
  :math:`g\, H_k\, B(s)\, P` (Householder :math:`H_k: e_1 \mapsto z_k`, boost :math:`B(s)` along
  :math:`e_1`, :math:`P` flips :math:`e_1`), with the directions :math:`z_k` of :mod:`embed.codes`.

Results are exact-enough mpmath Lorentz tuples at curvature -1, for any manifold's ``from_reference``.
"""

from __future__ import annotations

import mpmath
import torch

from ..codes import frame_directions
from .plan import TreePlan

__all__ = ["reference_2d", "reference_rd", "poincare_to_lorentz", "lorentz_constants"]


def reference_2d(plan: TreePlan, tau: float, bits: int, progress=None) -> list[mpmath.mpc]:
    """Poincaré-disk positions (``mpc``) of every node, computed at ``bits`` bits (see module notes)."""
    with mpmath.workprec(bits):
        tau_m = mpmath.mpf(tau)
        parent = plan.parent.tolist()
        slot = plan.slot.tolist()
        slots = plan.slots.tolist()
        weight = plan.weight.tolist()
        positions: list = [None] * plan.n
        radius_cache: dict = {}

        def radius(w):
            if w not in radius_cache:
                radius_cache[w] = mpmath.tanh(tau_m * mpmath.mpf(w) / 2)
            return radius_cache[w]

        two_pi = 2 * mpmath.pi
        done = 0
        for level_index, level in enumerate(plan.levels):
            nodes = level.tolist()
            if level_index == 0:
                for node in nodes:
                    positions[node] = mpmath.mpc(0)
                continue
            # Group the level's children by parent (they come in BFS order, parents' order first).
            by_parent: dict[int, list[int]] = {}
            for node in nodes:
                by_parent.setdefault(parent[node], []).append(node)
            for h, kids in by_parent.items():
                x = positions[h]
                if parent[h] < 0:
                    for node in kids:
                        turn = 2 * mpmath.mpf(slot[node]) / slots[node]
                        positions[node] = radius(weight[node]) * mpmath.expjpi(turn)
                    continue
                norm2 = x.real**2 + x.imag**2
                a = x / norm2
                factor = (1 - norm2) / norm2

                def sigma(z, a=a, factor=factor):
                    return a + factor / mpmath.conj(z - a)

                p0 = sigma(positions[parent[h]])
                theta0 = mpmath.atan2(p0.imag, p0.real)
                for node in kids:
                    angle = theta0 + two_pi * slot[node] / slots[node]
                    positions[node] = sigma(radius(weight[node]) * mpmath.expj(angle))
            done += len(nodes)
            if progress is not None:
                progress(done, plan.n)
        return positions


def poincare_to_lorentz(points, bits: int) -> list[tuple]:
    r"""Lorentz tuples of Poincaré points (``mpc`` in 2-D or sequences of ``mpf``):
    :math:`X_0 = (1+|p|^2)/(1-|p|^2)`, :math:`X_i = 2 p_i/(1-|p|^2)`."""
    out = []
    with mpmath.workprec(bits):
        for p in points:
            coords = [p.real, p.imag] if isinstance(p, mpmath.mpc) else list(p)
            norm2 = mpmath.fsum(c * c for c in coords)
            denominator = 1 - norm2
            out.append(tuple([(1 + norm2) / denominator] + [2 * c / denominator for c in coords]))
    return out


def lorentz_constants(K: int, dim: int, s, method: str, root: bool, digits: int) -> list[list[list]]:
    """The matrices :math:`H_k B(s) P` for the ``K`` slots of one node (non-root: slot 0 = parent,
    returned anyway) as mpmath ``(dim+1) x (dim+1)`` lists."""
    Z = frame_directions(K, dim, method, root, digits)
    with mpmath.workdps(digits):
        ch, sh = mpmath.cosh(s), mpmath.sinh(s)
        out = []
        for z in Z:
            q = [mpmath.mpf(1) - z[0]] + [-c for c in z[1:]]  # e_1 - z
            qq = mpmath.fsum(c * c for c in q)
            n = dim + 1
            # H acts on spatial coordinates 1..dim: H = I - 2 q q^T / |q|^2 (identity when z = e_1).
            H = [[mpmath.mpf(int(i == j)) for j in range(n)] for i in range(n)]
            if qq != 0:
                for i in range(dim):
                    for j in range(dim):
                        H[i + 1][j + 1] -= 2 * q[i] * q[j] / qq
            # B(s) P: columns e_0 -> (ch, sh e_1), e_1 -> -(sh, ch e_1), others fixed.
            BP = [[mpmath.mpf(int(i == j)) for j in range(n)] for i in range(n)]
            BP[0][0], BP[1][0] = ch, sh
            BP[0][1], BP[1][1] = -sh, -ch
            M = [[mpmath.fsum(H[i][k] * BP[k][j] for k in range(n)) for j in range(n)] for i in range(n)]
            out.append(M)
        return out


def reference_rd(plan: TreePlan, tau: float, dim: int, bits: int, method: str = "codes",
                 progress=None) -> list[tuple]:
    """Lorentz tuples of every node: the frame algorithm of the module notes in ``bits``-bit mpmath."""
    digits = int(bits * 0.30103) + 10
    with mpmath.workprec(bits):
        n1 = dim + 1
        parent = plan.parent.tolist()
        slot = plan.slot.tolist()
        slots = plan.slots.tolist()
        weight = plan.weight.tolist()
        frames: list = [None] * plan.n
        cache: dict = {}
        identity = [[mpmath.mpf(int(i == j)) for j in range(n1)] for i in range(n1)]
        done = 0
        for level_index, level in enumerate(plan.levels):
            for node in level.tolist():
                h = parent[node]
                if h < 0:
                    frames[node] = identity
                    continue
                root = parent[h] < 0
                key = (slots[node], weight[node], root)
                if key not in cache:
                    s = mpmath.mpf(tau) * mpmath.mpf(weight[node])
                    cache[key] = lorentz_constants(slots[node], dim, s, method, root, digits)
                M = cache[key][slot[node]]
                G = frames[h]
                frames[node] = [[mpmath.fsum(G[i][k] * M[k][j] for k in range(n1)) for j in range(n1)]
                                for i in range(n1)]
            done += len(level)
            if progress is not None and level_index:
                progress(done, plan.n)
        return [tuple(F[i][0] for i in range(n1)) for F in frames]


def to_tensor_lorentz(points: list[tuple]) -> torch.Tensor:
    """Float64 Lorentz coordinates of reference tuples (lossy far out; for plots and quick checks)."""
    return torch.tensor([[float(c) for c in p] for p in points], dtype=torch.float64)
