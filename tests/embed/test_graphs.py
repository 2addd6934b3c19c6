"""Tests of embed.graphs: the Graph type, edge-list reading/writing and BFS trees."""

from __future__ import annotations

import warnings
from collections import deque
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embed.graphs import (
    BFSTree,
    Graph,
    GraphError,
    GraphFormatError,
    NotATreeError,
    bfs_tree,
    connected_components,
    parse_edgelist,
    read_edgelist,
    write_edgelist,
)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ====================================================================== reading formats


def test_csv_with_header_keeps_names_and_weights(tmp_path):
    path = write(
        tmp_path,
        "g.csv",
        "id1,id2,weight\ndog.n.01,canine.n.02,1\ncanine.n.02,carnivore.n.01,2.5\n",
    )
    graph = read_edgelist(path, directed=True)
    assert graph.names == ("dog.n.01", "canine.n.02", "carnivore.n.01")
    assert graph.edges.tolist() == [[0, 1], [1, 2]]
    assert graph.weights.dtype == torch.float64
    assert graph.weights.tolist() == [1.0, 2.5]
    assert graph.directed and graph.source == str(path)
    assert graph.num_nodes == 3 and graph.num_edges == 2


def test_csv_without_header(tmp_path):
    graph = read_edgelist(write(tmp_path, "g.csv", "a,b\nb,c\n"))
    assert graph.names == ("a", "b", "c")
    assert graph.weights is None
    assert not graph.directed


def test_csv_header_without_weight_column_is_detected(tmp_path):
    graph = read_edgelist(write(tmp_path, "g.csv", "source,target\nx,y\n"))
    assert graph.names == ("x", "y") and graph.num_edges == 1


def test_header_override(tmp_path):
    path = write(tmp_path, "g.csv", "id1,id2\nx,y\n")
    assert read_edgelist(path, header=False).names == ("id1", "id2", "x", "y")


def test_csv_quoted_names_with_commas_and_spaces(tmp_path):
    path = write(tmp_path, "g.csv", 'u,v\n"Smith, J.", Doe\n')
    assert read_edgelist(path).names == ("Smith, J.", "Doe")


def test_tsv_names_with_spaces(tmp_path):
    path = write(tmp_path, "g.tsv", "new york\tlos angeles\t3\nlos angeles\tparis\t4\n")
    graph = read_edgelist(path)
    assert graph.names == ("new york", "los angeles", "paris")
    assert graph.weights.tolist() == [3.0, 4.0]


def test_whitespace_edges_with_comments_blank_lines_and_bom(tmp_path):
    text = "\ufeff# a comment\n% another\n\n0 1\n1   2\n\t2 3  \n"
    graph = read_edgelist(write(tmp_path, "g.edges", text))
    assert graph.names == ("0", "1", "2", "3")
    assert graph.edges.tolist() == [[0, 1], [1, 2], [2, 3]]


def test_explicit_delimiter(tmp_path):
    graph = read_edgelist(write(tmp_path, "g.txt", "a;b\nb;c\n"), delimiter=";")
    assert graph.names == ("a", "b", "c")


def test_unweighted_reading_ignores_third_column_only_when_asked(tmp_path):
    path = write(tmp_path, "g.csv", "id1,id2,weight\na,b,1\nb,c,1\n")
    assert read_edgelist(path, weighted=False).weights is None
    assert read_edgelist(path).weights.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("auto", ("1", "2", "10")),
        ("numeric", ("1", "2", "10")),
        ("appearance", ("10", "2", "1")),
        ("sorted", ("1", "10", "2")),
    ],
)
def test_node_order(tmp_path, order, expected):
    graph = read_edgelist(write(tmp_path, "g.edges", "10 2\n2 1\n"), node_order=order)
    assert graph.names == expected
    assert {(graph.names[u], graph.names[v]) for u, v in graph.edges.tolist()} == {
        ("10", "2"),
        ("2", "1"),
    }


