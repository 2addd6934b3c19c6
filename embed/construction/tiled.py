r"""The 2-D construction natively in the L-tiling model (:class:`tiling.LTiling`), exact at any depth.

Every placed node carries its **frame**, the isometry :math:`\Phi = L\,T\,R\,M` that maps the origin to the
node and the tangent :math:`e_1` to the unit direction back to its parent (roots: the identity):

* :math:`T \in G`, the exact integer group element of the node's tile (multi-limb, :mod:`tiling.bigint`);
* :math:`M`, a float64 Lorentz matrix whose first column :math:`u = M e_0` is the stored point of the
  fundamental domain :math:`F`, so every entry of :math:`M` is bounded (:math:`u_0 \le \sqrt3`).

A child in slot :math:`k` at distance :math:`s` is :math:`\Phi\,\mathrm{Rot}(\theta)\,B(s)\,\mathrm{Rot}(\pi)`,
with the slot rule of the other paths (:mod:`embed.construction.fast`): root children at the Poincaré angle
:math:`\theta = 2\pi j/d`, child :math:`k = 1..c` of another node at :math:`\theta = -2\pi k/(c+1)` from the
parent direction. :math:`\mathrm{Rot}` turns the tangent columns, :math:`B(\delta)` is the boost along
:math:`e_1` (:math:`c_0 \mapsto \cosh\delta\,c_0 + \sinh\delta\,c_1`, :math:`c_1 \mapsto \sinh\delta\,c_0 +
\cosh\delta\,c_1`).

The boost is never taken in one float step (that would round a point at radius :math:`s` of the local chart,
losing :math:`e^s` ulps). It is split into :math:`n = \lceil s_{\max} \rceil` steps of :math:`\delta = s/n \le 1`;
after each, :math:`u = M e_0` is re-normalised into :math:`F` (:func:`tiling.reduction.reduce_into_domain`,
carrying the tangent columns with the same exact steps :math:`L V R`), and :math:`M` is re-orthonormalised in
the Minkowski form. Every float operation thus happens within a bounded distance of its tile; the growth goes
into :math:`V`, accumulated exactly as float64 integers and multiplied into the multi-limb :math:`T` once per
level (earlier if it approaches :math:`2^{53}`).

Error. Each step perturbs the frame by :math:`O(\varepsilon)`: a rigid motion of the subtree about the node,
which changes distances across it by :math:`O(\varepsilon)` (tree-like geodesics pass within :math:`O(1)` of
the node), so a distance carries an absolute error of about (depth x steps per edge) :math:`\varepsilon`,
whatever the radius. All nodes of one depth are one batched tensor operation.
"""

from __future__ import annotations

import math

import torch

from tiling import LTiling
from tiling.reduction import reduce_into_domain

from .plan import TreePlan

__all__ = ["build_ltiling", "MAX_STEP", "manifold_for_radius"]

#: Longest boost taken in one float step (hyperbolic units).
MAX_STEP = 1.0
# Accumulated exact float64 integers are multiplied into T before a product could reach 2^53.
_EXACT_BOUND = float(2**53)


def manifold_for_radius(radius: float) -> LTiling:
    """The L-tiling model whose integer limbs hold every point (and every step) up to ``radius``."""
    return LTiling(max_radius=radius + 2.0)


