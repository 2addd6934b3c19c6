"""Breadth-first spanning trees and forests, against a plain queue search and networkx."""

from __future__ import annotations

import warnings
from collections import deque

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embed.bfs import BFSTree, NotATreeError, bfs_tree
from embed.graphs import Graph, GraphError


def queue_bfs_parents(graph: Graph, roots: list[int], direction: str) -> list[int]:
    """Reference: FIFO-queue BFS over Graph.adjacency_lists, roots processed in turn."""
    adjacency = graph.adjacency_lists(direction)
    parent = [-1] * graph.num_nodes
    seen = [False] * graph.num_nodes
    queue = deque()
    for root in roots:
        seen[root] = True
        queue.append(root)
    while queue:
        node = queue.popleft()
        for neighbour in adjacency[node]:
            if not seen[neighbour]:
                seen[neighbour] = True
                parent[neighbour] = node
                queue.append(neighbour)
    return parent


def check_tree(graph: Graph, tree: BFSTree) -> None:
    """Structural invariants of a BFS tree of ``graph`` (undirected view for adjacency)."""
    n = graph.num_nodes
    pairs = {tuple(e) for e in graph.edges.tolist()}
    pairs |= {(v, u) for u, v in pairs}
    parent, depth = tree.parent.tolist(), tree.depth.tolist()
    for v in range(n):
        p = parent[v]
        if p < 0 or p == tree.virtual_root:
            continue
        assert (v, p) in pairs
        assert depth[v] == depth[p] + 1
        e = int(tree.parent_edge[v])
        assert set(graph.edges[e].tolist()) == {v, p}
    assert sorted(tree.order.tolist()) == list(range(tree.num_nodes))
    assert [depth[v] for v in tree.order.tolist()] == sorted(depth)
    for d, level in enumerate(tree.levels()):
        assert all(depth[v] == d for v in level.tolist())
    assert tree.num_dropped_edges == graph.num_edges - (n - tree.num_trees)


def test_bfs_tree_of_balanced_tree():
    graph = Graph.from_networkx(nx.balanced_tree(3, 3), source="smalltree")
    tree = bfs_tree(graph, "0", require_tree=True)
    check_tree(graph, tree)
    assert tree.max_depth == 3 and tree.num_dropped_edges == 0
    assert tree.levels()[1].tolist() == [1, 2, 3]
    assert tree.parent.tolist() == queue_bfs_parents(graph, [0], "both")
    assert tree.to_graph().num_edges == 39
    assert "1 tree(s) rooted at '0'" in tree.summary()


def test_bfs_sorted_neighbour_order_ignores_edge_order():
    nxg = nx.les_miserables_graph()
    graph = Graph.from_networkx(nxg, weight=None)
    shuffled = Graph(graph.names, graph.edges[torch.randperm(graph.num_edges, generator=torch.Generator().manual_seed(0))])
    flipped = Graph(graph.names, graph.edges.flip(1))
    trees = [bfs_tree(g, "Valjean", neighbour_order="sorted") for g in (graph, shuffled, flipped)]
    for tree in trees[1:]:
        assert torch.equal(tree.parent, trees[0].parent) and torch.equal(tree.order, trees[0].order)
    # the reference: a FIFO queue over neighbour lists sorted by index
    adjacency = [sorted(nb) for nb in graph.adjacency_lists("both")]
    sorted_graph = Graph(graph.names, torch.tensor([(u, v) for u, nb in enumerate(adjacency) for v in nb if u < v]))
    root = graph.node_id("Valjean")
    parent = [-1] * graph.num_nodes
    seen, queue = {root}, deque([root])
    while queue:
        node = queue.popleft()
        for neighbour in adjacency[node]:
            if neighbour not in seen:
                seen.add(neighbour)
                parent[neighbour] = node
                queue.append(neighbour)
    assert trees[0].parent.tolist() == parent
    check_tree(sorted_graph, trees[0])
    # edge order differs from index order here, so the default order gives another tree
    assert not torch.equal(bfs_tree(shuffled, "Valjean").parent, trees[0].parent)
    with pytest.raises(ValueError, match="neighbour_order"):
        bfs_tree(graph, neighbour_order="random")


