"""The optimisation trainer: sampler, losses, training on every representation, checkpoints, exact resume,
NaN handling, warm start and the metrics file (the command line: test_train_cli.py)."""

import json
import math
import os
import signal

import pytest
import torch

from embed.checkpoint import CheckpointError, load_checkpoint
from embed.graphs import Graph
from embed.losses import distortion_loss, ranking_loss
from embed.sampling import NegativeSampler
from embed.train import (
    EuclideanBaseline,
    NonFiniteTrainingError,
    TrainConfig,
    Trainer,
    evaluate_embedding,
    make_manifold,
    warm_start,
)
from hyperbolic import registry
from hyperbolic.io import save_embedding
from hyperbolic.manifold import PrecisionError

pytestmark = pytest.mark.usefixtures("one_thread")


def tree_closure(branching=3, depth=3) -> Graph:
    """Transitive closure (child -> every ancestor) of a balanced tree, as a directed graph."""
    names, parent = ["r"], {0: None}
    frontier = [0]
    for _ in range(depth):
        new = []
        for p in frontier:
            for _ in range(branching):
                parent[len(names)] = p
                new.append(len(names))
                names.append(f"n{len(names)}")
        frontier = new
    edges = []
    for child in range(1, len(names)):
        a = parent[child]
        while a is not None:
            edges.append((child, a))
            a = parent[a]
    return Graph(tuple(names), torch.tensor(edges), directed=True, source="tree")


def small_config(**overrides) -> TrainConfig:
    options = dict(epochs=40, batch_size=16, lr=3.0, negatives=10, burnin_epochs=5, eval_every=10, seed=3)
    options.update(overrides)
    return TrainConfig(**options)


# ============================================================================ sampler


def test_sampler_rejects_self_ancestors_and_repeats():
    graph = tree_closure(3, 3)
    sampler = NegativeSampler(graph.edges, graph.num_nodes)
    ancestors = torch.zeros(graph.num_nodes, graph.num_nodes, dtype=torch.bool)
    ancestors[graph.edges[:, 0], graph.edges[:, 1]] = True
    generator = torch.Generator().manual_seed(0)
    u = graph.edges[:, 0]
    for probs in (None, sampler.distribution(0.75)):
        negatives, valid = sampler.sample(u, 8, generator, probs=probs)
        assert negatives.shape == valid.shape == (u.numel(), 8)
        assert not (ancestors[u.unsqueeze(1), negatives] & valid).any()
        assert not ((negatives == u.unsqueeze(1)) & valid).any()
        for row, mask in zip(negatives, valid):
            accepted = row[mask]
            assert accepted.unique().numel() == accepted.numel()
        if probs is not None:  # burn-in draws only nodes that are somebody's ancestor
            assert (sampler.counts[negatives[valid]] > 0).all()


