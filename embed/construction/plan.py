"""The tree facts every construction path needs, computed once and vectorised from a BFS tree."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..bfs import BFSTree
from ..graphs import Graph

__all__ = ["TreePlan", "plan_tree"]


@dataclass(frozen=True)
class TreePlan:
    """A rooted forest laid out level by level.

    Attributes
    ----------
    n : int
        Nodes: the graph's, plus a virtual root joining the trees of a forest (``virtual_root``).
    parent : torch.Tensor
        ``(n,)`` parent index, -1 for roots.
    depth : torch.Tensor
        ``(n,)`` depth (roots 0).
    levels : list of torch.Tensor
        Nodes of each depth, parents' order first (BFS order).
    slot : torch.Tensor
        ``(n,)`` position among its parent's children in BFS order: 0-based for children of a root
        (child ``i`` of ``d`` goes to direction ``i``), 1-based for other nodes (slot 0 is the parent).
    slots : torch.Tensor
        ``(n,)`` number of direction slots at the node's parent: ``d`` (children) for a root,
        children + 1 for others; 0 for roots.
    weight : torch.Tensor
        ``(n,)`` float64 weight of the edge to the parent (0 for roots).
    roots : torch.Tensor
        Roots of the trees.
    max_degree : int
        Largest number of direction slots at any node other than a virtual root.
    min_weight : float
        Smallest tree-edge weight.
    max_path_weight : float
        Largest root-path weight (the depth for unweighted graphs).
    virtual_root : int or None
        Index of the virtual root, if any.
    """

    n: int
    parent: torch.Tensor
    depth: torch.Tensor
    levels: list
    slot: torch.Tensor
    slots: torch.Tensor
    weight: torch.Tensor
    roots: torch.Tensor
    max_degree: int
    min_weight: float
    max_path_weight: float
    virtual_root: int | None = None

    @property
    def max_depth(self) -> int:
        return len(self.levels) - 1


def plan_tree(tree: BFSTree, graph: Graph) -> TreePlan:
    """Children counts, slots, edge weights and root-path weights of a BFS tree of ``graph``."""
    n = len(tree.names)  # graph nodes, plus the virtual root if the tree has one
    parent = tree.parent.clone()
    depth = tree.depth.clone()
    is_child = parent >= 0
    children = torch.bincount(parent[is_child], minlength=n)
    is_root = parent < 0
    # Slots at a node: its children, plus its parent unless it is a root.
    node_slots = children + (~is_root).to(torch.int64)
    slots = torch.zeros(n, dtype=torch.int64)
    slots[is_child] = node_slots[parent[is_child]]
    # Rank among siblings in BFS order.
    order = tree.order
    ordered_parent = parent[order]
    rank_in_order = torch.empty(n, dtype=torch.int64)
    rank_in_order[order] = torch.arange(n)
    child_nodes = order[ordered_parent >= 0]
    sort_key = parent[child_nodes] * n + rank_in_order[child_nodes]
    sorted_children = child_nodes[torch.argsort(sort_key)]
    group_parent = parent[sorted_children]
    first_of_group = torch.ones(len(sorted_children), dtype=torch.bool)
    first_of_group[1:] = group_parent[1:] != group_parent[:-1]
    group_start = torch.cummax(torch.where(first_of_group, torch.arange(len(sorted_children)), 0), 0).values
    position = torch.arange(len(sorted_children)) - group_start
    slot = torch.zeros(n, dtype=torch.int64)
    slot[sorted_children] = position + (~is_root[group_parent]).to(torch.int64)

    weight = torch.zeros(n, dtype=torch.float64)
    weight[is_child] = 1.0
    if graph.weights is not None:
        has_edge = tree.parent_edge >= 0
        weight[has_edge] = graph.weights[tree.parent_edge[has_edge]]
        if bool((weight[is_child] <= 0).any()):
            bad = int(torch.nonzero(is_child & (weight <= 0))[0])
            raise ValueError(f"tree edge {tree.names[bad]!r} -- {tree.names[int(parent[bad])]!r} has weight "
                             f"{float(weight[bad])}; the construction needs positive weights")
    real = torch.ones(n, dtype=torch.bool)
    if tree.virtual_root is not None:
        real[tree.virtual_root] = False
    levels = tree.levels()
    path = torch.zeros(n, dtype=torch.float64)
    for level in levels[1:]:
        path[level] = path[parent[level]] + weight[level]
    return TreePlan(
        n=n,
        parent=parent,
        depth=depth,
        levels=levels,
        slot=slot,
        slots=slots,
        weight=weight,
        roots=tree.roots.clone(),
        max_degree=int(node_slots[real].max()) if bool(real.any()) else 0,
        min_weight=float(weight[is_child].min()) if bool(is_child.any()) else 1.0,
        max_path_weight=float(path.max()) if n else 0.0,
        virtual_root=tree.virtual_root,
    )