def test_auto_order_keeps_appearance_for_non_integer_names(tmp_path):
    graph = read_edgelist(write(tmp_path, "g.edges", "b a\n007 c\n"))
    assert graph.names == ("b", "a", "007", "c")


def test_numeric_order_refuses_names_that_are_not_integers(tmp_path):
    with pytest.raises(GraphFormatError, match="'x'"):
        read_edgelist(write(tmp_path, "g.edges", "1 x\n"), node_order="numeric")


# ====================================================================== bad input


@pytest.mark.parametrize(
    ("name", "text", "pieces"),
    [
        ("cols.edges", "a b\nb c d e\n", ["cols.edges:2", "got 4", "'d'"]),
        ("one.csv", "a,b\nc\n", ["one.csv:2", "got 1", "'c'"]),
        ("mixed.edges", "a b 1\nb c\n", ["mixed.edges:2", "expected 3 (u, v, weight)", "got 2"]),
        (
            "word.csv",
            "id1,id2,weight\na,b,1\nb,c,heavy\n",
            ["word.csv:3", "'heavy'", "not a number"],
        ),
        ("nan.tsv", "a\tb\tnan\n", ["nan.tsv:1", "'nan'", "not finite"]),
        ("inf.edges", "# c\na b 1\nb c -inf\n", ["inf.edges:3", "'-inf'", "not finite"]),
        ("neg.edges", "a b 1\nb c -2\n", ["neg.edges:2", "'-2'", "negative"]),
        ("empty.csv", "", ["empty.csv", "empty edge list"]),
        ("blank.edges", "\n# only a comment\n\n", ["blank.edges", "empty edge list"]),
        ("header.csv", "id1,id2,weight\n", ["header.csv", "header only"]),
        ("wide.csv", "a,b,c,d\n", ["wide.csv:1", "got 4"]),
    ],
)
def test_malformed_input_names_file_line_and_value(tmp_path, name, text, pieces):
    with pytest.raises(GraphFormatError) as caught:
        read_edgelist(write(tmp_path, name, text))
    message = str(caught.value)
    for piece in pieces:
        assert piece in message, (piece, message)


def test_weight_required_when_weighted(tmp_path):
    with pytest.raises(GraphFormatError, match=r"w\.edges:1.*got 2"):
        read_edgelist(write(tmp_path, "w.edges", "a b\n"), weighted=True)


def test_negative_weights_accepted_when_allowed(tmp_path):
    graph = read_edgelist(write(tmp_path, "g.edges", "a b -2\n"), allow_negative_weights=True)
    assert graph.weights.tolist() == [-2.0]


def test_not_utf8(tmp_path):
    with pytest.raises(GraphFormatError, match=r"bad\.edges:2: not UTF-8"):
        read_edgelist(write(tmp_path, "bad.edges", b"a b\n\xff c\n"))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.edges"):
        read_edgelist(tmp_path / "nope.edges")


def test_directory_is_refused_by_name(tmp_path):
    (tmp_path / "folder.edges").mkdir()
    with pytest.raises(IsADirectoryError, match=r"'.*folder\.edges' is a directory, not a file"):
        read_edgelist(tmp_path / "folder.edges")


def test_nul_character_in_a_name_is_refused(tmp_path):
    # "b\0" would otherwise be a node distinct from "b", silently splitting the graph
    with pytest.raises(GraphFormatError, match=r"nul\.edges:2: NUL character"):
        read_edgelist(write(tmp_path, "nul.edges", b"a b\nb\x00 c\n"))


def test_duplicates_dropped_with_warning_counting_them_and_naming_the_first(tmp_path):
    path = write(tmp_path, "d.edges", "a b\nb c\na b\nb a\nb c\n")
    with pytest.warns(UserWarning) as record:
        graph = read_edgelist(path)
    message = str(record[0].message)
    assert "d.edges" in message and "dropped 3 duplicate edges" in message
    assert "'a' -- 'b' at line 3 (first at line 1)" in message
    assert graph.edges.tolist() == [[0, 1], [1, 2]]


