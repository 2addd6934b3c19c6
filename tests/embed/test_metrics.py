"""embed.metrics against brute-force definitions (scikit-learn AP, networkx shortest paths)."""

import math

import networkx as nx
import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from embed import pair_distances as pair_distances_module
from embed.graphs import Graph, is_transitively_closed, transitive_reduction
from embed.metrics import evaluate, graph_distances, neighbourhoods
from hyperbolic import HalfSpace, Lorentz
from tiling import BinaryTiling


def _random_graph(n=40, extra=15, seed=0, weighted=False):
    rng = np.random.default_rng(seed)
    edges = [(i, int(rng.integers(0, i))) for i in range(1, n)]
    while len(edges) < n - 1 + extra:
        u, v = rng.integers(0, n, 2)
        if u != v and (u, v) not in edges and (v, u) not in edges:
            edges.append((int(u), int(v)))
    weights = torch.tensor(rng.uniform(0.5, 2.0, len(edges))) if weighted else None
    return Graph(tuple(str(i) for i in range(n)), torch.tensor(edges), weights)


def _brute(D, graph, neighbour_sets, tie_rtol=1e-12):
    n = D.shape[0]
    nxg = nx.Graph()
    nxg.add_nodes_from(range(n))
    w = graph.weights.tolist() if graph.weights is not None else [1.0] * graph.num_edges
    for (u, v), weight in zip(graph.edges.tolist(), w):
        nxg.add_edge(u, v, weight=weight)
    dG = dict(nx.all_pairs_dijkstra_path_length(nxg))
    aps, ranks = [], []
    rel, grow, shrink = [], [], []
    for a in range(n):
        others = [v for v in range(n) if v != a]
        nb = neighbour_sets[a]
        if nb:
            labels = np.array([v in nb for v in others])
            scores = -np.array([D[a, v] for v in others])
            aps.append(average_precision_score(labels, scores))
            for b in nb:
                t = D[a, b] * (1 + tie_rtol)
                ranks.append(1 + sum(1 for v in others if v not in nb and D[a, v] <= t))
        for v in others:
            if v in dG[a]:
                rel.append(abs(D[a, v] - dG[a][v]) / dG[a][v])
                grow.append(D[a, v] / dG[a][v])
                shrink.append(dG[a][v] / D[a, v])
    return np.mean(aps), np.mean(ranks), np.mean(rel), max(grow) * max(shrink)


@pytest.mark.parametrize("weighted", [False, True])
def test_matches_brute_force(weighted, monkeypatch):
    graph = _random_graph(weighted=weighted)
    manifold = HalfSpace(2)
    points = manifold.random(graph.num_nodes, std=2.0, generator=torch.Generator().manual_seed(1))
    D = manifold.dist(points[:, None], points[None]).numpy() / 1.7
    indptr, indices = neighbourhoods(graph)
    sets = [set(indices[indptr[a]:indptr[a + 1]].tolist()) for a in range(graph.num_nodes)]
    edge_map, mean_rank, d_avg, d_wc = _brute(D, graph, sets)
    for chunk, gathered in ((7, None), (None, None), (None, 5)):
        if gathered is not None:  # storage elements per manifold.dist call: slices of 2 pairs
            monkeypatch.setattr(pair_distances_module, "GATHERED_ELEMENTS", gathered)
        m = evaluate(points, manifold, graph, scale=1.7, chunk_size=chunk)
        assert m.edge_map == pytest.approx(edge_map, rel=1e-12)
        assert m.mean_rank == pytest.approx(mean_rank, rel=1e-12)
        assert m.d_avg == pytest.approx(d_avg, rel=1e-12)
        assert m.d_wc == pytest.approx(d_wc, rel=1e-12)
        assert (m.rows, m.sampled, m.nonfinite, m.zero) == (40, False, 0, 0)
        assert m.pairs == 40 * 39


