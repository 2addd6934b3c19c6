"""Certified fast distances between embedded points, against ``manifold.dist`` and the mpmath reference (their use
inside the metrics is tested in test_metrics.py)."""

import pytest
import torch

from embed.pair_distances import fast_distance
from tiling import BinaryTiling

from .test_metrics import _tiling_points


def test_fast_distance_matches_dist_far_out(shared_data):
    # phylo_tree from its largest-degree node: depth 50, radius 500, heights down to 1e-217; the squares of
    # the differences underflow unless the norm is scaled.
    from embed.combinatorial import embed_graph
    from embed.edgelist import read_edgelist

    graph = read_edgelist(shared_data / "hyperbolics" / "phylo_tree.edges")
    embedding = embed_graph(graph, eps=1.0)
    assert embedding.info["radius_bound"] > 400
    fast = fast_distance(embedding.points, embedding.manifold)(torch.arange(graph.num_nodes))
    exact = embedding.manifold.dist(embedding.points[:, None], embedding.points[None])
    gap = (fast - exact).abs() / exact.clamp_min(1e-300)
    gap.fill_diagonal_(0)
    assert float(gap.max()) < 1e-15


@pytest.mark.parametrize("which", ["binary-tiling", "halfspace-mcf2"])
def test_close_pairs_are_certified_without_the_manifold_dist(which, monkeypatch):
    """Near the origin every pair is close (rho c << 1), where an error e of rho moves the distance by about
    2ce, not 2e/rho: the component formula certifies all of them, no pair falls back to the manifold's dist,
    and the distances agree with the mpmath reference to 1e-15."""
    import mpmath

    from hyperbolic import HalfSpaceMCF
    from hyperbolic import reference as ref

    model = BinaryTiling(3, max_radius=1100) if which == "binary-tiling" else HalfSpaceMCF(3, components=2)
    radii = (torch.rand(40, generator=torch.Generator().manual_seed(11)) * 1e-3).tolist()
    x = _tiling_points(model, radii, seed=12)
    assert model.halfspace_components(x) is not None

    def no_dist(*args, **kwargs):
        raise AssertionError("a close pair fell back to the manifold's dist")

    monkeypatch.setattr(type(model), "dist", no_dist)
    fast = fast_distance(x, model)(torch.arange(len(x)))
    monkeypatch.undo()
    with mpmath.workdps(60):
        points = model.to_reference(x)
        for a in range(0, len(x), 7):
            for b in range(len(x)):
                truth = ref.dist(points[a], points[b])
                assert abs(float(fast[a, b]) - truth) <= 1e-15 * truth, (a, b)
