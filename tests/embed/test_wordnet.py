"""Tests of embed.wordnet: the parser and datasets on a tiny fake database, then the real
WordNet 3.0 counts (published facts) and cross-checks against the files in ../shared/data."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest
import torch

from embed import wordnet
from embed.bfs import bfs_tree
from embed.edgelist import read_edgelist, write_edgelist
from embed.graphs import Graph
from embed.wordnet import (
    WordNetFormatError,
    WordNetNotFoundError,
    cache_dir,
    default_search_paths,
    find_wordnet,
    load_dataset,
    load_mammals,
    mammal_closure,
    noun_closure,
    noun_hypernym_graph,
    read_synsets,
    verb_closure,
)

from .fake_wordnet import write_fake_wordnet, zip_wordnet


def named_set(graph: Graph) -> set[tuple[str, str]]:
    return set(graph.named_edges())


@pytest.fixture
def fake(tmp_path) -> Path:
    return write_fake_wordnet(tmp_path / "wn")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """No test reads the user's cache or a WordNet location from the environment."""
    monkeypatch.setenv("HYPERBOLIC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WORDNET_DIR", raising=False)


# ====================================================================== fake database


def test_names_follow_index_order_like_nltk(fake):
    synsets = {s.name: s for s in read_synsets("n", fake)}
    # "dog" lists the hot dog synset first in index.noun, although its offset is larger.
    assert synsets["dog.n.01"].lemmas == ("dog", "frank", "hotdog")
    assert synsets["dog.n.02"].lemmas == ("dog", "domestic_dog")
    assert synsets["dog.n.01"].offset > synsets["dog.n.02"].offset
    assert synsets["fury.n.01"].lemmas == ("Fury", "Eumenides")
    assert synsets["fury.n.01"].instance_hypernyms == (synsets["mythical_monster.n.01"].offset,)
    assert synsets["fury.n.01"].hypernyms == ()
    assert synsets["dog.n.02"].hypernyms == (synsets["mammal.n.01"].offset,)  # "~" ignored
    verbs = {s.name: s for s in read_synsets("v", fake)}
    assert set(verbs) == {"breathe.v.01", "respire.v.02", "pant.v.01", "zap.v.01"}
    assert verbs["respire.v.02"].hypernyms == (verbs["breathe.v.01"].offset,)  # "+ ... n" ignored


def test_noun_closure_variants_on_fake(fake):
    full = noun_closure(wordnet_dir=fake)
    script = noun_closure("script", wordnet_dir=fake)
    assert full.directed and full.num_nodes == 10 and full.num_edges == 19
    assert "orphan_thing.n.01" not in full.index
    assert {a for c, a in named_set(full) if c == "alecto.n.01"} == {
        "fury.n.01",
        "mythical_monster.n.01",
        "entity.n.01",
    }
    assert {a for c, a in named_set(script) if c == "alecto.n.01"} == {"fury.n.01"}
    assert named_set(full) - named_set(script) == {
        ("alecto.n.01", "mythical_monster.n.01"),
        ("alecto.n.01", "entity.n.01"),
    }
    # Nodes in data-file offset order.
    offsets = {s.name: s.offset for s in read_synsets("n", fake)}
    assert [offsets[name] for name in full.names] == sorted(offsets[name] for name in full.names)
    with pytest.raises(ValueError, match="variant"):
        noun_closure("partial", wordnet_dir=fake)


def test_mammal_closure_on_fake(fake):
    unfiltered = mammal_closure(False, wordnet_dir=fake)
    assert named_set(unfiltered) == {
        ("dog.n.02", "mammal.n.01"),
        ("cat.n.01", "mammal.n.01"),
        ("tusker.n.01", "mammal.n.01"),
    }
    filtered = mammal_closure(wordnet_dir=fake)
    assert filtered.num_nodes == 3 and "tusker.n.01" not in filtered.index


def test_verb_closure_on_fake(fake):
    graph = verb_closure(wordnet_dir=fake)
    assert named_set(graph) == {
        ("respire.v.02", "breathe.v.01"),
        ("pant.v.01", "respire.v.02"),
        ("pant.v.01", "breathe.v.01"),
    }
    assert "zap.v.01" not in graph.index


def test_noun_hypernym_graph_on_fake(fake):
    graph = noun_hypernym_graph(wordnet_dir=fake)
    assert graph.num_nodes == 8 and graph.num_edges == 7
    assert graph.names[0] == "entity.n.01"
    assert "fury.n.01" not in graph.index and "alecto.n.01" not in graph.index