def test_sampler_masks_rows_that_run_short():
    # 4 nodes on a chain closure: node 0 has ancestors 1, 2, 3, so no negative at all is acceptable;
    # node 2 (ancestor 3) can only get nodes 0 and 1.
    edges = torch.tensor([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
    sampler = NegativeSampler(edges, 4)
    generator = torch.Generator().manual_seed(1)
    negatives, valid = sampler.sample(torch.tensor([0, 2]), 5, generator)
    assert valid[0].sum() == 0
    assert valid[1].sum() == 2 and set(negatives[1][valid[1]].tolist()) == {0, 1}


def test_sampler_is_seeded_and_keyed_path_agrees_with_dense(monkeypatch):
    graph = tree_closure(3, 3)
    u = graph.edges[:, 0]
    first = NegativeSampler(graph.edges, graph.num_nodes).sample(u, 6, torch.Generator().manual_seed(5))
    again = NegativeSampler(graph.edges, graph.num_nodes).sample(u, 6, torch.Generator().manual_seed(5))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    monkeypatch.setattr("embed.sampling._DENSE_LIMIT", 0)  # force the sorted-key relation table
    padded = NegativeSampler(graph.edges, graph.num_nodes)
    assert padded._related is not None  # each node's ancestors in a padded table
    keyed = padded.sample(u, 6, torch.Generator().manual_seed(5))
    assert torch.equal(first[0], keyed[0]) and torch.equal(first[1], keyed[1])
    monkeypatch.setattr("embed.sampling._PADDED_LIMIT", 0)  # and the key search alone
    searched = NegativeSampler(graph.edges, graph.num_nodes)
    assert searched._related is None
    keyed = searched.sample(u, 6, torch.Generator().manual_seed(5))
    assert torch.equal(first[0], keyed[0]) and torch.equal(first[1], keyed[1])


def test_sampler_weighted_threshold():
    # (0, 1) has weight 1 and (0, 2) weight 3: for the pair (0, 2) node 1 is an acceptable negative,
    # for the pair (0, 1) node 2 is not.
    edges = torch.tensor([[0, 1], [0, 2]])
    sampler = NegativeSampler(edges, 3, torch.tensor([1.0, 3.0]))
    generator = torch.Generator().manual_seed(0)
    negatives, valid = sampler.sample(torch.tensor([0, 0]), 2, generator, threshold=torch.tensor([3.0, 1.0]))
    assert negatives[0][valid[0]].tolist() == [1]
    assert valid[1].sum() == 0


def _index_nearest(num_nodes):
    """``nearest(rows, m)`` for points on a circle of ``num_nodes`` positions (ties broken by index)."""
    def nearest(rows, m):
        gap = (torch.arange(num_nodes) - rows.unsqueeze(1)).abs()
        gap = torch.minimum(gap, num_nodes - gap) * num_nodes + torch.arange(num_nodes)
        return torch.argsort(gap, dim=1)[:, :m]
    return nearest


def _tree_sampler():
    """A depth-3 ternary tree closure, its node count, a sampler and the ``(N, N)`` ancestor matrix."""
    graph = tree_closure(3, 3)
    n = graph.num_nodes
    ancestors = torch.zeros(n, n, dtype=torch.bool)
    ancestors[graph.edges[:, 0], graph.edges[:, 1]] = True
    return graph, n, NegativeSampler(graph.edges, n), ancestors


def test_hard_table_holds_the_nearest_acceptable_nodes():
    graph, n, sampler, ancestors = _tree_sampler()
    nearest = _index_nearest(n)
    table = sampler.hard_table(nearest, 6, chunk=7)  # chunks that do not divide N
    assert table.shape == (n, 6) and table.dtype == torch.int32
    for u in range(n):
        expected = [c for c in nearest(torch.tensor([u]), n)[0].tolist() if c != u and not ancestors[u, c]][:6]
        assert table[u].tolist() == expected


def test_hard_table_of_a_small_graph_pads_with_the_node_itself():
    edges = torch.tensor([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])  # chain closure 0 -> 1 -> 2 -> 3
    table = NegativeSampler(edges, 4).hard_table(_index_nearest(4), 3)
    assert table[0].tolist() == [0, 0, 0]  # no acceptable node at all
    assert sorted(table[2].tolist()[:2]) == [0, 1] and table[2, 2] == 2
    negatives, valid = NegativeSampler(edges, 4).sample(torch.tensor([0, 2]), 3, torch.Generator().manual_seed(0),
                                                        hard=table, num_hard=2)
    assert valid[0].sum() == 0 and set(negatives[1][valid[1]].tolist()) == {0, 1}


def test_sampler_hard_negatives_keep_the_rule_and_come_from_the_table():
    graph, n, sampler, ancestors = _tree_sampler()
    table = sampler.hard_table(_index_nearest(n), 8)
    u = graph.edges[:, 0]
    negatives, valid = sampler.sample(u, 10, torch.Generator().manual_seed(2), hard=table, num_hard=4)
    assert valid.all()
    assert not ancestors[u.unsqueeze(1), negatives].any() and not (negatives == u.unsqueeze(1)).any()
    assert all(row.unique().numel() == row.numel() for row in negatives)
    pool = table[u].long()
    assert (negatives[:, :4].unsqueeze(2) == pool.unsqueeze(1)).any(2).all()  # the first H from u's candidates
    # a random subset of the candidates: over many pairs of one u every candidate is picked
    many, _ = sampler.sample(u[:1].repeat(100), 10, torch.Generator().manual_seed(2), hard=table, num_hard=4)
    assert set(many[:, :4].flatten().tolist()) == set(pool[0].tolist())
    # seeded: the same generator state gives the same negatives, another seed others
    again = sampler.sample(u, 10, torch.Generator().manual_seed(2), hard=table, num_hard=4)
    assert torch.equal(again[0], negatives) and torch.equal(again[1], valid)
    other = sampler.sample(u, 10, torch.Generator().manual_seed(3), hard=table, num_hard=4)
    assert not torch.equal(other[0], negatives)
    with pytest.raises(ValueError, match="candidate table"):
        sampler.sample(u, 10, torch.Generator(), num_hard=4)
    with pytest.raises(ValueError, match="num_hard"):
        sampler.sample(u, 3, torch.Generator(), hard=table, num_hard=4)
    with pytest.raises(ValueError, match="count"):
        sampler.hard_table(_index_nearest(n), 0)


def test_hard_log_weights_keep_the_uniform_objective():
    graph = tree_closure(3, 3)
    n = graph.num_nodes
    sampler = NegativeSampler(graph.edges, n)
    table = sampler.hard_table(_index_nearest(n), 8)
    u = graph.edges[:, 0]
    negatives, valid = sampler.sample(u, 10, torch.Generator().manual_seed(2), hard=table, num_hard=4)
    log_w = sampler.hard_log_weights(u, negatives, table, 4, 10)
    in_pool = (negatives.unsqueeze(2) == table[u].long().unsqueeze(1)).any(2)
    assert in_pool[:, :4].all()
    expected_pool = math.log(10 / n) - math.log(4 / 8 + 6 / n)
    assert torch.allclose(log_w[in_pool], torch.tensor(expected_pool, dtype=torch.float64))
    assert torch.allclose(log_w[~in_pool], torch.tensor(math.log(10 / 6), dtype=torch.float64))
    # Monte Carlo: the weighted sum over the mixture's negatives estimates the sum over K uniform ones
    # (on a graph with N >> K, where the inclusion probabilities are close to the formula's)
    graph = tree_closure(5, 4)
    n = graph.num_nodes
    sampler = NegativeSampler(graph.edges, n)
    table = sampler.hard_table(_index_nearest(n), 8)
    f = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    f[table[n - 1].long()] = 20.0  # the candidates carry much of the sum, as the nodes crowding u do
    rows = torch.full((20000,), n - 1)
    generator = torch.Generator().manual_seed(1)
    mixed, ok = sampler.sample(rows, 10, generator, hard=table, num_hard=4)
    weights = sampler.hard_log_weights(rows, mixed, table, 4, 10).exp()
    uniform, ok_uniform = sampler.sample(rows, 10, generator)
    estimate = (weights * f[mixed] * ok).sum(1).mean()
    reference = (f[uniform] * ok_uniform).sum(1).mean()
    assert float(estimate) == pytest.approx(float(reference), rel=0.03)
    with pytest.raises(ValueError, match="num_hard"):
        sampler.hard_log_weights(u, negatives, table, 10, 10)


def test_sampler_bad_input():
    with pytest.raises(ValueError, match="integer"):
        NegativeSampler(torch.zeros(3, 2), 4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        NegativeSampler(torch.tensor([[0, 7]]), 4)
    with pytest.raises(ValueError, match="at least 1"):
        NegativeSampler(torch.tensor([[0, 1]]), 4).sample(torch.tensor([0]), 0, torch.Generator())


# ============================================================================ losses


def test_ranking_loss_is_cross_entropy_and_masks():
    d = torch.rand(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 4
    expected = torch.nn.functional.cross_entropy(-d, torch.zeros(6, dtype=torch.long))
    assert torch.allclose(ranking_loss(d), expected)
    valid = torch.ones(6, 4, dtype=torch.bool)
    valid[:, 2:] = False
    assert torch.allclose(ranking_loss(d, valid), torch.nn.functional.cross_entropy(-d[:, :3], torch.zeros(6, dtype=torch.long)))
    valid[:] = False  # no negatives: loss 0, gradient 0, no NaN
    x = d.clone().requires_grad_()
    loss = ranking_loss(x, valid)
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="shape"):
        ranking_loss(d, valid[:, :2])


def test_ranking_loss_log_weights_scale_the_negatives():
    d = torch.rand(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    log_w = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    expected = (torch.log(torch.exp(-d[:, 0]) + (log_w.exp() * torch.exp(-d[:, 1:])).sum(1)) + d[:, 0]).mean()
    assert torch.allclose(ranking_loss(d, log_weights=log_w), expected)
    with pytest.raises(ValueError, match="log_weights"):
        ranking_loss(d, log_weights=log_w[:, :3])


def test_distortion_loss_kinds():
    d = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    t = torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)
    assert distortion_loss(d, t, "ratio").item() == pytest.approx((0 + 1 + 1) / 3)
    assert distortion_loss(d, t, "squared").item() == pytest.approx((0 + 1 + 4) / 3)
    assert distortion_loss(d, t, "symmetric").item() == pytest.approx((0 + 1.25 + 1.25) / 3)
    assert distortion_loss(d, t, "log").item() == pytest.approx(2 * torch.log(torch.tensor(2.0)).item() ** 2 / 3)
    with pytest.raises(ValueError, match="unknown"):
        distortion_loss(d, t, "cubic")


# ============================================================================ configuration


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(lr=-1.0), dict(lr=float("nan")), dict(optimizer="lbfgs"),
                                 dict(loss="hinge"), dict(dtype="float16"), dict(batch_size=1.5),
                                 dict(target_map=1.5), dict(max_step=0.0), dict(device="not-a-device"),
                                 dict(hard_negatives=60), dict(hard_negatives=-1), dict(hard_candidates=0),
                                 dict(hard_negatives=40, hard_candidates=20), dict(hard_refresh=0),
                                 dict(hard_negatives=5, loss="distortion"), dict(relocate_leaves=True, loss="distortion"),
                                 dict(relocate_distance=0.0), dict(relocate_spread=-1.0),
                                 dict(relocate_from=-1), dict(relocate_rank=0), dict(relocate_rank=40)])
def test_config_rejects_bad_values(bad):
    with pytest.raises((ValueError, RuntimeError)):
        TrainConfig(**bad)


def test_config_json_round_trip():
    config = small_config(sparse=True, optimizer="adam", target_map=0.9)
    assert TrainConfig.from_json(config.to_json()) == config


# ============================================================================ training


@pytest.mark.parametrize("label", ["poincare", "lorentz", "halfspace", "euclidean"])
def test_ranking_training_reconstructs_a_tree_on_every_representation(label):
    graph = tree_closure(3, 3)
    lr = 1.0 if label == "euclidean" else 3.0
    result = Trainer(graph, make_manifold(label, 2), small_config(lr=lr), progress=False).fit()
    assert result.stopped == "completed" and result.epoch == 40
    final = result.history[-1]
    assert final["rows"] == graph.num_nodes and not final["sampled"]
    first = result.history[0]
    assert final["map"] > first["map"]
    if label != "euclidean":
        assert final["map"] > 0.9, final
    assert torch.isfinite(result.points).all()


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_optimisers_dtypes_and_sparse_gradients(sparse, optimizer, dtype):
    graph = tree_closure(3, 2)
    lr = 0.2 if optimizer == "adam" else 3.0
    config = small_config(epochs=30, sparse=sparse, optimizer=optimizer, dtype=dtype, lr=lr)
    trainer = Trainer(graph, make_manifold("poincare", 2), config, progress=False)
    result = trainer.fit()
    assert result.points.dtype == getattr(torch, dtype)
    assert result.history[-1]["map"] > 0.8


@pytest.mark.parametrize("label", ["poincare", "lorentz", "euclidean"])
def test_row_sgd_is_geoopts_sparse_sgd(label):
    graph = tree_closure(3, 2)
    lr = 1.0 if label == "euclidean" else 3.0
    geo = Trainer(graph, make_manifold(label, 2), small_config(epochs=6, sparse=True, lr=lr), progress=False).fit()
    rows = Trainer(graph, make_manifold(label, 2), small_config(epochs=6, optimizer="row-sgd", lr=lr),
                   progress=False).fit()
    assert torch.allclose(rows.points, geo.points, rtol=1e-12, atol=1e-14)


def test_all_registered_representations_train():
    # MCF and tiling models register on import (embed.cli.load_representations); every one must train:
    # 8 epochs lift the closure-MAP of the random start (0.285 on every model) to 0.806 on every model.
    graph = tree_closure(2, 2)
    for entry in registry.entries():
        manifold = entry.create(2)
        trainer = Trainer(graph, manifold, small_config(epochs=8, eval_every=0), progress=False)
        start = trainer.evaluate()["map"]
        result = trainer.fit()
        final = result.history[-1]["map"]
        assert start < 0.5 and final > start + 0.3 and final > 0.75, (entry.label, start, final)
        manifold.assert_points(result.points)


def test_distortion_training_fits_graph_distances():
    graph = tree_closure(2, 3).as_undirected()
    config = small_config(loss="distortion", epochs=60, batch_size=16, lr=1.0, init_scale=0.5, eval_every=30,
                          burnin_epochs=0)
    result = Trainer(graph, make_manifold("lorentz", 2), config, progress=False).fit()
    assert result.history[-1]["d_avg"] < result.history[0]["d_avg"] < 1
    assert result.history[-1]["d_avg"] < 0.25


def test_stages_switch_the_distortion_task_too(tmp_path):
    graph = tree_closure(2, 3).as_undirected()
    base = dict(loss="distortion", epochs=12, batch_size=16, lr=1.0, init_scale=0.5, eval_every=6, burnin_epochs=0)
    stage = {"distortion": "squared", "lr": 0.5}
    staged = Trainer(graph, make_manifold("lorentz", 2), small_config(**base, stages=((6, stage),)), progress=False)
    result = staged.fit()
    assert staged.config.distortion == "squared" and staged.task.config is staged.config
    path = tmp_path / "run.ckpt"
    steps_per_epoch = staged.global_step // 12  # all pairs every epoch
    Trainer(graph, make_manifold("lorentz", 2), small_config(**base), checkpoint=path, progress=False).fit(
        max_steps=6 * steps_per_epoch)
    assert torch.equal(Trainer.resume(path, graph, progress=False, changes=stage).fit().points, result.points)


def test_distortion_training_on_sampled_pairs(monkeypatch):
    monkeypatch.setattr("embed.train._ALL_PAIRS_LIMIT", 4)
    graph = tree_closure(2, 3).as_undirected()
    config = small_config(loss="distortion", epochs=4, batch_size=64, lr=0.3, init_scale=0.5, eval_every=0,
                          burnin_epochs=0, distortion_partners=5)
    trainer = Trainer(graph, make_manifold("poincare", 2), config, progress=False)
    plan = trainer.task.plan(0, torch.Generator().manual_seed(0))
    i, j = plan["pairs"].T
    assert (i != j).all() and (plan["targets"] >= 1).all()
    assert trainer.fit().stopped == "completed"


def test_training_is_reproducible():
    graph = tree_closure(3, 2)
    a = Trainer(graph, make_manifold("poincare", 2), small_config(epochs=12), progress=False).fit()
    b = Trainer(graph, make_manifold("poincare", 2), small_config(epochs=12), progress=False).fit()
    assert torch.equal(a.points, b.points)


def test_trainer_rejects_bad_init_and_empty_graph():
    graph = tree_closure(2, 2)
    manifold = make_manifold("poincare", 2)
    with pytest.raises(ValueError, match="shape"):
        Trainer(graph, manifold, small_config(), init=torch.zeros(3, 2))
    outside = torch.full((graph.num_nodes, 2), 0.9, dtype=torch.float64)
    with pytest.raises(ValueError):
        Trainer(graph, manifold, small_config(), init=outside)
    empty = Graph(("a", "b"), torch.zeros(0, 2, dtype=torch.long), directed=True)
    with pytest.raises(ValueError, match="no edges"):
        Trainer(empty, manifold, small_config())


# ============================================================================ checkpoints and resume


@pytest.mark.parametrize("optimizer,sparse,hard", [("sgd", False, 0), ("adam", True, 0), ("row-sgd", False, 0),
                                                   ("row-sgd", False, 4), ("sgd", False, 3)])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, optimizer, sparse, hard):
    graph = tree_closure(3, 2)
    config = small_config(epochs=14, optimizer=optimizer, sparse=sparse, lr=0.2 if optimizer == "adam" else 3.0,
                          checkpoint_every=5, eval_every=7, hard_negatives=hard, hard_candidates=6, hard_refresh=4)
    whole = Trainer(graph, make_manifold("poincare", 2), config, progress=False).fit()

    path = tmp_path / "run.ckpt"
    first = Trainer(graph, make_manifold("poincare", 2), config, checkpoint=path, progress=False)
    part = first.fit(max_steps=17)  # stops mid-epoch (a few steps per epoch)
    assert part.stopped == "limit" and part.step_in_epoch > 0
    resumed = Trainer.resume(path, graph, progress=False)
    assert resumed.epoch == part.epoch and resumed.step_in_epoch == part.step_in_epoch
    if hard:  # stopped after the table of epoch 5 was computed: the checkpoint holds it
        assert resumed.task.hard_epoch == 5 and torch.equal(resumed.task.hard, first.task.hard)
    result = resumed.fit()
    assert torch.equal(result.points, whole.points)
    assert [h["map"] for h in result.history] == [h["map"] for h in whole.history]


