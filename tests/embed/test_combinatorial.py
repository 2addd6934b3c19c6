"""The combinatorial construction against the mpmath oracle and the reference figures of the notes."""

import math
import random
from fractions import Fraction

import mpmath
import pytest
import torch

from embed import codes
from embed.bfs import NotATreeError
from embed.codes import directions, min_angle, ordered_sum, repel, simplex_codewords
from embed.combinatorial import embed_graph, parse_precision
from embed.construction import limbs as lb
from embed.construction.reference import poincare_to_lorentz, reference_2d, reference_rd
from embed.construction.tau import tau_from_eps
from embed.edgelist import read_edgelist
from embed.graphs import Graph, GraphError
from embed.metrics import evaluate
from hyperbolic.manifold import PrecisionError


def _lorentz_dist(P, Q):
    value = P[0] * Q[0] - mpmath.fsum(a * b for a, b in zip(P[1:], Q[1:]))
    return mpmath.acosh(value) if value > 1 else mpmath.mpf(0)


def _ours(embedding, bits=2000):
    with mpmath.workprec(bits):  # to_reference works at the ambient mpmath precision
        return embedding.manifold.to_reference(embedding.points)


def _max_relative_gap(points_a, points_b, pairs, bits=2000):
    with mpmath.workprec(bits):
        worst = mpmath.mpf(0)
        for u, v in pairs:
            a, b = _lorentz_dist(points_a[u], points_a[v]), _lorentz_dist(points_b[u], points_b[v])
            worst = max(worst, abs(a - b) / a)
        return float(worst)


def _pairs(n, parent, count=300, seed=0):
    rng = random.Random(seed)
    pairs = [(rng.randrange(n), rng.randrange(n)) for _ in range(count)]
    pairs += [(v, int(parent[v])) for v in range(n) if parent[v] >= 0]
    return [(u, v) for u, v in pairs if u != v]


@pytest.mark.parametrize(
    "degree, eps, expected",
    [(4, 1, 4.32), (4, 0.1, 23.77), (16, 1, 10.00), (16, 0.1, 55.02), (46, 1, 14.24), (46, 0.1, 78.30),
     (36, 1, 13.26), (36, 0.1, 72.9), (404, 1, 22.93), (404, 0.1, 126.11)],
)
def test_tau_matches_the_published_values(degree, eps, expected):
    assert tau_from_eps(eps, degree) == pytest.approx(expected, abs=0.006 if expected < 100 else 0.06)


def test_precision_parsing():
    assert parse_precision("auto") == ("auto", None)
    assert parse_precision("MCF12") == ("mcf", 12)
    assert parse_precision("mpmath:1024") == ("mpmath", 1024)
    with pytest.raises(ValueError, match="unknown precision"):
        parse_precision("double")


def test_limb_arithmetic_is_exact():
    rng = random.Random(3)
    b, L = 24, 8
    ints = [rng.randrange(-2**190, 2**190) for _ in range(8)]
    A, eA = lb.from_ints(ints[:4], 60, b, L, block=4)
    B, eB = lb.from_ints(ints[4:], 20, b, L, block=4)

    def value(digits, exponent):
        return sum(Fraction(int(d)) * Fraction(2) ** (b * (int(exponent) - k)) for k, d in enumerate(digits))

    A, B = A.reshape(1, 2, 2, L), B.reshape(1, 2, 2, L)
    P, eP = lb.matmul(A, eA, B, eB, 2 * L, b)  # wide enough to keep the exact product
    for i in range(2):
        for j in range(2):
            exact = sum(value(A[0, i, k].tolist(), eA[0]) * value(B[0, k, j].tolist(), eB[0]) for k in range(2))
            assert value(P[0, i, j].tolist(), eP[0]) == exact
    x = torch.tensor([math.pi, -1e-300, 2.0**-1074, 1e308, 0.0], dtype=torch.float64)
    digits, exponent = lb.from_float(x, b)
    for row in range(5):
        assert value(digits[row].tolist(), exponent[row]) == Fraction(x[row].item())


