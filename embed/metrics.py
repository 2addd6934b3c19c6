r"""Exact graph-embedding metrics: edge-MAP, closure-MAP, mean rank, distortion.

Every metric compares embedded distances :math:`d_E(a, v) = d(x_a, x_v) / \text{scale}` (``scale`` = tau
for the combinatorial construction) with the graph. Distances come from the manifold's own ``dist`` (any
representation of the protocol; a certified faster formula for half-space points held as float expansions: the MCF
half-space, and the binary tiling while its integers fit float64), in tiles of ``B`` rows by
``C`` columns, so memory stays at a few ``B x C`` tensors whatever the graph size. On all rows only the tiles
on and above the diagonal are computed: every unordered pair once, counted for both of its rows. The
ranking needs, per row, only how many points fall inside each neighbour's ball, so a tile contributes just
its few entries closer than the row's farthest neighbour. All rows are evaluated unless ``rows`` asks for a
random sample, and the result says which. Ranks alone (``distortion=False``) only need each row's nodes
inside the ball of its farthest neighbour; on the Poincaré ball a certified Gram-matrix screen finds them
(:class:`embed.pair_distances.PoincareScreen`), row block against all points, and the ranks are still exactly those of
``manifold.dist``.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch

from .graphs import Graph, GraphError, connected_components
from .pair_distances import Distance, pair_distances, poincare_screen

__all__ = [
    "Metrics",
    "evaluate",
    "graph_distances",
    "neighbourhoods",
]

@dataclass
class Metrics:
    """Results of :func:`evaluate`; ``as_json()`` gives the machine-readable form.

    Attributes
    ----------
    edge_map, mean_rank : float or None
        edge-MAP and mean rank with :math:`N(a)` = graph neighbours (None when not requested).
    closure_map, closure_mean_rank : float or None
        The same against the transitive closure, when one was given (``closure_variant`` says which).
    d_avg, d_wc, d_wc_row : float or None
        Distortion; None when a non-finite distance makes it undefined, or when not requested.
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

    edge_map: float | None
    mean_rank: float | None
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


# ============================================================================ graph distances


class _GraphDistances:
    """Shortest-path distances from blocks of sources, edge directions ignored."""

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
            self.isolated = np.diff(self.indptr) == 0
            self.starts = np.minimum(self.indptr[:-1], max(len(self.indices) - 1, 0))

    def __call__(self, sources: np.ndarray) -> np.ndarray:
        """``(len(sources), n)`` float distances (hop counts exact), ``inf`` between components."""
        return self.block(sources).tile(0, self.n, dense=True).numpy()

    def block(self, sources: np.ndarray) -> _DistanceBlock:
        """Distances from ``sources`` to every node, served tile by tile (:meth:`_DistanceBlock.tile`)."""
        sources = np.asarray(sources, dtype=np.int64)
        if self.weighted:
            from scipy.sparse.csgraph import dijkstra

            return _DistanceBlock(dense=torch.from_numpy(dijkstra(self.matrix, directed=True, indices=sources)))
        return self._bfs(sources)

    def _bfs(self, sources: np.ndarray) -> _DistanceBlock:
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
        while len(self.indices):
            level += 1
            reach = np.bitwise_or.reduceat(frontier[self.indices], self.starts, axis=0)
            reach[self.isolated] = 0
            new = np.bitwise_and(reach, ~visited, out=reach)
            if not new.any():
                break
            visited |= new
            frontier = new
            while len(planes) < level.bit_length():
                planes.append(np.zeros((n, words), dtype=np.uint64))
            for j in range(level.bit_length()):
                if (level >> j) & 1:
                    planes[j] |= new
        return _DistanceBlock(planes=planes, visited=visited, count=count)


