"""Reading the shared benchmark graphs (the ``shared_data`` fixture: ../shared/data beside the repository, or
HYPERBOLIC_SHARED_DATA; the tests fail when it is missing). Counts are those of the SOURCE.md files there."""

from __future__ import annotations

import warnings

import pytest

from embed.bfs import bfs_tree
from embed.edgelist import read_edgelist
from embed.graphs import connected_components

# file: (nodes, edges as SOURCE.md counts them with networkx, self loops among them)
HYPERBOLICS = {
    "smalltree.edges": (40, 39, 0),
    "phylo_tree.edges": (344, 343, 0),
    "ca-CSphd.edges": (1025, 1043, 0),
    "bio-diseasome.edges": (516, 1188, 0),
    "bio-yeast.edges": (1458, 1948, 0),
    "grqc.edges": (4158, 13428, 6),
    "wordnet.edges": (74374, 75834, 0),
    "karate.edges": (34, 78, 0),
    "wordnet_mammal/mammal_dag.edges": (1182, 1182, 0),
    "wordnet_mammal/mammal_closure.edges": (1182, 6542, 0),
    "wordnet_mammal/mammal_bfs_tree.edges": (1182, 1181, 0),
}


@pytest.mark.parametrize("name", sorted(HYPERBOLICS))
def test_hyperbolics_graphs(shared_data, name):
    nodes, edges, loops = HYPERBOLICS[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = read_edgelist(shared_data.joinpath("hyperbolics", name))
    messages = [str(w.message) for w in caught]
    if loops:
        # networkx counts self loops as edges; the reader drops them and says so.
        assert len(messages) == 1 and f"dropped {loops} self loops" in messages[0]
    else:
        assert messages == []
    assert (graph.num_nodes, graph.num_edges) == (nodes, edges - loops)
    assert graph.names == tuple(str(i) for i in range(nodes))  # integer ids keep their value
    assert connected_components(graph)[0] == 1


def test_mammal_bfs_tree_is_a_tree_of_depth_9(shared_data):
    graph = read_edgelist(shared_data.joinpath("hyperbolics", "wordnet_mammal", "mammal_bfs_tree.edges"))
    tree = bfs_tree(graph, "0", require_tree=True)
    assert tree.max_depth == 9


def test_mammal_dag_has_one_second_parent(shared_data):
    graph = read_edgelist(shared_data.joinpath("hyperbolics", "wordnet_mammal", "mammal_dag.edges"))
    assert bfs_tree(graph, "0").num_dropped_edges == 1


def test_grqc_csv_lists_each_edge_both_ways(shared_data):
    path = shared_data.joinpath("HyperbolicTiling_Learning", "wordnet", "grqc.csv")
    with pytest.warns(UserWarning) as caught:
        graph = read_edgelist(path)
    messages = " ".join(str(w.message) for w in caught)
    assert "dropped 12 self loops" in messages and "dropped 13433 duplicate edges" in messages
    assert (graph.num_nodes, graph.num_edges) == (4158, 13422)
    assert graph.weights is not None