def test_hard_negatives_change_training_and_can_be_switched_on_when_resuming(tmp_path):
    graph = tree_closure(3, 2)
    config = small_config(epochs=12, checkpoint_every=6, eval_every=6, optimizer="row-sgd")
    plain = Trainer(graph, make_manifold("poincare", 2), config, progress=False).fit()
    hard = Trainer(graph, make_manifold("poincare", 2), TrainConfig(**{**config.__dict__, "hard_negatives": 4}),
                   progress=False).fit()
    assert not torch.equal(plain.points, hard.points)
    path = tmp_path / "run.ckpt"
    Trainer(graph, make_manifold("poincare", 2), config, checkpoint=path, progress=False).fit(max_steps=13)  # mid-epoch 7
    resumed = Trainer.resume(path, graph, progress=False, changes={"hard_negatives": 4, "hard_candidates": 5})
    assert resumed.config.hard_negatives == 4 and resumed.task.hard is None
    resumed.fit()
    assert resumed.task.hard.shape == (graph.num_nodes, 5)
    assert not torch.equal(resumed.points, plain.points)
    assert Trainer.resume(path, graph).task.hard.shape == (graph.num_nodes, 5)  # the table is in the checkpoint
    assert Trainer.resume(path, graph, changes={"hard_candidates": 7}).task.hard is None  # recomputed
    with pytest.raises(ValueError, match="cannot change dtype"):
        Trainer.resume(path, graph, changes={"dtype": "float32"})
    with pytest.raises(ValueError, match="unknown"):
        Trainer.resume(path, graph, changes={"negatives_hard": 4})