class _DistanceBlock:
    """Graph distances from one block of sources: ``tile(c0, c1)`` is ``(sources, c1 - c0)``.

    BFS results stay as bit planes (the level of each (target, source) pair in binary) and are unpacked one
    column tile at a time: hop counts come as exact small integers (uint8 when at most 255 levels), a view
    transposed to (sources, targets); unreached pairs make the tile float32 with ``inf``.
    """

    def __init__(self, dense: torch.Tensor | None = None, planes=None, visited=None, count: int = 0):
        self.dense, self.planes, self.visited, self.count = dense, planes, visited, count

    def tile(self, c0: int, c1: int, dense: bool = False) -> torch.Tensor:
        if self.dense is not None:
            return self.dense[:, c0:c1]
        count = self.count
        dtype = np.uint8 if len(self.planes) <= 8 else np.uint16
        levels = np.zeros((c1 - c0, count), dtype=dtype)
        for j, plane in enumerate(self.planes):
            bits = np.unpackbits(plane[c0:c1].view(np.uint8), axis=1, bitorder="little", count=count)
            levels |= np.left_shift(bits.astype(dtype, copy=False), j)
        reached = np.unpackbits(self.visited[c0:c1].view(np.uint8), axis=1, bitorder="little", count=count)
        if dense or not reached.all():
            out = levels.astype(np.float32)
            out[reached == 0] = np.inf
            return torch.from_numpy(out).T.contiguous() if dense else torch.from_numpy(out).T
        return torch.from_numpy(levels).T


def graph_distances(graph: Graph, sources) -> torch.Tensor:
    """Shortest-path distances ``(len(sources), n)`` from the given source nodes (float64 on the CPU, where
    the graph is, whatever the device of ``sources``; ``inf`` when unreachable; edge directions ignored;
    weights used when the graph has them)."""
    sources = np.asarray(torch.as_tensor(sources, dtype=torch.int64).reshape(-1).cpu())
    return torch.from_numpy(_GraphDistances(graph)(sources)).to(torch.float64)


# ============================================================================ ranking


def _segment_count(values: torch.Tensor, begin: torch.Tensor, length: torch.Tensor, query: torch.Tensor,
                   right: bool) -> torch.Tensor:
    """For each query, how many of the sorted ``values[begin : begin + length]`` are ``< query``
    (``<= query`` when ``right``): a vectorised binary search over ragged segments, by descending powers
    of two (the count grows by ``step`` while the entry ``step`` further on is still below the query).
    Queries grouped by segment (as a row block's entries are) go through one batched ``searchsorted`` on
    the padded segments instead, unless the padding would more than double the work."""
    if values.numel() == 0:
        return torch.zeros_like(begin)
    if len(query) > 1 and bool((begin[1:] >= begin[:-1]).all()):
        first, per_segment = torch.unique_consecutive(begin, return_counts=True)
        most = int(per_segment.max())
        if len(first) * most <= 2 * len(query):
            group = torch.repeat_interleave(torch.arange(len(first)), per_segment)
            # an empty segment shares its begin with the next one: the longest is the group's table row
            size = torch.zeros_like(first).scatter_reduce_(0, group, length, "amax")
            column = torch.arange(int(size.max()))
            table = values[(first.unsqueeze(1) + column).clamp_max(len(values) - 1)]
            table = torch.where(column < size.unsqueeze(1), table, torch.inf)
            slot = group * most + torch.arange(len(query)) - (torch.cumsum(per_segment, 0) - per_segment)[group]
            padded = torch.full((len(first) * most,), torch.inf, dtype=query.dtype)
            padded[slot] = query
            found = torch.searchsorted(table, padded.view(len(first), most), right=right).view(-1)[slot]
            return found.clamp_max_(length)  # padding, or the entries of a longer segment at the same begin
    count = torch.zeros_like(begin)
    top = int(length.max()) if length.numel() else 0
    last = begin - 1  # index of the last entry counted so far; wraps to -1 only where nothing is tested
    for k in range(top.bit_length() - 1, -1, -1):
        candidate = count + (1 << k)
        probe = values[last + torch.minimum(candidate, length)]
        below = probe <= query if right else probe < query
        below &= candidate <= length
        count += below * (1 << k)
    return count


