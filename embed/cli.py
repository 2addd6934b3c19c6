"""The ``hyperbolic`` command.

Subcommands:

* ``embed`` — embed a graph (an edge list, or with no argument the built-in WordNet mammal closure) with the
  combinatorial construction; writes the embedding file, its metrics and (optionally) a picture.
* ``eval`` — metrics of an embedding file against a graph (all rows unless ``--rows`` asks for a sample).
* ``export`` — ``.npz`` (exact: every stored number), ``.tsv`` (the storage, ``%.17g``) or word2vec text
  (float64 Poincaré-ball coordinates, lossy far out).
* ``plot`` — the Poincaré disk with geodesic edges, depth colours and the metrics in the title.
* ``precision`` — measured accuracy of every registered representation against the mpmath reference
  (near and far pairs at radii up to 1000), next to geoopt's models.

Human-readable output goes to standard output; ``--json`` prints one JSON object per line instead. Bad input
is answered with one ``hyperbolic COMMAND: error: ...`` line on standard error, exit status 2, and no output
file: every file is written atomically, and only after all the work succeeded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch
from tqdm import tqdm

from . import bench_wordnet, train_cli
from .train import DTYPES

__all__ = ["main", "build_parser"]

_MAX_RADIUS = 10_000.0


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
    dtypes = [DTYPES[name] for name in args.dtype]
    started = time.perf_counter()
    rows = precision.run(
        labels=labels,
        radii=args.radii,
        n_pairs=args.pairs,
        dtypes=dtypes,
        include_peers=not args.no_peers,
        seed=args.seed,
        progress=_progress(len(args.radii), "radii"),
        against=args.against,
    )
    if args.json:
        for row in rows:
            print(json.dumps(row.as_json()))
        return 0
    reference = ("the exact points (point rounding included)" if args.against == "exact"
                 else "the points as stored (the arithmetic of dist alone)")
    print(f"Relative error of dist against the mpmath distance of {reference}: median / max over "
          f"{args.pairs} pairs per cell (H^2, seed {args.seed}); 'beyond ceiling' = the representation "
          "refuses the points.\n")
    for kind, title in (("near", "Near pairs (d = 1; first point at radius r)"),
                        ("far", "Far pairs (both points at radius r, d ≈ 2r)")):
        print(f"## {title}\n")
        print(precision.format_table(rows, kind))
        print()
    print(f"({len(rows)} rows in {time.perf_counter() - started:.1f} s)")
    return 0


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


BUILTIN = "mammals"
DEFAULT_OUTDIR = "hyperbolic-out"


def _read_graph(spec: str | None, directed: bool):
    """``(graph, stem)``: an edge list, or the built-in mammal closure for None / ``"mammals"``."""
    from .edgelist import read_edgelist
    from .wordnet import load_mammals

    if spec is None or (spec == BUILTIN and not os.path.exists(spec)):
        return load_mammals(), "mammals"
    if not os.path.exists(spec):
        raise CliError(f"graph file {spec!r} does not exist (give an edge list, or '{BUILTIN}' for the "
                       "built-in WordNet mammal closure)")
    return read_edgelist(spec, directed=directed), os.path.splitext(os.path.basename(spec))[0]


def _split_closure(graph, closure_path: str | None, directed: bool):
    """``(graph to embed and rank edges of, closure or None)``.

    A transitively closed directed graph (such as the mammal closure) is embedded through its transitive
    reduction (the hypernym DAG), and the closure itself is kept for closure-MAP.
    """
    from .edgelist import read_edgelist
    from .graphs import is_transitively_closed, transitive_reduction

    closure = None
    if closure_path is not None:
        closure = read_edgelist(closure_path, directed=True)
    if graph.directed and is_transitively_closed(graph):
        reduced = transitive_reduction(graph)
        return reduced, closure if closure is not None else graph
    return graph, closure


def _align(closure, graph):
    """The closure re-indexed to the graph's node numbering (every closure node must be in the graph)."""
    if closure is None or closure.names == graph.names:
        return closure
    from .graphs import Graph

    missing = [name for name in closure.names if name not in graph.index]
    if missing:
        raise CliError(f"closure node {missing[0]!r} is not in the graph ({len(missing)} missing)")
    mapping = torch.tensor([graph.index[name] for name in closure.names])
    return Graph(graph.names, mapping[closure.edges], None, True, closure.source)


