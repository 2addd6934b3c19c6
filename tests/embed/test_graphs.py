"""The Graph type and its connected components."""

from __future__ import annotations

import networkx as nx
import pytest
import torch

from embed.graphs import Graph, GraphError, connected_components


def test_graph_validates_its_fields():
    with pytest.raises(GraphError, match="shape"):
        Graph(("a", "b"), torch.tensor([0, 1]))
    with pytest.raises(GraphError, match="integer"):
        Graph(("a", "b"), torch.tensor([[0.0, 1.0]]))
    with pytest.raises(GraphError, match=r"\[0, 2\)"):
        Graph(("a", "b"), torch.tensor([[0, 2]]))
    with pytest.raises(GraphError, match="'a' repeats"):
        Graph(("a", "a"), torch.tensor([[0, 1]]))
    with pytest.raises(GraphError, match="weights"):
        Graph(("a", "b"), torch.tensor([[0, 1]]), torch.tensor([1.0, 2.0]))
    graph = Graph(["a", "b"], torch.tensor([[0, 1]], dtype=torch.int32), [2])
    assert graph.names == ("a", "b")
    assert graph.edges.dtype == torch.int64 and graph.weights.dtype == torch.float64


def test_graph_is_frozen_and_copies_its_tensors():
    edges = torch.tensor([[0, 1]])
    graph = Graph(("a", "b"), edges)
    edges[0, 0] = 1
    assert graph.edges.tolist() == [[0, 1]]
    with pytest.raises(AttributeError):
        graph.directed = True


def test_node_lookup_errors_name_the_node():
    graph = Graph(("a", "b"), torch.tensor([[0, 1]]), source="toy")
    assert graph.node_id("b") == 1 and graph.node_id(0) == 0
    with pytest.raises(GraphError, match="'zebra' is not in graph 'toy'"):
        graph.node_id("zebra")
    with pytest.raises(GraphError, match="index 5"):
        graph.node_id(5)


def test_networkx_round_trip_directed_with_isolated_node():
    graph = Graph(("a", "b", "c", "lonely"), torch.tensor([[0, 1], [1, 2], [0, 2]]), directed=True)
    nxg = graph.to_networkx()
    assert isinstance(nxg, nx.DiGraph)
    assert list(nxg.nodes) == ["a", "b", "c", "lonely"]
    back = Graph.from_networkx(nxg)
    assert back.names == graph.names and back.directed
    # networkx lists edges node by node, so only the edge set survives, not the edge order.
    assert set(back.named_edges()) == set(graph.named_edges()) and back.weights is None


def test_networkx_round_trip_undirected_weighted():
    graph = Graph(("x", "y", "z"), torch.tensor([[0, 1], [2, 1]]), torch.tensor([0.5, 2.0]))
    back = Graph.from_networkx(graph.to_networkx())
    assert back.names == graph.names and not back.directed
    assert {
        frozenset(e): w for e, w in zip(back.named_edges(), back.weights.tolist(), strict=True)
    } == {
        frozenset(("x", "y")): 0.5,
        frozenset(("z", "y")): 2.0,
    }


def test_from_networkx_integer_nodes_become_strings():
    graph = Graph.from_networkx(nx.balanced_tree(2, 2))
    assert graph.names == tuple(str(i) for i in range(7))
    assert graph.num_edges == 6


def test_csr_matches_adjacency():
    graph = Graph(
        ("a", "b", "c", "d"), torch.tensor([[0, 1], [2, 1], [1, 3], [0, 2]]), directed=True
    )
    indptr, indices, edge_ids = graph.csr("out")
    assert indptr.tolist() == [0, 2, 3, 4, 4]
    assert indices.tolist() == [1, 2, 3, 1]
    assert edge_ids.tolist() == [0, 3, 2, 1]
    assert graph.adjacency_lists("in") == [[], [0, 2], [0], [1]]
    assert graph.adjacency_lists("both") == [[1, 2], [3, 0, 2], [1, 0], [1]]
    assert graph.as_undirected().adjacency_lists("out") == graph.adjacency_lists("both")


def test_subgraph_and_degrees():
    graph = Graph(
        ("a", "b", "c", "d"), torch.tensor([[0, 1], [1, 2], [2, 3]]), torch.tensor([1.0, 2.0, 3.0])
    )
    sub = graph.subgraph(["c", "b"])
    assert sub.names == ("c", "b")
    assert sub.edges.tolist() == [[1, 0]] and sub.weights.tolist() == [2.0]
    assert graph.degrees().tolist() == [1, 2, 2, 1]


def test_from_named_edges():
    graph = Graph.from_named_edges([("x", "y"), ("y", "z")], directed=True, names=["z"])
    assert graph.names == ("z", "x", "y")
    assert graph.named_edges() == [("x", "y"), ("y", "z")]


def test_connected_components_numbered_by_smallest_node():
    count, labels = connected_components(
        Graph(tuple("abcdef"), torch.tensor([[4, 1], [2, 5], [5, 1]]))
    )
    assert count == 3
    assert labels.tolist() == [0, 1, 1, 2, 1, 1]