def test_stages_equal_stopping_and_resuming_with_the_changes(tmp_path):
    graph = tree_closure(3, 2)  # 12 nodes, 21 pairs: 2 steps per epoch
    base = small_config(epochs=16, optimizer="row-sgd", checkpoint_every=1, eval_every=4, hard_candidates=6,
                        hard_refresh=3, lr=30.0)
    stages = ((7, {"hard_negatives": 4, "max_step": None}), (11, {"relocate_leaves": True, "relocate_rank": 3}))
    staged = Trainer(graph, make_manifold("poincare", 2), TrainConfig(**{**base.__dict__, "stages": stages}),
                     metrics=tmp_path / "staged.jsonl", progress=False)
    result = staged.fit()
    events = [json.loads(line) for line in open(tmp_path / "staged.jsonl")]
    assert [(e["epoch"], e["changes"]) for e in events if e["event"] == "stage"] == [(7, stages[0][1]),
                                                                                       (11, stages[1][1])]
    assert staged.config.hard_negatives == 4 and staged.config.relocate_rank == 3 and staged.config.max_step is None
    assert any(e["event"] == "relocate" for e in events)

    path = tmp_path / "by-hand.ckpt"
    Trainer(graph, make_manifold("poincare", 2), base, checkpoint=path, progress=False).fit(max_steps=14)
    Trainer.resume(path, graph, progress=False, changes=stages[0][1]).fit(max_steps=8)
    by_hand = Trainer.resume(path, graph, progress=False, changes=stages[1][1]).fit()
    assert torch.equal(by_hand.points, result.points)
    assert [h["map"] for h in by_hand.history] == [h["map"] for h in result.history]

    path = tmp_path / "staged.ckpt"  # interrupted mid-epoch after a stage, and at the boundary before one
    config = TrainConfig(**{**base.__dict__, "stages": stages})
    Trainer(graph, make_manifold("poincare", 2), config, checkpoint=path, progress=False).fit(max_steps=15)
    middle = Trainer.resume(path, graph, progress=False)
    assert middle.config.hard_negatives == 4 and middle.epoch == 7 and middle.step_in_epoch == 1
    middle.fit(max_steps=7)
    assert Trainer.resume(path, graph, progress=False).config.relocate_rank is None  # epoch 11 not begun
    assert torch.equal(Trainer.resume(path, graph, progress=False).fit().points, result.points)