def _progress_rows(description: str):
    # evaluate() reports units of work (row-column pairs), not rows: the symmetric tiles shrink as it goes
    bar = tqdm(desc=description, unit="pairs", unit_scale=True, disable=not sys.stderr.isatty(), leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def _write_json(path, record: dict) -> None:
    from hyperbolic.io import atomic_write

    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, sort_keys=True, default=str)
            handle.write("\n")

    atomic_write(path, write)


def _metrics_path(out: str) -> str:
    root, _ = os.path.splitext(out)
    return root + ".metrics.json"


def _title(stem: str, record: dict) -> str:
    def fmt(key, digits):
        value = record.get(key)
        return "—" if value is None else f"{value:.{digits}f}"

    parts = [f"{stem}: edge-MAP {fmt('edge_map', 4)}"]
    if record.get("closure_map") is not None:
        parts.append(f"closure-MAP {fmt('closure_map', 3)}")
    parts.append(f"D_avg {fmt('d_avg', 4)}, D_wc {fmt('d_wc', 2)}")
    if record.get("tau") is not None:
        parts.append(f"tau {record['tau']:.3g}")
    if record.get("components"):
        parts.append(f"MCF x{record['components']}")
    return ", ".join(parts)


def _tree_depth(graph, roots: list[str]) -> torch.Tensor:
    from .metrics import graph_distances

    ids = [graph.index[r] for r in roots if r in graph.index] or [0]
    depth = graph_distances(graph, ids).min(0).values
    return torch.where(torch.isfinite(depth), depth, -1.0)


def _draw(picture, graph, points, manifold, roots, title, dim, root, edges=None, bfs_order="sorted") -> None:
    """Picture of a combinatorial embedding with the tree edges the construction placed (the graph's
    non-tree edges and a closure are evaluation targets, not drawn). In 2-D the same tree is redrawn at a
    display tau (see embed.plot); otherwise ``edges`` are the tree edges."""
    from .plot import display_layout, plot_embedding

    if dim == 2:
        points, manifold, tau, edges = display_layout(graph, root=root, bfs_order=bfs_order)
        title += f"\nlayout redrawn at display tau {tau:.3g} (same tree and slots); metrics of the embedding"
    plot_embedding(picture, points, manifold, edges=edges, depth=_tree_depth(graph, roots), title=title,
                   labels={graph.index[r]: r for r in roots if r in graph.index}, shrink=1.0 if dim == 2 else "auto")


def _command_embed(args: argparse.Namespace) -> int:
    if args.method in ("train", "hmds"):
        load_representations()  # --manifold and --warm-start files may name tiling models
        return train_cli.run_from_args(args)
    if args.dim is None:
        args.dim = 2
    from hyperbolic.io import save_embedding

    from .combinatorial import embed_graph
    from .metrics import evaluate

    if args.eps is not None and args.tau is not None:
        raise CliError("give --eps or --tau, not both")
    tau = args.tau
    if tau is not None and tau != "max":
        try:
            tau = float(tau)
        except ValueError:
            raise CliError(f"--tau must be a number or 'max', got {args.tau!r}") from None
    graph, stem = _read_graph(args.graph, args.directed)
    base, closure = _split_closure(graph, args.closure, args.directed)
    closure = _align(closure, base)
    out = args.out or os.path.join(args.outdir, f"{stem}.pt")
    picture = args.plot
    if picture is None and args.graph is None and not args.no_plot:
        picture = os.path.join(args.outdir, f"{stem}.png")
    if picture is not None:
        from .plot import pyplot

        pyplot()  # fail before any work if matplotlib is missing

    embedding = embed_graph(base, dim=args.dim, eps=args.eps, tau=tau, precision=args.precision,
                            root=args.root, method=args.codes, require_tree=args.require_tree,
                            bfs_order=args.bfs_order)
    record = {"graph": graph.source, "nodes": base.num_nodes, "edges": base.num_edges, "tau": embedding.tau,
              **{k: v for k, v in embedding.info.items() if k in (
                  "tau_rule", "eps", "dim", "precision", "components", "roots", "bfs_order", "depth", "max_degree",
                  "dropped_edges", "components_of_graph", "virtual_root", "radius_bound", "bits_bound",
                  "build_seconds")}}
    if not args.no_eval:
        metrics = evaluate(embedding.points, embedding.manifold, base, scale=embedding.tau, closure=closure,
                           rows=args.rows, seed=args.seed, progress=_progress_rows("evaluating"))
        record.update(metrics.as_json())
    config = {**embedding.config(), "graph": graph.source, "closure": bool(closure is not None)}

    save_embedding(out, embedding.points, embedding.manifold, embedding.names, config)
    _write_json(_metrics_path(out), record)
    if picture is not None:
        _draw(picture, base, embedding.points, embedding.manifold, embedding.info["roots"], _title(stem, record),
              args.dim, args.root, edges=embedding.tree_edges(), bfs_order=args.bfs_order)
    if args.json:
        print(json.dumps(record, default=str))
    else:
        joined = (f", {len(embedding.info['roots'])} trees ({embedding.info['components_of_graph']} connected "
                  "component(s)) joined under a virtual root" if embedding.info["virtual_root"] else "")
        print(f"embedded {graph.source}: {base.num_nodes} nodes, {base.num_edges} edges"
              f" ({embedding.info['dropped_edges']} non-tree edges dropped{joined}), tau {embedding.tau:.6g} "
              f"({embedding.info['tau_rule']}), {_representation(embedding)}, "
              f"build {embedding.info.get('build_seconds', 0):.2f} s")
        if not args.no_eval:
            print(metrics.summary())
        print(f"wrote {out}, {_metrics_path(out)}" + (f", {picture}" if picture else ""))
    return 0