def test_nltk_zip_and_folder_layouts(fake, tmp_path):
    nltk_root = tmp_path / "nltk_data"
    corpus = nltk_root / "corpora" / "wordnet"
    write_fake_wordnet(corpus)
    archive = zip_wordnet(fake, tmp_path / "wordnet.zip")
    assert find_wordnet(nltk_root).location == str(corpus)
    database = find_wordnet(archive)
    assert database.member_prefix == "wordnet/"
    reference = noun_closure(wordnet_dir=fake, cache=False)
    from_zip = noun_closure(wordnet_dir=archive, cache=False)
    assert from_zip.names == reference.names and torch.equal(from_zip.edges, reference.edges)
    zipped_root = tmp_path / "zipped_nltk_data"
    (zipped_root / "corpora").mkdir(parents=True)
    zip_wordnet(fake, zipped_root / "corpora" / "wordnet.zip")
    assert find_wordnet(zipped_root).member_prefix == "wordnet/"
    dict_layout = tmp_path / "WordNet-3.0"
    write_fake_wordnet(dict_layout / "dict")
    assert find_wordnet(dict_layout).location == str(dict_layout / "dict")


def test_search_order(monkeypatch, tmp_path):
    monkeypatch.setenv("WNSEARCHDIR", str(tmp_path / "wnsearch"))
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "nltk"))
    paths = default_search_paths()
    assert paths[0] == tmp_path / "wnsearch"
    assert paths[1] == Path("/usr/share/wordnet")
    assert tmp_path / "nltk" / "corpora" / "wordnet" in paths
    assert tmp_path / "nltk" / "corpora" / "wordnet.zip" in paths
    assert Path.home() / "nltk_data" / "corpora" / "wordnet" in paths