@pytest.mark.parametrize("name, eps", [("phylo_tree", 1.0), ("smalltree", 0.1)])
def test_fast_path_matches_the_mpmath_reference(shared_data, name, eps):
    graph = read_edgelist(shared_data / "hyperbolics" / f"{name}.edges")
    embedding = embed_graph(graph, eps=eps, root="0")
    plan = embedding.plan
    reference = poincare_to_lorentz(reference_2d(plan, embedding.tau, 2000), 2000)
    ours = _ours(embedding)
    assert _max_relative_gap(ours, reference, _pairs(graph.num_nodes, plan.parent)) < 1e-12


def test_weighted_tree_matches_the_reference():
    names = tuple(str(i) for i in range(9))
    edges = torch.tensor([(0, 1), (0, 2), (0, 3), (1, 4), (1, 5), (2, 6), (6, 7), (6, 8)])
    weights = torch.tensor([1.0, 2.5, 0.5, 1.5, 1.0, 3.0, 0.75, 2.0])
    graph = Graph(names, edges, weights)
    embedding = embed_graph(graph, eps=0.5, root="0")
    plan = embedding.plan
    reference = poincare_to_lorentz(reference_2d(plan, embedding.tau, 1000), 1000)
    ours = _ours(embedding)
    assert _max_relative_gap(ours, reference, _pairs(9, plan.parent, 40)) < 1e-12
    for v in range(1, 9):
        u = int(plan.parent[v])
        with mpmath.workprec(300):
            assert float(_lorentz_dist(ours[u], ours[v])) == pytest.approx(embedding.tau * float(plan.weight[v]),
                                                                           rel=1e-13)


@pytest.mark.parametrize("dim", [3, 10])
def test_higher_dimensions_match_the_reference(shared_data, dim):
    graph = read_edgelist(shared_data / "hyperbolics" / "smalltree.edges")
    embedding = embed_graph(graph, eps=1.0, dim=dim, root="0")
    plan = embedding.plan
    reference = reference_rd(plan, embedding.tau, dim, 600)
    ours = _ours(embedding)
    assert _max_relative_gap(ours, reference, _pairs(graph.num_nodes, plan.parent, 100)) < 1e-12
    metrics = evaluate(embedding.points, embedding.manifold, graph, scale=embedding.tau)
    assert metrics.edge_map == 1.0 and metrics.nonfinite == 0


def test_reference_figures_small_graphs(shared_data):
    # combinatorial.md section 7 (8192-bit reference runs): smalltree eps 0.1 MAP 1.0, D_avg 0.0129,
    # D_wc 1.022; phylo_tree eps 1 MAP 1.0, D_avg 0.0351, D_wc 1.195; ca-CSphd eps 1 (root 0) MAP 0.9908.
    cases = [("smalltree", 0.1, 1.0, 0.0129, 1.022), ("phylo_tree", 1.0, 1.0, 0.0351, 1.195)]
    for name, eps, edge_map, d_avg, d_wc in cases:
        graph = read_edgelist(shared_data / "hyperbolics" / f"{name}.edges")
        embedding = embed_graph(graph, eps=eps, root="0")
        m = evaluate(embedding.points, embedding.manifold, graph, scale=embedding.tau)
        assert m.edge_map == pytest.approx(edge_map, abs=1e-4)
        assert m.d_avg == pytest.approx(d_avg, abs=1e-4)
        assert m.d_wc == pytest.approx(d_wc, abs=1e-3)
        assert m.nonfinite == 0 and m.zero == 0


def test_forest_is_joined_under_a_virtual_root():
    graph = Graph(tuple("abcdefg"), torch.tensor([(0, 1), (0, 2), (3, 4), (4, 5), (4, 6)]))
    embedding = embed_graph(graph, eps=1.0)
    assert embedding.points.shape[0] == 7 and embedding.info["virtual_root"]
    m = evaluate(embedding.points, embedding.manifold, graph, scale=embedding.tau)
    assert m.edge_map == 1.0 and m.pairs == 2 * (3 + 6)