def test_tiling_points_are_evaluated_in_their_limbs_in_use():
    """A tiling sized for radius 300 stores 18 limbs per coordinate; the evaluation reads only those in use and
    gives the full-width distances' metrics."""
    graph = _random_graph()
    manifold = BinaryTiling(2, max_radius=300)
    points = manifold.random(graph.num_nodes, std=2.0, generator=torch.Generator().manual_seed(1))
    pairs = pair_distances_module.pair_distances(points, manifold)
    assert pairs.points.shape[-1] < manifold.storage_dim
    D = manifold.dist(points[:, None], points[None]).numpy()
    indptr, indices = neighbourhoods(graph)
    sets = [set(indices[indptr[a]:indptr[a + 1]].tolist()) for a in range(graph.num_nodes)]
    edge_map, mean_rank, d_avg, d_wc = _brute(D, graph, sets)
    m = evaluate(points, manifold, graph)
    assert (m.edge_map, m.mean_rank) == (pytest.approx(edge_map, rel=1e-12), pytest.approx(mean_rank, rel=1e-12))
    assert (m.d_avg, m.d_wc) == (pytest.approx(d_avg, rel=1e-12), pytest.approx(d_wc, rel=1e-12))


def test_ties_count_as_ranked_before():
    # A star: the centre's children are all at the same distance; a leaf sees its centre first.
    n = 6
    graph = Graph(tuple(map(str, range(n))), torch.tensor([(0, i) for i in range(1, n)]))
    lorentz = Lorentz(2)
    angles = torch.arange(n - 1, dtype=torch.float64) * 2 * math.pi / (n - 1)
    X = torch.zeros(n, 3, dtype=torch.float64)
    X[0, 0] = 1
    s = torch.tensor(3.0, dtype=torch.float64)
    X[1:, 0] = torch.cosh(s)
    X[1:, 1] = torch.sinh(s) * torch.cos(angles)
    X[1:, 2] = torch.sinh(s) * torch.sin(angles)
    m = evaluate(X, lorentz, graph)
    assert m.edge_map == pytest.approx(1.0)
    # A non-neighbour tied with the neighbour counts against it: distances 1 (neighbour) and 1 (other).
    graph2 = Graph(("a", "b", "c"), torch.tensor([(0, 1)]))
    X2 = torch.zeros(3, 3, dtype=torch.float64)
    X2[0, 0] = 1
    X2[1:, 0] = math.cosh(1.0)
    X2[1, 1], X2[2, 1] = math.sinh(1.0), -math.sinh(1.0)
    m2 = evaluate(X2, lorentz, graph2)
    # row a: neighbour b tied with c -> AP 1/2; row b: neighbour a nearest -> 1. Row c has no neighbours.
    assert m2.edge_map == pytest.approx(0.75)
    assert m2.mean_rank == pytest.approx(1.5)


def test_nonfinite_and_zero_are_counted_not_skipped():
    graph = _random_graph(12, 3)
    manifold = HalfSpace(2)
    points = manifold.random(12, generator=torch.Generator().manual_seed(0))

    def distance(ids):
        D = manifold.dist(points[ids, None], points[None]).clone()
        D[:, 5] = torch.where(ids == 5, 0.0, torch.nan)
        return D

    m = evaluate(points, manifold, graph, distance=distance)
    assert m.nonfinite == 11 and m.d_avg is None and m.d_wc is None
    assert m.as_json()["d_avg"] is None
    duplicated = points.clone()
    duplicated[3] = duplicated[4]
    m = evaluate(duplicated, manifold, graph)
    assert m.zero == 2 and m.nonfinite == 0 and m.d_wc == math.inf


def test_sampled_rows_are_labelled():
    graph = _random_graph(50, 10)
    manifold = HalfSpace(2)
    points = manifold.random(50, generator=torch.Generator().manual_seed(3))
    m = evaluate(points, manifold, graph, rows=20, seed=4)
    assert m.sampled and m.rows == 20 and m.total_rows == 50 and m.edge_map_se is not None
    assert m.pairs == 20 * 49
    record = m.as_json()
    assert {"edge_map", "mean_rank", "d_avg", "d_wc", "nonfinite", "rows", "seconds", "sampled"} <= record.keys()
    assert "closure_map" not in record


