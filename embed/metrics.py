r"""Exact graph-embedding metrics: edge-MAP, closure-MAP, mean rank, distortion.

Every metric compares embedded distances :math:`d_E(a, v) = d(x_a, x_v) / \text{scale}` (``scale`` = tau
for the combinatorial construction) with the graph. Distances come from the manifold's own ``dist``
(any representation of the protocol), computed row chunk by row chunk: a chunk of ``B`` rows is broadcast
against all ``N`` points, so memory stays at a few ``B x N`` tensors whatever the graph size. All rows are
evaluated unless ``rows`` asks for a random sample, and the result says which. Ranks alone
(``distortion=False``) only need each row's nodes inside the ball of its farthest neighbour; on the Poincaré
ball a certified Gram-matrix screen finds them (:class:`_PoincareScreen`), and the ranks are still exactly
those of ``manifold.dist``.

Definitions (``../shared/notes/combinatorial.md`` section 4)
------------------------------------------------------------
Let :math:`N(a)` be the neighbours of row :math:`a` (graph adjacency, or the transitive closure) and, for
:math:`b \in N(a)`, :math:`R(a, b) = \{v \ne a : d_E(a, v) \le d_E(a, b)\}`, the smallest ball around
:math:`a` that contains :math:`b`.

* **edge-MAP** / **closure-MAP**:
  :math:`\mathrm{AP}(a) = |N(a)|^{-1} \sum_{b \in N(a)} |N(a) \cap R(a,b)| / |R(a,b)|`, averaged over the
  rows with at least one neighbour. This is what scikit-learn's ``average_precision_score`` computes, and
  it counts tied nodes as ranked before :math:`b`.
* **mean rank** (Nickel & Kiela): the rank of :math:`b` among :math:`b` and the non-neighbours of
  :math:`a`, :math:`1 + |R(a,b) \setminus N(a)|`, averaged over all (row, neighbour) pairs.
* **Ties**: :math:`d_E(a, v) \le d_E(a, b)\,(1 + \text{tie\_rtol})`: relative differences below
  ``tie_rtol`` (default 1e-12) are ties. The construction creates exact ties (all children of a node lie at
  distance tau from it), which rounding would otherwise break at random.
* **Row exclusion**: :math:`a` is excluded by index, never as "the first entry of the sorted row".
* **Average distortion** :math:`D_{avg}` = mean of :math:`|d_E - d_G| / d_G` over the ordered pairs
  :math:`(a, v)`, :math:`a` a visited row, :math:`v \ne a` in the same connected component (on all rows
  each unordered pair counts twice, which leaves the mean unchanged).
* **Worst-case distortion** :math:`D_{wc} = \max d_E/d_G \cdot \max d_G/d_E` over the same pairs (global
  maxima). ``d_wc_row`` is the other published variant, the maximum over rows of the row's product.
  On sampled rows both are lower bounds.
* **Non-finite and zero distances** are counted (``nonfinite``, ``zero``), never skipped: a pair with
  :math:`d_E = 0` has relative error 1 and makes :math:`D_{wc}` infinite; a non-finite :math:`d_E` makes
  :math:`D_{avg}` and :math:`D_{wc}` undefined (reported as ``None``) and ranks behind every finite one.

:math:`d_G` is the shortest-path distance in the graph, edge directions ignored: hop counts by a
bit-parallel breadth-first search (64 sources per machine word), weighted graphs by Dijkstra (scipy).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch

from .graphs import Graph, GraphError

__all__ = [
    "Metrics",
    "evaluate",
    "fast_distance",
    "graph_distances",
    "neighbourhoods",
    "transitive_reduction",
    "is_transitively_closed",
]

Distance = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Metrics:
    """Results of :func:`evaluate`; ``as_json()`` gives the machine-readable form.

    Attributes
    ----------
    edge_map, mean_rank : float
        edge-MAP and mean rank with :math:`N(a)` = graph neighbours.
    closure_map, closure_mean_rank : float or None
        The same against the transitive closure, when one was given (``closure_variant`` says which).
    d_avg, d_wc, d_wc_row : float or None
        Distortion; None when a non-finite distance makes it undefined.
    nonfinite, zero : int
        Ordered pairs (visited row, other node) with a NaN/infinite or a zero embedded distance.
    rows, total_rows : int
        Rows evaluated and rows in the graph; ``sampled`` is True when ``rows < total_rows`` by request.
    edge_map_se, closure_map_se : float or None
        Standard error of the MAP over sampled rows (None on all rows: the value is exact).
    pairs : int
        Ordered pairs that entered the distortion.
    seconds : float
        Wall time of the evaluation.
    """

    edge_map: float
    mean_rank: float
    d_avg: float | None
    d_wc: float | None
    d_wc_row: float | None
    nonfinite: int
    zero: int
    rows: int
    total_rows: int
    sampled: bool
    pairs: int
    seconds: float
    closure_map: float | None = None
    closure_mean_rank: float | None = None
    closure_variant: str | None = None
    edge_map_se: float | None = None
    closure_map_se: float | None = None
    tie_rtol: float = 1e-12
    scale: float = 1.0
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        """A JSON-ready dictionary (NaN and infinities become None); ``closure_*`` only when computed."""
        out = {}
        for key, value in asdict(self).items():
            if key.startswith("closure") and self.closure_map is None:
                continue
            if key.endswith("_se") and value is None:
                continue
            if key == "extra":
                out.update(value)
                continue
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            out[key] = value
        return out

    def summary(self) -> str:
        """A few human-readable lines."""

        def fmt(value, digits=4):
            return "undefined" if value is None else f"{value:.{digits}f}"

        rows = f"{self.rows} of {self.total_rows} rows" + (" (random sample)" if self.sampled else " (all)")
        lines = [f"edge-MAP {fmt(self.edge_map)}" + (f" ± {self.edge_map_se:.4f}" if self.edge_map_se else "")
                 + f", mean rank {fmt(self.mean_rank, 3)}  [{rows}]"]
        if self.closure_map is not None:
            lines.append(f"closure-MAP ({self.closure_variant}) {fmt(self.closure_map)}, "
                         f"mean rank {fmt(self.closure_mean_rank, 3)}")
        bound = " (lower bound: sampled rows)" if self.sampled else ""
        lines.append(f"D_avg {fmt(self.d_avg)}, D_wc {fmt(self.d_wc, 3)} (row variant {fmt(self.d_wc_row, 3)})"
                     f"{bound} over {self.pairs:,} ordered pairs")
        lines.append(f"non-finite distances {self.nonfinite}, zero distances {self.zero}; "
                     f"ties: relative difference <= {self.tie_rtol:g}; {self.seconds:.1f} s")
        return "\n".join(lines)


# ============================================================================ neighbourhoods


def neighbourhoods(graph: Graph, variant: Literal["symmetric", "directed"] = "symmetric"
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Deduplicated neighbour lists as CSR ``(indptr, indices)``, self loops removed.

    ``"symmetric"``: edges in both directions (the graph's adjacency; for a closure, ancestors and
    descendants). ``"directed"``: out-neighbours only (for a closure stored child -> ancestor: ancestors).
    """
    n = graph.num_nodes
    u, v = graph.edges[:, 0], graph.edges[:, 1]
    if variant == "symmetric" or not graph.directed:
        rows, cols = torch.cat([u, v]), torch.cat([v, u])
    elif variant == "directed":
        rows, cols = u, v
    else:
        raise ValueError(f"variant must be 'symmetric' or 'directed', got {variant!r}")
    keep = rows != cols
    key = torch.unique(rows[keep] * n + cols[keep])  # sorted: by row, then column
    rows, cols = key // n, key % n
    indptr = torch.zeros(n + 1, dtype=torch.int64)
    torch.cumsum(torch.bincount(rows, minlength=n), 0, out=indptr[1:])
    return indptr, cols


