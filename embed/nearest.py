r"""Nearest-node search for the training's nearest-node table (hard negatives, leaf relocation).

Ranking all :math:`N` points by the manifold's own distance costs :math:`N^2` distances per table: on the
WordNet noun closure that is :math:`6.7 \cdot 10^9` MCF or tiling distances, many CPU-minutes each time.
Instead the points are ranked once in float64 Poincaré coordinates by one matrix product, and only the
best few are ranked again by the manifold.

Gram form
    In the unit ball, :math:`\cosh d(p, q) = 1 + 2\lVert p - q\rVert^2 / ((1 - \lVert p\rVert^2)(1 -
    \lVert q\rVert^2))`. For a fixed query :math:`p` the order of :math:`d` is that of
    :math:`\lVert p - q\rVert^2 b_q` with :math:`b_q = 1 / (1 - \lVert q\rVert^2)`, which is the product

    .. math::

        (\lVert p\rVert^2,\ 1,\ p) \cdot (b_q,\ \lVert q\rVert^2 b_q,\ -2 b_q\, q).

    The product cancels at the scale of the unit ball, so two candidates at radius :math:`r` whose keys
    differ by less than about :math:`\varepsilon\, e^{2r}` may be swapped: the float64 resolution of the
    Poincaré ball itself.

Charted search (:class:`ChartNearest`)
    For any manifold of the protocol: the float64 view ``manifold.to_poincare`` gives the ``k + slack``
    best candidates by the Gram form, and ``manifold.dist`` ranks those exactly. Where the view puts a
    point on the boundary (radius beyond float64's reach, about 37), the Gram form cannot separate those
    points and :func:`chart_nearest` returns ``None``: the caller must search exactly.
"""

from __future__ import annotations

import torch

__all__ = ["poincare_gram_nearest", "ChartNearest", "chart_nearest", "narrow_storage"]

# About 4 MB of float64 keys per block, so on a CPU each block is ranked while it is still in cache.
_BLOCK_ELEMENTS = 1 << 19


def _gram_keys(unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n + 2, N)`` keys and ``(N, 1)`` squared norms of unit-ball points ``(N, n)`` (module docstring)."""
    squares = unit.square().sum(-1, keepdim=True)
    inv_b = 1 / (1 - squares).clamp_min(torch.finfo(unit.dtype).tiny)
    keys = torch.cat([inv_b, squares * inv_b, -2 * inv_b * unit], dim=1).T.contiguous()
    return keys, squares


def _gram_topk(unit, keys, squares, rows, k):
    rows = rows.to(unit.device)
    queries = torch.cat([squares[rows], torch.ones_like(squares[rows]), unit[rows]], dim=1)  # (R, n + 2)
    block = rows.numel() if unit.is_cuda else max(1, _BLOCK_ELEMENTS // unit.shape[0])
    return torch.cat([torch.topk(queries[i:i + block] @ keys, k, dim=1, largest=False, sorted=True).indices
                      for i in range(0, rows.numel(), block)])


def poincare_gram_nearest(unit: torch.Tensor, rows: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` points nearest to each of ``unit[rows]``, nearest first (up to rounding of the
    Gram form), the query itself included.

    ``unit``: ``(N, n)`` points of the unit Poincaré ball (curvature -1); ``rows``: ``(R,)`` int64.
    Returns ``(R, k)`` int64 on ``unit``'s device.
    """
    keys, squares = _gram_keys(unit)
    return _gram_topk(unit, keys, squares, rows, k)


class ChartNearest:
    """``search(rows, k)``: the ``k`` points nearest to each of ``points[rows]`` under ``manifold.dist``,
    nearest first, the query included; candidates from the float64 Poincaré view (module docstring).

    Build it with :func:`chart_nearest`, once per set of points: the view and its keys are kept.

    Parameters
    ----------
    manifold : HyperbolicManifold
        Any manifold of the protocol.
    points : torch.Tensor
        ``(N, storage_dim)`` points of ``manifold``.
    unit : torch.Tensor
        ``(N, dim)`` their float64 view in the unit ball, strictly inside it.
    slack : int
        Candidates beyond ``k`` that the exact ranking sees.
    """

    def __init__(self, manifold, points: torch.Tensor, unit: torch.Tensor, slack: int):
        self.manifold, self.points, self.unit, self.slack = manifold, points, unit, slack
        self.keys, self.squares = _gram_keys(unit)

    def __call__(self, rows: torch.Tensor, k: int) -> torch.Tensor:
        n = self.points.shape[0]
        if not 1 <= k <= n:
            raise ValueError(f"k must lie in [1, {n}], got {k}")
        rows = rows.to(self.points.device)
        candidates = _gram_topk(self.unit, self.keys, self.squares, rows, min(n, k + self.slack))
        distance = self.manifold.dist(self.points[rows].unsqueeze(1), self.points[candidates])
        # the query is its own nearest point even where dist rounds a neighbour to 0
        distance = torch.where(candidates == rows.unsqueeze(1), -1.0, distance)
        order = torch.topk(distance, k, dim=1, largest=False, sorted=True).indices
        return candidates.gather(1, order)


def chart_nearest(manifold, points: torch.Tensor, *, slack: int = 32) -> ChartNearest | None:
    """A :class:`ChartNearest` for ``points`` of ``manifold``, or ``None`` where the float64 Poincaré view
    cannot rank them (a point on or beyond the view's boundary, or not finite)."""
    with torch.no_grad():
        view = manifold.to_poincare(points).to(torch.float64)
        unit = view / manifold.scale(view)
        squares = unit.square().sum(-1)
    if not bool(torch.isfinite(squares).all()) or bool((squares >= 1).any()):
        return None
    return ChartNearest(*narrow_storage(manifold, points), unit, slack)


def narrow_storage(manifold, points: torch.Tensor):
    """``(manifold, points)`` in the narrowest storage with the same distances: a tiling's points in their limbs
    in use (:meth:`tiling.BinaryTiling.take_rows`), others unchanged. For code that reads all points many times."""
    take = getattr(manifold, "take_rows", None)
    if take is None:
        return manifold, points
    return take(points, torch.arange(points.shape[0], device=points.device))