def test_closure_map_and_reduction():
    # A small hierarchy: r <- a <- {c, d}, r <- b <- e; closure edges child -> ancestor.
    names = ("r", "a", "b", "c", "d", "e")
    dag = [(1, 0), (2, 0), (3, 1), (4, 1), (5, 2)]
    closure = dag + [(3, 0), (4, 0), (5, 0)]
    closed = Graph(names, torch.tensor(closure), directed=True)
    assert is_transitively_closed(closed)
    reduced = transitive_reduction(closed)
    assert sorted(map(tuple, reduced.edges.tolist())) == sorted(dag)
    assert not is_transitively_closed(reduced)
    manifold = HalfSpace(2)
    points = manifold.random(6, generator=torch.Generator().manual_seed(5))
    D = manifold.dist(points[:, None], points[None]).numpy()
    for variant in ("symmetric", "directed"):
        m = evaluate(points, manifold, reduced, closure=closed, closure_variant=variant)
        indptr, indices = neighbourhoods(closed, variant)
        sets = [set(indices[indptr[a]:indptr[a + 1]].tolist()) for a in range(6)]
        closure_map, closure_rank, _, _ = _brute(D, reduced.as_undirected(), sets)
        assert m.closure_map == pytest.approx(closure_map, rel=1e-12)
        assert m.closure_mean_rank == pytest.approx(closure_rank, rel=1e-12)
        assert m.as_json()["closure_variant"] == variant


def test_graph_distances_bfs_matches_networkx():
    graph = _random_graph(150, 40, seed=2)
    # add a separate component
    edges = torch.cat([graph.edges, torch.tensor([[150, 151]])])
    graph = Graph(tuple(map(str, range(152))), edges)
    nxg = graph.to_networkx()
    sources = list(range(0, 152, 3))
    D = graph_distances(graph, sources)
    for row, s in enumerate(sources):
        lengths = nx.single_source_shortest_path_length(nxg, str(s))
        expected = [lengths.get(str(v), math.inf) for v in range(152)]
        assert D[row].tolist() == expected


def test_symmetric_tiles_match_row_by_row_exact_distances(shared_data):
    # A deep MCF embedding (phylo_tree from its largest-degree node: radius ~500, whole subtrees sharing
    # leading components) evaluated with the symmetric, coordinate-sorted tiles and small blocks, against
    # the same metrics from the manifold's own exact distances, row by row in the input order.
    from embed.combinatorial import embed_graph
    from embed.edgelist import read_edgelist

    graph = read_edgelist(shared_data / "hyperbolics" / "phylo_tree.edges")
    extra = torch.tensor([[0, 100], [5, 300], [17, 250]])  # non-tree edges, so MAP < 1 and ties matter less
    graph = Graph(graph.names, torch.cat([graph.edges, extra]))
    embedding = embed_graph(graph, eps=1.0)
    points, manifold = embedding.points, embedding.manifold
    exact = manifold.dist(points[:, None], points[None])
    reference = evaluate(points, manifold, graph, scale=embedding.tau, distance=lambda ids: exact[ids])
    for chunk in (None, 64, 100):
        fast = evaluate(points, manifold, graph, scale=embedding.tau, chunk_size=chunk)
        assert fast.edge_map == pytest.approx(reference.edge_map, rel=1e-14)
        assert fast.mean_rank == pytest.approx(reference.mean_rank, rel=1e-14)
        assert fast.d_avg == pytest.approx(reference.d_avg, rel=1e-12)
        assert fast.d_wc == pytest.approx(reference.d_wc, rel=1e-12)
        assert fast.d_wc_row == pytest.approx(reference.d_wc_row, rel=1e-12)
        assert (fast.pairs, fast.nonfinite, fast.zero) == (reference.pairs, 0, 0)
    assert reference.edge_map < 1.0
    sampled = evaluate(points, manifold, graph, scale=embedding.tau, rows=50, seed=1)
    sampled_reference = evaluate(points, manifold, graph, scale=embedding.tau, rows=50, seed=1,
                                 distance=lambda ids: exact[ids])
    assert sampled.edge_map == pytest.approx(sampled_reference.edge_map, rel=1e-14)
    assert sampled.d_avg == pytest.approx(sampled_reference.d_avg, rel=1e-12)
    assert sampled.pairs == sampled_reference.pairs == 50 * (graph.num_nodes - 1)