@pytest.mark.parametrize("stages,match", [
    (((5, {"batch_size": 8}),), "batch_size cannot change"),
    (((5, {"epochs": 8}),), "epochs cannot change"),
    (((5, {"hard_negative": 2}),), "unknown fields hard_negative"),
    (((5, {"lr": -1.0}),), "epoch 5: TrainConfig.lr must be"),
    (((5, {"relocate_rank": 40}),), "epoch 5: TrainConfig.relocate_rank"),
    (((5, {"lr": 1.0}), (5, {"lr": 2.0})), "increasing"),
    (((0, {"lr": 1.0}),), "increasing positive"),
    ((5,), "sequence of"),
])
def test_stages_reject_bad_schedules(stages, match):
    with pytest.raises(ValueError, match=match):
        small_config(stages=stages)


def test_stages_round_trip():
    config = small_config(stages=((3, {"max_step": 1.0, "relocate_leaves": True}),))
    assert TrainConfig.from_json(config.to_json()) == config


def test_leaf_parents_are_the_deepest_ancestors():
    graph = tree_closure(2, 3)
    task = Trainer(graph, make_manifold("poincare", 2), small_config(relocate_leaves=True), progress=False).task
    leaves, parents = task.leaf_parents()
    direct = {}  # the tree's parent of every node, from the closure: the ancestor with most ancestors
    for child, ancestor in graph.edges.tolist():
        depth = int((graph.edges[:, 0] == ancestor).sum())
        if child not in direct or depth > direct[child][0]:
            direct[child] = (depth, ancestor)
    inner = set(graph.edges[:, 1].tolist())
    assert leaves.tolist() == [n for n in range(graph.num_nodes) if n in direct and n not in inner]
    assert parents.tolist() == [direct[n][1] for n in leaves.tolist()]


