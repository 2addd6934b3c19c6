"""Breadth-first spanning trees and forests of a graph (the tree the combinatorial construction embeds).

BFS trees of directed graphs walk edges backwards, from parents to children (the child -> parent convention of
:mod:`embed.graphs`), unless ``orientation="parent-child"`` is given. Edges left out of the tree are counted, and
refused with :class:`NotATreeError` when a tree is required.
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import torch

from .graphs import Graph, GraphError, connected_components

__all__ = ["BFSTree", "NotATreeError", "Orientation", "bfs_tree"]


class NotATreeError(GraphError):
    """``require_tree=True`` was given but an edge closes a cycle."""


Orientation = Literal["child-parent", "parent-child"]


@dataclass(frozen=True, eq=False)
class BFSTree:
    """A breadth-first spanning tree (or forest) of a graph.

    Attributes
    ----------
    names : tuple of str
        Node names; equal to the graph's, plus the virtual root's name at the end if any.
    parent : torch.Tensor
        ``(n,)`` int64 parent of each node in the tree, -1 for roots.
    depth : torch.Tensor
        ``(n,)`` int64 depth (roots 0).
    order : torch.Tensor
        ``(n,)`` nodes in BFS order; depths are nondecreasing along it.
    level_ptr : torch.Tensor
        ``(max_depth + 2,)`` offsets: level ``d`` is ``order[level_ptr[d]:level_ptr[d + 1]]``.
    parent_edge : torch.Tensor
        ``(n,)`` row of ``graph.edges`` used as each node's tree edge; -1 for roots and for the
        links to a virtual root.
    roots : torch.Tensor
        The real roots (one per tree, components of the graph may hold several for directed
        graphs with several sources), in the order they were chosen.
    num_dropped_edges : int
        Graph edges not used as tree edges (including self loops and repeated edges).
    num_components : int
        Connected components of the graph, ignoring directions.
    virtual_root : int or None
        Index of the virtual root (the last node) when one was added.
    """

    names: tuple[str, ...]
    parent: torch.Tensor
    depth: torch.Tensor
    order: torch.Tensor
    level_ptr: torch.Tensor
    parent_edge: torch.Tensor
    roots: torch.Tensor
    num_dropped_edges: int
    num_components: int
    virtual_root: int | None = None
    source: str | None = field(default=None)

    @property
    def num_nodes(self) -> int:
        """Number of tree nodes (graph nodes, plus the virtual root if any)."""
        return len(self.names)

    @property
    def num_trees(self) -> int:
        """Number of real roots (trees before a virtual root joins them)."""
        return int(self.roots.numel())

    @property
    def max_depth(self) -> int:
        """Largest depth."""
        return int(self.level_ptr.numel()) - 2

    def levels(self) -> list[torch.Tensor]:
        """Nodes of each depth, as a list of index tensors in BFS order."""
        bounds = self.level_ptr.tolist()
        return [self.order[bounds[d] : bounds[d + 1]] for d in range(len(bounds) - 1)]

    def tree_edges(self) -> torch.Tensor:
        """``(n - roots, 2)`` tree edges ``(child, parent)`` in BFS order of the child."""
        children = self.order[self.parent[self.order] >= 0]
        return torch.stack([children, self.parent[children]], dim=1)

    def to_graph(self) -> Graph:
        """The tree as a directed :class:`Graph` with edges child -> parent."""
        return Graph(self.names, self.tree_edges(), None, True, self.source)

    def summary(self) -> str:
        """One line: roots, depth, dropped edges, components."""
        roots = ", ".join(repr(self.names[r]) for r in self.roots[:3].tolist())
        more = f" and {self.num_trees - 3} more" if self.num_trees > 3 else ""
        virtual = (
            f"; joined under virtual root {self.names[self.virtual_root]!r}"
            if self.virtual_root is not None
            else ""
        )
        return (
            f"BFS tree of {self.source or '<graph>'}: {self.num_trees} tree(s) rooted at "
            f"{roots}{more}{virtual}; max depth {self.max_depth}; "
            f"{self.num_dropped_edges} non-tree edges dropped; "
            f"{self.num_components} connected component(s)"
        )


_DEEP_LEVEL = 64
_NARROW_FRONTIER = 64


def _gather_neighbours(
    frontier: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor, edge_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    starts = indptr[frontier]
    counts = indptr[frontier + 1] - starts
    total = int(counts.sum())
    if total == 0:
        empty = torch.empty(0, dtype=torch.int64)
        return empty, empty, empty
    shift = torch.repeat_interleave(starts - (torch.cumsum(counts, 0) - counts), counts)
    positions = shift + torch.arange(total, dtype=torch.int64)
    return torch.repeat_interleave(frontier, counts), indices[positions], edge_ids[positions]


class _Search:
    """State of a level-synchronous BFS over a CSR adjacency, shared by several starts."""

    def __init__(self, n: int, indptr, indices, edge_ids):
        self.indptr, self.indices, self.edge_ids = indptr, indices, edge_ids
        self.parent = torch.full((n,), -1, dtype=torch.int64)
        self.parent_edge = torch.full((n,), -1, dtype=torch.int64)
        self.depth = torch.full((n,), -1, dtype=torch.int64)
        self.visit_rank = torch.full((n,), -1, dtype=torch.int64)
        self.visited = 0
        self.roots: list[torch.Tensor] = []
        self._lists: tuple[list[int], list[int], list[int]] | None = None

    def run(self, roots: torch.Tensor) -> None:
        """Breadth-first search from ``roots`` (unvisited nodes) through unvisited nodes."""
        frontier = roots
        self.roots.append(roots)
        self._mark(
            frontier,
            frontier.new_full(frontier.shape, -1),
            frontier.new_full(frontier.shape, -1),
            0,
        )
        level = 0
        while frontier.numel():
            if level >= _DEEP_LEVEL and frontier.numel() < _NARROW_FRONTIER:
                self._finish_with_queue(frontier, level)
                return
            sources, candidates, via = _gather_neighbours(
                frontier, self.indptr, self.indices, self.edge_ids
            )
            fresh = self.depth[candidates] < 0
            sources, candidates, via = sources[fresh], candidates[fresh], via[fresh]
            if candidates.numel() == 0:
                break
            # Keep each node's first occurrence: that is the order a FIFO queue would see.
            unique, inverse = torch.unique(candidates, return_inverse=True)
            first = torch.full((unique.numel(),), candidates.numel(), dtype=torch.int64)
            first.scatter_reduce_(0, inverse, torch.arange(candidates.numel()), reduce="amin")
            first = torch.sort(first).values
            level += 1
            frontier = candidates[first]
            self._mark(frontier, sources[first], via[first], level)

    def _finish_with_queue(self, frontier: torch.Tensor, level: int) -> None:
        # Long thin graphs (paths, deep chains) would pay the per-level tensor overhead once per
        # level; a plain FIFO queue continues the same search in the same discovery order.
        if self._lists is None:
            self._lists = (self.indptr.tolist(), self.indices.tolist(), self.edge_ids.tolist())
        indptr, indices, edge_ids = self._lists
        depth = self.depth.tolist()
        queue = deque(frontier.tolist())
        found_nodes: list[int] = []
        found_parents: list[int] = []
        found_edges: list[int] = []
        found_depths: list[int] = []
        while queue:
            node = queue.popleft()
            child_depth = depth[node] + 1
            for position in range(indptr[node], indptr[node + 1]):
                neighbour = indices[position]
                if depth[neighbour] < 0:
                    depth[neighbour] = child_depth
                    queue.append(neighbour)
                    found_nodes.append(neighbour)
                    found_parents.append(node)
                    found_edges.append(edge_ids[position])
                    found_depths.append(child_depth)
        if found_nodes:
            nodes = torch.tensor(found_nodes, dtype=torch.int64)
            count = nodes.numel()
            self.parent[nodes] = torch.tensor(found_parents, dtype=torch.int64)
            self.parent_edge[nodes] = torch.tensor(found_edges, dtype=torch.int64)
            self.depth[nodes] = torch.tensor(found_depths, dtype=torch.int64)
            self.visit_rank[nodes] = torch.arange(self.visited, self.visited + count)
            self.visited += count

    def _mark(self, nodes, parents, via, level) -> None:
        count = nodes.numel()
        self.parent[nodes] = parents
        self.parent_edge[nodes] = via
        self.depth[nodes] = level
        self.visit_rank[nodes] = torch.arange(self.visited, self.visited + count)
        self.visited += count


def bfs_tree(
    graph: Graph,
    root: str | int | None = None,
    *,
    forest: Literal["roots", "virtual", "error"] | None = None,
    require_tree: bool = False,
    orientation: Orientation = "child-parent",
    virtual_root_name: str = "<root>",
    neighbour_order: Literal["edges", "sorted", "input"] = "edges",
) -> BFSTree:
    """Breadth-first spanning tree of a graph or DAG.

    Parameters
    ----------
    graph : Graph
        Undirected: edges are walked both ways. Directed: edges point child -> parent
        (``orientation="child-parent"``, the WordNet convention) and are walked from parents
        to children; with ``orientation="parent-child"`` they are walked as given.
    root : str, int or None
        A node name (str) or index (int). None chooses automatically: for a directed graph,
        every node without a parent (the unique source of a single-rooted hierarchy); for an
        undirected graph, in each connected component the node of largest degree (smallest
        index among ties) -- a cheap stand-in for the centre.
    forest : {"roots", "virtual", "error"} or None
        What to do with nodes the root(s) do not reach (disconnected graphs, or directed graphs
        with several sources): "roots" gives each remaining part its own automatically chosen
        root(s); "virtual" does the same, then adds a virtual root (named
        ``virtual_root_name``, the last node) as parent of all roots; "error" raises. None
        behaves as "roots" and warns with the number of trees.
    require_tree : bool
        Raise :class:`NotATreeError` if any edge is left out of the tree: an edge that closes a
        cycle of the underlying undirected graph, a second parent, a self loop or a repeat.
    orientation : {"child-parent", "parent-child"}
        Direction of the edges of a directed graph (ignored for undirected graphs).
    virtual_root_name : str
        Name of the virtual root; must not be a node name.
    neighbour_order : {"edges", "sorted", "input"}
        Order in which a node's neighbours are discovered: "edges" follows :meth:`Graph.csr`
        (for an undirected graph: the edges listing the node first, then those listing it
        second, each in edge order); "sorted" increasing node index, which makes the tree
        independent of how the edge list happens to be ordered; "input" the order in which the
        edges touching the node appear, either way round (networkx's adjacency order for a
        graph built from the edge list).

    Returns
    -------
    BFSTree

    Raises
    ------
    GraphError
        ``root`` is not in the graph, or ``forest="error"`` and one root does not reach all.
    NotATreeError
        ``require_tree=True`` and an edge is left out; the message names it.

    Notes
    -----
    The search is level-synchronous and vectorised; within a level, nodes are discovered in
    the order a FIFO-queue BFS over the adjacency in ``neighbour_order`` would find them.
    """
    if forest not in (None, "roots", "virtual", "error"):
        raise ValueError(f"forest must be 'roots', 'virtual' or 'error', got {forest!r}")
    if neighbour_order not in ("edges", "sorted", "input"):
        raise ValueError(f"neighbour_order must be 'edges', 'sorted' or 'input', got {neighbour_order!r}")
    if orientation not in ("child-parent", "parent-child"):
        raise ValueError(
            f"orientation must be 'child-parent' or 'parent-child', got {orientation!r}"
        )
    n = graph.num_nodes
    if n == 0:
        raise GraphError(f"bfs_tree: graph {graph._label()} has no nodes")
    if graph.directed:
        walk = "in" if orientation == "child-parent" else "out"
        indptr, indices, edge_ids = graph.csr(walk)
        child_column = 0 if orientation == "child-parent" else 1
        parent_counts = torch.bincount(graph.edges[:, child_column], minlength=n)
    else:
        indptr, indices, edge_ids = graph.csr("both")
        parent_counts = None
    if neighbour_order != "edges":
        row = torch.repeat_interleave(torch.arange(n), torch.diff(indptr))
        key = indices if neighbour_order == "sorted" else edge_ids
        order = torch.argsort(row * max(n, graph.num_edges) + key, stable=True)  # repeats keep edge order
        indices, edge_ids = indices[order], edge_ids[order]
    num_components, component = connected_components(graph)
    search = _Search(n, indptr, indices, edge_ids)

    if root is not None:
        search.run(torch.tensor([graph.node_id(root)], dtype=torch.int64))
    else:
        search.run(
            _automatic_roots(
                graph, parent_counts, component, num_components, torch.ones(n, dtype=torch.bool)
            )
        )
    unreached = search.depth < 0
    if bool(unreached.any()):
        example = graph.names[int(torch.nonzero(unreached)[0])]
        count = int(unreached.sum())
        if forest == "error":
            start = (
                f"root {graph.names[int(search.roots[0][0])]!r}"
                if root is not None
                else (f"the {search.roots[0].numel()} automatic root(s)")
            )
            raise GraphError(
                f"bfs_tree: {start} does not reach {count} of {n} nodes of graph "
                f"{graph._label()} (e.g. {example!r}; {num_components} connected component(s)); "
                "pass forest='roots' or forest='virtual' for a forest"
            )
        while bool(unreached.any()):
            search.run(_automatic_roots(graph, parent_counts, component, num_components, unreached))
            unreached = search.depth < 0
    roots = torch.cat(search.roots)
    if forest is None and roots.numel() > 1:
        warnings.warn(
            f"bfs_tree: graph {graph._label()} needs {roots.numel()} trees "
            f"({num_components} connected component(s)); built a forest. Pass forest='roots' "
            "to accept this silently or forest='virtual' to join the trees under one root.",
            stacklevel=2,
        )

    tree_edge_count = n - roots.numel()
    dropped = graph.num_edges - tree_edge_count
    if require_tree and dropped:
        used = torch.zeros(graph.num_edges, dtype=torch.bool)
        used[search.parent_edge[search.parent_edge >= 0]] = True
        edge = int(torch.nonzero(~used)[0])
        u, v = graph.edges[edge].tolist()
        names = graph.names
        if u == v:
            reason = "it is a self loop"
        else:
            if graph.directed:
                child = u if orientation == "child-parent" else v
            else:
                child = u if bool(search.depth[u] > search.depth[v]) else v
            other = v if child == u else u
            child_parent = int(search.parent[child])
            if child_parent == other:
                reason = f"it repeats the tree edge between {names[u]!r} and {names[v]!r}"
            elif child_parent < 0:
                reason = f"{names[child]!r} is a root"
            else:
                reason = f"{names[child]!r} is already reached through {names[child_parent]!r}"
        arrow = "->" if graph.directed else "--"
        raise NotATreeError(
            f"graph {graph._label()} is not a tree: edge {edge} ({names[u]!r} {arrow} "
            f"{names[v]!r}) closes a cycle ({reason}); {dropped} edge(s) in all are not tree edges"
        )

    parent, depth, parent_edge = search.parent, search.depth, search.parent_edge
    visit_key = depth * n + search.visit_rank
    order = torch.sort(visit_key).indices
    names = graph.names
    virtual_root = None
    if forest == "virtual":
        if virtual_root_name in graph.index:
            raise GraphError(f"virtual root name {virtual_root_name!r} is a node of the graph")
        virtual_root = n
        parent = torch.cat([parent, torch.tensor([-1])])
        parent[roots] = n
        depth = torch.cat([depth + 1, torch.tensor([0])])
        parent_edge = torch.cat([parent_edge, torch.tensor([-1])])
        order = torch.cat([torch.tensor([n]), order])
        names = names + (virtual_root_name,)
    level_ptr = torch.zeros(int(depth.max()) + 2, dtype=torch.int64)
    torch.cumsum(torch.bincount(depth, minlength=level_ptr.numel() - 1), 0, out=level_ptr[1:])
    return BFSTree(
        names=names,
        parent=parent,
        depth=depth,
        order=order,
        level_ptr=level_ptr,
        parent_edge=parent_edge,
        roots=roots,
        num_dropped_edges=dropped,
        num_components=num_components,
        virtual_root=virtual_root,
        source=graph.source,
    )


def _automatic_roots(
    graph: Graph,
    parent_counts: torch.Tensor | None,
    component: torch.Tensor,
    num_components: int,
    candidates: torch.Tensor,
) -> torch.Tensor:
    """Roots among the ``candidates`` mask: see ``bfs_tree``'s ``root=None``."""
    n = graph.num_nodes
    if parent_counts is not None:
        sources = torch.nonzero(candidates & (parent_counts == 0)).reshape(-1)
        if sources.numel():
            return sources
        # Only cycles remain: start from the smallest unreached node.
        return torch.nonzero(candidates)[:1].reshape(-1)
    degree = graph.degrees()
    # Per component: largest degree, then smallest index, packed into one integer key.
    key = torch.where(candidates, degree * (n + 1) + (n - torch.arange(n)), -1)
    best = torch.full((num_components,), -1, dtype=torch.int64)
    best.scatter_reduce_(0, component, key, reduce="amax")
    best = best[best >= 0]
    return torch.sort(n - best % (n + 1)).values