def _representation(embedding) -> str:
    info = embedding.info
    if info.get("path") == "tiling":
        return f"L-tiling with {info['limbs']} integer limbs"
    return f"MCF components {info.get('components')}"


def _load(path: str):
    from hyperbolic.io import load_config, load_embedding

    if not os.path.exists(path):
        raise CliError(f"embedding file {path!r} does not exist")
    load_representations()  # a file may hold a model of a package not imported yet (tiling)
    names, points, manifold = load_embedding(path)
    return names, points, manifold, load_config(path)


def _stored_scale(config: dict, path: str) -> float:
    """The distance scale in an embedding file's config (1 when absent); a clear error unless positive and
    finite."""
    scale = config.get("scale", 1.0)
    try:
        value = float(scale)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise CliError(f"{path}: stored scale {scale!r} is not a positive finite number")
    return value


def _command_eval(args: argparse.Namespace) -> int:
    from .metrics import evaluate

    names, points, manifold, config = _load(args.embedding)
    graph, _ = _read_graph(args.graph, args.directed)
    base, closure = _split_closure(graph, args.closure, args.directed)
    closure = _align(closure, base)
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in base.names if name not in index]
    if missing:
        raise CliError(f"graph node {missing[0]!r} has no point in {args.embedding} ({len(missing)} missing)")
    rows = torch.tensor([index[name] for name in base.names])
    scale = args.scale if args.scale is not None else _stored_scale(config, args.embedding)
    metrics = evaluate(points[rows], manifold, base, scale=scale, closure=closure, rows=args.rows,
                       seed=args.seed, progress=_progress_rows("evaluating"))
    unused = len(names) - len(base.names)
    record = {"embedding": args.embedding, "graph": graph.source, "embedding_rows_not_in_graph": unused,
              **metrics.as_json()}
    if args.json:
        print(json.dumps(record, default=str))
    else:
        print(metrics.summary())
        if unused:
            print(f"{unused} of the {len(names)} embedding rows are not nodes of {graph.source} and were not "
                  "evaluated")
    return 0


def _command_export(args: argparse.Namespace) -> int:
    from hyperbolic.io import atomic_write, export_npz, export_tsv

    names, points, manifold, _ = _load(args.embedding)
    fmt = args.format or {".npz": "npz", ".tsv": "tsv", ".txt": "word2vec", ".w2v": "word2vec",
                          ".vec": "word2vec"}.get(os.path.splitext(args.out)[1].lower())
    if fmt is None:
        raise CliError(f"cannot tell the format of {args.out!r}; use --format npz|tsv|word2vec")
    if fmt == "npz":
        export_npz(args.out, points, manifold, names)
    elif fmt == "tsv":
        export_tsv(args.out, points, names)
    else:
        bad = next((n for n in names if any(c.isspace() for c in n)), None)
        if bad is not None:
            raise CliError(f"node name {bad!r} contains white space; word2vec text cannot hold it")
        with torch.no_grad():
            ball = manifold.to_poincare(points).to(torch.float64).numpy()

        def write(temporary):
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(f"{ball.shape[0]} {ball.shape[1]}\n")
                for name, row in zip(names, ball):
                    handle.write(name + " " + " ".join(f"{v:.17g}" for v in row) + "\n")

        atomic_write(args.out, write)
    print(f"wrote {args.out} ({fmt}, {len(names)} points)")
    return 0


