"""10-D combinatorial embeddings built with 1 and then 2 torch threads: are they bit-for-bit identical?

For each graph: ``embed_graph(graph, dim=10, eps=1)`` once per thread count (direction caches cleared
between builds), the sha256 of the points, the minimum angle and tau, and, when the two builds differ, the
largest distance between a node's two positions. Also compares ``spread_directions(K, 10)`` for
K = 21..59 (the range where the repelled spread directions are used).

    python benchmarks/spread_determinism.py [--graphs NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch

from embed import codes
from embed.combinatorial import embed_graph
from embed.edgelist import read_edgelist

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hyperbolics"
ROOTS = {"ca-CSphd": None, "bio-diseasome": None, "bio-yeast": "0"}


def _fresh(threads: int, build, *args, **kwargs):
    torch.set_num_threads(threads)
    codes._spread.cache_clear()
    codes.frame_directions.cache_clear()
    started = time.process_time()
    result = build(*args, **kwargs)
    return result, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", nargs="+", choices=list(ROOTS), default=list(ROOTS))
    args = parser.parse_args()

    differing = []
    for K in range(21, 60):
        one, _ = _fresh(1, codes.spread_directions, K, 10)
        two, _ = _fresh(2, codes.spread_directions, K, 10)
        if not torch.equal(one, two):
            differing.append(f"K={K} ({(one - two).abs().max().item():.2g})")
    print("spread_directions(K, 10), K = 21..59, 1 vs 2 threads:", ", ".join(differing) or "all identical")

    for name in args.graphs:
        graph = read_edgelist(SHARED / f"{name}.edges")
        builds = [_fresh(t, embed_graph, graph, dim=10, eps=1.0, root=ROOTS[name]) for t in (1, 2)]
        for threads, (embedding, cpu) in zip((1, 2), builds):
            digest = hashlib.sha256(embedding.points.numpy().tobytes()).hexdigest()[:16]
            print(f"{name}: {threads} thread(s), {cpu:.2f} CPU-s, points sha256 {digest}, "
                  f"min angle {embedding.info['min_angle']!r}, tau {embedding.tau!r}")
        (a, _), (b, _) = builds
        if torch.equal(a.points, b.points) and a.tau == b.tau:
            print(f"{name}: identical")
        else:
            print(f"{name}: DIFFER, largest displacement {a.manifold.dist(a.points, b.points).max().item():.4g}")


if __name__ == "__main__":
    main()