def _minkowski(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return -a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _orthonormalise(c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor):
    """Minkowski Gram–Schmidt of a frame: ``c0`` on the hyperboloid, ``c1, c2`` unit tangents at ``c0``."""
    c1 = c1 + _minkowski(c0, c1).unsqueeze(-1) * c0
    c1 = c1 / torch.sqrt(_minkowski(c1, c1)).unsqueeze(-1)
    c2 = c2 + _minkowski(c0, c2).unsqueeze(-1) * c0 - _minkowski(c1, c2).unsqueeze(-1) * c1
    c2 = c2 / torch.sqrt(_minkowski(c2, c2)).unsqueeze(-1)
    return c1, c2


def _turn(plan: TreePlan, nodes: torch.Tensor) -> torch.Tensor:
    """Angle of each node's direction in its parent's frame (the slot rule of the other paths)."""
    parents = plan.parent[nodes]
    slot = plan.slot[nodes].to(torch.float64)
    slots = plan.slots[nodes].to(torch.float64)
    parent_is_root = plan.parent[parents] < 0
    return torch.where(parent_is_root, 2 * math.pi * slot / slots, -2 * math.pi * slot / slots)


def _walk(manifold: LTiling, T: torch.Tensor, V: torch.Tensor, frame: list, steps: int, delta: torch.Tensor):
    """Boost every frame by ``steps x delta`` along its ``c1``, re-normalising into ``F`` after each step.

    ``T`` ``(N, 3, 3, limbs)`` float64 limbs, ``V`` ``(N, 3, 3)`` exact float64 integers not yet absorbed
    (the represented frame is :math:`L\\,T V R\\,M`), ``frame`` = ``[c0, c1, c2]`` columns of :math:`M`.
    """
    c0, c1, c2 = frame
    ch, sh = torch.cosh(delta).unsqueeze(-1), torch.sinh(delta).unsqueeze(-1)
    everyone = torch.arange(len(T))
    for _ in range(steps):
        c0, c1 = ch * c0 + sh * c1, sh * c0 + ch * c1
        pending = everyone
        while pending.numel():
            w, (v1, v2), step, paused = reduce_into_domain(c0[pending], [c1[pending], c2[pending]])
            c0[pending], c1[pending], c2[pending] = w, v1, v2
            # Keep V V_step exact: flush V into T first where the product could pass 2^53.
            bound = 3 * V[pending].abs().amax((-1, -2)) * step.abs().amax((-1, -2))
            flush = pending[bound >= _EXACT_BOUND]
            if flush.numel():  # _absorb: exact multi-limb T V, PrecisionError past the manifold's limbs
                T[flush] = manifold._absorb(T[flush], V[flush], flush)
                V[flush] = torch.eye(3, dtype=V.dtype)
            V[pending] = V[pending] @ step
            pending = pending[paused]
        c1, c2 = _orthonormalise(c0, c1, c2)
    return T, V, [c0, c1, c2]


def build_ltiling(plan: TreePlan, tau: float, manifold: LTiling, validate=None) -> torch.Tensor:
    """Storage rows ``(n, manifold.storage_dim)`` of every node, level by level.

    ``validate(level, nodes, storage_rows)`` is called after every level (it may raise).
    """
    dtype = torch.float64
    limbs = manifold.limbs
    storage = torch.zeros(plan.n, manifold.storage_dim, dtype=dtype)
    roots = plan.levels[0]
    identity_limbs = torch.zeros(3, 3, limbs, dtype=dtype)
    identity_limbs[torch.arange(3), torch.arange(3), 0] = 1
    T = identity_limbs.expand(len(roots), 3, 3, limbs).clone()
    M = torch.eye(3, dtype=dtype).expand(len(roots), 3, 3).clone()  # columns c0, c1, c2
    storage[roots] = torch.cat([M[..., 0], T.reshape(len(roots), -1)], -1)
    row = torch.full((plan.n,), -1, dtype=torch.int64)
    row[roots] = torch.arange(len(roots))
    if validate is not None:
        validate(0, roots, storage[roots])
    for level_index, nodes in enumerate(plan.levels[1:], start=1):
        parents = row[plan.parent[nodes]]
        T_level = T[parents]
        c0, c1, c2 = (M[parents, :, i] for i in range(3))
        theta = _turn(plan, nodes).unsqueeze(-1)
        c1, c2 = torch.cos(theta) * c1 + torch.sin(theta) * c2, -torch.sin(theta) * c1 + torch.cos(theta) * c2
        s = tau * plan.weight[nodes]
        steps = max(1, math.ceil(float(s.max()) / MAX_STEP))
        V = torch.eye(3, dtype=dtype).expand(len(nodes), 3, 3).clone()
        T_level, V, (c0, c1, c2) = _walk(manifold, T_level, V, [c0, c1, c2], steps, s / steps)
        T = manifold._absorb(T_level, V, nodes)
        M = torch.stack([c0, -c1, -c2], -1)  # Rot(pi): the parent direction becomes c1
        storage[nodes] = torch.cat([c0, T.reshape(len(nodes), -1)], -1)
        row[nodes] = torch.arange(len(nodes))
        if validate is not None:
            validate(level_index, nodes, storage[nodes])
    return storage
