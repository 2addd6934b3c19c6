"""What one relocation of trapped leaves does to a closure embedding, before any training: MAP and mean rank
on the run's sampled rows before and after, per placement (distance out along the parent's ray, sideways step)
and trapping rank.

    python benchmarks/wordnet_relocation.py CHECKPOINT [--placements 2,11 1,1.5 ...] [--rank K ...]
                                            [--fresh-table] [--rows 2000] [--threads 1]

Each case resumes a copy of the checkpoint (the run's generator state, so the sideways directions are
reproducible) with ``relocate_leaves`` and the case's settings, relocates once (``Trainer.relocate_leaves``:
with the checkpoint's nearest-node table, or a fresh one with ``--fresh-table`` or when a trapping rank is
given), and evaluates the same seeded sample of rows as the run's periodic evaluations. Nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

import torch  # noqa: E402

from embed.cli import load_representations  # noqa: E402
from embed.train import Trainer  # noqa: E402
from embed.wordnet import noun_closure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--placements", nargs="+", default=["2,11"], metavar="DELTA,SPREAD")
    parser.add_argument("--rank", nargs="+", type=int, default=[None], metavar="K",
                        help="trapping ranks (default: the whole table)")
    parser.add_argument("--fresh-table", action="store_true", help="recompute the nearest-node table first")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_representations()
    graph = noun_closure()
    print("| delta, spread | rank | moved | MAP before / after | mean rank before / after |")
    print("|---|---|---|---|---|")
    before = None
    for placement in args.placements:
        delta, spread = (float(v) for v in placement.split(","))
        for rank in args.rank:
            changes = dict(relocate_leaves=True, relocate_distance=delta, relocate_spread=spread, relocate_rank=rank)
            trainer = Trainer.resume(args.checkpoint, graph, progress=False, changes=changes)
            if before is None:
                before = trainer.evaluate(rows=args.rows, distortion=False)
            moved = trainer.relocate_leaves(fresh_table=args.fresh_table or rank is not None)
            after = trainer.evaluate(rows=args.rows, distortion=False)
            print(f"| {delta:g}, {spread:g} | {rank or 'table'} | {moved} | {before['map']:.4f} / {after['map']:.4f} | "
                  f"{before['mean_rank']:.3f} / {after['mean_rank']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
