"""``hyperbolic embed / eval / export / plot`` end to end, including bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from embed.cli import main
from hyperbolic.io import load_embedding, load_npz

METRIC_KEYS = {"edge_map", "mean_rank", "d_avg", "d_wc", "nonfinite", "rows", "seconds"}


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_default_command_embeds_the_builtin_mammals(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    import embed.plot

    monkeypatch.chdir(tmp_path)
    drawn = []
    original = embed.plot.plot_embedding
    monkeypatch.setattr(embed.plot, "plot_embedding", lambda *a, **k: drawn.append(k["edges"]) or original(*a, **k))
    assert main(["embed", "--json"]) == 0
    # the picture shows the tree the construction placed (1,179 edges), not the 6,540 closure pairs
    assert len(drawn) == 1 and drawn[0].shape == (1179, 2)
    assert len({tuple(e) for e in drawn[0].tolist()}) == 1179 and len(set(drawn[0][:, 0].tolist())) == 1179
    record = _json(capsys)
    assert METRIC_KEYS | {"closure_map", "tau"} <= record.keys()
    assert record["nodes"] == 1180 and record["rows"] == 1180 and record["nonfinite"] == 0
    assert record["edge_map"] > 0.999 and record["closure_map"] > 0.4
    out = tmp_path / "hyperbolic-out"
    assert {p.name for p in out.iterdir()} == {"mammals.pt", "mammals.metrics.json", "mammals.png"}
    names, points, manifold = load_embedding(out / "mammals.pt")
    assert len(names) == 1180 and manifold.name == "halfspace-mcf"
    assert json.loads((out / "mammals.metrics.json").read_text())["edge_map"] == record["edge_map"]


def test_embed_eval_export_plot_roundtrip(tmp_path, capsys, shared_data):
    graph = shared_data / "hyperbolics" / "smalltree.edges"
    out = tmp_path / "small.pt"
    assert main(["embed", str(graph), "--eps", "0.1", "--root", "0", "--out", str(out), "--json"]) == 0
    built = _json(capsys)
    assert METRIC_KEYS <= built.keys() and "closure_map" not in built
    assert built["edge_map"] == 1.0 and built["d_avg"] == pytest.approx(0.0129, abs=1e-4)
    assert main(["eval", str(out), str(graph), "--json"]) == 0
    evaluated = _json(capsys)
    assert evaluated["edge_map"] == built["edge_map"] and evaluated["d_avg"] == pytest.approx(built["d_avg"])
    assert evaluated["embedding_rows_not_in_graph"] == 0
    assert main(["eval", str(out), str(graph), "--rows", "10", "--json"]) == 0
    sampled = _json(capsys)
    assert sampled["rows"] == 10 and sampled["sampled"] is True
    part = tmp_path / "part.edges"
    part.write_text("\n".join(graph.read_text().splitlines()[:3]) + "\n")
    assert main(["eval", str(out), str(part)]) == 0
    assert f"of the {built['nodes']} embedding rows are not nodes of" in capsys.readouterr().out

    names, points, manifold = load_embedding(out)
    assert main(["export", str(out), str(tmp_path / "small.npz")]) == 0
    names2, points2, _ = load_npz(tmp_path / "small.npz")
    assert names2 == names and torch.equal(points2, points)  # exact: every component
    assert main(["export", str(out), str(tmp_path / "small.tsv")]) == 0
    rows = (tmp_path / "small.tsv").read_text().splitlines()
    assert len(rows) == 40 and np.array(rows[5].split("\t")[1:], dtype=float).tolist() == points[5].tolist()
    assert main(["export", str(out), str(tmp_path / "small.txt")]) == 0
    header = (tmp_path / "small.txt").read_text().splitlines()[0]
    assert header == "40 2"
    if pytest.importorskip("matplotlib"):
        assert main(["plot", str(out), str(graph), "--out", str(tmp_path / "small.svg")]) == 0
        assert (tmp_path / "small.svg").stat().st_size > 1000


def _fails(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hyperbolic {argv[0]}: error:"), err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_bad_input_is_refused_without_output(tmp_path, capsys, shared_data):
    out = tmp_path / "out.pt"
    bad = tmp_path / "bad.edges"
    bad.write_text("0 1\n1 2 3 4\n")
    _fails(capsys, ["embed", str(bad), "--out", str(out)], "bad.edges:2", "got 4")
    empty = tmp_path / "empty.edges"
    empty.write_text("# nothing\n")
    _fails(capsys, ["embed", str(empty), "--out", str(out)], "empty edge list")
    tree = shared_data / "hyperbolics" / "phylo_tree.edges"
    _fails(capsys, ["embed", str(tree), "--root", "nope", "--out", str(out)], "'nope'", "not in graph")
    _fails(capsys, ["embed", str(tree), "--precision", "mcf3", "--out", str(out)], "cannot hold the tree",
           "components")
    _fails(capsys, ["embed", str(tree), "--eps", "0.1", "--dim", "3", "--out", str(out)], "ceiling")
    _fails(capsys, ["embed", str(tree), "--precision", "double", "--out", str(out)], "unknown precision")
    cycle = tmp_path / "cycle.edges"
    cycle.write_text("a b\nb c\nc a\n")
    _fails(capsys, ["embed", str(cycle), "--require-tree", "--out", str(out)], "not a tree")
    _fails(capsys, ["embed", str(tmp_path / "missing.edges")], "does not exist")
    _fails(capsys, ["eval", str(tmp_path / "missing.pt"), str(tree)], "does not exist")
    assert not out.exists() and not (tmp_path / "out.metrics.json").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary leftovers


def test_directories_are_refused_with_a_message(tmp_path, capsys, shared_data):
    folder = tmp_path / "folder"
    folder.mkdir()
    graph = shared_data / "hyperbolics" / "smalltree.edges"
    out = tmp_path / "small.pt"
    _fails(capsys, ["embed", str(folder), "--out", str(out)], "folder' is a directory, not a file")
    _fails(capsys, ["embed", str(graph), "--closure", str(folder), "--out", str(out)], "is a directory")
    _fails(capsys, ["embed", str(graph), "--root", "0", "--no-eval", "--out", str(folder)], "is a directory")
    assert main(["embed", str(folder), "--method", "hmds"]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["embed", str(graph), "--root", "0", "--no-eval", "--out", str(out)]) == 0
    _fails(capsys, ["export", str(out), str(folder), "--format", "tsv"], "is a directory")
    assert list(folder.iterdir()) == []


def test_a_tiled_embedding_file_reads_back_in_a_fresh_process(tmp_path, capsys, shared_data):
    graph = shared_data / "hyperbolics" / "smalltree.edges"
    out = tmp_path / "tiled.pt"
    assert main(["embed", str(graph), "--root", "0", "--precision", "tiling", "--no-eval", "--out", str(out)]) == 0
    result = subprocess.run([sys.executable, "-m", "embed.cli", "export", str(out), str(tmp_path / "tiled.npz")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "(npz, 40 points)" in result.stdout
    result = subprocess.run([sys.executable, "-m", "embed.cli", "embed", str(graph), "--method", "train", "--dim",
                             "2", "--epochs", "1", "--manifold", "ltiling", "--warm-start", str(out), "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["manifold"] == "ltiling"


@pytest.mark.parametrize("command", ["eval", "plot"])
def test_a_stored_scale_that_is_not_positive_is_refused(tmp_path, capsys, shared_data, command):
    if command == "plot":
        pytest.importorskip("matplotlib")
    graph = shared_data / "hyperbolics" / "smalltree.edges"
    out = tmp_path / "small.pt"
    assert main(["embed", str(graph), "--root", "0", "--no-eval", "--out", str(out)]) == 0
    argv = [command, str(out), str(graph)] if command == "eval" else [command, str(out), "--out", str(tmp_path / "s.png")]
    for scale in (float("nan"), 0.0, "big"):
        payload = torch.load(out, weights_only=True)
        payload["config"] = json.dumps({**json.loads(payload["config"]), "scale": scale})
        torch.save(payload, out)
        _fails(capsys, argv, "small.pt: stored scale", "not a positive finite number")
    assert not (tmp_path / "s.png").exists()


def test_a_disconnected_graph_is_reported_or_refused(tmp_path, capsys):
    graph = tmp_path / "two.edges"
    graph.write_text("a b\nb c\nx y\n")
    out = tmp_path / "two.pt"
    assert main(["embed", str(graph), "--out", str(out)]) == 0
    assert "2 trees (2 connected component(s)) joined under a virtual root" in capsys.readouterr().out
    assert main(["embed", str(graph), "--out", str(out), "--json"]) == 0
    record = _json(capsys)
    assert record["components_of_graph"] == 2 and record["virtual_root"] is True
    out.unlink()
    _fails(capsys, ["embed", str(graph), "--require-tree", "--out", str(out)], "not a tree: 2 connected components")
    assert not out.exists()


def test_self_loops_and_duplicates_are_dropped_with_a_warning(tmp_path, capsys):
    graph = tmp_path / "loops.edges"
    graph.write_text("a b\nb b\na b\nb c\n")
    out = tmp_path / "loops.pt"
    with pytest.warns(UserWarning) as caught:
        assert main(["embed", str(graph), "--out", str(out), "--json"]) == 0
    messages = " ".join(str(w.message) for w in caught)
    assert "dropped 1 self loop" in messages and "dropped 1 duplicate edge" in messages
    record = _json(capsys)
    assert record["edges"] == 2 and record["edge_map"] == 1.0


def test_console_script_embeds(tmp_path):
    result = subprocess.run([sys.executable, "-m", "embed.cli", "embed", "--no-plot", "--no-eval", "--outdir",
                             str(tmp_path)], capture_output=True, text=True, check=True)
    assert "wrote" in result.stdout and (tmp_path / "mammals.pt").exists()


def test_tiling_precision_embeds_saves_and_evaluates(tmp_path, capsys, shared_data):
    graph = shared_data / "hyperbolics" / "smalltree.edges"
    out = tmp_path / "tiled.pt"
    assert main(["embed", str(graph), "--dim", "2", "--eps", "0.1", "--root", "0", "--precision", "tiling",
                 "--out", str(out), "--json", "--no-plot"]) == 0
    built = _json(capsys)
    assert built["edge_map"] == 1.0 and built["d_avg"] == pytest.approx(0.0129, abs=1e-4)
    names, points, manifold = load_embedding(out)
    assert len(names) == 40 and manifold.name == "ltiling"
    assert main(["eval", str(out), str(graph), "--json"]) == 0
    evaluated = _json(capsys)
    assert evaluated["edge_map"] == built["edge_map"] and evaluated["d_avg"] == pytest.approx(built["d_avg"])
    _fails(capsys, ["embed", str(graph), "--dim", "3", "--precision", "tiling", "--out", str(tmp_path / "x.pt")],
           "needs dim = 2")
    assert not (tmp_path / "x.pt").exists()
