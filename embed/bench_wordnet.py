"""The WordNet reconstruction benchmark (Nickel & Kiela 2017), as a library function.

For each dataset (``mammals``: the built-in closure, 1,180 nodes / 6,540 pairs; ``nouns``: the full noun
closure, 82,115 / 743,241, built from WordNet 3.0), representation and dimension, train with the recipe
below, evaluate mean rank and MAP on the closure (every node with an ancestor is a query against all
nodes; ``embed.metrics`` semantics), and report them next to the published figures, with the time at
which a target MAP was first reached. The Euclidean baseline (``euclidean``, distance ``|u - v|``) runs
through the same code with the same recipe and budget.

Recipe (``RECIPES``): the published loss, 50 negatives, burn-in of 20 epochs at 1/100 of the learning rate
with negatives drawn by count^0.75, float64, initial points in ``U(-1e-4, 1e-4)``; batches of 1,024 pairs
instead of 10 (vectorised epochs), learning rate 50 (nouns: 200) with every row's Riemannian step clipped to
0.1. The loss is a batch mean, so what matters is ``lr / batch_size``: nouns at batch 4,096 and lr 800 (for a
GPU) progress like batch 1,024 and lr 200 per epoch (benchmarks/RESULTS.md, issue 6).

The recipe alone stalls on the nouns at a mean rank near 11.6: leaves trapped near the boundary in another
subtree's direction (``TrainConfig.relocate_leaves``). ``--stage EPOCH:FIELD=VALUE,...``
(``TrainConfig.stages``) switches settings on during the run; the command that meets the published noun
figures is in benchmarks/RESULTS.md, issue 6.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch

from .train import NonFiniteTrainingError, TrainConfig, Trainer, make_manifold
from .train_cli import add_stage_argument

__all__ = ["PUBLISHED", "RECIPES", "DATASETS", "recipe", "load", "run_one", "run", "format_table",
           "add_arguments", "run_from_args"]

#: Published reconstruction figures (mean rank, MAP): Nickel & Kiela 2017, Table 1 (nouns) and the
#: Figure 2 caption (mammals, Poincaré 5-D).
PUBLISHED: dict[tuple[str, str, int], tuple[float, float]] = {
    ("mammals", "poincare", 5): (1.26, 0.927),
    **{("nouns", "poincare", d): v for d, v in zip(
        (5, 10, 20, 50, 100, 200),
        ((4.9, 0.823), (4.02, 0.851), (3.84, 0.855), (3.98, 0.86), (3.9, 0.857), (3.83, 0.87)))},
    **{("nouns", "euclidean", d): v for d, v in zip(
        (5, 10, 20, 50, 100, 200),
        ((3542.3, 0.024), (2286.9, 0.059), (1685.9, 0.087), (1281.7, 0.140), (1187.3, 0.162), (1157.3, 0.168)))},
}

_COMMON = dict(batch_size=1024, lr=50.0, max_step=0.1, negatives=50, burnin_epochs=20, burnin_lr_factor=0.01,
               burnin_alpha=0.75, init_scale=1e-4, dtype="float64")

#: Training settings per dataset (overridable from the command line).
RECIPES: dict[str, dict] = {
    "mammals": dict(_COMMON, epochs=400, eval_every=10),
    # The published nouns script's burn-in: 5 negatives drawn by count^1.0 (cheap epochs). lr 200: of 50, 200
    # and 800 (5-epoch comparison in RESULTS.md) it lowers mean rank fastest; 800 raises MAP faster early on.
    "nouns": dict(_COMMON, lr=200.0, epochs=1500, burnin_epochs=10, burnin_negatives=5, burnin_alpha=1.0,
                  optimizer="row-sgd",
                  eval_every=10, eval_rows=2000, checkpoint_every=1, checkpoint_seconds=600.0),
}

#: Dataset names and what they are.
DATASETS = {
    "mammals": "built-in WordNet 3.0 mammal closure (1,180 nodes, 6,540 pairs)",
    "nouns": "WordNet 3.0 noun closure with instance hypernyms (82,115 nodes, 743,241 pairs)",
}

DEFAULT_DIMS = {"mammals": [5], "nouns": [10]}


def load(dataset: str, wordnet_dir: str | None = None):
    """The graph of a benchmark dataset."""
    from .wordnet import load_mammals, noun_closure

    if dataset == "mammals":
        return load_mammals()
    if dataset == "nouns":
        return noun_closure("full", wordnet_dir=wordnet_dir)
    raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")


def recipe(dataset: str, **overrides) -> TrainConfig:
    """The :class:`TrainConfig` of ``dataset``'s recipe, with ``overrides`` (None values ignored)."""
    if dataset not in RECIPES:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    options = dict(RECIPES[dataset])
    options.update({key: value for key, value in overrides.items() if value is not None})
    return TrainConfig(**options)


