"""Cost of the training's nearest-node table on a checkpoint: the charted search (embed.nearest) against the
exact search by ``manifold.dist``, and whether they agree.

    python benchmarks/nearest_table.py CHECKPOINT [--rows 512] [--exact-rows 8] [--k 60] [--threads 1]

Times the charted search on ``--rows`` evenly spaced nodes and the exact search (every distance) on the first
``--exact-rows`` of them, in process CPU seconds, extrapolates both to a table over all nodes, and reports for
the rows searched both ways how many of the ``k`` nearest agree and whether they come in the same order.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

import torch  # noqa: E402

from embed.checkpoint import load_checkpoint  # noqa: E402
from embed.nearest import chart_nearest  # noqa: E402
from hyperbolic.registry import manifold_from_spec  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--exact-rows", type=int, default=8)
    parser.add_argument("--k", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    state = load_checkpoint(args.checkpoint)
    manifold, points = manifold_from_spec(state["spec"]), state["points"]
    n = points.shape[0]
    if not (1 <= args.exact_rows <= args.rows <= n and 1 <= args.k <= n):
        parser.error(f"need 1 <= --exact-rows <= --rows <= {n} and 1 <= --k <= {n}")
    rows = torch.linspace(0, n - 1, args.rows).round().to(torch.int64)

    started = time.process_time()
    search = chart_nearest(manifold, points)
    if search is None:
        parser.error("the float64 Poincaré view cannot rank these points: the trainer searches exactly")
    charted = search(rows, args.k)
    charted_seconds = time.process_time() - started

    exact_rows = rows[:args.exact_rows]
    started = time.process_time()
    with torch.no_grad():
        distance = manifold.dist(points[exact_rows].unsqueeze(1), points.unsqueeze(0))
    exact = torch.topk(distance, args.k, dim=1, largest=False, sorted=True).indices
    exact_seconds = time.process_time() - started

    same_set = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(charted[:args.exact_rows], exact)]
    print(json.dumps({
        "checkpoint": str(args.checkpoint), "manifold": manifold.spec()["name"], "nodes": n, "k": args.k,
        "threads": args.threads, "charted_rows": args.rows, "charted_cpu_s": charted_seconds,
        "charted_table_cpu_s": charted_seconds * n / args.rows, "exact_rows": args.exact_rows,
        "exact_cpu_s": exact_seconds, "exact_table_cpu_s": exact_seconds * n / args.exact_rows,
        "common_of_k": same_set, "same_order": [bool(torch.equal(a, b)) for a, b in zip(charted[:args.exact_rows], exact)],
    }))


if __name__ == "__main__":
    main()