def test_reverse_edge_is_not_a_duplicate_when_directed(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = read_edgelist(write(tmp_path, "d.edges", "a b\nb a\n"), directed=True)
    assert graph.num_edges == 2


def test_duplicate_weights_that_differ_are_mentioned(tmp_path):
    with pytest.warns(UserWarning, match="1 of them with a weight different"):
        graph = read_edgelist(write(tmp_path, "d.edges", "a b 1\nb a 2\n"))
    assert graph.weights.tolist() == [1.0]


def test_duplicates_refused_on_request(tmp_path):
    with pytest.raises(
        GraphFormatError, match=r"d\.edges:3: duplicate edge 'b' -- 'a' \(first at line 1"
    ):
        read_edgelist(write(tmp_path, "d.edges", "a b\nb c\nb a\n"), duplicates="error")


def test_self_loops_dropped_with_warning_and_node_kept(tmp_path):
    path = write(tmp_path, "s.edges", "a a\na b\nc c\n")
    with pytest.warns(
        UserWarning, match=r"s\.edges: dropped 2 self loops \(first: 'a' at line 1\)"
    ):
        graph = read_edgelist(path)
    assert graph.names == ("a", "b", "c")
    assert graph.edges.tolist() == [[0, 1]]


def test_self_loops_refused_on_request(tmp_path):
    with pytest.raises(GraphFormatError, match=r"s\.edges:2: self loop 'b'"):
        read_edgelist(write(tmp_path, "s.edges", "a b\nb b\n"), self_loops="error")


def test_only_self_loops_leaves_no_edges(tmp_path):
    with pytest.warns(UserWarning), pytest.raises(GraphFormatError, match="no edges left"):
        read_edgelist(write(tmp_path, "s.edges", "a a\n"))


def test_bad_option_values():
    with pytest.raises(ValueError, match="duplicates"):
        parse_edgelist("a b\n", duplicates="sum")
    with pytest.raises(ValueError, match="self_loops"):
        parse_edgelist("a b\n", self_loops="keep")


# ====================================================================== Graph type


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


@pytest.mark.parametrize(
    ("suffix", "names"),
    [(".csv", ("a b", "c,d", 'e"f')), (".tsv", ("a b", "c,d", "e")), (".edges", ("a", "c,d", "e"))],
)
def test_write_read_round_trip(tmp_path, suffix, names):
    weights = torch.tensor([0.1, 1 / 3], dtype=torch.float64)
    graph = Graph(names, torch.tensor([[0, 1], [1, 2]]), weights)
    path = tmp_path / f"out{suffix}"
    write_edgelist(graph, path)
    back = read_edgelist(path)
    assert back.names == graph.names
    assert torch.equal(back.edges, graph.edges)
    assert torch.equal(back.weights, graph.weights)  # repr round-trips exactly


def test_write_refuses_names_the_format_cannot_hold(tmp_path):
    graph = Graph(("a b", "c"), torch.tensor([[0, 1]]))
    with pytest.raises(GraphError, match="'a b' cannot be written"):
        write_edgelist(graph, tmp_path / "out.edges")
    assert not list(tmp_path.iterdir())
    with pytest.raises(GraphError, match="'#c'"):
        write_edgelist(Graph(("a", "#c"), torch.tensor([[0, 1]])), tmp_path / "out.csv")


def test_write_sorted_rows_with_header(tmp_path):
    graph = Graph(("b", "a", "c"), torch.tensor([[0, 2], [1, 2]]), directed=True)
    path = tmp_path / "out.csv"
    write_edgelist(graph, path, sort_rows=True)
    assert path.read_text() == "id1,id2,weight\na,c,1\nb,c,1\n"
    assert not list(tmp_path.glob(".*tmp"))


# ====================================================================== BFS trees


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


def test_connected_components_numbered_by_smallest_node():
    count, labels = connected_components(
        Graph(tuple("abcdef"), torch.tensor([[4, 1], [2, 5], [5, 1]]))
    )
    assert count == 3
    assert labels.tolist() == [0, 1, 1, 2, 1, 1]


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