def run_one(dataset: str, manifold: str, dim: int, *, config: TrainConfig | None = None, graph=None,
            checkpoint: str | Path | None = None, resume: bool = False, metrics: str | Path | None = None,
            max_seconds: float | None = None, progress: bool | None = None, changes: dict | None = None) -> dict:
    """Train and evaluate one (dataset, representation, dimension); returns the result row.

    A resumed run takes its settings from the checkpoint, with ``config.epochs`` and ``changes``
    (``TrainConfig`` fields, e.g. the options given on the command line; see :meth:`Trainer.resume`).

    The row holds ``dataset``, ``manifold``, ``dim``, ``epoch``, ``cpu_seconds`` (process CPU time of
    training and evaluation, resumed segments included), ``wall_seconds``, ``mean_rank``, ``map`` (the last
    evaluation: all rows at the end of the run), the published figures where they exist, and
    ``target_*``: when ``target_map`` was first reached (None if not).
    """
    graph = graph if graph is not None else load(dataset)
    config = config or recipe(dataset)
    if config.target_map is None and (dataset, "poincare", dim) in PUBLISHED:
        # every representation races to the same published hyperbolic figure
        config = TrainConfig(**{**asdict(config), "target_map": PUBLISHED[dataset, "poincare", dim][1]})
    if resume and checkpoint is not None and Path(checkpoint).exists():
        trainer = Trainer.resume(checkpoint, graph, metrics=metrics, progress=progress, epochs=config.epochs,
                                 changes=changes)
        config = trainer.config
    else:
        trainer = Trainer(graph, make_manifold(manifold, dim), config, checkpoint=checkpoint, metrics=metrics,
                          progress=progress)
    result = trainer.fit(max_seconds=max_seconds)
    last = result.history[-1] if result.history else {}
    published = PUBLISHED.get((dataset, manifold, dim))
    target = result.target or {}
    return {
        "dataset": dataset,
        "manifold": manifold,
        "dim": dim,
        "epoch": result.epoch,
        "cpu_seconds": result.cpu_seconds,
        "wall_seconds": result.wall_seconds,
        "mean_rank": last.get("mean_rank"),
        "map": last.get("map"),
        "rows": last.get("rows"),
        "sampled": last.get("sampled"),
        "eval_cpu_seconds": result.eval_cpu_seconds,
        "train_cpu_seconds": result.cpu_seconds - result.eval_cpu_seconds,
        "target_map": config.target_map,
        "target_epoch": target.get("epoch"),
        "target_cpu_seconds": target.get("cpu_seconds"),
        "target_wall_seconds": target.get("wall_seconds"),
        "target_train_cpu_seconds": target.get("train_cpu_seconds"),
        "target_sampled": target.get("sampled"),
        "published_mean_rank": published[0] if published else None,
        "published_map": published[1] if published else None,
        "stopped": result.stopped,
        "nodes": graph.num_nodes,
        "pairs": graph.num_edges,
        "threads": torch.get_num_threads(),
        "dtype": config.dtype,
        "config": asdict(config),
    }


def run(datasets=("mammals",), manifolds=("poincare", "lorentz", "euclidean"), dims=None, *,
        overrides: dict | None = None, checkpoint_dir: str | Path | None = None, resume: bool = False,
        metrics_dir: str | Path | None = None, max_seconds: float | None = None, progress: bool | None = None,
        wordnet_dir: str | None = None) -> Iterator[dict]:
    """Run the suite; yields one row (:func:`run_one`) per dataset, representation and dimension.

    ``dims``: dimensions for every dataset (default: the published one, 5 for mammals, 10 for nouns).
    ``overrides`` (None values ignored) change the recipe, and a resumed run's settings. Checkpoints and
    metrics files go to ``checkpoint_dir`` / ``metrics_dir`` as ``{dataset}-{manifold}-{dim}.ckpt`` /
    ``.jsonl``; with ``resume`` an existing checkpoint is continued.
    """
    for dataset in datasets:
        graph = load(dataset, wordnet_dir)
        for dim in dims or DEFAULT_DIMS[dataset]:
            for manifold in manifolds:
                stem = f"{dataset}-{manifold}-{dim}"
                yield run_one(
                    dataset, manifold, dim, config=recipe(dataset, **(overrides or {})), graph=graph,
                    checkpoint=None if checkpoint_dir is None else Path(checkpoint_dir) / f"{stem}.ckpt",
                    resume=resume,
                    metrics=None if metrics_dir is None else Path(metrics_dir) / f"{stem}.jsonl",
                    max_seconds=max_seconds, progress=progress,
                    changes={key: value for key, value in (overrides or {}).items() if value is not None},
                )