def test_environment_variable_and_explicit_argument(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("WORDNET_DIR", str(fake))
    assert find_wordnet().location == str(fake)
    monkeypatch.setenv("WORDNET_DIR", str(tmp_path / "missing"))
    with pytest.raises(WordNetNotFoundError, match=r"\$WORDNET_DIR = .*missing"):
        find_wordnet()
    assert find_wordnet(fake).location == str(fake)  # the argument wins


def test_missing_wordnet_says_how_to_install(tmp_path):
    with pytest.raises(WordNetNotFoundError) as caught:
        find_wordnet(search=[tmp_path / "nothing", tmp_path / "nltk" / "corpora" / "wordnet.zip"])
    message = str(caught.value)
    assert "apt-get install wordnet-base" in message
    assert "python -m nltk.downloader wordnet" in message
    assert "nothing: does not exist" in message
    with pytest.raises(WordNetNotFoundError, match="wordnet_dir = .*nowhere.*apt-get"):
        noun_closure(wordnet_dir=tmp_path / "nowhere")


def test_only_wordnet_30_is_accepted(tmp_path):
    newer = write_fake_wordnet(tmp_path / "wn31", version="3.1")
    with pytest.raises(WordNetFormatError, match="WordNet 3.1, not WordNet 3.0"):
        find_wordnet(newer)
    with pytest.raises(WordNetNotFoundError, match="WordNet 3.1, not WordNet 3.0"):
        find_wordnet(search=[newer])
    good = write_fake_wordnet(tmp_path / "wn30")
    assert find_wordnet(search=[newer, good]).location == str(good)


def test_malformed_files_are_reported_with_file_and_line(fake):
    data = (fake / "data.noun").read_text()
    (fake / "data.noun").write_text(data + "00009999 03 n zz broken\n")
    line = data.count("\n") + 1
    with pytest.raises(WordNetFormatError, match=rf"data\.noun:{line}: malformed synset line"):
        read_synsets("n", fake)


def test_dangling_pointer_and_cycle_are_reported(fake):
    data = (fake / "data.noun").read_text().replace("@ 00000143 n", "@ 00000144 n", 1)
    (fake / "data.noun").write_text(data)
    with pytest.raises(WordNetFormatError, match="offset 00000144, which is not a synset"):
        noun_closure(wordnet_dir=fake, cache=False)
    with pytest.raises(WordNetFormatError, match="cycle"):
        wordnet._ancestor_sets([(1,), (2,), (0,)], ["a", "b", "c"])


# ====================================================================== cache


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("HYPERBOLIC_CACHE", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("HYPERBOLIC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "hyperbolic"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "hyperbolic"


def test_cache_round_trip_and_invalidation(fake, monkeypatch, tmp_path, caplog):
    built = noun_closure(wordnet_dir=fake)
    files = list(cache_dir().glob("wordnet-noun_closure-*.pt"))
    assert len(files) == 1 and not list(cache_dir().glob(".*tmp"))
    stored = torch.load(files[0], weights_only=True)
    assert stored["names"] == list(built.names) and torch.equal(stored["edges"], built.edges)

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(wordnet, "_synsets_from_files", no_parsing)
    cached = noun_closure(wordnet_dir=fake)
    assert cached.names == built.names and torch.equal(cached.edges, built.edges)

    # A changed database has another fingerprint, so it is parsed again.
    data = (fake / "data.noun").read_text().replace("gloss of cat", "gloss of a cat")
    (fake / "data.noun").write_text(data)
    with pytest.raises(AssertionError, match="parsed although cached"):
        noun_closure(wordnet_dir=fake)
    monkeypatch.undo()
    monkeypatch.setenv("HYPERBOLIC_CACHE", str(tmp_path / "cache"))

    # A damaged cache file is rebuilt, with a warning.
    built = noun_closure(wordnet_dir=fake)
    for path in cache_dir().glob("*.pt"):
        path.write_bytes(b"not a torch file")
    with caplog.at_level(logging.WARNING, logger="embed.wordnet"):
        rebuilt = noun_closure(wordnet_dir=fake)
    assert "ignoring unreadable cache file" in caplog.text
    assert torch.equal(rebuilt.edges, built.edges)


def test_cache_can_be_disabled_or_redirected(fake, tmp_path):
    noun_closure(wordnet_dir=fake, cache=False)
    assert not cache_dir().exists()
    verb_closure(wordnet_dir=fake, cache=tmp_path / "elsewhere")
    assert len(list((tmp_path / "elsewhere").glob("wordnet-verb_closure-*.pt"))) == 1


# ====================================================================== entry points


def test_load_dataset_and_command_line(fake, tmp_path, capsys):
    assert load_dataset("verb_closure", wordnet_dir=fake).num_edges == 3
    with pytest.raises(ValueError, match="unknown dataset 'cats'.*noun_closure"):
        load_dataset("cats")
    out = tmp_path / "mammals.csv"
    assert wordnet.main(["mammal_closure_unfiltered", str(out), "--wordnet-dir", str(fake)]) == 0
    assert out.read_text() == (
        "id1,id2,weight\ncat.n.01,mammal.n.01,1\ndog.n.02,mammal.n.01,1\ntusker.n.01,mammal.n.01,1\n"
    )
    assert wordnet.main(["noun_closure", str(out), "--wordnet-dir", str(tmp_path / "no")]) == 1
    assert "apt-get install wordnet-base" in capsys.readouterr().err


def test_builtin_mammals_need_no_wordnet(monkeypatch, tmp_path):
    monkeypatch.setenv("WORDNET_DIR", str(tmp_path / "no-wordnet-here"))
    graph = load_mammals()
    assert graph.num_nodes == 1180 and graph.num_edges == 6540 and graph.directed
    assert "built-in" in graph.source
    assert load_dataset("mammals").num_edges == 6540
    mammal = graph.index["mammal.n.01"]
    assert not bool((graph.edges[:, 0] == mammal).any())  # the root is only an ancestor
    assert int(torch.unique(graph.edges[:, 0]).numel()) == 1179


def test_builtin_mammals_ship_with_the_licence():
    from importlib import resources

    licence = resources.files("embed").joinpath("data", "WORDNET_LICENSE").read_text()
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in licence
    assert "mammal_closure.csv" in licence


# ====================================================================== real WordNet 3.0


def real_wordnet():
    try:
        return find_wordnet(os.environ.get("WORDNET_DIR") or None)
    except (WordNetNotFoundError, WordNetFormatError) as error:
        return error


REAL = real_wordnet()


def test_wordnet_is_installed_in_ci():
    if os.environ.get("CI") and not isinstance(REAL, wordnet.WordNetDatabase):
        pytest.fail(f"CI must have WordNet 3.0 (apt-get install wordnet-base): {REAL}")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if not isinstance(REAL, wordnet.WordNetDatabase):
        if os.environ.get("CI"):
            pytest.fail(f"CI must have WordNet 3.0 (apt-get install wordnet-base): {REAL}")
        pytest.skip(f"WordNet 3.0 database files not installed: {REAL}")
    return {"wordnet_dir": REAL, "cache": tmp_path_factory.mktemp("wordnet-cache")}


@pytest.fixture(scope="module")
def real_nouns(real):
    return {s.name: s for s in read_synsets("n", real["wordnet_dir"])}


def test_real_names_match_nltk(real_nouns, real):
    assert len(real_nouns) == 82115  # names are unique
    expected = {
        "entity.n.01": 1740,
        "person.n.01": 7846,
        "dog.n.01": 2084071,
        "mammal.n.01": 1861778,
        "placental.n.01": 1886756,
        "fury.n.04": 9506337,
    }
    assert {name: real_nouns[name].offset for name in expected} == expected
    assert real_nouns["alecto.n.01"].hypernyms == (9506337,)
    assert real_nouns["fury.n.04"].instance_hypernyms
    verbs = read_synsets("v", real["wordnet_dir"])
    assert len(verbs) == 13767 and verbs[0].name == "breathe.v.01"


def test_real_noun_closure_counts(real, real_nouns):
    full = noun_closure(**real)
    script = noun_closure("script", **real)
    assert (full.num_nodes, full.num_edges) == (82115, 743241)
    assert (script.num_nodes, script.num_edges) == (82115, 743086)
    assert full.names == script.names
    n = full.num_nodes
    full_keys = full.edges[:, 0] * n + full.edges[:, 1]
    script_keys = script.edges[:, 0] * n + script.edges[:, 1]
    assert torch.unique(full_keys).numel() == full.num_edges
    assert not bool((full.edges[:, 0] == full.edges[:, 1]).any())
    assert bool(torch.isin(script_keys, full_keys).all())
    missing = full.edges[~torch.isin(full_keys, script_keys)]
    assert missing.shape[0] == 155
    assert torch.unique(missing[:, 0]).numel() == 22
    lost = {}
    for child, _ in missing.tolist():
        lost[full.names[child]] = lost.get(full.names[child], 0) + 1
    assert lost["alecto.n.01"] == 11 and lost["blighty.n.01"] == 9
    tree = bfs_tree(full, require_tree=False)
    assert tree.num_trees == 1 and full.names[int(tree.roots[0])] == "entity.n.01"
    assert tree.num_dropped_edges == 743241 - 82114


def test_real_mammal_closure_counts_and_shared_file(real, shared_data):
    filtered = mammal_closure(**real)
    unfiltered = mammal_closure(False, **real)
    assert (filtered.num_nodes, filtered.num_edges) == (1180, 6540)
    assert (unfiltered.num_nodes, unfiltered.num_edges) == (1182, 6542)
    assert named_set(unfiltered) - named_set(filtered) == {
        ("tusker.n.01", "mammal.n.01"),
        ("female_mammal.n.01", "mammal.n.01"),
    }
    shared = read_edgelist(shared_data.joinpath("wordnet", "mammal_closure.csv"), directed=True)
    assert named_set(shared) == named_set(filtered)


def test_shipped_mammals_equal_fresh_build(real, tmp_path):
    fresh = mammal_closure(**real)
    shipped = load_mammals()
    assert named_set(shipped) == named_set(fresh)
    # The shipped file is exactly what the generator writes (sorted rows).
    out = tmp_path / "mammal_closure.csv"
    write_edgelist(fresh, out, sort_rows=True)
    from importlib import resources

    shipped_bytes = resources.files("embed").joinpath("data", "mammal_closure.csv").read_bytes()
    assert out.read_bytes() == shipped_bytes
    rows = shipped_bytes.decode().splitlines()[1:]
    digest = hashlib.md5("".join(f"{r}\n" for r in sorted(rows)).encode()).hexdigest()
    assert digest == "ca152d60bf035eb86200955ecf994af4"  # sorted-rows md5 in the shared notes


def test_real_unfiltered_mammals_equal_hyperbolics_file(real, real_nouns, shared_data):
    ids = shared_data.joinpath("hyperbolics", "wordnet_mammal", "mammal_ids.tsv")
    edges = shared_data.joinpath("hyperbolics", "wordnet_mammal", "mammal_closure.edges")
    offset_name = {s.offset: name for name, s in real_nouns.items()}
    id_name = {}
    for line in ids.read_text().splitlines():
        node, offset, _ = line.split("\t")
        id_name[node] = offset_name[int(offset)]
    other = read_edgelist(edges, directed=True)
    assert {(id_name[u], id_name[v]) for u, v in other.named_edges()} == named_set(
        mammal_closure(False, **real)
    )


def test_real_verb_closure_counts_and_shared_file(real, shared_data):
    graph = verb_closure(**real)
    assert (graph.num_nodes, graph.num_edges) == (13542, 35079)
    shared = read_edgelist(
        shared_data.joinpath("HyperbolicTiling_Learning", "wordnet", "verb_closure.csv"), directed=True
    )
    assert named_set(shared) == named_set(graph)


def test_real_noun_hypernym_graph_equals_hyperbolics_wordnet_edges(real, shared_data):
    graph = noun_hypernym_graph(**real)
    assert (graph.num_nodes, graph.num_edges) == (74374, 75834)
    assert graph.names[0] == "entity.n.01" and graph.names[17] == "person.n.01"
    tree = bfs_tree(graph.as_undirected(), "entity.n.01")
    assert tree.max_depth == 16 and tree.num_dropped_edges == 1461
    assert bfs_tree(graph.as_undirected(), 17).max_depth == 17
    downward = bfs_tree(graph)  # directed: entity.n.01 is the only synset without a parent
    assert downward.num_trees == 1 and downward.roots.tolist() == [0]
    shared = read_edgelist(shared_data.joinpath("hyperbolics", "wordnet.edges"))
    assert shared.names == tuple(str(i) for i in range(74374))
    assert {frozenset(e) for e in shared.edges.tolist()} == {
        frozenset(e) for e in graph.edges.tolist()
    }
