"""The command line of ``hyperbolic embed --method train|hmds``: options, runs, resume, stages, exit statuses."""

import argparse
import json

import pytest

from embed import train_cli
from embed.train import NonFiniteTrainingError, Trainer
from embed.train_cli import add_arguments, load_graph, parse_stage, run_from_args
from hyperbolic.io import load_embedding

from .test_train import tree_closure

pytestmark = pytest.mark.usefixtures("one_thread")


def test_parse_stage():
    assert parse_stage("60:hard-negatives=10,max_step=1.0,relocate_leaves=true,relocate_rank=none") == (
        60, {"hard_negatives": 10, "max_step": 1.0, "relocate_leaves": True, "relocate_rank": None})
    for bad in ("60", "x:lr=1", "60:", "60:lr", "60:=3", "60:lr=1,lr=2"):
        with pytest.raises(argparse.ArgumentTypeError, match="stage"):
            parse_stage(bad)


def parse(argv):
    parser = argparse.ArgumentParser(prog="hyperbolic embed")
    add_arguments(parser)
    return parser.parse_args(argv)


def write_closure(tmp_path) -> str:
    graph = tree_closure(3, 2)
    path = tmp_path / "tree.csv"
    lines = ["id1,id2,weight"] + [f"{graph.names[u]},{graph.names[v]},1" for u, v in graph.edges.tolist()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_cli_train_writes_an_embedding_and_resumes(tmp_path, capsys):
    source = write_closure(tmp_path)
    out, ckpt, metrics = tmp_path / "e.pt", tmp_path / "e.ckpt", tmp_path / "m.jsonl"
    common = [source, "--method", "train", "--dim", "2", "--batch-size", "16", "--lr", "3", "--negatives", "8",
              "--burnin-epochs", "2", "--eval-every", "5", "--checkpoint", str(ckpt), "--metrics", str(metrics),
              "--json"]
    assert run_from_args(parse(common + ["--epochs", "10", "-o", str(out)])) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epoch"] == 10 and summary["output"] == str(out) and summary["map"] > 0.5
    names, points, manifold = load_embedding(out)
    assert manifold.name == "poincare" and points.shape == (13, 2) and names[0] == "n1"
    assert run_from_args(parse(common + ["--epochs", "15", "--resume", "--stage", "12:max_step=0.5,lr=1"])) == 0
    assert json.loads(capsys.readouterr().out)["epoch"] == 15
    assert Trainer.resume(ckpt, load_graph(source)).config.max_step == 0.5  # the stage ran
    stages = [json.loads(line) for line in open(metrics) if '"stage"' in line]
    assert stages == [{"event": "stage", "epoch": 12, "changes": {"max_step": 0.5, "lr": 1}}]
    with pytest.raises(SystemExit):
        parse(common + ["--stage", "12:max_step"])
    assert "stage '12:max_step'" in capsys.readouterr().err


def test_cli_hmds(tmp_path, capsys):
    path = tmp_path / "tree.edges"
    path.write_text("0 1\n0 2\n1 3\n1 4\n2 5\n2 6\n")
    out = tmp_path / "h.pt"
    argv = [str(path), "--method", "hmds", "--dim", "3", "--scale", "2", "--manifold", "poincare", "-o", str(out),
            "--json"]
    assert run_from_args(parse(argv)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "hmds" and summary["n_positive"] >= 1 and summary["map"] > 0.5
    assert load_embedding(out)[2].name == "poincare"


def test_cli_errors_are_messages(tmp_path, capsys):
    assert run_from_args(parse([str(tmp_path / "missing.csv")])) == 2
    assert "neither an edge-list file" in capsys.readouterr().err
    source = write_closure(tmp_path)
    assert run_from_args(parse([source, "--resume"])) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert run_from_args(parse([source, "--manifold", "nowhere"])) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyperbolic embed: error: ") and "nowhere" in err


def test_cli_reports_a_non_finite_stop_with_status_1(tmp_path, capsys, monkeypatch):
    def diverge(args, graph):
        raise NonFiniteTrainingError("non-finite loss at epoch 3; the last good checkpoint is epoch 2")

    monkeypatch.setattr(train_cli, "_run_train", diverge)
    assert run_from_args(parse([write_closure(tmp_path)])) == 1
    assert capsys.readouterr().err.startswith("hyperbolic embed: stopped: non-finite loss")


def test_cli_options_join_a_host_subcommand(tmp_path, capsys):
    # The shape of `hyperbolic embed` in embed/cli.py: its own GRAPH, --method, --dim, --directed, --seed,
    # --json, --out and a string --precision; ours are added around them without conflicts.
    parser = argparse.ArgumentParser(prog="hyperbolic embed")
    parser.add_argument("graph", nargs="?")
    parser.add_argument("--method", choices=["combinatorial", "train", "hmds"], default="combinatorial")
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--directed", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--precision", default="auto")
    add_arguments(parser, graph=False, method=False)
    source = write_closure(tmp_path)
    out = tmp_path / "e.pt"
    args = parser.parse_args([source, "--directed", "--method", "train", "--epochs", "4", "--batch-size", "16",
                              "--negatives", "8", "--burnin-epochs", "1", "--out", str(out), "--json"])
    assert run_from_args(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dim"] == 2 and summary["epoch"] == 4 and out.exists()
    args = parser.parse_args([source, "--method", "hmds", "--hmds-precision", "80", "--json"])
    assert run_from_args(args) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "hmds"