def _sparse(graph: Graph):
    import scipy.sparse as sp

    n = graph.num_nodes
    u, v = graph.edges[:, 0].numpy(), graph.edges[:, 1].numpy()
    return sp.csr_matrix((np.ones(len(u), dtype=np.int64), (u, v)), shape=(n, n))


def is_transitively_closed(graph: Graph) -> bool:
    """True when a directed graph with at least one path of length 2 contains all its 2-step shortcuts."""
    if not graph.directed or graph.num_edges == 0:
        return False
    adjacency = _sparse(graph)
    adjacency.data[:] = 1
    two = (adjacency @ adjacency).tocoo()
    if two.nnz == 0:
        return False
    two.setdiag(0)
    two.eliminate_zeros()
    if two.nnz == 0:
        return False
    inside = two.multiply(adjacency).tocoo()
    inside.eliminate_zeros()
    return inside.nnz == two.nnz


def transitive_reduction(graph: Graph) -> Graph:
    """The transitive reduction of a transitively closed DAG: edges not implied by two others.

    An edge ``(u, w)`` is kept unless some ``v`` has edges ``(u, v)`` and ``(v, w)`` (for a closure this is
    exactly the Hasse diagram, e.g. the hypernym DAG of a WordNet closure).
    """
    adjacency = _sparse(graph)
    adjacency.data[:] = 1
    two = (adjacency @ adjacency).tocsr()
    two.data[:] = 1
    edges = graph.edges.numpy()
    implied = np.asarray(two[edges[:, 0], edges[:, 1]]).reshape(-1) > 0
    keep = torch.from_numpy(~implied)
    weights = None if graph.weights is None else graph.weights[keep]
    return Graph(graph.names, graph.edges[keep], weights, graph.directed, graph.source)