def _command_plot(args: argparse.Namespace) -> int:
    from .plot import plot_embedding, pyplot

    pyplot()
    names, points, manifold, config = _load(args.embedding)
    metrics_file = _metrics_path(args.embedding)
    record = {}
    if os.path.exists(metrics_file):
        with open(metrics_file, encoding="utf-8") as handle:
            record = json.load(handle)
    record.setdefault("tau", config.get("tau"))
    edges = depth = None
    roots = config.get("roots") or []
    index = {name: i for i, name in enumerate(names)}
    if args.graph is not None:
        graph, _ = _read_graph(args.graph, args.directed)
        base, _ = _split_closure(graph, None, args.directed)
        missing = [name for name in base.names if name not in index]
        if missing:
            raise CliError(f"graph node {missing[0]!r} has no point in {args.embedding}")
        if config.get("method") == "combinatorial" and manifold.dim == 2 and not args.true_geometry:
            stem = os.path.splitext(os.path.basename(args.embedding))[0]
            single = roots[0] if len(roots) == 1 and not config.get("virtual_root") else None
            _draw(args.out, base, points, manifold, roots, _title(stem, record), 2, single,
                  bfs_order=config.get("bfs_order", "sorted"))
            print(f"wrote {args.out}")
            return 0
        mapping = torch.tensor([index[name] for name in base.names])
        edges = mapping[base.edges]
        depth = torch.full((len(names),), -1.0, dtype=torch.float64)
        depth[mapping] = _tree_depth(base, roots)
    else:
        with torch.no_grad():
            origin = manifold.origin(1, dtype=points.dtype)
            radius = manifold.dist(points, origin.expand_as(points))
        depth = (radius / _stored_scale(config, args.embedding)).round()
    stem = os.path.splitext(os.path.basename(args.embedding))[0]
    plot_embedding(args.out, points, manifold, edges=edges, depth=depth, title=_title(stem, record),
                   labels={index[r]: r for r in roots if r in index})
    print(f"wrote {args.out}")
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
                   help="radii from the origin, 0 < R <= 10000 (beyond every representation's ceiling; the mpmath "
                        "reference needs about 2.9 R bits) (default: 1 5 10 20 30 40 50 75 100 200 500 1000)")
    p.add_argument("--pairs", type=int, default=20, metavar="N", help="pairs per radius and kind (default 20)")
    p.add_argument("--manifold", action="append", metavar="NAME",
                   help="a registered manifold to measure (repeatable; default: all)")
    p.add_argument("--dtype", nargs="+", choices=sorted(DTYPES), default=["float64", "float32"],
                   help="float types to measure (default: both)")
    p.add_argument("--no-peers", action="store_true", help="leave out geoopt's PoincareBall and Lorentz")
    p.add_argument("--seed", type=int, default=0, help="seed of the pair draw (default 0)")
    p.add_argument("--against", choices=["exact", "stored"], default="exact",
                   help="reference distance: of the exact points (default; includes rounding them into the "
                        "representation) or of the points as stored (the arithmetic of dist alone)")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of tables")
    p.set_defaults(handler=_command_precision)

    p = commands.add_parser(
        "embed",
        help="embed a graph (default: the built-in WordNet mammals) and write embedding, metrics, picture",
        description="Combinatorial embedding of a graph's BFS tree, level by level in a representation with "
                    "enough precision. With no GRAPH: the built-in WordNet mammal closure, written with its "
                    f"metrics and a picture to ./{DEFAULT_OUTDIR}/.",
    )
    p.add_argument("graph", nargs="?", metavar="GRAPH",
                   help=f"edge list (u v [weight]; .csv/.tsv/whitespace); default: '{BUILTIN}' (built-in)")
    p.add_argument("--method", choices=["combinatorial", "train", "hmds"], default="combinatorial",
                   help="combinatorial construction (default), Riemannian optimisation (train) or h-MDS")
    p.add_argument("--dim", type=int, default=None,
                   help="dimension of hyperbolic space (default 2; 5 for --method train)")
    p.add_argument("--eps", type=float, default=None, help="distortion target; tau from the published formula "
                   "(default 1.0 unless --tau)")
    p.add_argument("--tau", default=None, metavar="TAU|max",
                   help="fixed scaling factor, or 'max' for the largest the representation can hold")
    p.add_argument("--precision", default="auto", metavar="P",
                   help="auto | mcfN | float64 | tiling | mpmath:BITS (default auto: MCF components from tau x "
                   "depth, the L-tiling model for 2-D trees beyond the MCF ceiling; tiling: 2-D only, any depth)")
    p.add_argument("--root", default=None, help="root node name (default: the hierarchy's source, or the node "
                   "of largest degree)")
    p.add_argument("--codes", choices=["codes", "spread"], default="codes",
                   help="child directions in more than 2 dimensions (default: simplex codes)")
    p.add_argument("--directed", action="store_true",
                   help="read u v as a directed edge u -> v (child -> parent, like WordNet closures)")
    p.add_argument("--closure", default=None, metavar="FILE", help="transitive closure for closure-MAP")
    p.add_argument("--require-tree", action="store_true", help="refuse graphs with cycles or extra edges")
    p.add_argument("--bfs-order", choices=("sorted", "input"), default="sorted",
                   help="BFS neighbour order: increasing node index (default) or the edge list's order")
    p.add_argument("--out", default=None, metavar="FILE",
                   help=f"embedding file (default ./{DEFAULT_OUTDIR}/<graph>.pt); metrics go beside it")
    p.add_argument("--outdir", default=DEFAULT_OUTDIR, help=f"default output folder ({DEFAULT_OUTDIR})")
    p.add_argument("--plot", default=None, metavar="FILE", help="also draw the embedding (.png/.svg)")
    p.add_argument("--no-plot", action="store_true", help="no picture for the built-in dataset")
    p.add_argument("--no-eval", action="store_true", help="skip the metrics")
    p.add_argument("--rows", type=int, default=None, help="evaluate a random sample of rows (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the row sample")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    train_cli.add_arguments(p, graph=False, method=False)
    p.set_defaults(handler=_command_embed)

    p = commands.add_parser("bench", help="benchmark suites (wordnet)")
    suites = p.add_subparsers(dest="suite", metavar="SUITE")
    suites.required = True
    p = suites.add_parser("wordnet", help="WordNet reconstruction: mean rank and MAP per representation",
                          description="Nickel & Kiela reconstruction on WordNet closures, per representation, "
                                      "next to the published figures and a Euclidean baseline.")
    bench_wordnet.add_arguments(p)
    p.set_defaults(handler=bench_wordnet.run_from_args)

    p = commands.add_parser("eval", help="metrics of an embedding file against a graph",
                            description="edge-MAP, mean rank, closure-MAP, distortion of EMBEDDING on GRAPH.")
    p.add_argument("embedding", metavar="EMBEDDING")
    p.add_argument("graph", metavar="GRAPH", help=f"edge list, or '{BUILTIN}' for the built-in closure")
    p.add_argument("--directed", action="store_true", help="read GRAPH as directed (child -> parent)")
    p.add_argument("--closure", default=None, metavar="FILE", help="transitive closure for closure-MAP")
    p.add_argument("--scale", type=float, default=None, help="distance scale (default: tau from the file)")
    p.add_argument("--rows", type=int, default=None, help="evaluate a random sample of rows (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the row sample")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(handler=_command_eval)

    p = commands.add_parser("export", help="export an embedding as .npz (exact), .tsv or word2vec text")
    p.add_argument("embedding", metavar="EMBEDDING")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--format", choices=["npz", "tsv", "word2vec"], default=None,
                   help="default from the suffix (.npz, .tsv, .txt/.vec/.w2v)")
    p.set_defaults(handler=_command_export)

    p = commands.add_parser("plot", help="draw an embedding in the Poincaré disk (needs matplotlib)")
    p.add_argument("embedding", metavar="EMBEDDING")
    p.add_argument("graph", nargs="?", metavar="GRAPH", help="edges to draw and depths to colour")
    p.add_argument("--directed", action="store_true", help="read GRAPH as directed (child -> parent)")
    p.add_argument("--out", required=True, metavar="FILE", help="picture (.png or .svg)")
    p.add_argument("--true-geometry", action="store_true",
                   help="draw the stored points (radii shrunk for display) instead of redrawing a combinatorial "
                        "embedding's tree at a display tau")
    p.set_defaults(handler=_command_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "radii", "unset") is None:
        from hyperbolic.precision import RADII

        args.radii = list(RADII)
    bad = next((r for r in getattr(args, "radii", None) or () if not 0 < r <= _MAX_RADIUS), None)
    if bad is not None:
        parser.error(f"--radii: {bad:g} is not a radius in (0, {_MAX_RADIUS:g}]")
    if getattr(args, "pairs", 1) < 1:
        parser.error("--pairs must be at least 1")
    if getattr(args, "rows", None) is not None and args.rows < 1:
        parser.error("--rows must be at least 1")
    from hyperbolic.io import EmbeddingFileError
    from hyperbolic.manifold import PrecisionError

    from .graphs import GraphError

    try:
        return args.handler(args)
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0
    except (CliError, GraphError, PrecisionError, EmbeddingFileError, OSError, ImportError,
            ValueError) as error:
        print(f"hyperbolic {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
