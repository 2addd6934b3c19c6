"""The 2-D construction in the L-tiling model against the mpmath reference path and the MCF path."""

import random

import mpmath
import pytest
import torch

from embed.combinatorial import embed_graph
from embed.construction.reference import poincare_to_lorentz, reference_2d
from embed.edgelist import read_edgelist
from embed.graphs import Graph
from embed.metrics import evaluate
from hyperbolic.io import load_embedding, save_embedding
from tiling import LTiling


def _lorentz_dist(P, Q):
    value = P[0] * Q[0] - mpmath.fsum(a * b for a, b in zip(P[1:], Q[1:]))
    return mpmath.acosh(value) if value > 1 else mpmath.mpf(0)


def _pairs(n, parent, count, seed=0):
    rng = random.Random(seed)
    pairs = [(rng.randrange(n), rng.randrange(n)) for _ in range(count)]
    pairs += [(v, int(parent[v])) for v in range(n) if parent[v] >= 0]
    return [(u, v) for u, v in pairs if u != v]


def _gap_to_reference(embedding, reference, pairs, bits):
    """Largest relative gap between the tiling's own distances (``manifold.dist``) and the reference's."""
    u = torch.tensor([p[0] for p in pairs])
    v = torch.tensor([p[1] for p in pairs])
    ours = embedding.manifold.dist(embedding.points[u], embedding.points[v])
    with mpmath.workprec(bits):
        exact = [_lorentz_dist(reference[a], reference[b]) for a, b in pairs]
        return max(float(abs(mpmath.mpf(float(d)) - e) / e) for d, e in zip(ours, exact))


def _random_tree(n, seed):
    """A random tree that is deep (each node attaches to one of the 3 latest) with a few wide nodes."""
    rng = random.Random(seed)
    edges = [(i, rng.randrange(max(0, i - 3), i)) for i in range(1, n)]
    return Graph(tuple(str(i) for i in range(n)), torch.tensor(edges))


def test_smalltree_matches_reference_and_mcf(shared_data):
    graph = read_edgelist(shared_data / "hyperbolics" / "smalltree.edges")
    tiled = embed_graph(graph, eps=0.1, root="0", precision="tiling")
    assert isinstance(tiled.manifold, LTiling) and tiled.info["path"] == "tiling"
    reference = poincare_to_lorentz(reference_2d(tiled.plan, tiled.tau, 1000), 1000)
    pairs = _pairs(graph.num_nodes, tiled.plan.parent, 300)
    assert _gap_to_reference(tiled, reference, pairs, 1000) <= 1e-12
    mcf = embed_graph(graph, eps=0.1, root="0")
    u, v = torch.tensor(pairs).T
    d_tiled = tiled.manifold.dist(tiled.points[u], tiled.points[v])
    d_mcf = mcf.manifold.dist(mcf.points[u], mcf.points[v])
    assert torch.allclose(d_tiled, d_mcf, rtol=1e-12, atol=0)
    a = evaluate(tiled.points, tiled.manifold, graph, scale=tiled.tau)
    b = evaluate(mcf.points, mcf.manifold, graph, scale=mcf.tau)
    assert a.edge_map == b.edge_map == 1.0 and a.nonfinite == 0
    assert a.d_avg == pytest.approx(b.d_avg, rel=1e-10)


def test_deep_random_tree_matches_reference_and_mcf():
    graph = _random_tree(150, seed=1)
    tiled = embed_graph(graph, tau=6.0, root="0", precision="tiling")
    radius = tiled.info["radius_bound"]
    assert 300 < radius < 700  # deep, yet within the MCF path's reach for the comparison
    bits = 2400  # the Poincaré reference needs about 3 r log2(e) bits for its near pairs
    reference = poincare_to_lorentz(reference_2d(tiled.plan, tiled.tau, bits), bits)
    pairs = _pairs(graph.num_nodes, tiled.plan.parent, 300, seed=2)
    assert _gap_to_reference(tiled, reference, pairs, bits) <= 1e-12
    mcf = embed_graph(graph, tau=6.0, root="0")
    u, v = torch.tensor(pairs).T
    d_tiled = tiled.manifold.dist(tiled.points[u], tiled.points[v])
    d_mcf = mcf.manifold.dist(mcf.points[u], mcf.points[v])
    assert torch.allclose(d_tiled, d_mcf, rtol=1e-12, atol=0)


