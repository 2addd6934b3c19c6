"""The ``hyperbolic`` command.

Subcommands:

* ``precision`` — measured accuracy of every registered representation against the mpmath reference
  (near and far pairs at radii up to 1000), next to geoopt's models.

Human-readable tables go to standard output; ``--json`` prints one JSON object per line instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from tqdm import tqdm

__all__ = ["main", "build_parser"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def load_representations() -> None:
    """Import every package that registers representations, so they all appear in tables and specs."""
    import hyperbolic  # noqa: F401  (float models)
    import tiling  # noqa: F401  (tiling models register on import)


def _progress(total: int, description: str):
    """A tqdm bar on a terminal, silent otherwise; returns a callable taking the number done."""
    bar = tqdm(total=total, desc=description, disable=not sys.stderr.isatty(), leave=False)

    def update(done: int) -> None:
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def _command_precision(args: argparse.Namespace) -> int:
    from hyperbolic import precision, registry

    load_representations()
    labels = args.manifold or None
    if labels:
        known = {entry.label for entry in registry.entries()}
        unknown = [label for label in labels if label not in known]
        if unknown:
            print(f"hyperbolic precision: unknown manifold {unknown[0]!r}; known: {', '.join(sorted(known))}",
                  file=sys.stderr)
            return 2
    dtypes = [_DTYPES[name] for name in args.dtype]
    started = time.perf_counter()
    rows = precision.run(
        labels=labels,
        radii=args.radii,
        n_pairs=args.pairs,
        dtypes=dtypes,
        include_peers=not args.no_peers,
        seed=args.seed,
        progress=_progress(len(args.radii), "radii"),
    )
    if args.json:
        for row in rows:
            print(json.dumps(row.as_json()))
        return 0
    print(f"Relative error of dist against the mpmath reference: median / max over {args.pairs} pairs "
          f"per cell (H^2, seed {args.seed}); 'beyond ceiling' = the representation refuses the points.\n")
    for kind, title in (("near", "Near pairs (d = 1; first point at radius r)"),
                        ("far", "Far pairs (both points at radius r, d ≈ 2r)")):
        print(f"## {title}\n")
        print(precision.format_table(rows, kind))
        print()
    print(f"({len(rows)} rows in {time.perf_counter() - started:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hyperbolic",
        description="Numerically safe hyperbolic embeddings: measure, embed, evaluate.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    p = commands.add_parser(
        "precision",
        help="accuracy of each representation's distance against the mpmath reference",
        description="Measure dist against mpmath for near pairs (one unit apart) and far pairs at each radius.",
    )
    p.add_argument("--radii", type=float, nargs="+", default=None, metavar="R",
                   help="radii from the origin (default: 1 5 10 20 30 40 50 75 100 200 500 1000)")
    p.add_argument("--pairs", type=int, default=20, metavar="N", help="pairs per radius and kind (default 20)")
    p.add_argument("--manifold", action="append", metavar="NAME",
                   help="a registered manifold to measure (repeatable; default: all)")
    p.add_argument("--dtype", nargs="+", choices=sorted(_DTYPES), default=["float64", "float32"],
                   help="float types to measure (default: both)")
    p.add_argument("--no-peers", action="store_true", help="leave out geoopt's PoincareBall and Lorentz")
    p.add_argument("--seed", type=int, default=0, help="seed of the pair draw (default 0)")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of tables")
    p.set_defaults(handler=_command_precision)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "radii", "unset") is None:
        from hyperbolic.precision import RADII

        args.radii = list(RADII)
    if getattr(args, "pairs", 1) < 1:
        parser.error("--pairs must be at least 1")
    try:
        return args.handler(args)
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