class _Ranker:
    r"""edge-MAP / closure-MAP and mean rank from ball counts, accumulated over distance tiles.

    For row :math:`a` with neighbour distances sorted as :math:`t_1 \le \dots \le t_k` the thresholds are
    :math:`T_j = t_j (1 + \text{tie\_rtol})`; the AP needs :math:`|R(a, b_j)| = \#\{v \ne a : d(a,v) \le T_j\}`
    and :math:`|N(a) \cap R(a, b_j)| = \#\{i : t_i \le T_j\}`. A tile contributes only its entries with
    :math:`d(a, v) \le T_k` (few: the balls of a good embedding hold little besides the neighbours); each one
    is binned by its number of thresholds below it, and the bins' prefix sums are the ball sizes.
    """

    def __init__(self, indptr: torch.Tensor, indices: torch.Tensor, tie_rtol: float):
        self.indptr, self.indices, self.tie_rtol = indptr, indices, tie_rtol
        n, nnz = len(indptr) - 1, len(indices)
        self.row_of = torch.repeat_interleave(torch.arange(n), torch.diff(indptr))
        self.sorted = torch.full((nnz,), torch.inf, dtype=torch.float64)
        self.threshold = torch.full((nnz,), torch.inf, dtype=torch.float64)
        self.inside = torch.zeros(nnz, dtype=torch.int64)
        self.ball = torch.zeros(nnz, dtype=torch.int64)
        self.reach = torch.full((n,), -torch.inf, dtype=torch.float64)  # largest threshold per row
        self.visited = torch.zeros(n, dtype=torch.bool)
        self.queue: list[tuple[torch.Tensor, torch.Tensor]] = []

    def entries(self, rows: torch.Tensor) -> torch.Tensor:
        """Positions in ``indices`` of the neighbours of ``rows`` (row by row)."""
        begin, count = self.indptr[rows], self.indptr[rows + 1] - self.indptr[rows]
        offset = torch.arange(int(count.sum())) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
        return torch.repeat_interleave(begin, count) + offset

    def set_rows(self, rows: torch.Tensor, positions: torch.Tensor, distances: torch.Tensor) -> None:
        """Neighbour distances ``distances`` of the CSR entries ``positions`` (all entries of ``rows``)."""
        self.visited[rows] = True
        if positions.numel() == 0:
            return
        distances = torch.where(torch.isfinite(distances), distances, torch.inf)  # ranked behind all
        order = torch.argsort(distances, stable=True)
        order = order[torch.argsort(self.row_of[positions[order]], stable=True)]
        # positions are grouped by row and increasing inside a row, so sorted values go back in place
        values = distances[order]
        self.sorted[positions] = values
        huge = torch.finfo(torch.float64).max
        threshold = (values * (1 + self.tie_rtol)).clamp_max(huge)
        self.threshold[positions] = threshold
        owner = self.row_of[positions]
        begin = self.indptr[owner]
        self.inside[positions] = _segment_count(self.sorted, begin, self.indptr[owner + 1] - begin, threshold,
                                                right=True)
        last = self.indptr[rows + 1] - 1
        has = self.indptr[rows + 1] > self.indptr[rows]
        self.reach[rows[has]] = self.threshold[last[has]]

    def count(self, owners: torch.Tensor, distances: torch.Tensor) -> None:
        """Add the entries ``d(owner, v) = distance`` (callers pass only those within ``reach``; the row's
        own entry never). Entries are queued and binned in bulk by :meth:`flush`."""
        if owners.numel():
            self.queue.append((owners, distances))

    def flush(self) -> None:
        if not self.queue:
            return
        owners = torch.cat([o for o, _ in self.queue])
        distances = torch.cat([d for _, d in self.queue])
        self.queue = []
        segments = self.segments(owners)
        self.add_bins(segments, self.below(segments, distances))

    def segments(self, owners: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the thresholds of each row ``owners[k]`` begin, and how many there are."""
        begin = self.indptr[owners]
        return begin, self.indptr[owners + 1] - begin

    def below(self, segments, distances: torch.Tensor) -> torch.Tensor:
        """The bins of entries ``distances`` of the rows of ``segments``: how many thresholds lie below."""
        return _segment_count(self.threshold, *segments, distances, right=False)

    def next_threshold(self, segments, bins: torch.Tensor) -> torch.Tensor:
        """The threshold just above each bin (+inf past the row's last one)."""
        begin, length = segments
        if self.threshold.numel() == 0:
            return torch.full(begin.shape, torch.inf, dtype=torch.float64)
        value = self.threshold[(begin + bins).clamp_max(len(self.threshold) - 1)]
        return torch.where(bins < length, value, torch.inf)

    def add_bins(self, segments, bins: torch.Tensor) -> None:
        """Count entries by their bins (see :meth:`below`); those beyond the row's last threshold drop out."""
        begin, length = segments
        position = (begin + bins)[bins < length]
        self.ball.index_add_(0, position, torch.ones_like(position))

    def add_tile(self, D: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mirror: bool,
                 row_min: torch.Tensor, col_min: torch.Tensor | None) -> None:
        """Count a tile ``D[i, j] = d(rows[i], cols[j])`` for its rows (and for its columns if ``mirror``);
        ``row_min``, ``col_min``: the tile's smallest entry per row and per column (NaN-free)."""
        reach = self.reach[rows]
        near = torch.nonzero(row_min <= reach).reshape(-1)
        if len(near):
            hit = torch.nonzero(D[near] <= reach[near].unsqueeze(1), as_tuple=True)
            self.count(rows[near[hit[0]]], D[near[hit[0]], hit[1]])
        if mirror:
            reach = self.reach[cols]
            near = torch.nonzero(col_min <= reach).reshape(-1)
            if len(near):
                hit = torch.nonzero(D[:, near] <= reach[near].unsqueeze(0), as_tuple=True)
                self.count(cols[near[hit[1]]], D[hit[0], near[hit[1]]])

    def result(self, sampled: bool) -> tuple[float, float, float | None]:
        self.flush()
        rows = torch.nonzero(self.visited & (torch.diff(self.indptr) > 0)).reshape(-1)
        if rows.numel() == 0:
            return math.nan, math.nan, None
        positions = self.entries(rows)
        owner = torch.repeat_interleave(torch.arange(len(rows)), torch.diff(self.indptr)[rows])
        # ball sizes: prefix sums of the bins inside each row
        prefix = torch.cumsum(self.ball[positions], 0)
        first = torch.cumsum(torch.diff(self.indptr)[rows], 0) - torch.diff(self.indptr)[rows]
        ball = prefix - (prefix[first] - self.ball[positions][first])[owner]
        inside = self.inside[positions]
        ratio = inside.to(torch.float64) / ball.clamp_min(1).to(torch.float64)
        ap = torch.zeros(len(rows), dtype=torch.float64).index_add_(0, owner, ratio)
        ap /= torch.diff(self.indptr)[rows].to(torch.float64)
        mean = float(ap.mean())
        se = None
        if sampled and len(rows) > 1:
            se = float(ap.std(correction=1)) / math.sqrt(len(rows))
        rank = (1 + ball - inside).to(torch.float64)
        return mean, float(rank.mean()), se


# ============================================================================ distortion


class _Distortion:
    """Sums and extremes of :math:`d_E / d_G` over tiles; per-node extremes for the row variant of D_wc."""

    def __init__(self, n: int):
        self.relative_sum = 0.0
        self.pairs = 0
        self.nonfinite = 0
        self.zero = 0
        self.grow_max = torch.zeros(n, dtype=torch.float64)
        self.grow_min = torch.full((n,), torch.inf, dtype=torch.float64)

    def add_tile(self, D: torch.Tensor, G: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mirror: bool,
                 masked: bool) -> None:
        """``D``, ``G``: embedded and graph distances of a tile. ``masked``: the tile may hold self pairs
        (``G = 0``) or pairs in different components (``G = inf``); otherwise every entry is a pair."""
        times = 2 if mirror else 1
        grow = D / G
        if masked:
            pair = torch.isfinite(G) & (G > 0)
            self.pairs += times * int(pair.sum())
            self.relative_sum += times * float(torch.where(pair, (grow - 1).abs_(), 0.0).sum())
            high, low = torch.where(pair, grow, 0.0), torch.where(pair, grow, torch.inf)
        else:
            self.pairs += times * grow.numel()
            high = low = grow
            self.relative_sum += times * float((grow - 1).abs_().sum())
        self._extremes(rows, high.amax(1), low.amin(1))
        if mirror:
            self._extremes(cols, high.amax(0), low.amin(0))

    def _extremes(self, nodes, high, low):
        self.grow_max[nodes] = torch.maximum(self.grow_max[nodes], high)
        self.grow_min[nodes] = torch.minimum(self.grow_min[nodes], low)

    def add_counts(self, D: torch.Tensor, mirror: bool) -> None:
        """Non-finite and zero embedded distances of a tile (its self pairs set to 1 by the caller)."""
        times = 2 if mirror else 1
        if not bool(torch.isfinite(D.sum())):
            self.nonfinite += times * int((~torch.isfinite(D)).sum())
        if bool((D.abs().amin() == 0) if D.numel() else False):
            self.zero += times * int((D == 0).sum())

    def result(self, defined: bool):
        if not defined:
            return None, None, None
        shrink = 1 / self.grow_min  # 1/min = max of 1/ratio exactly (rounding is monotone)
        expansion, contraction = float(self.grow_max.max()), float(shrink.max())
        return self.relative_sum / self.pairs, expansion * contraction, float((self.grow_max * shrink).max())


# ============================================================================ evaluation


def _relabelled(graph: Graph, order: torch.Tensor, new_label: torch.Tensor) -> Graph:
    """``graph`` with node ``order[k]`` renamed ``k``."""
    return Graph(tuple(graph.names[i] for i in order.tolist()), new_label[graph.edges], graph.weights,
                 graph.directed, graph.source)


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

    On all rows each unordered pair's distance is computed once: the ``(row block, column block)`` tiles on
    and above the diagonal are evaluated, and every off-diagonal tile also counts for its columns (ranking,
    distortion, per-row extremes). Nodes may be visited in an order that makes the distances cheaper (for
    points held as float expansions: sorted by coordinate, see :class:`embed.pair_distances.ComponentDistances`), which changes no
    result. Without
    the distortion, Poincaré-ball rows go through the screen instead (see ``distortion``).

    Parameters
    ----------
    points : torch.Tensor
        ``(N, storage_dim)`` points of ``manifold``; row ``i`` is node ``i`` of ``graph``.
    manifold
        Any manifold of the protocol: only ``manifold.dist`` is called (on a row block against a column
        block, and on lists of pairs). Points held as float expansions (the MCF half-space; the binary tiling
        while its integers fit float64) use a certified faster formula.
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
        Rows per block (default 512, or about ``2**22 / N`` through the screen); the column blocks hold
        about ``2**19 / chunk_size`` points.
    tie_rtol : float
        Relative difference below which two distances tie (see module notes).
    distance : callable or None
        ``distance(row_indices) -> (B, N)`` manifold distances, replacing the manifold's (e.g. a precomputed
        matrix); evaluated row block by row block, without the symmetry.
    edge_map : bool
        Compute edge-MAP and mean rank on the graph's edges (False: ``edge_map``/``mean_rank`` are None;
        with a ``closure`` that leaves the reconstruction metrics of Nickel & Kiela alone).
    distortion : bool
        Compute the distortion (False: no graph distances, ``d_avg``/``d_wc`` are None, ``pairs`` 0). Without
        it, Poincaré-ball distances come from a screened Gram-matrix estimate of each row block against all
        points: entries that could fall on the other side of a ranking threshold are recomputed with
        ``manifold.dist``, so ranks and MAP are those of ``manifold.dist`` exactly, at a fraction of the
        cost. ``nonfinite`` and ``zero`` then count the entries inside the rows' farthest thresholds.
    progress : callable or None
        Called as ``progress(done, total)`` after each row block, in (row, column) pairs visited.

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
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if not edge_map and closure is None:
        raise ValueError("evaluate: edge_map=False needs a closure (otherwise no ranking is left to compute)")
    sampled = rows is not None and rows < n
    if sampled:
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        generator = torch.Generator().manual_seed(seed)
        row_ids = torch.randperm(n, generator=generator)[:rows]
    else:
        row_ids = torch.arange(n)

    pairs = pair_distances(points, manifold) if distance is None else None
    order = pairs.order() if pairs is not None else None
    if order is not None:
        # Relabel in the order the distances prefer; every metric is invariant under relabelling.
        order = order.cpu()
        new_label = torch.empty_like(order)
        new_label[order] = torch.arange(n)
        pairs = pairs.permuted(order.to(points.device))
        graph = _relabelled(graph, order, new_label)
        closure = _relabelled(closure, order, new_label) if closure is not None else None
        row_ids = new_label[row_ids]
    row_ids = torch.sort(row_ids).values
    screen = poincare_screen(pairs.points, manifold) if pairs is not None and not distortion else None
    symmetric = pairs is not None and not sampled and screen is None

    # the screen's temporaries are a few (rows x N) matrices
    block = chunk_size or (max(1, min(n, (1 << 22) // n)) if screen is not None else 512)
    width = max(block, (1 << 19) // block)
    rankers = [_Ranker(*neighbourhoods(graph), tie_rtol)] if edge_map else []
    if closure is not None:
        rankers.append(_Ranker(*neighbourhoods(closure, closure_variant), tie_rtol))
    stats = _Distortion(n)
    graph_distance = _GraphDistances(graph) if distortion else None
    # Every off-diagonal entry is a pair with d_G > 0 (no mask needed) in a connected graph of hop counts.
    all_pairs = distortion and connected_components(graph)[0] <= 1 and not graph_distance.weighted
    device = points.device

    def embedded(i: torch.Tensor, j: torch.Tensor, shared: int = 0) -> torch.Tensor:
        D = pairs(i.to(device), j.to(device), shared)
        return D.detach().to(device="cpu", dtype=torch.float64) / scale

    def embedded_pairs(i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        # a bounded number of pairs at a time (the distances form a few (pairs x S) temporaries)
        step = 1 << 18
        return torch.cat([embedded(i[p:p + step], j[p:p + step]) for p in range(0, len(i), step)]
                         or [torch.zeros(0, dtype=torch.float64)])

    def screened(ids: torch.Tensor) -> None:
        # The rows' thresholds are set (from manifold.dist); the screen's candidates inside a row's farthest
        # threshold keep their certified estimates unless a threshold lies within their error bound (or the
        # screen cannot bound them): those take manifold.dist's value. Every other node lies beyond all of
        # the row's thresholds, where it changes no rank. No threshold lies between a kept estimate's lower
        # bound and manifold.dist's value, so the bin of the lower bound is the entry's bin.
        reach = torch.stack([ranker.reach[ids] for ranker in rankers]).amax(0)
        flat, estimate, margin, unsure = (
            t.cpu() for t in screen.candidates(ids.to(device), (reach * scale).to(device)))
        estimate /= scale
        margin /= scale
        owners, c = ids[flat // n], flat % n
        segments = [ranker.segments(owners) for ranker in rankers]
        bins = [ranker.below(segment, estimate - margin) for ranker, segment in zip(rankers, segments)]
        for ranker, segment, below in zip(rankers, segments, bins):
            unsure |= ranker.next_threshold(segment, below) <= estimate + margin
        values = estimate
        values[unsure] = embedded_pairs(owners[unsure], c[unsure])
        stats.add_counts(values, mirror=False)
        exact = torch.where(torch.isnan(values[unsure]), torch.inf, values[unsure])
        for ranker, segment, below in zip(rankers, segments, bins):
            below[unsure] = ranker.below(tuple(part[unsure] for part in segment), exact)
            ranker.add_bins(segment, below)

    starts = list(range(0, len(row_ids), block))
    total = sum(len(row_ids[begin:begin + block]) * (n - begin if symmetric else n) for begin in starts)
    done = 0
    # The next block's graph distances are computed in a worker thread while this block's tiles are
    # evaluated (numpy releases the GIL in the bitwise kernels).
    with torch.no_grad(), ThreadPoolExecutor(max_workers=1) as worker:
        if symmetric:
            # Every row's neighbour distances up front, by the same formula as the tiles.
            for ranker in rankers:
                nd = embedded_pairs(ranker.row_of, ranker.indices)
                ranker.set_rows(torch.arange(n), torch.arange(len(ranker.indices)), nd)
        upcoming = worker.submit(graph_distance.block, row_ids[:block].numpy()) if distortion else None
        for number, begin in enumerate(starts):
            ids = row_ids[begin:begin + block]
            graph_block = None
            if distortion:
                graph_block = upcoming.result()
                if number + 1 < len(starts):
                    upcoming = worker.submit(graph_distance.block, row_ids[starts[number + 1]:][:block].numpy())
            whole = None
            if distance is not None:
                whole = distance(ids.to(device)).detach().to(device="cpu", dtype=torch.float64) / scale
            if symmetric:  # ids = begin, begin + 1, ...: the diagonal tile, then the tiles to its right
                end = begin + len(ids)
                columns = [(begin, end)] + [(c, min(c + width, n)) for c in range(end, n, width)]
            else:
                columns = [] if screen is not None else [(c, min(c + width, n)) for c in range(0, n, width)]
                for ranker in rankers:
                    positions = ranker.entries(ids)
                    local = torch.repeat_interleave(torch.arange(len(ids)), ranker.indptr[ids + 1] - ranker.indptr[ids])
                    neighbour = ranker.indices[positions]
                    nd = whole[local, neighbour] if whole is not None else embedded_pairs(ids[local], neighbour)
                    ranker.set_rows(ids, positions, nd)
                if screen is not None:
                    screened(ids)
            for c0, c1 in columns:
                cols = torch.arange(c0, c1)
                if whole is not None:
                    D = whole[:, c0:c1].clone()
                else:
                    shared = pairs.shared(min(int(ids[0]), c0), max(int(ids[-1]), c1 - 1))
                    D = embedded(ids.unsqueeze(1), cols.unsqueeze(0), shared)
                mine = torch.nonzero((ids >= c0) & (ids < c1)).reshape(-1)
                diagonal = (mine, ids[mine] - c0)
                mirror = symmetric and c0 > begin
                D[diagonal] = 1.0  # the row's own entry: neither zero nor non-finite, and G = 0 drops it
                stats.add_counts(D, mirror)
                if distortion:
                    stats.add_tile(D, graph_block.tile(c0, c1), ids, cols, mirror,
                                   masked=len(mine) > 0 or not all_pairs)
                D[diagonal] = torch.inf  # a row is not in its own balls
                ranked = torch.where(torch.isnan(D), torch.inf, D) if stats.nonfinite else D
                row_min = ranked.amin(1)
                col_min = ranked.amin(0) if mirror else None
                for ranker in rankers:
                    ranker.add_tile(ranked, ids, cols, mirror, row_min, col_min)
            for ranker in rankers:
                ranker.flush()
            done += len(ids) * (n - begin if symmetric else n)
            if progress is not None:
                progress(done, total)

    edge_values = rankers[0].result(sampled) if edge_map else (None, None, None)
    closure_values = rankers[-1].result(sampled) if closure is not None else (None, None, None)
    defined = distortion and stats.nonfinite == 0 and stats.pairs > 0
    d_avg, d_wc, d_wc_row = stats.result(defined)
    return Metrics(
        edge_map=edge_values[0],
        mean_rank=edge_values[1],
        d_avg=d_avg,
        d_wc=d_wc,
        d_wc_row=d_wc_row,
        nonfinite=stats.nonfinite,
        zero=stats.zero,
        rows=len(row_ids),
        total_rows=n,
        sampled=sampled,
        pairs=stats.pairs,
        seconds=time.perf_counter() - started,
        closure_map=closure_values[0],
        closure_mean_rank=closure_values[1],
        closure_variant=closure_variant if closure is not None else None,
        edge_map_se=edge_values[2],
        closure_map_se=closure_values[2],
        tie_rtol=tie_rtol,
        scale=float(scale),
    )