def test_require_tree_refuses_a_forest():
    graph = Graph(tuple("abcdefg"), torch.tensor([(0, 1), (0, 2), (3, 4), (4, 5), (4, 6)]), source="forest")
    with pytest.raises(NotATreeError, match="'forest' is not a tree: 2 connected components .*'a'"):
        embed_graph(graph, eps=1.0, require_tree=True)
    with pytest.raises(NotATreeError, match="2 connected components"):
        embed_graph(graph, eps=1.0, root="b", require_tree=True)
    directed = Graph(tuple("abcd"), torch.tensor([(1, 0), (3, 2)]), directed=True)
    with pytest.raises(NotATreeError, match="2 connected components"):
        embed_graph(directed, eps=1.0, require_tree=True)


def test_dropped_edges_are_counted():
    graph = Graph(tuple("abcd"), torch.tensor([(0, 1), (1, 2), (2, 0), (2, 3)]))
    embedding = embed_graph(graph, eps=1.0, root="a")
    assert embedding.info["dropped_edges"] == 1
    with pytest.raises(NotATreeError):
        embed_graph(graph, eps=1.0, root="a", require_tree=True)


def test_bfs_order_picks_the_dropped_edges():
    # a 4-cycle a-b-c-d from a: c is reached through b (sorted) or through d (edges listed d first)
    graph = Graph(tuple("abcd"), torch.tensor([(0, 3), (3, 2), (0, 1), (1, 2)]))
    trees = {}
    for order in ("sorted", "input"):
        embedding = embed_graph(graph, eps=1.0, root="a", bfs_order=order)
        assert embedding.info["bfs_order"] == order and embedding.info["dropped_edges"] == 1
        trees[order] = {tuple(e) for e in embedding.tree_edges().tolist()}
    assert (2, 1) in trees["sorted"] and (2, 3) in trees["input"]
    assert trees["sorted"] - {(2, 1)} == trees["input"] - {(2, 3)} == {(1, 0), (3, 0)}
    with pytest.raises(ValueError, match="bfs_order"):
        embed_graph(graph, bfs_order="random")


def test_bad_requests_raise_clear_errors(shared_data):
    graph = read_edgelist(shared_data / "hyperbolics" / "phylo_tree.edges")
    with pytest.raises(GraphError, match="not in graph"):
        embed_graph(graph, root="no-such-node")
    with pytest.raises(PrecisionError, match=r"mcf2 cannot hold the tree: .* needs 9 float64 components"):
        embed_graph(graph, eps=1.0, root="0", precision="mcf2")
    with pytest.raises(PrecisionError, match="beyond the float64 MCF half-space's ceiling .* --precision tiling"):
        embed_graph(graph, eps=0.1, root="0", precision="mcf50")  # radius 1650
    with pytest.raises(PrecisionError, match="ceiling .* the r-D construction has no tiling model"):
        embed_graph(graph, eps=0.1, root="0", dim=3)
    with pytest.raises(PrecisionError, match="float64 cannot hold the tree"):
        embed_graph(graph, eps=1.0, root="0", precision="float64")
    with pytest.raises(PrecisionError, match="collapsed|wrong distance|left the representation"):
        embed_graph(graph, eps=1.0, root="0", precision="mpmath:128")
    with pytest.raises(ValueError, match="eps or tau"):
        embed_graph(graph, eps=1.0, tau=3.0)


def test_requests_beyond_memory_or_float64_raise_precision_errors():
    graph = Graph(tuple("abc"), torch.tensor([(0, 1), (1, 2)]))
    with pytest.raises(PrecisionError, match=r"radius bound 2e\+300 .* ltiling model: .* GiB of memory"):
        embed_graph(graph, tau=1e300, root="a")
    with pytest.raises(PrecisionError, match="1e\\+20 floats per point in the halfspace-mcf model"):
        embed_graph(graph, root="a", precision="mcf" + "1" + "0" * 20)
    with pytest.raises(PrecisionError, match="tau 1e\\+308 x depth 2 overflows float64"):
        embed_graph(graph, tau=1e308, root="a")


