"""Edge-list files: reading every format, naming bad input, writing and round trips."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from embed.edgelist import GraphFormatError, parse_edgelist, read_edgelist, write_edgelist
from embed.graphs import Graph, GraphError


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


# ====================================================================== writing


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