def _tree_closure(branching=3, depth=4):
    names, parent, frontier = ["r"], [-1], [0]
    for _ in range(depth):
        new = []
        for p in frontier:
            for _ in range(branching):
                parent.append(p)
                new.append(len(names))
                names.append(f"n{len(names)}")
        frontier = new
    edges = []
    for child in range(1, len(names)):
        a = parent[child]
        while a >= 0:
            edges.append((child, a))
            a = parent[a]
    return Graph(tuple(names), torch.tensor(edges), directed=True), torch.tensor(parent)


def _ranks(points, manifold, graph, **options):
    m = evaluate(points, manifold, graph, closure=graph, closure_variant="directed", **options)
    return m.edge_map, m.mean_rank, m.closure_map, m.closure_mean_rank, m.zero, m.nonfinite


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("curvature", [-1.0, -0.3])
def test_screened_ranks_equal_the_dense_ones(dtype, curvature):
    # Without distortion the Poincaré ranks come from the Gram-matrix screen; they must equal, bit for bit,
    # those of manifold.dist on every pair: random points deep and near the boundary, a hierarchy with
    # exact ties (siblings placed symmetrically), duplicated points and all points equal.
    from hyperbolic import PoincareBall

    graph, parent = _tree_closure()
    n = graph.num_nodes
    manifold = PoincareBall(4, curvature=curvature)
    R = float(manifold.scale(torch.zeros((), dtype=torch.float64)))
    generator = torch.Generator().manual_seed(0)
    direction = torch.nn.functional.normalize(torch.randn(n, 4, generator=generator, dtype=torch.float64), dim=1)
    depth = torch.zeros(n, dtype=torch.float64)
    for child in range(1, n):
        depth[child] = depth[parent[child]] + 1
    cases = {}
    for radius in (0.5, 4.0, 12.0):
        r = torch.rand(n, 1, generator=generator, dtype=torch.float64) * radius
        cases[f"random r<{radius}"] = direction * torch.tanh(r / 2)
    tied = torch.zeros(n, 4, dtype=torch.float64)
    axes = torch.eye(4, dtype=torch.float64)
    for child in range(1, n):
        # the k-th child on the k-th axis at its depth: children of one parent tie with each other
        tied[child] = axes[(child - 1) % 3] * math.tanh(depth[child] / 2)
    cases["tied"] = tied
    cases["duplicates"] = cases["random r<4.0"].clone()
    cases["duplicates"][5:9] = cases["duplicates"][20]
    cases["all equal"] = torch.full((n, 4), 0.1, dtype=torch.float64)
    cases["all at the origin"] = torch.zeros(n, 4, dtype=torch.float64)
    for name, unit in cases.items():
        points = (unit * R).to(dtype)
        dense = _ranks(points, manifold, graph)
        screened = _ranks(points, manifold, graph, distortion=False)
        assert screened == dense, name
        reconstruction = _ranks(points, manifold, graph, distortion=False, edge_map=False, rows=30, seed=1)
        sampled_dense = _ranks(points, manifold, graph, rows=30, seed=1)
        assert reconstruction[2:] == sampled_dense[2:] and reconstruction[:2] == (None, None), name


