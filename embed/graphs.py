"""Graphs: an immutable graph type with named nodes, its connected components, transitive closures.

Edge-list files are read and written by :mod:`embed.edgelist`; breadth-first spanning trees are in
:mod:`embed.bfs`.

Conventions
-----------
* Nodes are identified by their names (strings, kept exactly as in the input) and numbered
  ``0 .. n-1``; ``Graph.names[i]`` is the name of node ``i``.
* A directed edge ``(u, v)`` of a hierarchy points from the child (hyponym, descendant) to the
  parent (hypernym, ancestor), like the ``id1,id2`` columns of the WordNet closure files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import torch

__all__ = [
    "Graph",
    "GraphError",
    "connected_components",
    "is_transitively_closed",
    "transitive_reduction",
]


class GraphError(ValueError):
    """A graph cannot be used as asked (unknown node, wrong shape, ...)."""


@dataclass(frozen=True, eq=False)
class Graph:
    """An immutable graph with named nodes.

    Parameters
    ----------
    names : sequence of str
        Node names; node ``i`` is ``names[i]``. Stored as a tuple; names must be unique.
    edges : torch.Tensor
        ``(E, 2)`` integer tensor of node indices, stored as int64.
    weights : torch.Tensor or None
        ``(E,)`` edge weights, stored as float64, or None for an unweighted graph.
    directed : bool
        Whether ``(u, v)`` differs from ``(v, u)``. Hierarchies point child -> parent.
    source : str or None
        Where the graph came from (a path or a dataset name), used in messages.

    Notes
    -----
    The tensors are copied on construction; treat ``edges`` and ``weights`` as read-only.
    """

    names: tuple[str, ...]
    edges: torch.Tensor
    weights: torch.Tensor | None = None
    directed: bool = False
    source: str | None = None

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if not all(isinstance(name, str) for name in names):
            raise GraphError("Graph: node names must be strings")
        edges = torch.as_tensor(self.edges)
        if edges.numel() == 0:
            edges = edges.reshape(0, 2)
        if edges.dim() != 2 or edges.shape[1] != 2:
            raise GraphError(f"Graph: edges must have shape (E, 2), got {tuple(edges.shape)}")
        if edges.dtype.is_floating_point or edges.dtype == torch.bool or edges.is_complex():
            raise GraphError(f"Graph: edges must be an integer tensor, got {edges.dtype}")
        edges = edges.to(dtype=torch.int64, device="cpu").contiguous().clone()
        if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= len(names)):
            raise GraphError(
                f"Graph: edge indices must lie in [0, {len(names)}), "
                f"got range [{int(edges.min())}, {int(edges.max())}]"
            )
        weights = self.weights
        if weights is not None:
            weights = torch.as_tensor(weights).to(dtype=torch.float64, device="cpu").clone()
            if weights.shape != (edges.shape[0],):
                raise GraphError(
                    f"Graph: weights must have shape ({edges.shape[0]},), "
                    f"got {tuple(weights.shape)}"
                )
        if len(set(names)) != len(names):
            seen: set[str] = set()
            duplicate = next(name for name in names if name in seen or seen.add(name))
            raise GraphError(f"Graph: node names must be unique; {duplicate!r} repeats")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "directed", bool(self.directed))

    # ------------------------------------------------------------------ basic facts
    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return len(self.names)

    @property
    def num_edges(self) -> int:
        """Number of edges (rows of ``edges``)."""
        return int(self.edges.shape[0])

    @cached_property
    def index(self) -> dict[str, int]:
        """Mapping from node name to node index."""
        return {name: i for i, name in enumerate(self.names)}

    def node_id(self, node: str | int) -> int:
        """Return the index of a node given by name (str) or index (int).

        Raises
        ------
        GraphError
            If the node is not in the graph; the message names it.
        """
        if isinstance(node, str):
            try:
                return self.index[node]
            except KeyError:
                raise GraphError(
                    f"node {node!r} is not in graph {self._label()} ({self.num_nodes} nodes)"
                ) from None
        if isinstance(node, bool) or not isinstance(node, int):
            raise GraphError(f"node must be a name (str) or an index (int), got {node!r}")
        if not 0 <= node < self.num_nodes:
            raise GraphError(
                f"node index {node} is not in graph {self._label()} "
                f"(indices 0..{self.num_nodes - 1})"
            )
        return node

    def _label(self) -> str:
        return repr(self.source) if self.source else "<unnamed>"

    def degrees(self) -> torch.Tensor:
        """Number of edge ends at each node, ``(n,)`` int64 (a self loop counts twice)."""
        return torch.bincount(self.edges.reshape(-1), minlength=self.num_nodes)

    def named_edges(self) -> list[tuple[str, str]]:
        """Edges as ``(name_u, name_v)`` pairs, in edge order."""
        names = self.names
        return [(names[u], names[v]) for u, v in self.edges.tolist()]

    def __repr__(self) -> str:
        kind = "directed" if self.directed else "undirected"
        weighted = ", weighted" if self.weights is not None else ""
        source = f", source={self.source!r}" if self.source else ""
        return f"Graph({self.num_nodes} nodes, {self.num_edges} edges, {kind}{weighted}{source})"

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_named_edges(
        cls,
        pairs: Iterable[tuple[str, str]],
        *,
        weights: Sequence[float] | torch.Tensor | None = None,
        directed: bool = False,
        names: Sequence[str] | None = None,
        source: str | None = None,
    ) -> Graph:
        """Build a graph from ``(name_u, name_v)`` pairs.

        Nodes are numbered by first appearance (reading each pair left to right), after the
        nodes listed in ``names``, if given.
        """
        index: dict[str, int] = {}
        for name in names or ():
            index.setdefault(name, len(index))
        flat = []
        for u, v in pairs:
            flat.append(index.setdefault(u, len(index)))
            flat.append(index.setdefault(v, len(index)))
        edges = torch.tensor(flat, dtype=torch.int64).reshape(-1, 2)
        return cls(
            tuple(index),
            edges,
            None if weights is None else torch.as_tensor(weights),
            directed,
            source,
        )

    @classmethod
    def from_networkx(cls, graph, *, weight: str | None = "weight", source: str | None = None):
        """Build a graph from a networkx graph.

        Node names are ``str(node)`` in networkx's node order. Edge weights are read from the
        edge attribute ``weight`` when every edge has it (set ``weight=None`` to ignore them).
        Multigraphs are refused.
        """
        if graph.is_multigraph():
            raise GraphError("from_networkx: multigraphs are not supported")
        nodes = list(graph.nodes)
        names = [str(node) for node in nodes]
        position = {node: i for i, node in enumerate(nodes)}
        edge_data = list(graph.edges(data=True))
        edges = torch.tensor(
            [(position[u], position[v]) for u, v, _ in edge_data], dtype=torch.int64
        ).reshape(-1, 2)
        weights = None
        if weight is not None and edge_data and all(weight in data for _, _, data in edge_data):
            weights = torch.tensor(
                [float(data[weight]) for _, _, data in edge_data], dtype=torch.float64
            )
        return cls(
            tuple(names),
            edges,
            weights,
            graph.is_directed(),
            source if source is not None else (graph.name or None),
        )

    def to_networkx(self):
        """Return a ``networkx.DiGraph`` or ``networkx.Graph`` with the names as nodes.

        Nodes are added in index order (isolated ones included); weights become the edge
        attribute ``weight``. Duplicate edges collapse, as networkx keeps one edge per pair;
        networkx lists edges node by node, so a round trip keeps the edge set, not its order.
        """
        import networkx as nx

        graph = nx.DiGraph() if self.directed else nx.Graph()
        if self.source:
            graph.graph["name"] = self.source
        graph.add_nodes_from(self.names)
        names = self.names
        if self.weights is None:
            graph.add_edges_from((names[u], names[v]) for u, v in self.edges.tolist())
        else:
            graph.add_weighted_edges_from(
                (names[u], names[v], w)
                for (u, v), w in zip(self.edges.tolist(), self.weights.tolist(), strict=True)
            )
        return graph

    # ------------------------------------------------------------------ derived graphs
    def as_undirected(self) -> Graph:
        """The same edges as an undirected graph (no de-duplication of ``(u, v)``/``(v, u)``)."""
        return Graph(self.names, self.edges, self.weights, False, self.source)

    def subgraph(self, nodes: Sequence[int | str] | torch.Tensor) -> Graph:
        """Induced subgraph on the given nodes, numbered in the order given."""
        if isinstance(nodes, torch.Tensor):
            ids = nodes.to(torch.int64).reshape(-1)
        else:
            ids = torch.tensor([self.node_id(node) for node in nodes], dtype=torch.int64)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.num_nodes):
            raise GraphError("subgraph: node index out of range")
        if torch.unique(ids).numel() != ids.numel():
            raise GraphError("subgraph: nodes repeat")
        new_id = torch.full((self.num_nodes,), -1, dtype=torch.int64)
        new_id[ids] = torch.arange(ids.numel())
        mapped = new_id[self.edges]
        keep = (mapped >= 0).all(dim=1)
        weights = None if self.weights is None else self.weights[keep]
        names = tuple(self.names[i] for i in ids.tolist())
        return Graph(names, mapped[keep], weights, self.directed, self.source)

    # ------------------------------------------------------------------ adjacency
    def csr(
        self, direction: Literal["out", "in", "both"] = "out"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compressed sparse row adjacency.

        Parameters
        ----------
        direction : {"out", "in", "both"}
            For directed graphs: neighbours ``v`` of ``u`` are the heads of edges ``(u, v)``
            ("out"), the tails of edges ``(v, u)`` ("in"), or both. Undirected graphs always
            use "both".

        Returns
        -------
        indptr : torch.Tensor
            ``(n + 1,)`` int64; the neighbours of ``u`` are ``indices[indptr[u]:indptr[u+1]]``.
        indices : torch.Tensor
            Neighbour indices, int64. Within a row, neighbours keep edge order (for "both",
            all out-edges of the row come before the in-edges, each in edge order).
        edge_ids : torch.Tensor
            For each entry of ``indices``, the row of ``edges`` it comes from.
        """
        if direction not in ("out", "in", "both"):
            raise GraphError(f"csr: direction must be 'out', 'in' or 'both', got {direction!r}")
        if not self.directed:
            direction = "both"
        tails, heads = self.edges[:, 0], self.edges[:, 1]
        edge_ids = torch.arange(self.num_edges, dtype=torch.int64)
        if direction == "out":
            rows, cols, ids = tails, heads, edge_ids
        elif direction == "in":
            rows, cols, ids = heads, tails, edge_ids
        else:
            rows = torch.cat([tails, heads])
            cols = torch.cat([heads, tails])
            ids = torch.cat([edge_ids, edge_ids])
        order = torch.sort(rows, stable=True).indices
        counts = torch.bincount(rows, minlength=self.num_nodes)
        indptr = torch.zeros(self.num_nodes + 1, dtype=torch.int64)
        torch.cumsum(counts, dim=0, out=indptr[1:])
        return indptr, cols[order], ids[order]

    def adjacency_lists(self, direction: Literal["out", "in", "both"] = "out") -> list[list[int]]:
        """Neighbour lists per node (see :meth:`csr` for ``direction`` and the order)."""
        indptr, indices, _ = self.csr(direction)
        bounds = indptr.tolist()
        flat = indices.tolist()
        return [flat[bounds[u] : bounds[u + 1]] for u in range(self.num_nodes)]


# ====================================================================== components


def connected_components(graph: Graph) -> tuple[int, torch.Tensor]:
    """Connected components, ignoring edge directions (weak components of a digraph).

    Returns
    -------
    count : int
        Number of components.
    labels : torch.Tensor
        ``(n,)`` int64 component of each node; components are numbered by their smallest node.
    """
    n = graph.num_nodes
    labels = torch.arange(n, dtype=torch.int64)
    if graph.num_edges:
        tails = torch.cat([graph.edges[:, 0], graph.edges[:, 1]])
        heads = torch.cat([graph.edges[:, 1], graph.edges[:, 0]])
        while True:
            # Min-label propagation with pointer jumping: labels only decrease and stay
            # inside their component, so this converges to each component's smallest node.
            updated = labels.scatter_reduce(0, heads, labels[tails], reduce="amin")
            updated = updated[updated]
            if torch.equal(updated, labels):
                break
            labels = updated
    _, inverse = torch.unique(labels, return_inverse=True)
    return int(inverse.max()) + 1 if n else 0, inverse


# ====================================================================== closures


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
