r"""Distances between many pairs of embedded points: tiles of ``manifold.dist``, and two certified fast paths.

* :class:`PairDistances`: ``manifold.dist`` between index tensors of one point table, in slices that keep the
  gathered storage bounded (any manifold of the protocol).
* :class:`ComponentDistances`: half-space points whose coordinates are float expansions (the MCF half-space,
  and the binary tiling while its integers fit float64), by a formula with a rigorous error bound; pairs the
  bound cannot certify fall back to ``manifold.dist``.
* :class:`PoincareScreen`: for ranking on the Poincaré ball, the nodes that may lie inside a ball around a
  row, found through one Gram-matrix product and certified against ``manifold.dist``.

:mod:`embed.metrics` evaluates embeddings with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from hyperbolic.halfspace_mcf import exact_difference

from .nearest import narrow_storage

__all__ = ["Distance", "PairDistances", "ComponentDistances", "PoincareScreen", "pair_distances", "fast_distance",
           "poincare_screen"]

Distance = Callable[[torch.Tensor], torch.Tensor]


#: Storage elements gathered per side for one ``manifold.dist`` call of the generic distances.
GATHERED_ELEMENTS = 1 << 19


class PairDistances:
    """``distances(i, j)``: manifold distances between the points of broadcastable index tensors ``i`` and
    ``j`` (a ``B x C`` tile from ``i[:, None], j[None, :]``, or pairs from equal shapes). Any manifold of the
    protocol. ``shared`` (used by subclasses) is a number of leading components all pairs have in common."""

    def __init__(self, points: torch.Tensor, manifold):
        self.points, self.manifold = points, manifold

    def order(self) -> torch.Tensor | None:
        """A node order that makes tiles cheaper (see :class:`ComponentDistances`), or None."""
        return None

    def permuted(self, order: torch.Tensor) -> PairDistances:
        return type(self)(self.points[order], self.manifold)

    def shared(self, first: int, last: int) -> int:
        """Leading components shared by all points ``first..last`` (0 when unknown)."""
        return 0

    def __call__(self, i: torch.Tensor, j: torch.Tensor, shared: int = 0) -> torch.Tensor:
        i, j = torch.broadcast_tensors(i, j)
        per_call = max(1, GATHERED_ELEMENTS // max(self.points.shape[-1], 1))
        if i.numel() <= per_call:
            return self.manifold.dist(self.points[i], self.points[j])
        # Wide storage (exact integer limbs) makes dist's temporaries per pair large: go in slices.
        shape, i, j = i.shape, i.reshape(-1), j.reshape(-1)
        out = [self.manifold.dist(self.points[i[k:k + per_call]], self.points[j[k:k + per_call]])
               for k in range(0, i.numel(), per_call)]
        return torch.cat(out).reshape(shape)


class ComponentDistances(PairDistances):
    r"""Certified fast distances between half-space points whose coordinates are float expansions.

    The MCF half-space stores its points so (:meth:`hyperbolic.HalfSpaceMCF.halfspace_components`), and the
    binary tiling's :math:`2^j(x + k)` is the exact Two-Sum of :math:`2^j k` and :math:`2^j x` wherever :math:`k`
    and the scaled floats are exact in float64 (:meth:`tiling.BinaryTiling.halfspace_components`).
    With :math:`\rho = |(x_u - x_v,\, y_u - y_v)|` and :math:`f = 1/\sqrt{2y}` per point,
    :math:`d = 2\,\mathrm{asinh}(\rho f_u f_v)`. For a pair whose horizontal expansions agree in their
    first :math:`q` components (their differences are exactly zero), the difference is taken at level
    :math:`q`: component :math:`a = x^{(q)}` and the float sum :math:`t` of the components below it (per
    point, once, with an error bound :math:`e`):
    :math:`\hat\delta = \mathrm{fl}(\mathrm{fl}(a_u - a_v) + \mathrm{fl}(t_u - t_v))`, so

    .. math::

        |\hat\delta - \delta| \le 2u\,|\hat\delta| + (2u|t_u| + e_u) + (2u|t_v| + e_v)

    (three roundings; :math:`|a_u - a_v| \le |\hat\delta| + |t_u| + |t_v|`). An error :math:`e` of
    :math:`\rho` moves the distance by at most :math:`2ce/\sqrt{1 + ((\rho - e)_+ c)^2}` with
    :math:`c = f_u f_v` (:meth:`_unsure`; about :math:`2e/\rho` far apart). Pairs where that could exceed
    ``rtol`` times the distance are recomputed at their own level (the length of their common prefix), and
    those still unsure from the difference of the whole expansions rounded once (:meth:`_by_components`) or,
    last, by the manifold's own ``dist``.

    Deep points of a tree share long prefixes (a whole subtree far out has one leading component), so
    :meth:`order` sorts the points lexicographically by their components: points with a common prefix are
    then contiguous, and :meth:`shared` gives the prefix of a whole index range, the level of a tile.

    ``horizontal``: expansions ``(N, n - 1, m)`` whose sums are the coordinates exactly; ``height``: ``(N,)``, exact.
    """

    def __init__(self, points: torch.Tensor, manifold, horizontal: torch.Tensor, height: torch.Tensor,
                 rtol: float = 1e-15):
        super().__init__(points, manifold)
        self.rtol = rtol
        self.m, self.h = horizontal.shape[-1], horizontal.shape[-2]
        self._root_h = math.sqrt(self.h) * (1 + 4 * torch.finfo(horizontal.dtype).eps)  # rounded up
        self.component = horizontal.permute(2, 0, 1).contiguous()  # (m, N, h)
        self.unit = unit = torch.finfo(horizontal.dtype).eps / 2
        # tail[q] = sum of the components below q, smallest first; slack[q] its pair-formula error terms
        self.tail = torch.zeros_like(self.component)
        below = torch.zeros_like(self.component)  # sum of |x^(p)| over p > q
        for q in range(self.m - 2, -1, -1):
            self.tail[q] = self.tail[q + 1] + self.component[q + 1]
            below[q] = below[q + 1] + self.component[q + 1].abs()
        self.slack = 2 * unit * self.tail.abs() + (self.m + 1) * unit * below
        self.height = height
        self.factor = 1.0 / torch.sqrt(2.0 * self.height)
        self.curvature = manifold.scale(horizontal)
        equal = (self.component[:, 1:] == self.component[:, :-1]).all(-1)  # (m, N - 1)
        # common prefix length of consecutive points
        self.prefix = torch.cumprod(equal.to(torch.int64), 0).sum(0)
        self._sparse_table = None

    @classmethod
    def of(cls, points: torch.Tensor, manifold, rtol: float = 1e-15) -> ComponentDistances | None:
        """For a manifold whose ``halfspace_components(points)`` gives exact expansions; None otherwise."""
        components = getattr(manifold, "halfspace_components", None)
        parts = components(points) if components is not None else None
        return None if parts is None else cls(points, manifold, *parts, rtol)

    def order(self) -> torch.Tensor:
        order = torch.arange(self.points.shape[0], device=self.points.device)
        # least significant key first: the last coordinate of the last component, ..., the first of the first
        for q in range(self.m - 1, -1, -1):
            for k in range(self.h - 1, -1, -1):
                order = order[torch.argsort(self.component[q, order, k], stable=True)]
        return order

    def permuted(self, order: torch.Tensor) -> ComponentDistances:
        return ComponentDistances(self.points[order], self.manifold, self.component[:, order].permute(1, 2, 0),
                                   self.height[order], self.rtol)

    def shared(self, first: int, last: int) -> int:
        if last <= first:
            return self.m
        k = (last - first).bit_length() - 1
        row = self._table()[k]
        return min(int(row[first]), int(row[last - (1 << k)]))

    def _table(self) -> list[torch.Tensor]:
        """Sparse table of range minima of ``prefix``: entry ``k`` holds minima over windows of ``2**k``."""
        if self._sparse_table is None:
            table = [self.prefix]
            while 2 ** len(table) <= len(self.prefix):
                step = 2 ** (len(table) - 1)
                table.append(torch.minimum(table[-1][:-step], table[-1][step:]))
            self._sparse_table = table
        return self._sparse_table

    def _range_min(self, first: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Common prefix of the points ``first..last`` (``first < last``): ``min(prefix[first:last])``."""
        table = self._table()
        span = last - first
        k = torch.floor(torch.log2(span.to(torch.float64))).to(torch.int64)
        out = torch.empty_like(first)
        for level in torch.unique(k).tolist():
            pick = k == level
            row = table[level]
            out[pick] = torch.minimum(row[first[pick]], row[last[pick] - 2**level])
        return out

    def __call__(self, i: torch.Tensor, j: torch.Tensor, shared: int = 0) -> torch.Tensor:
        distance, unsure = self._at_level(min(shared, self.m - 1), i, j)
        if bool(unsure.any()):
            a, b = i.expand(unsure.shape)[unsure], j.expand(unsure.shape)[unsure]
            distance[unsure] = self._own_level(a, b)
        return distance.mul_(self.curvature)

    def _at_level(self, q: int, i: torch.Tensor, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distances (unit curvature) of pairs that share at least ``q`` components, and where unsure."""
        total = self.component[q][i] - self.component[q][j]
        total += self.tail[q][i] - self.tail[q][j]
        bound = self._norm(total.abs().mul_(2 * self.unit).add_(self.slack[q][i]).add_(self.slack[q][j]))
        distance, rho, c = self._finish(total, i, j)
        return distance, self._unsure(bound, distance, rho, c)

    def _own_level(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Pairs ``(i, j)`` (1-D), each at the level of its own common prefix; then the component sum."""
        low, high = torch.minimum(i, j), torch.maximum(i, j)
        level = torch.full_like(i, self.m)
        distinct = low < high
        if bool(distinct.any()):
            level[distinct] = self._range_min(low[distinct], high[distinct])
        distance = torch.zeros(i.shape, dtype=self.points.dtype, device=self.points.device)
        unsure = level >= self.m  # identical expansions: the component sum handles them
        for q in torch.unique(level[~unsure]).tolist():
            pick = torch.nonzero(level == q).reshape(-1)
            value, bad = self._at_level(q, i[pick], j[pick])
            distance[pick] = value
            unsure[pick[bad]] = True
        if bool(unsure.any()):
            distance[unsure] = self._by_components(i[unsure], j[unsure])
        return distance

    def _norm(self, bound: torch.Tensor) -> torch.Tensor:
        r"""A bound on the error of ``rho`` from per-coordinate bounds ``(..., h)``:
        :math:`|\hat\rho - \rho| \le \lVert\hat\delta - \delta\rVert_2 \le \sqrt{h}\,\max_k e_k`."""
        return bound[..., 0] if self.h == 1 else bound.amax(-1) * self._root_h

    def _finish(
        self, total: torch.Tensor, i: torch.Tensor, j: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""Distance at unit curvature from the horizontal difference ``total`` ``(..., h)``, with ``rho`` and
        ``c = f_u f_v`` (:math:`d = 2\,\mathrm{asinh}(\rho c)`)."""
        eta = self.height[i] - self.height[j]
        if self.h == 1:
            rho = torch.hypot(total[..., 0], eta)  # no underflow of the squares far out
        else:
            vector = torch.cat([total, eta.unsqueeze(-1)], -1)
            big = vector.abs().amax(-1, keepdim=True)
            rho = big[..., 0] * torch.linalg.vector_norm(vector / torch.where(big > 0, big, 1.0), dim=-1)
        c = self.factor[i] * self.factor[j]
        distance = torch.asinh_(rho * c).mul_(2)
        return distance, rho, c

    def _unsure(self, error: torch.Tensor, distance: torch.Tensor, rho: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        r"""Pairs whose distance an error ``error`` of ``rho`` could move by more than ``rtol`` times itself.

        :math:`d'(\rho) = 2c/\sqrt{1 + \rho^2 c^2}` decreases in :math:`\rho`, so for a true value within
        ``error`` of ``rho`` the distance moves by at most :math:`2 c e / \sqrt{1 + ((\rho - e)_+ c)^2}`:
        about :math:`2e/\rho` far apart, and :math:`2ce`, not :math:`2e/\rho`, for close pairs.
        """
        # The slope is also at most 2 / (rho - e): that cheaper test settles all but close pairs.
        unsure = error * 2 > (rho - error).mul_(distance).mul_(self.rtol)
        close = torch.nonzero(unsure, as_tuple=True)
        if close[0].numel():
            e, r, cc = error[close], rho[close], c[close]
            low = (r - e).clamp_min_(0).mul_(cc)
            slope = cc / torch.hypot(torch.ones_like(low), low)
            unsure[close] = slope.mul_(e).mul_(2) > self.rtol * distance[close]
        return unsure

    def _by_components(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        r"""Pairs ``(i, j)`` (1-D) from the horizontal difference rounded once (unit curvature).

        :func:`~hyperbolic.halfspace_mcf.exact_difference` is Ogita, Rump and Oishi's Sum2 over the
        :math:`2m` Two-Sum terms :math:`p` of the component differences, so
        :math:`|\hat\delta - \delta| \le u|\delta| + \gamma_{2m}^2 \sum|p|` with
        :math:`\sum|p| \le (1 + u)\sum_q |\mathrm{fl}(x_u^{(q)} - x_v^{(q)})|`; doubling both terms covers
        :math:`|\delta| \le |\hat\delta|(1 + 2u)`. It needs no ordering of the components (overlapping
        expansions too).
        """
        a = self.component[:, i].movedim(0, -1)  # (P, h, m)
        b = self.component[:, j].movedim(0, -1)
        total = exact_difference(a, b)
        gamma = 2 * self.m * self.unit / (1 - 2 * self.m * self.unit)
        magnitude = (a - b).abs_().sum(-1)
        bound = self._norm(total.abs().mul_(2 * self.unit).add_(magnitude.mul_(2 * gamma**2)))
        distance, rho, c = self._finish(total, i, j)
        unsure = self._unsure(bound, distance, rho, c)
        if bool(unsure.any()):
            distance[unsure] = self.manifold.dist(self.points[i[unsure]], self.points[j[unsure]]) / self.curvature
        return distance


def pair_distances(points: torch.Tensor, manifold) -> PairDistances:
    manifold, points = narrow_storage(manifold, points)
    return ComponentDistances.of(points, manifold) or PairDistances(points, manifold)


def fast_distance(points: torch.Tensor, manifold, rtol: float = 1e-15) -> Distance | None:
    """Row distances ``distance(ids) -> (B, N)`` by the certified formula for float expansions (see
    :class:`ComponentDistances`: the MCF half-space, the binary tiling where exact), or None otherwise."""
    manifold, points = narrow_storage(manifold, points)
    pairs = ComponentDistances.of(points, manifold, rtol)
    if pairs is None:
        return None
    everything = torch.arange(points.shape[0], device=points.device)
    return lambda ids: pairs(ids.unsqueeze(1), everything.unsqueeze(0))


# ============================================================================ screened ranking distances


class PoincareScreen:
    r"""Which nodes may lie within a given distance of each row, and certified distance estimates for
    them, for the Poincaré ball, through the Gram matrix: a cheap screen in front of ``manifold.dist``.

    ``manifold.dist`` evaluates :math:`2 R \operatorname{asinh} z`,
    :math:`z = \lVert p - q\rVert / (\sqrt{1 - \lVert p\rVert^2}\sqrt{1 - \lVert q\rVert^2})` (unit-ball
    coordinates :math:`p = x / R`), forming every difference :math:`p - q` (a ``B x N x n`` temporary and
    several passes of a scaled norm). Here :math:`s^2 = \lVert p\rVert^2 + \lVert q\rVert^2 - 2\langle p, q\rangle`
    comes from one float64 matrix product, with absolute error at most
    :math:`E = \kappa(\lVert p\rVert^2 + \lVert q\rVert^2)`, :math:`\kappa = 16(n + 2)\,u_{64}`
    (:math:`u` = unit roundoff; the products and sums of length ``n`` and the three-term sum), and the
    denominators are the ones ``manifold.dist`` computes (same kernel, same bits). Where
    :math:`\hat s^2 \ge E/\delta`, the estimate :math:`\hat z` and ``manifold.dist``'s :math:`z` differ by a
    relative :math:`\rho \le E/\hat s^2 + (n + 10)\,u \le 1.25\,\delta` (rounding of both sides' norms and
    divisions; :math:`\delta = \max(4(n + 10)u, 10^{-6})`, :math:`u` of the points' dtype). Hence

    * a node with :math:`\hat z > \sinh(x)\,(1 + 16u(1 + x))(1 + 2\delta)`, :math:`x = t / 2R`, has
      ``manifold.dist`` :math:`> t` (the factor :math:`1 + 16u(1 + x)` covers the rounding of ``sinh``,
      ``asinh`` and the scalings): it is no candidate for a ball of radius :math:`t`;
    * a candidate's :math:`\hat d = 2R\operatorname{asinh}\hat z` differs from ``manifold.dist`` by at most
      :math:`m = 4R\rho + 32u\hat d` (:math:`\operatorname{asinh}' \le 1/\sqrt{1 + z^2}` turns the
      relative error of :math:`z` into an absolute one below :math:`1.34\rho`; ``asinh`` itself rounds both
      sides), so a threshold farther than :math:`m` from :math:`\hat d` sees both on the same side.

    Pairs with :math:`\hat s^2 < E/\delta` are returned as ``unsure``: only ``manifold.dist`` can place them.
    """

    def __init__(self, points: torch.Tensor, manifold):
        from hyperbolic.math import poincare as kernel

        R = manifold.scale(points)
        unit = points / R  # as manifold.dist divides its arguments
        one_minus = kernel.one_minus_squared_norm(unit)
        self.usable = bool(torch.isfinite(points).all()) and bool((one_minus > 0).all())
        if not self.usable:
            return
        self.radius = float(R)
        table = unit.to(torch.float64)
        self.squares = table.square().sum(-1)
        # s^2 = [-2p, 1, |p|^2] . [q, |q|^2, 1]: one product of n + 2 terms, within the error bound E
        ones = torch.ones_like(self.squares).unsqueeze(1)
        self.rows = torch.cat([-2 * table, ones, self.squares.unsqueeze(1)], 1)
        self.columns = torch.cat([table, self.squares.unsqueeze(1), ones], 1).T.contiguous()
        self.inverse_root = 1 / torch.sqrt(one_minus.squeeze(-1).to(torch.float64))
        self.inverse_square = self.inverse_root.square()
        u = torch.finfo(points.dtype).eps / 2
        n = points.shape[-1]
        self.kappa = 16 * (n + 2) * torch.finfo(torch.float64).eps / 2
        self.slack = max(4 * (n + 10) * u, 1e-6)
        self.relative = (n + 10) * u
        self.unit_roundoff = u
        self.largest_square = float(self.squares.max())

    def candidates(self, ids: torch.Tensor, reach: torch.Tensor):
        """The entries of rows ``ids`` (other than ``(i, ids[i])``) whose ``manifold.dist`` may be at most
        ``reach[i]`` (``(B,)`` float64; -inf for none): flat indices ``i N + v``, estimates, error bounds and
        the ``unsure`` mask."""
        s2 = torch.mm(self.rows[ids], self.columns).clamp_min_(0)
        x = reach / (2 * self.radius)
        bound = torch.sinh(x) * (1 + 16 * self.unit_roundoff * (1 + x)) * (1 + 2 * self.slack)
        bound = torch.where(x > -torch.inf, bound / self.inverse_root[ids], -1.0)
        # z <= bound  <=>  s2 / (1 - |q|^2) <= (bound sqrt(1 - |p|^2))^2 (the rearrangement rounds a few units
        # of float64 roundoff, far inside the slack); and every pair too close to screen (through the largest
        # |q|^2 here: a superset, sorted out below)
        keep = torch.mul(s2, self.inverse_square) <= torch.where(bound >= 0, bound.square(), -1.0).unsqueeze(1)
        keep |= s2 <= (self.squares[ids] + self.largest_square).mul_(self.kappa / self.slack).unsqueeze(1)
        keep[torch.arange(len(ids), device=ids.device), ids] = False
        flat = torch.nonzero(keep.view(-1)).squeeze(1)
        s2 = s2.view(-1)[flat]
        r, c = flat // keep.shape[1], flat % keep.shape[1]
        error = (self.squares[ids][r] + self.squares[c]).mul_(self.kappa)  # E
        unsure = s2 * self.slack <= error  # s2 = 0 is always unsure
        estimate = torch.sqrt(s2).mul_(self.inverse_root[ids][r]).mul_(self.inverse_root[c])
        estimate = torch.asinh_(estimate).mul_(2 * self.radius)
        rho = error.div_(s2).add_(self.relative)  # E / s2 + (n + 10) u
        margin = rho.mul_(4 * self.radius).add_(estimate, alpha=32 * self.unit_roundoff).masked_fill_(unsure, torch.inf)
        return flat, estimate, margin, unsure


def poincare_screen(points: torch.Tensor, manifold) -> PoincareScreen | None:
    from hyperbolic.poincare import PoincareBall

    if not isinstance(manifold, PoincareBall) or type(manifold).dist is not PoincareBall.dist:
        return None
    screen = PoincareScreen(points, manifold)
    return screen if screen.usable else None