def test_reconstruction_only_options():
    graph, _ = _tree_closure(2, 3)
    manifold = HalfSpace(2)
    points = manifold.random(graph.num_nodes, generator=torch.Generator().manual_seed(0))
    full = evaluate(points, manifold, graph, closure=graph, closure_variant="directed")
    only = evaluate(points, manifold, graph, closure=graph, closure_variant="directed", edge_map=False,
                    distortion=False)
    assert (only.closure_map, only.closure_mean_rank) == (full.closure_map, full.closure_mean_rank)
    assert only.edge_map is None and only.d_avg is None and only.pairs == 0
    with pytest.raises(ValueError, match="closure"):
        evaluate(points, manifold, graph, edge_map=False)


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("right", [True, False])
def test_segment_count_matches_a_plain_count(grouped, right):
    # The ragged search behind the ranking bins: empty segments, ties, infinite entries and queries, both
    # the batched path (queries grouped by segment) and the binary search (queries in any order).
    from embed.metrics import _segment_count

    generator = torch.Generator().manual_seed(3)
    sizes = torch.tensor([0, 1, 5, 0, 17, 2, 3, 0])
    values = torch.cat([torch.sort(torch.randint(0, 6, (int(k),), generator=generator).double()).values
                        for k in sizes])
    values[5] = torch.inf  # the last entry of the 5-entry segment
    starts = torch.cumsum(sizes, 0) - sizes
    owner = torch.arange(len(sizes)).repeat_interleave(9)
    query = torch.randint(-1, 7, (len(owner),), generator=generator).double()
    query[::7] = torch.inf
    if not grouped:
        shuffle = torch.randperm(len(owner), generator=generator)
        owner, query = owner[shuffle], query[shuffle]
    got = _segment_count(values, starts[owner], sizes[owner], query, right)
    expected = [sum(bool(v <= q) if right else bool(v < q) for v in values[starts[o]:starts[o] + sizes[o]])
                for o, q in zip(owner.tolist(), query.tolist())]
    assert got.tolist() == expected


def _tiling_points(model, radii, seed):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(len(radii), model.dim, dtype=torch.float64, generator=g)
    r = torch.as_tensor(radii, dtype=torch.float64).unsqueeze(-1)
    v = v / v.norm(dim=-1, keepdim=True)
    return model.from_lorentz(torch.cat([torch.cosh(r), torch.sinh(r) * v], -1))


def test_binary_tiling_points_take_the_certified_component_distances():
    """While the tiling's integers fit float64, its points are exact two-float expansions (Two-Sum of 2^j k and
    2^j x): the evaluation takes the certified formula, with the distances and metrics of the tiling's own dist;
    near duplicates (unsure at the first level) included. Beyond two limbs it keeps the tiling's dist."""
    from embed.pair_distances import fast_distance

    model = BinaryTiling(3, max_radius=1100)
    x = _tiling_points(model, (torch.rand(150, generator=torch.Generator().manual_seed(4)) * 25).tolist(), seed=5)
    v = model.proju(x[:20], torch.randn(x[:20].shape, dtype=torch.float64, generator=torch.Generator().manual_seed(6)))
    x = torch.cat([x, model.expmap(x[:20], v * (1e-9 / model.norm(x[:20], v, keepdim=True)))])
    assert model.limbs_in_use(x) == 2 and model.halfspace_components(x) is not None
    exact = model.dist(x[:, None], x[None])
    fast = fast_distance(x, model)(torch.arange(len(x)))
    gap = (fast - exact).abs() / exact.clamp_min(1e-300)
    gap.fill_diagonal_(0)
    assert float(gap.max()) < 1e-15
    graph = _random_graph(len(x), extra=60, seed=7)
    reference = evaluate(x, model, graph, distance=lambda ids: exact[ids])
    for chunk in (None, 32):
        result = evaluate(x, model, graph, chunk_size=chunk)
        assert result.edge_map == pytest.approx(reference.edge_map, rel=1e-14)
        assert result.mean_rank == pytest.approx(reference.mean_rank, rel=1e-14)
        assert result.d_avg == pytest.approx(reference.d_avg, rel=1e-12)
    far = _tiling_points(model, [5.0, 40.0], seed=8)
    assert model.limbs_in_use(far) == 3 and model.halfspace_components(far) is None
    assert fast_distance(far, model) is None