@pytest.mark.slow
def test_deep_random_tree_edge_map_equals_mcf():
    graph = _random_tree(150, seed=1)
    tiled = embed_graph(graph, tau=6.0, root="0", precision="tiling")
    mcf = embed_graph(graph, tau=6.0, root="0")
    a = evaluate(tiled.points, tiled.manifold, graph, scale=tiled.tau)
    b = evaluate(mcf.points, mcf.manifold, graph, scale=mcf.tau)
    assert a.edge_map == b.edge_map and a.nonfinite == 0 and a.zero == 0
    assert a.d_avg == pytest.approx(b.d_avg, rel=1e-10)


@pytest.mark.slow
def test_beyond_the_mcf_ceiling(shared_data):
    # Radius 1650: refused by the MCF path, built by the tiling path; every edge at distance tau exactly.
    graph = read_edgelist(shared_data / "hyperbolics" / "phylo_tree.edges")
    tiled = embed_graph(graph, eps=0.1, root="0", precision="tiling")
    assert tiled.info["radius_bound"] > 1600
    edges = tiled.tree_edges()
    d = tiled.manifold.dist(tiled.points[edges[:, 0]], tiled.points[edges[:, 1]])
    assert torch.allclose(d, torch.full_like(d, tiled.tau), rtol=1e-13, atol=0)


def test_auto_goes_to_the_tiling_model_beyond_the_mcf_ceiling(shared_data):
    graph = read_edgelist(shared_data / "hyperbolics" / "smalltree.edges")
    deep = embed_graph(graph, tau=250.0, root="0")  # radius bound 750 > the MCF ceiling 700
    assert deep.info["path"] == "tiling" and deep.info["radius_bound"] == pytest.approx(750.0)
    edges = deep.tree_edges()
    d = deep.manifold.dist(deep.points[edges[:, 0]], deep.points[edges[:, 1]])
    assert torch.allclose(d, torch.full_like(d, 250.0), rtol=1e-13, atol=0)
    assert embed_graph(graph, tau=150.0, root="0").info["path"] == "fast"  # radius 450: MCF


def test_weighted_forest_and_save_load(tmp_path):
    names = tuple(str(i) for i in range(9))
    edges = torch.tensor([(0, 1), (0, 2), (1, 3), (1, 4), (5, 6), (6, 7), (6, 8)])
    weights = torch.tensor([1.0, 2.5, 0.5, 1.5, 3.0, 0.75, 2.0])
    graph = Graph(names, edges, weights)
    tiled = embed_graph(graph, eps=0.5, precision="tiling")
    mcf = embed_graph(graph, eps=0.5)
    pairs = [(i, j) for i in range(9) for j in range(i + 1, 9)]
    u, v = torch.tensor(pairs).T
    assert torch.allclose(tiled.manifold.dist(tiled.points[u], tiled.points[v]),
                          mcf.manifold.dist(mcf.points[u], mcf.points[v]), rtol=1e-12, atol=0)
    path = tmp_path / "forest.pt"
    save_embedding(path, tiled.points, tiled.manifold, tiled.names, tiled.config())
    loaded_names, points, manifold = load_embedding(path)
    assert loaded_names == list(names) or tuple(loaded_names) == names
    assert torch.equal(points, tiled.points) and manifold.limbs == tiled.manifold.limbs


def test_bad_requests(shared_data):
    graph = read_edgelist(shared_data / "hyperbolics" / "smalltree.edges")
    with pytest.raises(ValueError, match="tiling.*needs dim = 2"):
        embed_graph(graph, dim=3, precision="tiling")
    with pytest.raises(ValueError, match="tau='max' is not defined"):
        embed_graph(graph, tau="max", precision="tiling")
