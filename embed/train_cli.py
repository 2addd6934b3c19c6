"""The command line of ``hyperbolic embed GRAPH --method train|hmds``: its options, and the run they describe.

:func:`add_arguments` adds the options to a parser (the ``embed`` subcommand of :mod:`embed.cli` adds them
next to its own); :func:`run_from_args` loads the graph, runs :class:`embed.train.Trainer` or
:func:`embed.hmds.hmds_graph`, writes the embedding and prints the summary. ``--stage`` is parsed by
:func:`parse_stage`, which ``hyperbolic bench wordnet`` shares.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from .checkpoint import CheckpointError
from .graphs import Graph
from .losses import DISTORTION_KINDS
from .train import (
    DTYPES,
    OPTIMIZERS,
    NonFiniteTrainingError,
    TrainConfig,
    Trainer,
    evaluate_embedding,
    is_hyperbolic,
    json_default,
    make_manifold,
    warm_start,
)

__all__ = ["load_graph", "add_arguments", "run_from_args", "add_stage_argument", "parse_stage"]


def load_graph(spec: str | None, *, directed: bool | None = None, wordnet_dir: str | None = None) -> Graph:
    """A graph from an edge-list path, or a dataset name of :mod:`embed.wordnet` (``mammals`` — also for
    None —, ``noun_closure``, ...). Files are read as directed when ``directed`` is True, or when it is None and
    the file is a ``.csv`` (the closure format ``id1,id2,weight``, descendant first)."""
    from .wordnet import DATASETS, load_dataset

    if spec is None:
        spec = "mammals"
    path = Path(spec)
    if not path.exists() and spec in DATASETS:
        return load_dataset(spec, wordnet_dir=wordnet_dir)
    if not path.exists():
        raise FileNotFoundError(f"{spec!r} is neither an edge-list file nor a dataset ({', '.join(DATASETS)})")
    from .edgelist import read_edgelist

    if directed is None:
        directed = path.suffix.lower() == ".csv"
    return read_edgelist(path, directed=directed)


class _SkipTaken:
    """Adds options to an argument group unless the parser already has one of their option strings, so the
    options can join a subcommand that defines some of them itself (``--dim``, ``--seed``, ``--json``)."""

    def __init__(self, parser: argparse.ArgumentParser, title: str):
        self.parser = parser
        self.group = parser.add_argument_group(title)

    def add_argument(self, *names, **options):
        if any(name in self.parser._option_string_actions for name in names if name.startswith("-")):
            return None
        return self.group.add_argument(*names, **options)


def add_arguments(parser: argparse.ArgumentParser, *, graph: bool = True, method: bool = True) -> None:
    """Add the options of ``hyperbolic embed GRAPH --method train|hmds`` to ``parser``.

    ``graph=False`` / ``method=False`` leave out the positional ``GRAPH`` and ``--method`` when the caller's
    subcommand defines them itself (``args.graph`` may then be None: the built-in mammals; ``args.method``
    must be ``"train"`` or ``"hmds"`` when :func:`run_from_args` is called). Options the parser already has
    (e.g. ``--dim``, ``--seed``, ``--json``, ``--directed``) are left to the caller's definition;
    ``--out`` is accepted in place of ``--output``.
    """
    if graph:
        parser.add_argument("graph", metavar="GRAPH",
                            help="edge-list file (.csv closures id1,id2,weight are directed), or a dataset name "
                                 "(mammals, noun_closure, ...)")
    if method:
        parser.add_argument("--method", choices=["train", "hmds"], default="train",
                            help="optimisation (train, default) or h-MDS")
    common = _SkipTaken(parser, "output and representation (--method train|hmds)")
    common.add_argument("-o", "--output", metavar="FILE", help="embedding file to write (default: none)")
    common.add_argument("--manifold", default=None, metavar="LABEL",
                        help="registered representation (poincare, lorentz, halfspace, ...; euclidean for the "
                             "baseline). Default: poincare for train, lorentz for hmds")
    common.add_argument("--dim", type=int, default=None, help="dimension (default 5 for train, 2 for hmds)")
    common.add_argument("--directed", action=argparse.BooleanOptionalAction, default=None,
                        help="read the edge list as directed (default: yes for .csv)")
    common.add_argument("--wordnet-dir", default=None, help="WordNet 3.0 database folder for dataset names")
    common.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    common.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    common.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    common.add_argument("--scale", type=float, default=1.0,
                        help="distance scale: h-MDS scale, or the distortion loss's target factor (default 1)")

    d = TrainConfig()
    t = _SkipTaken(parser, "training (--method train)")
    t.add_argument("--loss", choices=["ranking", "distortion"], default=d.loss, help="objective (default ranking)")
    t.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs, burn-in included (default {d.epochs})")
    t.add_argument("--batch-size", type=int, default=d.batch_size, help=f"pairs per step (default {d.batch_size})")
    t.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    t.add_argument("--lr-final-factor", type=float, default=d.lr_final_factor,
                   help="linear decay to lr * this at the last epoch (default 1: constant)")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS), default=d.optimizer, help="geoopt's Riemannian SGD or Adam, or row-sgd (SparseRiemannianSGD's update on the batch's rows, faster)")
    t.add_argument("--sparse", action="store_true", help="sparse row gradients and sparse optimisers")
    t.add_argument("--negatives", type=int, default=d.negatives, help=f"negatives per pair (default {d.negatives})")
    t.add_argument("--burnin-epochs", type=int, default=d.burnin_epochs, help=f"default {d.burnin_epochs}")
    t.add_argument("--burnin-lr-factor", type=float, default=d.burnin_lr_factor, help=f"default {d.burnin_lr_factor}")
    t.add_argument("--burnin-alpha", type=float, default=d.burnin_alpha,
                   help=f"burn-in negatives ~ count^alpha (default {d.burnin_alpha})")
    t.add_argument("--burnin-negatives", type=int, default=None, help="burn-in negatives (default --negatives)")
    t.add_argument("--hard-negatives", type=int, default=d.hard_negatives,
                   help="after burn-in, this many of the negatives come from u's nearest acceptable nodes "
                        f"(default {d.hard_negatives}: uniform only; may be switched on with --resume)")
    t.add_argument("--hard-candidates", type=int, default=d.hard_candidates,
                   help=f"nearest candidates kept per node for hard negatives (default {d.hard_candidates})")
    t.add_argument("--hard-refresh", type=int, default=d.hard_refresh,
                   help=f"epochs between recomputations of the hard-negative table (default {d.hard_refresh})")
    t.add_argument("--hard-importance", action=argparse.BooleanOptionalAction, default=d.hard_importance,
                   help="weight hard negatives by their inclusion probability (default yes)")
    t.add_argument("--relocate-leaves", action=argparse.BooleanOptionalAction, default=d.relocate_leaves,
                   help="move leaves trapped far from their parent out beyond it at each refresh of the "
                        "nearest-node table (default no; may be switched on with --resume)")
    t.add_argument("--relocate-distance", type=float, default=d.relocate_distance,
                   help=f"a relocated leaf goes this far out along the ray through its parent ... (default "
                        f"{d.relocate_distance})")
    t.add_argument("--relocate-spread", type=float, default=d.relocate_spread,
                   help=f"... then this far sideways in a random direction (default {d.relocate_spread})")
    t.add_argument("--relocate-from", type=int, default=d.relocate_from,
                   help="first epoch of leaf relocation (default 0: after burn-in)")
    t.add_argument("--relocate-rank", type=int, default=None,
                   help="relocate a leaf whose parent lies beyond its RANK-th nearest acceptable node "
                        "(default: --hard-candidates)")
    add_stage_argument(t)
    t.add_argument("--max-step", type=float, default=d.max_step,
                   help=f"largest Riemannian step per row, 0 for none (default {d.max_step})")
    t.add_argument("--init-scale", type=float, default=d.init_scale, help=f"default {d.init_scale}")
    t.add_argument("--distortion", choices=list(DISTORTION_KINDS), default=d.distortion, help="distortion penalty")
    t.add_argument("--dtype", choices=list(DTYPES), default=d.dtype, help="float type (default float64)")
    t.add_argument("--device", default=d.device, help="torch device (default cpu)")
    t.add_argument("--eval-every", type=int, default=d.eval_every, help=f"epochs between evaluations (default {d.eval_every})")
    t.add_argument("--eval-rows", type=int, default=None, help="evaluate a random sample of rows during training")
    t.add_argument("--final-eval-rows", type=int, default=None,
                   help="rows of the final evaluation (default: all; a sample for quick comparisons)")
    t.add_argument("--eval-distortion", action=argparse.BooleanOptionalAction, default=d.eval_distortion,
                   help="periodic evaluations also compute the distortion (edge-MAP graphs; default yes)")
    t.add_argument("--checkpoint", metavar="FILE", help="checkpoint file (written atomically)")
    t.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="epochs between checkpoints")
    t.add_argument("--checkpoint-seconds", type=float, default=None, help="also checkpoint every this many seconds")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint (settings come from it)")
    t.add_argument("--metrics", metavar="FILE", help="JSON-lines metrics file (appended)")
    t.add_argument("--target-map", type=float, default=None, help="record when this MAP is first reached")
    t.add_argument("--stop-at-target", action="store_true", help="stop when --target-map is reached")
    t.add_argument("--warm-start", metavar="FILE", help="initial points from an embedding file (any representation)")
    t.add_argument("--max-seconds", type=float, default=None,
                   help="stop after this many wall seconds with a checkpoint (resume later)")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when standard error is a terminal)")

    h = _SkipTaken(parser, "h-MDS (--method hmds)")
    h.add_argument("--hmds-method", choices=list(_HMDS_METHODS), default="simple", help="simple or exact-centring")
    h.add_argument("--selection", choices=["magnitude", "positive"], default="magnitude",
                   help="eigenpairs by magnitude (published) or largest positive")
    h.add_argument("--hmds-precision", type=int, default=None, metavar="BITS",
                   help="mpmath bits for h-MDS (default: float64)")
    h.add_argument("--eigen-solver", choices=["auto", "dense", "arpack"], default="auto")


_HMDS_METHODS = ("simple", "exact-centring")


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        loss=args.loss, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        lr_final_factor=args.lr_final_factor, optimizer=args.optimizer, sparse=args.sparse,
        negatives=args.negatives, burnin_epochs=args.burnin_epochs, burnin_lr_factor=args.burnin_lr_factor,
        burnin_alpha=args.burnin_alpha, burnin_negatives=args.burnin_negatives,
        hard_negatives=args.hard_negatives, hard_candidates=args.hard_candidates, hard_refresh=args.hard_refresh,
        hard_importance=args.hard_importance, relocate_leaves=args.relocate_leaves,
        relocate_distance=args.relocate_distance, relocate_spread=args.relocate_spread,
        relocate_from=args.relocate_from, relocate_rank=args.relocate_rank, stages=tuple(args.stages or ()),
        max_step=args.max_step or None, init_scale=args.init_scale, distortion=args.distortion,
        distortion_scale=args.scale, seed=args.seed, dtype=args.dtype, device=args.device,
        eval_every=args.eval_every, eval_rows=args.eval_rows, final_eval_rows=args.final_eval_rows,
        eval_distortion=args.eval_distortion, checkpoint_every=args.checkpoint_every,
        checkpoint_seconds=args.checkpoint_seconds, target_map=args.target_map, stop_at_target=args.stop_at_target,
    )


def _print_summary(args, summary: dict) -> None:
    if args.json:
        print(json.dumps(summary, default=json_default))
        return
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.6g}"
        print(f"{key}: {value}")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hyperbolic embed`` from parsed arguments; returns the exit status: 2 for bad input (one
    ``hyperbolic embed: error: ...`` line), 1 when training stopped on a non-finite value, 130 when
    interrupted."""
    args.output = getattr(args, "output", None) or getattr(args, "out", None)
    if args.method not in ("train", "hmds"):
        raise ValueError(f"run_from_args handles --method train and hmds, not {args.method!r}")
    if args.threads is not None:
        if args.threads < 1:
            print("hyperbolic embed: error: --threads must be at least 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    try:
        graph = load_graph(args.graph, directed=args.directed, wordnet_dir=args.wordnet_dir)
        if args.method == "hmds":
            return _run_hmds(args, graph)
        return _run_train(args, graph)
    except (ValueError, OSError, CheckpointError) as error:
        print(f"hyperbolic embed: error: {error}", file=sys.stderr)
        return 2
    except NonFiniteTrainingError as error:
        print(f"hyperbolic embed: stopped: {error}", file=sys.stderr)
        return 1


def _run_hmds(args, graph: Graph) -> int:
    from hyperbolic.io import save_embedding

    from .hmds import hmds_graph

    label = args.manifold or "lorentz"
    dim = args.dim or 2
    manifold = make_manifold(label, dim)
    if not is_hyperbolic(manifold):
        raise ValueError("h-MDS produces hyperbolic points; choose a hyperbolic --manifold")
    started, wall = time.process_time(), time.perf_counter()
    model = hmds_graph(graph, dim, scale=args.scale, method=args.hmds_method, selection=args.selection,
                       precision=args.hmds_precision, eigen_solver=args.eigen_solver, random_state=args.seed)
    points = model.to_manifold(manifold)
    metrics = evaluate_embedding(points, manifold, graph, loss="distortion", scale=args.scale)
    summary = {"method": "hmds", "graph": graph.source, "manifold": label, "dim": dim, "scale": args.scale,
               "n_positive": model.n_positive_, **metrics,
               "cpu_seconds": time.process_time() - started, "wall_seconds": time.perf_counter() - wall}
    if args.output:
        save_embedding(args.output, points, manifold, graph.names,
                       config={"method": "hmds", "scale": args.scale, "hmds_method": args.hmds_method,
                               "selection": args.selection, "precision": args.hmds_precision,
                               "n_positive": model.n_positive_})
        summary["output"] = args.output
    _print_summary(args, summary)
    return 0


def _run_train(args, graph: Graph) -> int:
    if args.resume:
        if not args.checkpoint:
            raise ValueError("--resume needs --checkpoint FILE")
        changes = {name: getattr(args, name) for name in _RESUME_OPTIONS if _given(args, name)}
        trainer = Trainer.resume(args.checkpoint, graph, metrics=args.metrics, progress=args.progress,
                                 changes=changes)
    else:
        config = _config_from_args(args)
        manifold = make_manifold(args.manifold or "poincare", args.dim or 5)
        init = None
        if args.warm_start:
            init = warm_start(args.warm_start, graph, manifold, config.torch_dtype, config.device)
        trainer = Trainer(graph, manifold, config, init=init, checkpoint=args.checkpoint, metrics=args.metrics,
                          progress=args.progress)
    result = trainer.fit(max_seconds=args.max_seconds)
    summary = {"method": "train", "graph": graph.source, "manifold": trainer.manifold.name,
               "dim": trainer.manifold.dim, "epoch": result.epoch, "stopped": result.stopped,
               **({k: v for k, v in result.history[-1].items() if k not in ("event",)} if result.history else {}),
               "cpu_seconds": result.cpu_seconds, "wall_seconds": result.wall_seconds,
               "eval_cpu_seconds": result.eval_cpu_seconds, "target": result.target}
    if args.output and result.stopped in ("completed", "target"):
        trainer.save_embedding(args.output)
        summary["output"] = args.output
    if result.stopped in ("interrupted", "limit"):
        where = f"epoch {result.epoch} + {result.step_in_epoch} steps"
        hint = (f"; resume with --resume --checkpoint {args.checkpoint}" if args.checkpoint
                else " (no --checkpoint given: nothing saved)")
        print(f"hyperbolic embed: stopped ({result.stopped}) at {where}{hint}", file=sys.stderr)
    _print_summary(args, summary)
    return 130 if result.stopped == "interrupted" else 0


# Options that --resume applies when given (every other setting comes from the checkpoint).
_RESUME_OPTIONS = ("epochs", "hard_negatives", "hard_candidates", "hard_refresh", "hard_importance",
                   "relocate_leaves", "relocate_distance", "relocate_spread", "relocate_from", "relocate_rank",
                   "stages")


def _given(args, name: str) -> bool:
    """Whether an option differs from its default (argparse keeps no record of what was typed)."""
    if name == "stages":
        return bool(args.stages)
    return getattr(args, name) != getattr(TrainConfig(), name)


def add_stage_argument(parser) -> None:
    """The ``--stage`` option (``TrainConfig.stages``), shared by ``hyperbolic embed`` and ``bench wordnet``."""
    parser.add_argument("--stage", dest="stages", action="append", type=parse_stage, default=None,
                        metavar="EPOCH:FIELD=VALUE[,FIELD=VALUE...]",
                        help="from EPOCH on, train with these settings (TrainConfig fields, e.g. "
                             "60:hard_negatives=10,max_step=1.0; repeatable, epochs increasing)")


def parse_stage(text: str) -> tuple[int, dict]:
    """``"EPOCH:FIELD=VALUE[,FIELD=VALUE...]"`` -> ``(EPOCH, {FIELD: VALUE})`` (an entry of
    ``TrainConfig.stages``). Values: ``true``/``false``, ``none``, integers, floats, or text; dashes in
    field names read as underscores. Raises ``argparse.ArgumentTypeError`` naming the malformed part."""
    epoch, colon, rest = text.partition(":")
    try:
        at = int(epoch)
    except ValueError:
        at = None
    if not colon or at is None or not rest:
        raise argparse.ArgumentTypeError(f"stage {text!r}: expected EPOCH:FIELD=VALUE[,FIELD=VALUE...]")
    changes = {}
    for item in rest.split(","):
        name, equals, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not equals or not name:
            raise argparse.ArgumentTypeError(f"stage {text!r}: {item!r} is not FIELD=VALUE")
        if name in changes:
            raise argparse.ArgumentTypeError(f"stage {text!r}: {name} is given twice")
        changes[name] = _parse_value(value.strip())
    return at, changes


def _parse_value(value: str):
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
