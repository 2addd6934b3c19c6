"""Precision table for benchmarks/RESULTS.md: every registered representation and geoopt's models
against the mpmath reference, near and far pairs, radii 1 ... 1000.

    python benchmarks/precision.py [--pairs 20] [--seed 0] [--against exact|stored] [--manifold NAME ...]

``--against stored`` compares with the exact distance of the points as stored (the arithmetic of ``dist``
alone) instead of the exact points (point rounding included).
"""

import argparse
import os
import platform
import sys
import time

import torch

from embed.cli import load_representations
from hyperbolic import precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", choices=["exact", "stored"], default="exact")
    parser.add_argument("--manifold", nargs="+", default=None, help="registered manifolds (default: all, and peers)")
    args = parser.parse_args()
    load_representations()
    started = time.perf_counter()
    rows = precision.run(labels=args.manifold, n_pairs=args.pairs, seed=args.seed, against=args.against,
                         include_peers=args.manifold is None)
    seconds = time.perf_counter() - started

    print(f"Command: `python {' '.join(sys.argv)}`  ")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}; H^2; {args.pairs} pairs per cell, seed {args.seed}; "
          f"reference in mpmath at 2r·log2(e) + 200 bits; measured in {seconds:.1f} s.\n")
    if args.against == "exact":
        print("Cells: median / max relative error of `dist` against the exact distance of the exact points "
              "(so a cell includes the rounding of the points into the representation).\n")
    else:
        print("Cells: median / max relative error of `dist` against the exact distance of the points as "
              "stored (the arithmetic of `dist` alone, point rounding excluded).\n")
    for kind, title in (("near", "Near pairs (d = 1, first point at radius r)"),
                        ("far", "Far pairs (both points at radius r, d ≈ 2r)")):
        print(f"#### {title}\n")
        print(precision.format_table(rows, kind))
        print()
    print("#### Break-down radii (near pairs, median error)\n")
    print("| manifold | dtype | usable (< 1e-6) to r | useless (max ≥ 0.5, NaN or refused) from r | all errors ≤ 1e-12 to r |")
    print("|---|---|---|---|---|")
    for manifold, dtype in dict.fromkeys((r.manifold, r.dtype) for r in rows):
        usable, useless = precision.breakdown(rows, manifold, dtype)
        accurate = precision.accurate_radius(rows, manifold, dtype)
        print(f"| {manifold} | {dtype} | {usable if usable is not None else '< 1'} | "
              f"{useless if useless is not None else '—'} | {accurate if accurate is not None else '< 1'} |")


if __name__ == "__main__":
    sys.exit(main())