def _fmt(value, digits):
    return "—" if value is None else f"{value:.{digits}f}"


def format_table(rows: list[dict]) -> str:
    """A Markdown table of result rows next to the published figures; ``cost`` is CPU seconds relative to
    the first row of the same dataset and dimension."""
    lines = ["| dataset | manifold | dim | epochs | mean rank | MAP | published MR / MAP | target | reached at "
             "(epoch, CPU s, wall s) | CPU s | wall s | cost |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    first: dict[tuple, float] = {}
    for row in rows:
        key = (row["dataset"], row["dim"])
        first.setdefault(key, row["cpu_seconds"])
        published = (f"{row['published_mean_rank']} / {row['published_map']}"
                     if row["published_map"] is not None else "—")
        reached = (f"{row['target_epoch']}, {row['target_cpu_seconds']:.1f}, {row['target_wall_seconds']:.1f}"
                   if row["target_epoch"] is not None else "not reached")
        sampled = " (sampled rows)" if row.get("sampled") else ""
        lines.append(
            f"| {row['dataset']} | {row['manifold']} | {row['dim']} | {row['epoch']} | "
            f"{_fmt(row['mean_rank'], 3)}{sampled} | {_fmt(row['map'], 4)} | {published} | "
            f"{_fmt(row['target_map'], 3)} | {reached} | {row['cpu_seconds']:.1f} | {row['wall_seconds']:.1f} | "
            f"{row['cpu_seconds'] / first[key]:.2f}× |"
        )
    return "\n".join(lines)


# ============================================================================ command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hyperbolic bench wordnet`` to ``parser``."""
    parser.add_argument("--dataset", action="append", choices=list(DATASETS),
                        help="dataset (repeatable; default mammals)")
    parser.add_argument("--manifold", action="append", metavar="LABEL",
                        help="representation (repeatable; registry labels or euclidean; "
                             "default poincare, lorentz, euclidean)")
    parser.add_argument("--dim", action="append", type=int,
                        help="dimension (repeatable; default the published one: 5 mammals, 10 nouns)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per step (default: the recipe's)")
    parser.add_argument("--max-step", type=float, default=None, help="Riemannian step clip (default: the recipe's)")
    parser.add_argument("--burnin-epochs", type=int, default=None, help="burn-in epochs (default: the recipe's)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default=None, help="float type (default float64)")
    parser.add_argument("--device", default=None, help="torch device (default cpu)")
    parser.add_argument("--sparse", action=argparse.BooleanOptionalAction, default=None,
                        help="sparse gradients (default: the recipe's: nouns yes)")
    parser.add_argument("--eval-every", type=int, default=None, help="epochs between evaluations")
    parser.add_argument("--eval-rows", type=int, default=None,
                        help="rows sampled by periodic evaluations (the final one uses all)")
    parser.add_argument("--final-eval-rows", type=int, default=None,
                        help="rows of the final evaluation (default: all; a sample for quick recipe comparisons)")
    parser.add_argument("--optimizer", choices=["sgd", "adam", "row-sgd"], default=None,
                        help="optimizer (default: the recipe's: nouns row-sgd)")
    parser.add_argument("--negatives", type=int, default=None, help="negatives per pair (default: the recipe's)")
    parser.add_argument("--hard-negatives", type=int, default=None,
                        help="after burn-in, this many of the negatives come from u's nearest acceptable nodes "
                             "(default: the recipe's, 0; may be switched on with --resume)")
    parser.add_argument("--hard-candidates", type=int, default=None,
                        help="nearest candidates kept per node for hard negatives (default 32)")
    parser.add_argument("--hard-refresh", type=int, default=None,
                        help="epochs between recomputations of the hard-negative table (default 5)")
    parser.add_argument("--hard-importance", action=argparse.BooleanOptionalAction, default=None,
                        help="weight hard negatives by their inclusion probability (default yes)")
    parser.add_argument("--relocate-leaves", action=argparse.BooleanOptionalAction, default=None,
                        help="move trapped leaves out beyond their parent at each refresh of the nearest-node table "
                             "(default: the recipe's)")
    parser.add_argument("--relocate-distance", type=float, default=None,
                        help="a relocated leaf goes this far out along the ray through its parent (default 2)")
    parser.add_argument("--relocate-spread", type=float, default=None,
                        help="... then this far sideways (default 11)")
    parser.add_argument("--relocate-from", type=int, default=None,
                        help="first epoch of leaf relocation (default: after burn-in)")
    parser.add_argument("--relocate-rank", type=int, default=None,
                        help="relocate a leaf whose parent lies beyond its RANK-th nearest acceptable node "
                             "(default: all --hard-candidates)")
    add_stage_argument(parser)
    parser.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    parser.add_argument("--target-map", type=float, default=None,
                        help="record when this MAP is first reached (default: the published Poincaré MAP of the "
                             "dataset and dimension, for every representation)")
    parser.add_argument("--stop-at-target", action="store_true", help="stop each run at the target")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: the small mammals tensors run best on one, and "
                             "CPU seconds are the measure)")
    parser.add_argument("--checkpoint-dir", default=None, help="folder for resumable checkpoints")
    parser.add_argument("--resume", action="store_true", help="continue runs from --checkpoint-dir")
    parser.add_argument("--metrics-dir", default=None, help="folder for the JSON-lines metrics of each run")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop each run after this many wall seconds (checkpointed; resume later)")
    parser.add_argument("--wordnet-dir", default=None, help="WordNet 3.0 database folder (nouns)")
    parser.add_argument("--json", action="store_true", help="one JSON object per run instead of the table")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars (default: when standard error is a terminal)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hyperbolic bench wordnet`` from parsed arguments; returns the exit status: 2 for bad input (one
    ``hyperbolic bench wordnet: error: ...`` line), 1 when a run stopped on a non-finite value."""
    if args.threads < 1:
        print("hyperbolic bench wordnet: error: --threads must be at least 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    if args.resume and not args.checkpoint_dir:
        print("hyperbolic bench wordnet: error: --resume needs --checkpoint-dir", file=sys.stderr)
        return 2
    overrides = dict(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_step=args.max_step,
                     burnin_epochs=args.burnin_epochs, dtype=args.dtype, device=args.device, sparse=args.sparse,
                     eval_every=args.eval_every, eval_rows=args.eval_rows, final_eval_rows=args.final_eval_rows,
                     optimizer=args.optimizer, negatives=args.negatives, seed=args.seed,
                     hard_negatives=args.hard_negatives, hard_candidates=args.hard_candidates,
                     hard_refresh=args.hard_refresh, hard_importance=args.hard_importance,
                     relocate_leaves=args.relocate_leaves, relocate_distance=args.relocate_distance,
                     relocate_spread=args.relocate_spread, relocate_from=args.relocate_from,
                     relocate_rank=args.relocate_rank, stages=None if args.stages is None else tuple(args.stages),
                     target_map=args.target_map, stop_at_target=args.stop_at_target or None)
    from .cli import load_representations

    load_representations()
    rows = []
    started = time.perf_counter()
    try:
        for dataset in args.dataset or ["mammals"]:
            recipe(dataset, **overrides)  # bad settings fail before any training
        for row in run(args.dataset or ["mammals"], args.manifold or ["poincare", "lorentz", "euclidean"],
                       args.dim, overrides=overrides, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                       metrics_dir=args.metrics_dir, max_seconds=args.max_seconds, progress=args.progress,
                       wordnet_dir=args.wordnet_dir):
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
    except (ValueError, OSError) as error:
        print(f"hyperbolic bench wordnet: error: {error}", file=sys.stderr)
        return 2
    except NonFiniteTrainingError as error:
        print(f"hyperbolic bench wordnet: stopped: {error}", file=sys.stderr)
        return 1
    if not args.json:
        print(format_table(rows))
        print(f"\n({len(rows)} runs, {time.perf_counter() - started:.0f} s wall; CPU seconds are process CPU "
              f"time with {torch.get_num_threads()} torch threads, evaluations included)")
    return 0