def test_bfs_input_neighbour_order_is_networkx_adjacency_order():
    rng = np.random.default_rng(3)
    pairs = [(int(u), int(v)) for u, v in rng.integers(0, 60, (150, 2)) if u != v]
    pairs = list(dict.fromkeys(tuple(sorted(p)) if rng.random() < 0.5 else p for p in pairs))
    nxg = nx.Graph()
    nxg.add_edges_from(pairs)  # adjacency order: order of the edges touching each node
    names = tuple(str(i) for i in range(60))
    graph = Graph(names, torch.tensor(pairs))
    root = max(nxg.nodes, key=nxg.degree)
    tree = bfs_tree(graph, str(root), neighbour_order="input", forest="roots")
    expected = dict(nx.bfs_predecessors(nxg, root))
    got = {v: int(p) for v, p in enumerate(tree.parent.tolist()) if p >= 0 and tree.depth[v] > 0
           and v in nxg and nx.has_path(nxg, root, v)}
    assert got == expected


def test_bfs_depths_match_networkx_and_dropped_edges_are_counted():
    nxg = nx.les_miserables_graph()
    graph = Graph.from_networkx(nxg, weight=None)
    tree = bfs_tree(graph)
    check_tree(graph, tree)
    root = graph.names[int(tree.roots[0])]
    assert root == max(nxg.degree, key=lambda item: item[1])[0]
    lengths = nx.single_source_shortest_path_length(nxg, root)
    assert {graph.names[i]: d for i, d in enumerate(tree.depth.tolist())} == lengths
    assert tree.num_dropped_edges == nxg.number_of_edges() - (nxg.number_of_nodes() - 1)


def test_bfs_deep_path_and_wide_parts_agree_with_queue_search():
    nxg = nx.path_graph(300)
    for i in range(0, 300, 7):
        nxg.add_edge(i, f"leaf{i}")
    for j in range(200):
        nxg.add_edge(299, f"star{j}")
    nxg.add_edge(150, 155)
    graph = Graph.from_networkx(nxg)
    tree = bfs_tree(graph, "0")
    check_tree(graph, tree)
    assert tree.parent.tolist() == queue_bfs_parents(graph, [0], "both")
    assert tree.num_dropped_edges == 1


def test_cycle_with_require_tree_names_the_closing_edge():
    graph = Graph.from_named_edges(
        [("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")], source="square"
    )
    tree = bfs_tree(graph, "a")
    assert tree.num_dropped_edges == 1
    with pytest.raises(NotATreeError, match=r"square.*edge 2 \('c' -- 'd'\) closes a cycle"):
        bfs_tree(graph, "a", require_tree=True)


def test_require_tree_names_a_second_parent_in_a_dag():
    graph = Graph.from_named_edges(
        [
            ("pachyderm", "mammal"),
            ("proboscidean", "mammal"),
            ("elephant", "pachyderm"),
            ("elephant", "proboscidean"),
        ],
        directed=True,
    )
    tree = bfs_tree(graph)
    assert graph.names[int(tree.roots[0])] == "mammal" and tree.num_trees == 1
    assert tree.num_dropped_edges == 1
    with pytest.raises(NotATreeError, match="'elephant' is already reached through 'pachyderm'"):
        bfs_tree(graph, require_tree=True)


def test_root_not_in_graph_is_named():
    graph = Graph.from_named_edges([("a", "b")])
    with pytest.raises(GraphError, match="'zebra' is not in graph"):
        bfs_tree(graph, "zebra")
    with pytest.raises(GraphError, match="node index 7"):
        bfs_tree(graph, 7)


def two_components() -> Graph:
    return Graph.from_named_edges(
        [("a", "b"), ("b", "c"), ("x", "y"), ("y", "z"), ("y", "w")], source="two"
    )


def test_forest_default_warns_and_gives_each_component_its_root():
    graph = two_components()
    with pytest.warns(UserWarning, match="'two' needs 2 trees"):
        tree = bfs_tree(graph)
    assert [graph.names[r] for r in tree.roots.tolist()] == ["b", "y"]
    assert tree.num_components == 2 and tree.num_trees == 2
    check_tree(graph, tree)


def test_forest_roots_is_silent_and_explicit_root_extends_to_other_components():
    graph = two_components()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = bfs_tree(graph, "a", forest="roots")
    assert [graph.names[r] for r in tree.roots.tolist()] == ["a", "y"]
    assert tree.max_depth == 2