@pytest.mark.parametrize("label", ["poincare", "lorentz", "halfspace", "halfspace-mcf2", "ltiling", "binary-tiling"])
def test_relocation_moves_a_trapped_leaf_out_beyond_its_parent(label):
    graph = tree_closure(2, 3)
    manifold = make_manifold(label, 2)
    config = small_config(epochs=6, burnin_epochs=1, relocate_leaves=True, relocate_distance=0.5, relocate_spread=0.7,
                          hard_candidates=3, hard_refresh=100)
    trainer = Trainer(graph, manifold, config, progress=False)
    trainer.fit(max_steps=1)  # burn-in epoch: no table, no relocation
    leaves, parents = trainer.task.leaf_parents()
    leaf, parent = int(leaves[0]), int(parents[0])
    points = trainer.weight.data
    origin = manifold.origin(dtype=points.dtype)
    far = manifold.expmap(origin, manifold.proju(origin, torch.full_like(origin, 3.0)))
    points[leaf] = far  # distance about 3 from its parent, near the origin ...
    for i, other in enumerate(leaves[-3:].tolist()):  # ... with three leaves of the other subtree close by
        step = manifold.proju(far, torch.full_like(far, 0.01 * (i + 1)))
        points[other] = manifold.expmap(far, step)
    before = points.clone()
    assert float(manifold.dist(before[leaf], before[parent])) > 2
    trainer.epoch = 1  # after burn-in: the table is computed, then the trapped leaves move
    trainer._compute_table()
    before_table = trainer.task.hard.clone()
    trainer._refresh_hard()
    after = trainer.points
    moved = [int(n) for n in torch.nonzero((after != before).any(dim=1)).squeeze(1)]
    assert leaf in moved and set(moved) <= set(leaves.tolist())
    # out along the ray by 0.5, then 0.7 at a right angle: cosh d = cosh 0.5 cosh 0.7
    expected = math.acosh(math.cosh(0.5) * math.cosh(0.7))
    assert float(manifold.dist(after[leaf], after[parent])) == pytest.approx(expected, rel=1e-9)
    origin = manifold.origin(dtype=after.dtype)
    radius = float(manifold.dist(after[parent], origin))
    assert float(manifold.dist(after[leaf], origin)) > radius + 0.5
    untouched = [n for n in range(graph.num_nodes) if n not in moved]
    assert torch.equal(after[untouched], before[untouched])
    # relocate_rank k: trapped when the parent lies beyond the k-th nearest; fewer leaves for larger k
    trainer._place_beyond_parents = lambda rows, parents: None
    counts = {}
    for k in (1, 2, 3, None):
        trainer.config = TrainConfig(**{**trainer.config.__dict__, "relocate_rank": k})
        counts[k] = trainer._relocate_leaves()
    assert counts[1] >= counts[2] >= counts[3] == counts[None] and counts[1] > counts[3]
    # the table was computed again after the move: hard negatives see the leaves' new neighbours
    assert torch.equal(trainer.task.hard, trainer.task.sampler.hard_table(trainer._nearest, 3))
    assert not torch.equal(trainer.task.hard, before_table)


