"""Combinatorial construction: ours (exact-limb fast path, MCF half-space) against the mpmath reference path.

Part 1 -- WordNet nouns (plain hypernyms, largest component: 74,374 nodes, 75,834 edges, undirected,
root entity.n.01), 2-D, eps = 1:
  * build time of ours and of the mpmath reference path at 512 and 1,024 bits, same tree, same run
    (process CPU seconds, the fair measure on a shared machine; wall seconds alongside);
  * agreement of distances on 1,000 random pairs: ours and the 512-bit path against the 1,024-bit path,
    all in mpmath at 2,048 bits (relative differences);
  * edge-MAP, mean rank and distortion over all rows (``--rows N`` samples instead, labelled).
Part 2 -- the small shared graphs (smalltree, phylo_tree, ca-CSphd, bio-diseasome, bio-yeast) at eps = 1 and
0.1, in 2-D and in 10-D with simplex codes, all rows. 2-D trees whose radius bound exceeds the float64 MCF
half-space's ceiling (about 700) are built in the L-tiling model (``precision="auto"`` picks it) and evaluated
through exact-integer distances of their exact coordinates; r-D ones are reported as refused.

Prints a markdown block for benchmarks/RESULTS.md, with the command line.

Part 3 (``--tiling``) -- WordNet nouns built in the L-tiling model: build time against the mpmath path at
1,024 bits, distances on 1,000 random pairs, edge-MAP on sampled rows (see :func:`wordnet_tiling`).

    python benchmarks/combinatorial.py [--rows N] [--skip-wordnet] [--skip-small] [--tiling]
        [--tiling-rows N] [--threads T] [--graphs NAME ...] [--dims 2|10 ...]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

import mpmath
import torch

from embed.combinatorial import embed_graph
from embed.construction.reference import poincare_to_lorentz, reference_2d
from embed.edgelist import read_edgelist
from embed.metrics import evaluate
from hyperbolic.manifold import PrecisionError

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hyperbolics"
SMALL = ["smalltree", "phylo_tree", "ca-CSphd", "bio-diseasome", "bio-yeast"]
# Roots of the reference runs in ../shared/notes/combinatorial.md section 7 (None: largest degree).
ROOTS = {"smalltree": "0", "phylo_tree": "0", "ca-CSphd": None, "bio-diseasome": None, "bio-yeast": "0"}


def _lorentz_distance(P, Q):
    value = P[0] * Q[0] - mpmath.fsum(a * b for a, b in zip(P[1:], Q[1:]))
    return mpmath.acosh(value) if value > 1 else mpmath.mpf(0)


def _gap(A, B, pairs, bits=2048):
    with mpmath.workprec(bits):
        gaps, degenerate = [], 0
        for u, v in pairs:
            a, b = _lorentz_distance(A[u], A[v]), _lorentz_distance(B[u], B[v])
            if a == 0:
                degenerate += 1
                gaps.append(math.inf if b != 0 else 0.0)
                continue
            gaps.append(float(abs(a - b) / a))
    gaps.sort()
    if degenerate:
        print(f"warning: {degenerate} pairs at distance 0 in the reference", file=sys.stderr)
    return gaps[len(gaps) // 2], gaps[-1]


def _random_pairs(n: int, seed: int, count: int = 1000) -> list[tuple[int, int]]:
    """``count`` seeded random pairs of distinct nodes."""
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < count:
        u, v = rng.randrange(n), rng.randrange(n)
        if u != v:
            pairs.append((u, v))
    return pairs


def _timed(function):
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def _fmt(value, digits=4):
    return "—" if value is None else f"{value:.{digits}f}"


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def wordnet(rows: int | None, seed: int) -> list[str]:
    from embed.wordnet import noun_hypernym_graph

    graph = noun_hypernym_graph().as_undirected()
    print(f"WordNet: {graph}", file=sys.stderr)
    embed_graph(graph, eps=1.0, root="entity.n.01")  # warm-up: imports, allocator
    ours, cpu, wall = _timed(lambda: embed_graph(graph, eps=1.0, root="entity.n.01"))
    plan, tau = ours.plan, ours.tau
    build = ours.info["build_cpu_seconds"]
    print(f"ours: {cpu:.2f} CPU-s ({wall:.2f} s wall; construction {build:.2f} CPU-s), tau {tau:.4f}, "
          f"{ours.info['components']} components", file=sys.stderr)
    reference = {}
    for bits in (512, 1024):
        points, rcpu, rwall = _timed(lambda bits=bits: reference_2d(plan, tau, bits))
        reference[bits] = (poincare_to_lorentz(points, bits), rcpu, rwall)
        print(f"mpmath {bits} bits: {rcpu:.2f} CPU-s ({rwall:.2f} s wall)", file=sys.stderr)
    _, full_cpu, full_wall = _timed(lambda: embed_graph(graph, eps=1.0, root="entity.n.01", precision="mpmath:1024"))
    print(f"embed_graph(precision='mpmath:1024'): {full_cpu:.2f} CPU-s ({full_wall:.2f} s wall)", file=sys.stderr)
    pairs = _random_pairs(graph.num_nodes, seed)
    with mpmath.workprec(2048):
        mine = ours.manifold.to_reference(ours.points)
    ours_gap = _gap(mine, reference[1024][0], pairs)
    print(f"ours vs 1024: median {ours_gap[0]:.2e}, max {ours_gap[1]:.2e}", file=sys.stderr)
    low_gap = _gap(reference[512][0], reference[1024][0], pairs)
    load_before = _load()
    metrics, eval_cpu, eval_wall = _timed(lambda: evaluate(ours.points, ours.manifold, graph, scale=tau, rows=rows,
                                                           seed=seed))
    load_after = _load()
    print(metrics.summary(), file=sys.stderr)
    if metrics.sampled:
        rows_text = f"{metrics.rows} randomly sampled rows (SE {metrics.edge_map_se:.4f}; distortion maxima are lower bounds)"
    else:
        rows_text = f"all {metrics.rows:,} rows"
    return [
        "### WordNet nouns, 2-D, eps = 1 (root entity.n.01, undirected BFS tree)",
        "",
        f"tau {tau:.4f}, depth {ours.info['depth']}, {ours.info['dropped_edges']} non-tree edges dropped, "
        f"radius bound {ours.info['radius_bound']:.1f} ({ours.info['bits_bound']:.0f} bits) -> "
        f"MCF half-space with {ours.info['components']} float64 components.",
        "",
        "| path | CPU-s | wall-s | CPU ratio to ours | distances vs 1,024-bit path: median / max rel. diff (1,000 random pairs) |",
        "|---|---|---|---|---|",
        f"| ours, whole `embed_graph` (tree, plan, construction, validation) | {cpu:.2f} | {wall:.2f} | 1 | "
        f"{ours_gap[0]:.1e} / {ours_gap[1]:.1e} |",
        f"| ours, construction only (exact limbs -> MCF x{ours.info['components']}, validated) | {build:.2f} | "
        f"{ours.info['build_seconds']:.2f} | {build / cpu:.2f} | same points |",
        f"| mpmath 512 bits, construction only (`reference_2d`) | {reference[512][1]:.2f} | {reference[512][2]:.2f} | "
        f"{reference[512][1] / cpu:.1f} | {low_gap[0]:.1e} / {low_gap[1]:.1e} |",
        f"| mpmath 1,024 bits, construction only (`reference_2d`) | {reference[1024][1]:.2f} | "
        f"{reference[1024][2]:.2f} | {reference[1024][1] / cpu:.1f} (construction vs construction: "
        f"{reference[1024][1] / build:.1f}) | (reference) |",
        f"| mpmath 1,024 bits, whole `embed_graph(precision='mpmath:1024')` | {full_cpu:.2f} | {full_wall:.2f} | "
        f"{full_cpu / cpu:.1f} | — |",
        "",
        f"Metrics of ours over {rows_text}: edge-MAP {_fmt(metrics.edge_map, 5)}, mean rank "
        f"{_fmt(metrics.mean_rank, 3)}, D_avg {_fmt(metrics.d_avg)}, D_wc {_fmt(metrics.d_wc, 2)} (global) / "
        f"{_fmt(metrics.d_wc_row, 2)} (row), non-finite {metrics.nonfinite}, zero {metrics.zero}; "
        f"{metrics.pairs:,} ordered pairs. Evaluation {eval_cpu:.0f} CPU-s, {eval_wall:.0f} s wall "
        f"({torch.get_num_threads()} torch thread(s) + 1 graph-distance worker thread; {load_before} before, "
        f"{load_after} after).",
        "",
    ]


def wordnet_tiling(rows: int, seed: int) -> list[str]:
    """WordNet nouns, 2-D, eps = 1, built natively in the L-tiling model (``precision="tiling"``).

    Build CPU time against the mpmath path at 1,024 bits (same tree, same run), distances on 1,000 random
    pairs against that path, and edge-MAP on ``rows`` sampled rows (the tiling distance forms multi-limb
    integer products per pair, about 4 CPU-s per row of 74,374 columns: all rows would take days), with the
    MCF path evaluated on the same sampled rows for comparison.
    """
    from embed.wordnet import noun_hypernym_graph

    graph = noun_hypernym_graph().as_undirected()
    print(f"WordNet: {graph}", file=sys.stderr)
    embed_graph(graph, eps=1.0, root="entity.n.01", precision="tiling")  # warm-up: imports, allocator
    ours, cpu, wall = _timed(lambda: embed_graph(graph, eps=1.0, root="entity.n.01", precision="tiling"))
    build = ours.info["build_cpu_seconds"]
    print(f"tiling: {cpu:.2f} CPU-s ({wall:.2f} s wall; construction {build:.2f} CPU-s), "
          f"{ours.info['limbs']} limbs", file=sys.stderr)
    points, ref_cpu, ref_wall = _timed(lambda: reference_2d(ours.plan, ours.tau, 1024))
    reference = poincare_to_lorentz(points, 1024)
    print(f"mpmath 1024 bits: {ref_cpu:.2f} CPU-s ({ref_wall:.2f} s wall)", file=sys.stderr)
    pairs = _random_pairs(graph.num_nodes, seed)
    # The tiling's own distance function (exact integer Q = T_u^T M3 T_v) against the 1,024-bit points.
    u, v = torch.tensor(pairs).T
    own = ours.manifold.dist(ours.points[u], ours.points[v]).tolist()
    with mpmath.workprec(2048):
        gaps = sorted(float(abs(mpmath.mpf(d) - _lorentz_distance(reference[a], reference[b]))
                            / _lorentz_distance(reference[a], reference[b])) for d, (a, b) in zip(own, pairs))
    print(f"tiling vs 1024: median {gaps[500]:.2e}, max {gaps[-1]:.2e}", file=sys.stderr)
    mcf = embed_graph(graph, eps=1.0, root="entity.n.01")
    load_before = _load()
    metrics, eval_cpu, eval_wall = _timed(lambda: evaluate(ours.points, ours.manifold, graph, scale=ours.tau,
                                                           rows=rows, seed=seed))
    load_after = _load()
    print(metrics.summary(), file=sys.stderr)
    same_rows = evaluate(mcf.points, mcf.manifold, graph, scale=mcf.tau, rows=rows, seed=seed)
    return [
        "### WordNet nouns, 2-D, eps = 1, built in the L-tiling model (`precision='tiling'`)",
        "",
        f"tau {ours.tau:.4f}, depth {ours.info['depth']}, radius bound {ours.info['radius_bound']:.1f} -> "
        f"LTiling with {ours.info['limbs']} limbs of 24 bits ({ours.manifold.storage_dim} floats per point); "
        f"boosts in steps of at most {ours.info['max_step']:g}.",
        "",
        "| path | CPU-s | wall-s | CPU ratio | distances (own `dist`) vs 1,024-bit path: median / max rel. diff "
        "(1,000 random pairs) |",
        "|---|---|---|---|---|",
        f"| tiling, whole `embed_graph` (tree, plan, construction, validation) | {cpu:.2f} | {wall:.2f} | 1 | "
        f"{gaps[500]:.1e} / {gaps[-1]:.1e} |",
        f"| tiling, construction only (validated) | {build:.2f} | {ours.info['build_seconds']:.2f} | "
        f"{build / cpu:.2f} | same points |",
        f"| mpmath 1,024 bits, construction only (`reference_2d`) | {ref_cpu:.2f} | {ref_wall:.2f} | "
        f"{ref_cpu / cpu:.1f} (construction vs construction: {ref_cpu / build:.1f}) | (reference) |",
        "",
        f"Edge-MAP on {metrics.rows} randomly sampled rows (seed {seed}): tiling {_fmt(metrics.edge_map, 5)} "
        f"(SE {_fmt(metrics.edge_map_se)}), MCF path on the same rows {_fmt(same_rows.edge_map, 5)}; mean rank "
        f"{_fmt(metrics.mean_rank, 3)} / {_fmt(same_rows.mean_rank, 3)}, D_avg {_fmt(metrics.d_avg)} / "
        f"{_fmt(same_rows.d_avg)}, non-finite {metrics.nonfinite}, zero {metrics.zero}. Tiling evaluation "
        f"{eval_cpu:.0f} CPU-s, {eval_wall:.0f} s wall ({eval_cpu / max(metrics.rows, 1):.1f} CPU-s per row; "
        f"{load_before} before, {load_after} after).",
        "",
    ]


def _exact_distances(points_ball, bits: int):
    """All-pairs distances of Poincaré points (``mpc``) from exact fixed-point integers.

    With ``p`` scaled to integers at ``bits`` bits, :math:`w = 2|p-q|^2 / ((1-|p|^2)(1-|q|^2))` is a ratio of
    exact integers, and :math:`d = \\log w + \\log(1 + 1/w + \\sqrt{1 + 2/w})` (an identity for
    :math:`\\operatorname{arcosh}(1 + w)`) needs only :math:`\\log w` to double precision.
    """
    scale = 1 << bits
    with mpmath.workprec(bits + 64):
        xs = [int(mpmath.nint(p.real * scale)) for p in points_ball]
        ys = [int(mpmath.nint(p.imag * scale)) for p in points_ball]
    n = len(xs)
    log_gap = [math.log(scale * scale - x * x - y * y) for x, y in zip(xs, ys)]  # log((1-|p|^2) 2^2bits)
    D = torch.zeros(n, n, dtype=torch.float64)
    log2 = math.log(2.0)
    for i in range(n):
        xi, yi, gi = xs[i], ys[i], log_gap[i]
        row = D[i]
        for j in range(i + 1, n):
            dx, dy = xi - xs[j], yi - ys[j]
            log_w = log2 + math.log(dx * dx + dy * dy) + 2 * bits * log2 - gi - log_gap[j]
            inv = math.exp(-log_w) if log_w > -700 else math.inf
            d = log_w + math.log1p(inv + math.sqrt(1 + 2 * inv)) if inv != math.inf else 0.0
            row[j] = d
    return D + D.T


def small(names=SMALL, dims=(2, 10)) -> list[str]:
    lines = [
        "### Small shared graphs (all rows; edge-MAP; D_wc global / row)",
        "",
        "| graph | dim | eps | BFS order | tau | root, depth | path | MAP | D_avg | D_wc | build CPU-s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        graph = read_edgelist(SHARED / f"{name}.edges")
        # ca-CSphd is not a tree: the BFS neighbour order picks the dropped edges (notes' reference: input order)
        orders = ("sorted", "input") if name == "ca-CSphd" else ("sorted",)
        for dim in dims:
            for eps in (1.0, 0.1):
                for order in orders:
                    lines.append(_small_row(name, graph, dim, eps, order))
                    print(lines[-1], file=sys.stderr)
    return lines + [""]


def _small_row(name, graph, dim, eps, order) -> str:
    root = ROOTS[name]
    try:
        embedding, cpu, _ = _timed(lambda: embed_graph(graph, eps=eps, dim=dim, root=root, bfs_order=order))
    except PrecisionError as error:
        return f"| {name} | {dim} | {eps} | {order} | — | — | refused: {str(error).split(';')[0]} | — | — | — | — |"
    info = embedding.info
    if info["path"] == "tiling":
        # The tiling distance forms exact multi-limb products per pair (milliseconds each at these radii):
        # evaluate the same points through exact-integer distances of their exact Poincare coordinates.
        bits = math.ceil(info["radius_bound"] / math.log(2)) + 128
        with mpmath.workprec(bits + 64):
            ball = [mpmath.mpc(X[1], X[2]) / (1 + X[0]) for X in embedding.manifold.to_reference(embedding.points)]
        D = _exact_distances(ball, bits)
        metrics = evaluate(torch.zeros(graph.num_nodes, 1), None, graph, scale=embedding.tau,
                           distance=lambda ids: D[ids])
        path = f"tiling (auto), {info['limbs']} limbs; exact-integer distances of its points"
    else:
        metrics = evaluate(embedding.points, embedding.manifold, graph, scale=embedding.tau)
        path = f"fast, MCF x{info['components']}"
    return (f"| {name} | {dim} | {eps} | {order} | {embedding.tau:.2f} | {info['roots'][0]}, {info['depth']} | {path} | "
            f"{_fmt(metrics.edge_map)} | {_fmt(metrics.d_avg)} | {_fmt(metrics.d_wc, 2)} / "
            f"{_fmt(metrics.d_wc_row, 2)} | {cpu:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="sample rows for WordNet (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-wordnet", action="store_true")
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--graphs", nargs="+", choices=SMALL, default=SMALL, help="small graphs to run")
    parser.add_argument("--dims", nargs="+", type=int, choices=(2, 10), default=(2, 10),
                        help="dimensions of the small-graph rows")
    parser.add_argument("--tiling", action="store_true",
                        help="also build WordNet in the L-tiling model (edge-MAP on --tiling-rows sampled rows)")
    parser.add_argument("--tiling-rows", type=int, default=30, help="sampled rows for the tiling evaluation")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lines = ["```", "python benchmarks/combinatorial.py " + " ".join(sys.argv[1:]),
             f"torch {torch.__version__}, {torch.get_num_threads()} threads, mpmath backend {mpmath.libmp.BACKEND}",
             "```", ""]
    if not args.skip_wordnet:
        lines += wordnet(args.rows, args.seed)
    if args.tiling:
        lines += wordnet_tiling(args.tiling_rows, args.seed)
    if not args.skip_small:
        lines += small(args.graphs, args.dims)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