# ============================================================================ graph distances


class _GraphDistances:
    """Shortest-path distances from chunks of sources, edge directions ignored."""

    def __init__(self, graph: Graph):
        self.n = graph.num_nodes
        indptr, indices = neighbourhoods(graph.as_undirected() if graph.directed else graph)
        self.weighted = graph.weights is not None and bool((graph.weights != 1).any())
        if self.weighted:
            import scipy.sparse as sp

            u, v = graph.edges[:, 0].numpy(), graph.edges[:, 1].numpy()
            w = graph.weights.numpy()
            rows, cols, data = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([w, w])
            order = np.lexsort((data, cols, rows))  # repeated pairs: keep the lightest edge
            rows, cols, data = rows[order], cols[order], data[order]
            first = np.ones(len(rows), dtype=bool)
            first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
            self.matrix = sp.csr_matrix((data[first], (rows[first], cols[first])), shape=(self.n, self.n))
        else:
            self.indptr = indptr.numpy()
            self.indices = indices.numpy()
            self.degree = np.diff(self.indptr)
            self.starts = np.minimum(self.indptr[:-1], max(len(self.indices) - 1, 0))

    def __call__(self, sources: np.ndarray) -> np.ndarray:
        """``(len(sources), n)`` distances (float32 hop counts, exact; float64 for weighted graphs), ``inf``
        between components."""
        if self.weighted:
            from scipy.sparse.csgraph import dijkstra

            return dijkstra(self.matrix, directed=True, indices=sources)
        return self._bfs(np.asarray(sources, dtype=np.int64))

    def _bfs(self, sources: np.ndarray) -> np.ndarray:
        # Bit-parallel BFS: bit s of word w of node v says "source 64w + s has reached v". Each level ORs
        # the frontier words of all neighbours (one gather and one segmented reduction for all sources),
        # and the level number is written in binary into bit planes, so no per-source work is needed.
        n, count = self.n, len(sources)
        words = (count + 63) // 64
        visited = np.zeros((n, words), dtype=np.uint64)
        bit = np.left_shift(np.uint64(1), (np.arange(count) % 64).astype(np.uint64))
        np.bitwise_or.at(visited, (sources, np.arange(count) // 64), bit)
        frontier = visited.copy()
        planes: list[np.ndarray] = []
        level = 0
        has_neighbours = self.degree > 0
        while True:
            level += 1
            if len(self.indices) == 0:
                break
            reach = np.bitwise_or.reduceat(frontier[self.indices], self.starts, axis=0)
            reach[~has_neighbours] = 0
            new = reach & ~visited
            if not new.any():
                break
            visited |= new
            frontier = new
            while len(planes) < level.bit_length():
                planes.append(np.zeros((n, words), dtype=np.uint64))
            for j in range(level.bit_length()):
                if (level >> j) & 1:
                    planes[j] |= new
        dtype = np.uint8 if len(planes) <= 8 else np.uint16
        levels = np.zeros((n, words * 64), dtype=dtype)
        for j, plane in enumerate(planes):
            levels |= np.unpackbits(plane.view(np.uint8), axis=1, bitorder="little").astype(dtype) << dtype(j)
        out = levels[:, :count].T.astype(np.float32)
        reached = np.unpackbits(visited.view(np.uint8), axis=1, bitorder="little")[:, :count].T
        out[reached == 0] = np.inf
        return out


def graph_distances(graph: Graph, sources) -> torch.Tensor:
    """Shortest-path distances ``(len(sources), n)`` from the given source nodes (float64, ``inf`` when
    unreachable; edge directions ignored; weights used when the graph has them)."""
    sources = np.asarray(torch.as_tensor(sources, dtype=torch.int64).reshape(-1))
    return torch.from_numpy(_GraphDistances(graph)(sources)).to(torch.float64)


# ============================================================================ ranking


class _Ranker:
    """Accumulates AP and rank sums for one neighbourhood (edges or closure)."""

    def __init__(self, indptr: torch.Tensor, indices: torch.Tensor, tie_rtol: float):
        self.indptr, self.indices, self.tie_rtol = indptr, indices, tie_rtol
        self.ap_sum = 0.0
        self.ap_square_sum = 0.0
        self.rows = 0
        self.rank_sum = 0.0
        self.pairs = 0

    def neighbours(self, rows: torch.Tensor):
        """For the rows with neighbours: their positions in ``rows``, the ``(b, W)`` padded neighbour ids,
        the ``(b, W)`` mask of real entries and the counts; None when no row has a neighbour."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        counts = ends - starts
        has = counts > 0
        if not bool(has.any()):
            return None
        rows_local = torch.nonzero(has).reshape(-1)
        starts, counts = starts[has], counts[has]
        position = torch.arange(int(counts.max()))
        valid = position < counts[:, None]
        neighbour = self.indices[(starts[:, None] + position).clamp_max(len(self.indices) - 1)]
        return rows_local, neighbour, valid, counts

    def thresholds(self, nd: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sorted neighbour distances and the tie thresholds ``d (1 + tie_rtol)`` (+inf on padding)."""
        nd_sorted = torch.sort(torch.where(valid, nd, torch.inf), dim=1).values
        huge = torch.finfo(nd.dtype).max
        return nd_sorted, torch.where(valid, (nd_sorted * (1 + self.tie_rtol)).clamp_max(huge), torch.inf)

    def add(self, rows: torch.Tensor, distances: torch.Tensor) -> None:
        """``distances``: ``(B, N)`` with the row's own entry already set to +inf, non-finite -> +inf."""
        found = self.neighbours(rows)
        if found is None:
            return
        rows_local, neighbour, valid, counts = found
        nd = distances[rows_local.unsqueeze(1), neighbour]
        _, threshold = self.thresholds(nd, valid)
        largest = torch.full((len(rows),), -torch.inf, dtype=distances.dtype)
        largest[rows_local] = threshold.gather(1, (counts - 1).unsqueeze(1)).squeeze(1)
        r, c = torch.nonzero(distances <= largest.unsqueeze(1), as_tuple=True)
        local = torch.full((len(rows),), -1, dtype=torch.int64)
        local[rows_local] = torch.arange(len(rows_local))
        self.add_entries(found, nd, local[r], distances[r, c])

    def add_entries(self, found, nd: torch.Tensor, r: torch.Tensor, values: torch.Tensor) -> None:
        """Accumulate rows from their neighbour distances ``nd`` (``(b, W)``, as :meth:`neighbours` pads
        them) and the entries ``values`` (rows ``r`` of ``found``) that may lie inside the ball of the
        farthest neighbour: every other node ``v != a`` must lie strictly outside it."""
        rows_local, neighbour, valid, counts = found
        width = neighbour.shape[1]
        nd_sorted, threshold = self.thresholds(nd, valid)
        # |R(a,b)|: number of v with d(a,v) <= threshold; searchsorted gives #thresholds below d(a,v), in
        # one batched call on the entries laid out as (rows x most entries of a row), padded with +inf.
        per_row = torch.bincount(r, minlength=len(rows_local))
        most = int(per_row.max()) if len(r) else 0
        position = r * most + torch.arange(len(r)) - (torch.cumsum(per_row, 0) - per_row)[r]
        padded = torch.full((len(rows_local) * most,), torch.inf, dtype=values.dtype)
        padded[position] = values
        below = torch.searchsorted(threshold, padded.view(len(rows_local), most), right=False).view(-1)[position]
        histogram = torch.zeros(len(rows_local), width + 1, dtype=torch.int64)
        histogram.index_put_((r, below), torch.ones_like(below), accumulate=True)
        ball = torch.cumsum(histogram, 1)[:, :width]
        inside = torch.searchsorted(nd_sorted.contiguous(), threshold.contiguous(), right=True)
        ratio = torch.where(valid, inside.to(torch.float64) / ball.clamp_min(1).to(torch.float64), 0.0)
        ap = ratio.sum(1) / counts.to(torch.float64)
        rank = torch.where(valid, (1 + ball - inside).to(torch.float64), 0.0)
        self.ap_sum += float(ap.sum())
        self.ap_square_sum += float(ap.square().sum())
        self.rows += int(ap.numel())
        self.rank_sum += float(rank.sum())
        self.pairs += int(counts.sum())

    def result(self, sampled: bool) -> tuple[float, float, float | None]:
        if self.rows == 0:
            return math.nan, math.nan, None
        mean = self.ap_sum / self.rows
        se = None
        if sampled and self.rows > 1:
            variance = max(self.ap_square_sum / self.rows - mean * mean, 0.0) * self.rows / (self.rows - 1)
            se = math.sqrt(variance / self.rows)
        return mean, self.rank_sum / self.pairs, se


# ============================================================================ certified fast distances


def fast_distance(points: torch.Tensor, manifold, rtol: float = 1e-15) -> Distance | None:
    r"""A faster exact row-chunk distance for the MCF half-space, or None for other manifolds.

    The MCF model's ``dist`` rounds :math:`x_u - x_v` exactly (Two-Sum cascades over every component).
    Here the component differences :math:`d_i = \mathrm{fl}(x_u^{(i)} - x_v^{(i)})` are summed from the
    smallest up in plain floats, with the a-priori bound
    :math:`|\hat\delta - \delta| \le (m + 2)\,u \sum_i |d_i|` (each difference and each partial sum
    rounds once; equal leading components cancel exactly). Pairs whose bound allows a relative distance
    error above ``rtol`` (cancellation at the last-bit level of a component) are recomputed with the
    manifold's own ``dist``, so every returned distance is as accurate as ``manifold.dist``'s.
    """
    if getattr(manifold, "name", None) != "halfspace-mcf":
        return None
    m = manifold.components
    horizontal = manifold.horizontal(points)  # (N, h, m)
    height = points[:, -1:]
    scale = manifold.scale(points)
    factor = 1.0 / torch.sqrt(2.0 * height)  # (N, 1): rho * f_u * f_v = rho / (2 sqrt(y_u y_v))
    unit = torch.finfo(points.dtype).eps / 2
    slack = (m + 2) * unit

    def distance(ids: torch.Tensor) -> torch.Tensor:
        xr, xa = horizontal[ids].unsqueeze(1), horizontal.unsqueeze(0)  # (B,1,h,m), (1,N,h,m)
        shape = (len(ids), horizontal.shape[0], horizontal.shape[1])
        total = points.new_zeros(shape)
        magnitude = points.new_zeros(shape)
        d = points.new_empty(shape)
        for i in range(m - 1, -1, -1):
            torch.sub(xr[..., i], xa[..., i], out=d)
            total.add_(d)
            magnitude.add_(d.abs_())
        eta = height[ids] - height[:, 0].unsqueeze(0)  # (B,N)
        if total.shape[-1] == 1:
            rho = torch.hypot(total[..., 0], eta)  # no underflow of the squares far out
            bound = magnitude[..., 0]
        else:
            vector = torch.cat([total, eta.unsqueeze(-1)], -1)
            big = vector.abs().amax(-1, keepdim=True)
            rho = big[..., 0] * torch.linalg.vector_norm(vector / torch.where(big > 0, big, 1.0), dim=-1)
            bound = magnitude.amax(-1) * magnitude.shape[-1]
        out = rho * factor[ids]
        out.mul_(factor[:, 0].unsqueeze(0))
        out = torch.asinh_(out).mul_(2)
        # Distance error <= 2 * (absolute error of delta) / rho; recompute where it could exceed rtol * d.
        unsure = (bound.mul_(2 * slack) > rtol * out * rho) & (rho > 0)
        if bool(unsure.any()):
            rows, cols = torch.nonzero(unsure, as_tuple=True)
            out[rows, cols] = manifold.dist(points[ids[rows]], points[cols]) / scale
        return out * scale

    return distance


# ============================================================================ screened ranking distances


class _PoincareScreen:
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
        one_minus = kernel._one_minus_squared_norm(unit)
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


def _screen(points: torch.Tensor, manifold) -> _PoincareScreen | None:
    from hyperbolic.poincare import PoincareBall

    if not isinstance(manifold, PoincareBall) or type(manifold).dist is not PoincareBall.dist:
        return None
    screen = _PoincareScreen(points, manifold)
    return screen if screen.usable else None


# ============================================================================ evaluation


def _default_chunk(n: int, storage: int) -> int:
    budget = 1 << 22  # elements per (rows x points) temporary, times the storage width
    return max(1, min(n, budget // max(1, n * max(1, storage // 4))))


def evaluate(
    points: torch.Tensor,
    manifold,
    graph: Graph,
    *,
    scale: float = 1.0,
    closure: Graph | None = None,
    closure_variant: Literal["symmetric", "directed"] = "symmetric",
    rows: int | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
    tie_rtol: float = 1e-12,
    distance: Distance | None = None,
    edge_map: bool = True,
    distortion: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Metrics:
    """Evaluate an embedding of ``graph``.

    Parameters
    ----------
    points : torch.Tensor
        ``(N, storage_dim)`` points of ``manifold``; row ``i`` is node ``i`` of ``graph``.
    manifold
        Any manifold of the protocol: only ``manifold.dist`` is called, on ``(B, 1, S)`` against
        ``(1, N, S)`` slices.
    graph : Graph
        The original graph (not the BFS tree): neighbours for edge-MAP and :math:`d_G` for distortion.
    scale : float
        Embedded distance = manifold distance / ``scale`` (tau for the combinatorial construction).
    closure : Graph or None
        Transitive closure over the same nodes, for closure-MAP (``closure_variant``: "symmetric" =
        ancestors and descendants, "directed" = the closure's out-neighbours, i.e. ancestors for
        child -> ancestor edges).
    rows : int or None
        None (default): every row. An integer: that many rows drawn at random without replacement (seeded);
        the result is labelled ``sampled`` and the MAP gets a standard error.
    chunk_size : int or None
        Rows per chunk (default: a ``B x N`` budget of about 4M elements).
    tie_rtol : float
        Relative difference below which two distances tie (see module notes).
    distance : callable or None
        ``distance(row_indices) -> (B, N)`` manifold distances, replacing the default
        ``manifold.dist(points[rows, None], points[None])`` (e.g. a certified faster evaluation).
    edge_map : bool
        Compute edge-MAP and mean rank on the graph's edges (False: ``edge_map``/``mean_rank`` are None;
        with a ``closure`` that leaves the reconstruction metrics of Nickel & Kiela alone).
    distortion : bool
        Compute the distortion (False: no graph distances, ``d_avg``/``d_wc`` are None, ``pairs`` 0). Without
        it, Poincaré-ball distances come from a screened Gram-matrix estimate: entries that could fall on
        the other side of a ranking threshold are recomputed with ``manifold.dist``, so ranks and MAP are
        those of ``manifold.dist`` exactly, at a fraction of the cost.
    progress : callable or None
        Called as ``progress(done_rows, total_rows)`` after each chunk.

    Returns
    -------
    Metrics
    """
    started = time.perf_counter()
    n = graph.num_nodes
    if points.dim() != 2 or points.shape[0] != n:
        raise GraphError(f"evaluate: {tuple(points.shape)} points for a graph of {n} nodes")
    if closure is not None and closure.num_nodes != n:
        raise GraphError(f"evaluate: closure has {closure.num_nodes} nodes, graph {n}")
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be positive and finite, got {scale}")
    if not edge_map and closure is None:
        raise ValueError("evaluate: edge_map=False needs a closure (otherwise no ranking is left to compute)")
    sampled = rows is not None and rows < n
    if sampled:
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        generator = torch.Generator().manual_seed(seed)
        row_ids = torch.sort(torch.randperm(n, generator=generator)[:rows]).values
    else:
        row_ids = torch.arange(n)
    chunk = None
    screen = None
    if distance is None and not distortion:
        screen = _screen(points, manifold)
        # its temporaries are a few (rows x points) matrices
        chunk = chunk_size or (_default_chunk(n, 4) if screen is not None else None)
    if distance is None and screen is None:
        distance = fast_distance(points, manifold)
        # its temporaries are (rows x points), one coordinate at a time
        chunk = chunk_size or (_default_chunk(n, 4) if distance is not None else None)
    chunk = chunk or chunk_size or _default_chunk(n, points.shape[-1])
    # Graph distances come in blocks of whole 64-bit words of sources (the BFS costs the same per level
    # for 1 or 64 sources), stored compactly and served to the distance chunks.
    block = max(chunk, min(len(row_ids), max(64, (1 << 25) // max(n, 1)) // 64 * 64))
    cache: dict = {"begin": -1, "end": -1, "data": None}

    def graph_rows(begin: int, ids: torch.Tensor) -> torch.Tensor:
        if not (cache["begin"] <= begin and begin + len(ids) <= cache["end"]):
            block_ids = row_ids[begin:begin + block]
            data = graph_distance(block_ids.numpy())
            cache.update(begin=begin, end=begin + len(block_ids), data=data)
        offset = begin - cache["begin"]
        return torch.from_numpy(cache["data"][offset:offset + len(ids)]).to(torch.float64)

    if distance is None and screen is None:
        others = points.unsqueeze(0)

        def distance(ids: torch.Tensor) -> torch.Tensor:
            return manifold.dist(points[ids].unsqueeze(1), others)

    edge_ranker = _Ranker(*neighbourhoods(graph), tie_rtol) if edge_map else None
    closure_ranker = _Ranker(*neighbourhoods(closure, closure_variant), tie_rtol) if closure is not None else None
    rankers = [r for r in (edge_ranker, closure_ranker) if r is not None]
    graph_distance = _GraphDistances(graph) if distortion else None

    def exact(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # manifold.dist on pairs, a bounded number at a time (it forms a few (pairs x S) temporaries)
        out = torch.empty(len(r), dtype=torch.float64)
        step = 1 << 18
        for begin in range(0, len(r), step):
            rr, cc = r[begin:begin + step].to(points.device), c[begin:begin + step].to(points.device)
            out[begin:begin + step] = manifold.dist(points[rr], points[cc]).to(device="cpu", dtype=torch.float64)
        return out / scale

    def screened(ids: torch.Tensor) -> tuple[int, int]:
        # The neighbour distances (manifold.dist) give each row's thresholds; the screen's candidates inside
        # the farthest one keep their certified estimates unless a threshold lies within their error bound
        # (or the screen cannot bound them): those take manifold.dist's value. Every other node lies beyond
        # all of the row's thresholds, where it changes no rank.
        found = [ranker.neighbours(ids) for ranker in rankers]
        reach = torch.full((len(ids),), -torch.inf, dtype=torch.float64)
        tables = []
        for ranker, hit in zip(rankers, found):
            if hit is None:
                tables.append(None)
                continue
            rows_local, neighbour, valid, counts = hit
            nd = exact(ids[rows_local].unsqueeze(1).expand_as(neighbour).reshape(-1), neighbour.reshape(-1))
            nd = nd.view(neighbour.shape)
            _, threshold = ranker.thresholds(nd, valid)
            full = torch.full((len(ids), threshold.shape[1] + 1), torch.inf, dtype=torch.float64)
            full[rows_local, :-1] = threshold
            tables.append((nd, full))
            reach[rows_local] = torch.maximum(reach[rows_local], threshold.gather(1, (counts - 1).unsqueeze(1))[:, 0])
        flat, estimate, margin, unsure = (
            t.cpu() for t in screen.candidates(ids.to(points.device), (reach * scale).to(points.device)))
        estimate /= scale
        margin /= scale
        r, c = flat // n, flat % n
        # candidates in a (rows x most per row) layout, to search each row's thresholds in one batched call
        per_row = torch.bincount(r, minlength=len(ids))
        width = int(per_row.max()) if len(r) else 0
        position = r * width + torch.arange(len(r)) - (torch.cumsum(per_row, 0) - per_row)[r]
        lower = torch.full((len(ids) * width,), torch.inf, dtype=torch.float64)
        lower[position] = estimate - margin
        lower = lower.view(len(ids), width)
        for table in tables:
            if table is not None:
                full = table[1]
                above = full.gather(1, torch.searchsorted(full, lower))  # smallest threshold >= estimate - margin
                unsure |= above.view(-1)[position] <= estimate + margin
        values = estimate
        values[unsure] = exact(ids[r[unsure]], c[unsure])
        for ranker, hit, table in zip(rankers, found, tables):
            if hit is None:
                continue
            if len(hit[0]) == len(ids):  # every row has neighbours
                ranker.add_entries(hit, table[0], r, values)
                continue
            local = torch.full((len(ids),), -1, dtype=torch.int64)
            local[hit[0]] = torch.arange(len(hit[0]))
            keep = local[r] >= 0
            ranker.add_entries(hit, table[0], local[r][keep], values[keep])
        return int((~torch.isfinite(values)).sum()), int((values == 0).sum())

    relative_sum = 0.0
    pair_count = 0
    nonfinite = 0
    zero = 0
    expansion = 0.0
    contraction = 0.0
    row_worst = 0.0
    with torch.no_grad():
        for begin in range(0, len(row_ids), chunk):
            ids = row_ids[begin:begin + chunk]
            local = torch.arange(len(ids))
            if screen is not None:
                bad, zeros = screened(ids)
                nonfinite += bad
                zero += zeros
                if progress is not None:
                    progress(min(begin + chunk, len(row_ids)), len(row_ids))
                continue
            D = distance(ids.to(points.device)).detach().to(device="cpu", dtype=torch.float64) / scale
            finite = torch.isfinite(D)
            finite[local, ids] = True
            nonfinite += int((~finite).sum())
            is_zero = D == 0
            is_zero[local, ids] = False
            zero += int(is_zero.sum())

            ranked = torch.where(finite, D, torch.inf)
            ranked[local, ids] = torch.inf
            for ranker in rankers:
                ranker.add(ids, ranked)

            if distortion:
                G = graph_rows(begin, ids)
                pair = torch.isfinite(G) & (G > 0)
                pair[local, ids] = False
                pair_count += int(pair.sum())
                # ratio d_E / d_G: relative error |ratio - 1|, expansion ratio, contraction 1 / ratio
                grow = torch.where(pair, D / torch.where(pair, G, 1.0), 0.0)
                relative_sum += float((grow - 1).abs_().mul_(pair).sum())
                shrink = torch.where(pair, 1 / grow, 0.0)
                row_grow = grow.amax(1)
                row_shrink = shrink.amax(1)
                expansion = max(expansion, float(row_grow.max()))
                contraction = max(contraction, float(row_shrink.max()))
                row_worst = max(row_worst, float((row_grow * row_shrink).max()))
            if progress is not None:
                progress(min(begin + chunk, len(row_ids)), len(row_ids))

    edge_values = edge_ranker.result(sampled) if edge_ranker is not None else (None, None, None)
    closure_values = closure_ranker.result(sampled) if closure_ranker is not None else (None, None, None)
    defined = distortion and nonfinite == 0 and pair_count > 0
    return Metrics(
        edge_map=edge_values[0],
        mean_rank=edge_values[1],
        d_avg=relative_sum / pair_count if defined else None,
        d_wc=expansion * contraction if defined else None,
        d_wc_row=row_worst if defined else None,
        nonfinite=nonfinite,
        zero=zero,
        rows=len(row_ids),
        total_rows=n,
        sampled=sampled,
        pairs=pair_count,
        seconds=time.perf_counter() - started,
        closure_map=closure_values[0],
        closure_mean_rank=closure_values[1],
        closure_variant=closure_variant if closure is not None else None,
        edge_map_se=edge_values[2],
        closure_map_se=closure_values[2],
        tie_rtol=tie_rtol,
        scale=float(scale),
    )