def test_mpmath_path_and_tau_max(shared_data):
    graph = read_edgelist(shared_data / "hyperbolics" / "smalltree.edges")
    fast = embed_graph(graph, eps=1.0, root="0")
    slow = embed_graph(graph, eps=1.0, root="0", precision="mpmath:256")
    assert slow.info["path"] == "mpmath"
    gap = _max_relative_gap(_ours(fast), _ours(slow),
                            _pairs(40, fast.plan.parent, 50))
    assert gap < 1e-12
    widest = embed_graph(graph, tau="max", root="0", precision="mcf3")
    assert widest.info["tau_rule"] == "max" and widest.info["radius_bound"] <= 3 * 36.7


def test_codes():
    Z = simplex_codewords(8, 7)
    assert torch.allclose(Z.norm(dim=1), torch.ones(8, dtype=torch.float64))
    assert min_angle(Z) >= math.pi / 2 - 1e-12  # 2^3 - 1 = 7 divides r = 7
    assert simplex_codewords(1, 4).shape == (1, 4)
    two = simplex_codewords(2, 4)
    assert torch.allclose(two[0], -two[1])
    assert min_angle(directions(30, 10)) > 0.9  # spread fallback beyond the code range
    assert min_angle(directions(12, 10)) >= math.pi / 2 - 1e-12  # cross-polytope


def test_ordered_sum_is_a_fixed_pairwise_tree():
    a, b, c, d, e = 1e16, 1.0, -1e16, 1.0, 1.0  # 1e16 + 1 rounds to 1e16: the order shows
    x = torch.tensor([a, b, c, d, e], dtype=torch.float64)
    assert ordered_sum(x).item() == ((a + d) + c) + (b + e) == 2.0
    X = torch.randn(7, 13, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ordered_sum(X, 1), X.sum(1), rtol=1e-14, atol=1e-14)
    assert torch.equal(ordered_sum(X[:, :1], 1), X[:, 0])
    assert torch.equal(ordered_sum(X[:, :0], 1), torch.zeros(7, 3, dtype=torch.float64))


def _with_threads(count, build):
    """``build()`` run with ``count`` torch threads and the direction caches empty."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    codes._spread.cache_clear()
    codes.frame_directions.cache_clear()
    try:
        return build()
    finally:
        torch.set_num_threads(previous)
        codes._spread.cache_clear()
        codes.frame_directions.cache_clear()


def test_repel_widens_and_is_independent_of_the_thread_count():
    start = codes._halton_normal_start(35, 10)
    one, two = (_with_threads(count, lambda: repel(start)) for count in (1, 2))
    assert torch.equal(one, two)
    assert torch.allclose(one.norm(dim=1), torch.ones(35, dtype=torch.float64), atol=1e-15)
    assert min_angle(one) > min_angle(start) + 0.3


def test_spread_embedding_is_independent_of_the_thread_count():
    # Degrees 22, 35 and 41 (parent slot included) in 10-D: beyond the codes and the cross-polytope,
    # so the repelled spread directions are used. With 1 and 2 threads the old repulsion gave K = 35
    # directions 2.7e-4 apart, and with them a different minimum angle, tau and every point.
    edges = [("r", f"a{i}") for i in range(22)]
    edges += [("a0", f"b{i}") for i in range(34)] + [("b0", f"c{i}") for i in range(40)]
    graph = Graph.from_named_edges(edges)
    one, two = (_with_threads(count, lambda: embed_graph(graph, dim=10, root="r")) for count in (1, 2))
    assert one.info["max_degree"] == 41 and one.info["min_angle"] < math.pi / 2
    assert one.info["min_angle"] == two.info["min_angle"] and one.tau == two.tau
    assert torch.equal(one.points, two.points)