def test_relocation_needs_a_directed_graph_and_resumes_exactly(tmp_path):
    graph = tree_closure(3, 2)
    undirected = Graph(graph.names, graph.edges, directed=False)
    with pytest.raises(ValueError, match="directed"):
        Trainer(undirected, make_manifold("poincare", 2), small_config(relocate_leaves=True), progress=False)
    config = small_config(epochs=14, optimizer="row-sgd", checkpoint_every=5, eval_every=7, relocate_leaves=True,
                          hard_candidates=4, hard_refresh=3, lr=30.0)
    whole = Trainer(graph, make_manifold("poincare", 2), config, metrics=tmp_path / "whole.jsonl", progress=False)
    result = whole.fit()
    events = [json.loads(line) for line in open(tmp_path / "whole.jsonl")]
    relocations = [e for e in events if e["event"] == "relocate"]
    assert [e["epoch"] for e in relocations] == [5, 8, 11]
    assert all(e["leaves"] == 9 for e in relocations)
    later = Trainer(graph, make_manifold("poincare", 2), TrainConfig(**{**config.__dict__, "relocate_from": 9}),
                    metrics=tmp_path / "later.jsonl", progress=False)
    later.fit()
    events = [json.loads(line) for line in open(tmp_path / "later.jsonl")]
    assert [e["epoch"] for e in events if e["event"] == "relocate"] == [9, 12]
    assert [e["epoch"] for e in events if e["event"] == "hard_table"][0] == 9  # no table needed before
    path = tmp_path / "run.ckpt"
    Trainer(graph, make_manifold("poincare", 2), config, checkpoint=path, progress=False).fit(max_steps=17)
    resumed = Trainer.resume(path, graph, progress=False).fit()
    assert torch.equal(resumed.points, result.points)


def test_public_relocation_on_demand():
    graph = tree_closure(3, 2)
    trainer = Trainer(graph, make_manifold("poincare", 2), small_config(epochs=3, hard_candidates=4), progress=False)
    trainer.fit()
    assert trainer.task.hard is None  # neither hard negatives nor relocation asked for a table
    before = trainer.points.clone()
    moved = trainer.relocate_leaves()
    assert trainer.task.hard.shape == (graph.num_nodes, 4)
    changed = int((trainer.points != before).any(dim=1).sum())
    assert moved == changed > 0 and set(torch.nonzero((trainer.points != before).any(dim=1)).squeeze(1).tolist()) <= \
        set(trainer.task.leaf_parents()[0].tolist())
    metric = Trainer(graph, make_manifold("poincare", 2), small_config(loss="distortion"), progress=False)
    with pytest.raises(ValueError, match="ranking"):
        metric.relocate_leaves()


def test_an_ignored_sigint_stays_ignored():
    graph = tree_closure(3, 2)
    outside = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        trainer = Trainer(graph, make_manifold("poincare", 2), small_config(epochs=3), progress=False)
        result = trainer.fit(callback=lambda t: os.kill(os.getpid(), signal.SIGINT) if t.global_step == 2 else None)
        assert result.stopped == "completed" and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, outside)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_after_the_step_with_a_checkpoint(tmp_path, signum):
    graph = tree_closure(3, 2)
    config = small_config(epochs=10)
    whole = Trainer(graph, make_manifold("lorentz", 2), config, progress=False).fit()
    path = tmp_path / "run.ckpt"
    trainer = Trainer(graph, make_manifold("lorentz", 2), config, checkpoint=path, progress=False)

    def interrupt(t):
        if t.global_step == 9:
            os.kill(os.getpid(), signum)

    # as in a foreground process (a job started with & inherits an ignored SIGINT, which fit() respects)
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        result = trainer.fit(callback=interrupt)
        assert result.stopped == "interrupted"
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored
    finally:
        signal.signal(signal.SIGINT, outside)
    assert torch.equal(Trainer.resume(path, graph, progress=False).fit().points, whole.points)


def test_checkpoint_is_weights_only_and_holds_rng_state(tmp_path):
    graph = tree_closure(2, 2)
    path = tmp_path / "c.ckpt"
    Trainer(graph, make_manifold("poincare", 2), small_config(epochs=5, checkpoint_every=5), checkpoint=path,
            progress=False).fit()
    raw = torch.load(path, weights_only=True)
    assert isinstance(raw["generator"], torch.Tensor) and raw["generator"].dtype == torch.uint8
    assert raw["epoch"] == 5 and torch.isfinite(raw["points"]).all()
    state = load_checkpoint(path)
    assert TrainConfig.from_json(state["config"]).epochs == 5