def test_forest_virtual_root():
    graph = two_components()
    tree = bfs_tree(graph, forest="virtual", virtual_root_name="ROOT")
    assert tree.virtual_root == graph.num_nodes and tree.names[-1] == "ROOT"
    assert tree.parent[tree.roots].tolist() == [graph.num_nodes] * 2
    assert tree.depth[graph.num_nodes] == 0 and tree.depth[graph.index["a"]] == 2
    assert tree.order[0] == graph.num_nodes
    check_tree(graph, tree)
    as_graph = tree.to_graph()
    assert as_graph.num_edges == graph.num_nodes and as_graph.directed
    with pytest.raises(GraphError, match="'a' is a node"):
        bfs_tree(graph, forest="virtual", virtual_root_name="a")


def test_forest_error():
    with pytest.raises(GraphError, match=r"root 'a' does not reach 4 of 7 nodes.*2 connected"):
        bfs_tree(two_components(), "a", forest="error")


def test_directed_hierarchy_with_several_sources():
    graph = Graph.from_named_edges(
        [("b", "a"), ("c", "a"), ("d", "b"), ("y", "x"), ("z", "y"), ("z", "a")], directed=True
    )
    tree = bfs_tree(graph, forest="roots")
    assert [graph.names[r] for r in tree.roots.tolist()] == ["a", "x"]
    assert tree.num_components == 1 and tree.num_dropped_edges == 1
    check_tree(graph, tree)
    assert tree.parent.tolist() == queue_bfs_parents(graph, tree.roots.tolist(), "in")


def test_directed_root_inside_hierarchy_then_forest():
    graph = Graph.from_named_edges([("b", "a"), ("c", "b"), ("d", "a")], directed=True)
    tree = bfs_tree(graph, "b", forest="roots")
    assert [graph.names[r] for r in tree.roots.tolist()] == ["b", "a"]
    check_tree(graph, tree)


def test_directed_parent_child_orientation():
    graph = Graph.from_named_edges([("a", "b"), ("a", "c"), ("c", "d")], directed=True)
    tree = bfs_tree(graph, orientation="parent-child", require_tree=True)
    assert graph.names[int(tree.roots[0])] == "a" and tree.max_depth == 2


def test_directed_cycle_without_source():
    graph = Graph.from_named_edges([("a", "b"), ("b", "c"), ("c", "a"), ("d", "c")], directed=True)
    tree = bfs_tree(graph, forest="roots")
    check_tree(graph, tree)
    with pytest.raises(NotATreeError, match="closes a cycle"):
        bfs_tree(graph, forest="roots", require_tree=True)


def test_self_loop_is_a_dropped_edge():
    graph = Graph(("a", "b"), torch.tensor([[0, 1], [1, 1]]))
    assert bfs_tree(graph, "a").num_dropped_edges == 1
    with pytest.raises(NotATreeError, match="self loop"):
        bfs_tree(graph, "a", require_tree=True)


@st.composite
def random_graphs(draw):
    n = draw(st.integers(1, 30))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60))
    directed = draw(st.booleans())
    return Graph(
        tuple(f"n{i}" for i in range(n)),
        torch.tensor(pairs, dtype=torch.int64).reshape(-1, 2),
        directed=directed,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(), st.sampled_from(["roots", "virtual"]))
def test_bfs_forest_properties(graph, forest):
    tree = bfs_tree(graph, forest=forest)
    check_tree(graph, tree)
    direction = "in" if graph.directed else "both"
    roots = tree.roots.tolist()
    if graph.directed:
        # Later roots are searched only through nodes the earlier searches left; compare depths
        # against the queue search restricted the same way: every node reached exactly once.
        assert (tree.depth[: graph.num_nodes] >= 0).all()
    else:
        expected = queue_bfs_parents(graph, roots, direction)
        parents = tree.parent[: graph.num_nodes].clone()
        if tree.virtual_root is not None:
            parents[parents == tree.virtual_root] = -1
        assert parents.tolist() == expected
        nxg = graph.to_networkx()
        depth_shift = 1 if tree.virtual_root is not None else 0
        for root in roots:
            for name, d in nx.single_source_shortest_path_length(nxg, graph.names[root]).items():
                assert tree.depth[graph.index[name]] == d + depth_shift