def test_resume_refuses_another_graph_and_foreign_files(tmp_path):
    graph = tree_closure(2, 2)
    path = tmp_path / "c.ckpt"
    Trainer(graph, make_manifold("poincare", 2), small_config(epochs=2), checkpoint=path, progress=False).fit()
    with pytest.raises(CheckpointError, match="another graph"):
        Trainer.resume(path, tree_closure(3, 2))
    other = tmp_path / "x.pt"
    torch.save({"a": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_checkpoint(other)
    (tmp_path / "junk").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a loadable"):
        load_checkpoint(tmp_path / "junk")


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    graph = tree_closure(3, 2)
    path = tmp_path / "run.ckpt"
    metrics = tmp_path / "m.jsonl"
    config = small_config(epochs=20, checkpoint_every=2)
    trainer = Trainer(graph, make_manifold("poincare", 2), config, checkpoint=path, metrics=metrics, progress=False)

    def poison(t):
        if t.epoch == 3 and t.step_in_epoch == 2:
            with torch.no_grad():
                t.weight[:] = float("nan")

    with pytest.raises(NonFiniteTrainingError, match=r"non-finite|nan") as error:
        trainer.fit(callback=poison)
    assert "last good checkpoint" in str(error.value) and "epoch 2" in str(error.value)
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and torch.isfinite(state["points"]).all()
    events = [json.loads(line)["event"] for line in metrics.read_text().splitlines()]
    assert "error" in events


def test_metrics_file_and_target(tmp_path):
    graph = tree_closure(3, 2)
    metrics = tmp_path / "m.jsonl"
    config = small_config(epochs=40, eval_every=2, target_map=0.5, stop_at_target=True)
    result = Trainer(graph, make_manifold("poincare", 2), config, metrics=metrics, progress=False).fit()
    assert result.stopped == "target" and result.epoch < 40
    assert result.target["map"] >= 0.5 and result.target["epoch"] == result.epoch
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    kinds = [r["event"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "end" and "target" in kinds
    for record in records:
        if record["event"] == "eval":
            assert {"map", "mean_rank", "cpu_seconds", "wall_seconds", "epoch"} <= set(record)


def test_final_eval_rows_and_periodic_distortion_switch():
    closure = tree_closure(3, 2)
    config = small_config(epochs=4, eval_every=2, eval_rows=5, final_eval_rows=6)
    history = Trainer(closure, make_manifold("poincare", 2), config, progress=False).fit().history
    assert [(h["rows"], h["sampled"]) for h in history] == [(5, True), (6, True)]
    assert all("d_avg" not in h for h in history)  # closures: ranks only
    undirected = closure.as_undirected()
    config = small_config(epochs=4, eval_every=2, eval_distortion=False)
    history = Trainer(undirected, make_manifold("poincare", 2), config, progress=False).fit().history
    assert "d_avg" not in history[0] and history[-1]["d_avg"] is not None  # the final one always has it
    assert history[0]["map"] is not None


# ============================================================================ warm start


def test_warm_start_converts_through_the_lorentz_hub(tmp_path):
    graph = tree_closure(2, 2)
    lorentz = make_manifold("lorentz", 2)
    points = lorentz.random(graph.num_nodes, std=2.0, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "warm.pt"
    save_embedding(path, points.flip(0), lorentz, list(reversed(graph.names)))  # other node order
    poincare = make_manifold("poincare", 2)
    start = warm_start(path, graph, poincare)
    assert torch.allclose(poincare.dist(start[:, None], start[None]), lorentz.dist(points[:, None], points[None]),
                          rtol=1e-10, atol=1e-10)
    same = warm_start(path, graph, lorentz)
    assert torch.equal(same, points)
    result = Trainer(graph, poincare, small_config(epochs=3), init=start, progress=False).fit()
    assert result.epoch == 3
    with pytest.raises(ValueError, match="not in the file"):
        warm_start(path, tree_closure(3, 2), poincare)
    with pytest.raises(ValueError, match="hyperbolic"):
        warm_start(path, graph, EuclideanBaseline(2))
    # A start the ball cannot hold (a node at radius 45, past its ceiling of 36) is refused by name, not
    # flattened onto the ceiling.
    far = points.clone()
    far[4] = lorentz.expmap(lorentz.origin(dtype=torch.float64), 45 * torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64))
    save_embedding(path, far, lorentz, list(graph.names))
    with pytest.raises(PrecisionError, match=rf"warm start {path}: .*radius 45.*farthest node is '{graph.names[4]}'"):
        warm_start(path, graph, poincare)


def test_evaluate_embedding_all_equal_points_regression():
    graph = tree_closure(2, 2)
    manifold = make_manifold("poincare", 2)
    metrics = evaluate_embedding(manifold.origin(graph.num_nodes), manifold, graph)
    # every node ties with every other: AP(u) = |A(u)| / (N - 1), rank = N - |A(u)|.
    n = graph.num_nodes
    counts = torch.bincount(graph.edges[:, 0], minlength=n).double()
    queries = counts > 0
    assert metrics["map"] == pytest.approx(float((counts[queries] / (n - 1)).mean()))
    assert metrics["mean_rank"] == pytest.approx(float((counts * (n - counts)).sum() / counts.sum()))

