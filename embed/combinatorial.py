r"""Combinatorial tree embedding (Sala, De Sa, Gu and Ré 2018) at any depth, without BigFloats.

Pipeline: graph -> BFS tree (non-tree edges dropped and counted; forests joined under a virtual root) ->
tau (from ``eps`` and the largest degree, a fixed value, or the largest the representation can hold) ->
placement level by level in a representation with enough precision -> validation of every level.

Precisions (``precision=``)
---------------------------
* ``"auto"``: the MCF half-space with ``m = ceil((R + 40) / 36.7)`` float64 components, ``R`` = tau times
  the largest root-path weight (the deepest node's radius bound). Beyond the float64 exponent range of
  the height (``R`` about 700) a 2-D tree goes to the L-tiling model (``"tiling"``) and an r-D tree is
  refused.
* ``"mcfN"``: the MCF half-space with ``N`` components; refused when ``N`` cannot hold ``R``.
* ``"float64"``: the plain float64 half-space; refused beyond its usable radius (about 22).
* ``"tiling"`` (2-D only): the L-tiling model (:mod:`embed.construction.tiled`): exact integer group
  elements with as many limbs as the radius bound needs, bounded float parts; no radius ceiling.
* ``"mpmath:BITS"``: the slow reference path (:mod:`embed.construction.reference`) at ``BITS`` bits, rounded
  into the MCF half-space at the end. Every level is checked as for the fast path, so too few bits raise
  instead of collapsing points onto the boundary.

The fast path (:mod:`embed.construction.fast`) carries every node's isometry as an exact-limb matrix, so
no float64 direction or position is ever rounded before the end; the horizontal coordinate comes out as
``m`` exact float components.
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from hyperbolic.manifold import PrecisionError

from .bfs import BFSTree, NotATreeError, bfs_tree
from .construction import fast, tiled
from .construction.plan import TreePlan, plan_tree
from .construction.reference import poincare_to_lorentz, reference_2d, reference_rd
from .construction.tau import LOG2_E, tau_for_radius, tau_from_eps
from .graphs import Graph, GraphError, connected_components

__all__ = [
    "CombinatorialEmbedding",
    "embed_graph",
    "parse_precision",
    "components_for_radius",
    "PrecisionError",
]

RADIUS_PER_COMPONENT = 36.7  # float64: ln(2^53)
RADIUS_MARGIN = 28.0  # near-pair error u^m e^R below ~1e-12 (precision.md section 5: r = 36.7 m - ln(1/err))
FLOAT64_CEILING = 700.0  # the height y ~ exp(-r) must stay a normal float64


def components_for_radius(radius: float) -> int:
    """MCF float64 components for points up to ``radius`` with near-pair distances good to ~1e-12."""
    return max(1, math.ceil((radius + RADIUS_MARGIN) / RADIUS_PER_COMPONENT))


def parse_precision(text: str) -> tuple[str, int | None]:
    """``"auto" | "mcfN" | "float64" | "tiling" | "mpmath:BITS"`` -> ``(kind, number or None)``."""
    text = str(text).strip().lower()
    if text in ("auto", "float64", "tiling"):
        return text, None
    match = re.fullmatch(r"mcf(\d+)", text)
    if match and int(match.group(1)) >= 1:
        return "mcf", int(match.group(1))
    match = re.fullmatch(r"mpmath:(\d+)", text)
    if match and int(match.group(1)) >= 16:
        return "mpmath", int(match.group(1))
    raise ValueError(f"unknown precision {text!r}: use auto, mcfN (N >= 1), float64, tiling or mpmath:BITS "
                     "(BITS >= 16)")


@dataclass
class CombinatorialEmbedding:
    """The result of :func:`embed_graph`.

    Attributes
    ----------
    points : torch.Tensor
        ``(n, storage_dim)`` points of ``manifold``, row ``i`` = node ``i`` of the input graph.
    manifold
        The representation (``HalfSpaceMCF`` or ``HalfSpace``).
    names : tuple of str
        Node names.
    tau : float
        Scaling factor: embedded distance = manifold distance / tau.
    info : dict
        Everything else worth saving: tau rule, eps, dimension, roots, depth, degrees, dropped edges,
        components, precision, bits, radius bound, timings.
    plan : TreePlan or None
        The tree that was embedded (with the virtual root, if any, as its last node); not saved.
    """

    points: torch.Tensor
    manifold: object
    names: tuple
    tau: float
    info: dict = field(default_factory=dict)
    plan: TreePlan | None = None

    def tree_edges(self) -> torch.Tensor:
        """``(E, 2)`` (child, parent) node pairs of the tree that was embedded (links to a virtual root
        left out): the edges the construction placed at distance tau."""
        if self.plan is None:
            raise ValueError("this embedding carries no tree plan")
        parent = self.plan.parent[: len(self.names)]
        child = torch.nonzero((parent >= 0) & (parent < len(self.names))).reshape(-1)
        return torch.stack([child, parent[child]], 1)

    def config(self) -> dict:
        """JSON-able run configuration for :func:`hyperbolic.io.save_embedding`."""
        return {"method": "combinatorial", "tau": self.tau, "scale": self.tau, **self.info}


def _make_tree(graph: Graph, root, require_tree: bool, order: str = "sorted") -> BFSTree:
    """BFS tree with every node's neighbours visited in ``order`` ("sorted": increasing index,
    deterministic whatever the edge order; "input": edge-list order, as networkx would).

    A directed hierarchy (child -> parent edges) is walked from parents to children. Automatic roots: for
    a directed hierarchy its sources; otherwise the node of largest degree (smallest index on ties), and
    in further components their smallest node. Several trees are joined under a virtual root.
    """
    count, _ = connected_components(graph)
    if root is None and not graph.directed:
        degree = graph.degrees()
        root = int(torch.nonzero(degree == degree.max())[0])
    single = count == 1 and (root is not None or not graph.directed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the forest is reported in the result instead
        tree = bfs_tree(graph, root, forest=None if single else "virtual", neighbour_order=order,
                        virtual_root_name="\x00<virtual root>")
    if tree.virtual_root is not None and tree.num_trees == 1:
        tree = bfs_tree(graph, int(tree.roots[0]), neighbour_order=order)
    if require_tree and tree.num_dropped_edges:
        # Let bfs_tree name the offending edge.
        bfs_tree(graph, root if root is not None else int(tree.roots[0]), forest="roots", require_tree=True,
                 neighbour_order=order)
    if require_tree and tree.num_trees > 1:
        first, other = (graph.names[int(r)] for r in tree.roots[:2])
        raise NotATreeError(
            f"graph {graph._label()} is not a tree: {count} connected components ({other!r} is not reached "
            f"from {first!r}); embed each component separately, or do not require a tree to join them under a "
            "virtual root"
        )
    return tree


def _mcf(dim: int, components: int):
    from hyperbolic import HalfSpaceMCF

    return HalfSpaceMCF(dim, components=components)


class _Validator:
    """Checks every level: finite storage, heights positive normal floats (half-space storage, ``heights``),
    parent distance = tau * w."""

    def __init__(self, plan: TreePlan, manifold, tau: float, storage: torch.Tensor, needed: int, radius: float,
                 names, rtol: float = 1e-9, heights: bool = True):
        self.plan, self.manifold, self.tau, self.storage = plan, manifold, tau, storage
        self.needed, self.radius, self.names, self.rtol = needed, radius, names, rtol
        self.heights = heights

    def fail(self, level: int, count: int, what: str, example: int):
        name = self.names[example] if example < len(self.names) else "<virtual root>"
        raise PrecisionError(
            f"combinatorial construction: level {level}: {count} node(s) {what} (e.g. {name!r}); tau = "
            f"{self.tau:.6g}, radius bound {self.radius:.1f} needs about {self.radius * LOG2_E:.0f} bits"
            + (f" = {self.needed} float64 components" if self.heights else "")
        )

    def __call__(self, level: int, nodes: torch.Tensor, rows: torch.Tensor) -> None:
        self.storage[nodes] = rows
        finite = torch.isfinite(rows).all(-1)
        height = rows[:, -1]
        inside = finite & (height >= torch.finfo(rows.dtype).tiny) if self.heights else finite
        if not bool(inside.all()):
            bad = nodes[~inside]
            self.fail(level, len(bad), "left the representation (non-finite or underflowed height)", int(bad[0]))
        if level == 0:
            return
        parents = self.plan.parent[nodes]
        d = self.manifold.dist(rows, self.storage[parents])
        target = self.tau * self.plan.weight[nodes]
        wrong = ~((d - target).abs() <= self.rtol * target)
        if bool(wrong.any()):
            bad = nodes[wrong]
            self.fail(level, len(bad), f"lie at the wrong distance from their parents (e.g. {float(d[wrong][0]):.6g} "
                      f"instead of {float(target[wrong][0]):.6g})", int(bad[0]))


def embed_graph(
    graph: Graph,
    *,
    dim: int = 2,
    eps: float | None = None,
    tau: float | None = None,
    precision: str = "auto",
    root: str | int | None = None,
    method: str = "codes",
    require_tree: bool = False,
    bfs_order: str = "sorted",
    progress: Callable[[int, int], None] | None = None,
) -> CombinatorialEmbedding:
    """Embed a graph with the combinatorial construction.

    Parameters
    ----------
    graph : Graph
        Any graph; its BFS tree is embedded (non-tree edges are dropped and counted in
        ``info["dropped_edges"]``), components are joined under a virtual root at the origin.
    dim : int
        Dimension of the hyperbolic space (2: Sarkar's construction; more: codes, see :mod:`embed.codes`).
    eps, tau : float or None
        Give at most one. ``eps``: distortion target (tau from the published formula); ``tau``: a fixed
        scaling factor; neither: eps = 1; ``tau="max"``: the largest tau the chosen representation holds.
    precision : str
        ``auto``, ``mcfN``, ``float64``, ``tiling`` (2-D only) or ``mpmath:BITS`` (see the module notes).
    root : str, int or None
        Root node (name or index); None: automatic (largest degree per component, or the source of a
        directed hierarchy).
    method : {"codes", "spread"}
        Directions in r-D.
    require_tree : bool
        Refuse graphs that are not trees (:class:`embed.bfs.NotATreeError`): cycles, repeated edges,
        several connected components.
    bfs_order : {"sorted", "input"}
        Neighbour order of the BFS: increasing node index (default), or the edge list's order (what a
        networkx BFS of the same file does). For a graph that is not a tree this picks which edges are
        dropped, which moves the distortion (ca-CSphd, root 54: D_avg 0.33 vs 0.29 at eps = 0.1).

    Raises
    ------
    PrecisionError
        The representation cannot hold the tree (the message gives the components or bits needed), or a
        level failed validation.
    GraphError
        Bad root, cycles with ``require_tree``, ...
    """
    started = time.perf_counter()
    if eps is not None and tau is not None:
        raise ValueError("give eps or tau, not both")
    if not isinstance(dim, int) or dim < 2:
        raise ValueError(f"dimension must be an integer >= 2, got {dim!r}")
    kind, number = parse_precision(precision)
    if kind == "tiling" and dim != 2:
        raise ValueError(f"precision 'tiling' is the L-tiling model of H^2: it needs dim = 2, got dim = {dim} "
                         "(use --precision auto for the r-D construction)")
    if kind == "tiling" and tau == "max":
        raise ValueError("tau='max' is not defined for precision 'tiling' (its integers grow without bound): "
                         "give eps or a fixed tau")
    if bfs_order not in ("sorted", "input"):
        raise ValueError(f"bfs_order must be 'sorted' or 'input', got {bfs_order!r}")
    tree = _make_tree(graph, root, require_tree, bfs_order)
    plan = plan_tree(tree, graph)
    if plan.max_depth == 0:
        raise GraphError(f"graph {graph.source or '<graph>'} has no edges to embed")

    if tau == "max":
        if kind in ("auto", "mcf"):
            m = number or math.floor(FLOAT64_CEILING / RADIUS_PER_COMPONENT)
            holdable = min(m * RADIUS_PER_COMPONENT - RADIUS_MARGIN, FLOAT64_CEILING)
        elif kind == "float64":
            from hyperbolic import HalfSpace

            holdable = HalfSpace(dim).contract(torch.float64).usable_radius
        else:
            holdable = number * math.log(2) - RADIUS_MARGIN
        tau_value, rule = tau_for_radius(holdable, plan.max_path_weight), "max"
    elif tau is not None:
        tau_value, rule = float(tau), "fixed"
        if not (tau_value > 0 and math.isfinite(tau_value)):
            raise ValueError(f"tau must be a positive number, got {tau}")
    else:
        eps = 1.0 if eps is None else float(eps)
        tau_value, rule = tau_from_eps(eps, plan.max_degree, plan.min_weight), "eps"
    min_angle = 2 * math.pi / max(plan.max_degree, 1)
    if dim > 2:
        from .codes import directions
        from .codes import min_angle as realised

        counts = torch.unique(plan.slots[plan.slots > 0]).tolist()
        angles = [realised(directions(int(K), dim, method)) for K in counts]
        min_angle = min(angles) if angles else math.pi
        if rule == "eps" and min_angle < 2 * math.pi / plan.max_degree - 1e-12:
            tau_value = tau_from_eps(eps, plan.max_degree, plan.min_weight, theta=min_angle)
            rule = "eps (realised minimum angle)"
    radius = tau_value * plan.max_path_weight
    if not math.isfinite(radius):
        raise PrecisionError(f"the radius bound tau {tau_value:.6g} x depth {plan.max_path_weight:g} overflows "
                             "float64; lower tau (--eps larger, or --tau)")
    needed = components_for_radius(radius)

    names = graph.names
    info = {
        "tau_rule": rule,
        "eps": eps,
        "dim": dim,
        "precision": precision,
        "roots": [tree.names[r] for r in tree.roots.tolist()],
        "virtual_root": tree.virtual_root is not None,
        "max_degree": plan.max_degree,
        "depth": plan.max_depth - (1 if tree.virtual_root is not None else 0),
        "bfs_order": bfs_order,
        "dropped_edges": tree.num_dropped_edges,
        "components_of_graph": tree.num_components,
        "radius_bound": radius,
        "bits_bound": radius * LOG2_E,
        "min_angle": min_angle,
        "directions": method if dim > 2 else "equal angles (2-D)",
    }

    if kind == "auto" and dim == 2 and radius > FLOAT64_CEILING:
        kind = "tiling"  # beyond the MCF half-space's exponent range: exact integers have no ceiling
    if kind in ("auto", "mcf"):
        m = number if kind == "mcf" else needed
        if radius > FLOAT64_CEILING:
            remedy = "use --precision tiling (2-D)" if dim == 2 else "the r-D construction has no tiling model"
            raise PrecisionError(
                f"the tree needs radius {radius:.1f} (tau {tau_value:.6g} x depth {plan.max_path_weight:g}), "
                f"beyond the float64 MCF half-space's ceiling {FLOAT64_CEILING:.0f} (height exponent range); "
                f"lower tau (--eps larger, or --tau), or {remedy}"
            )
        if m < needed:
            raise PrecisionError(
                f"precision mcf{m} cannot hold the tree: radius bound {radius:.1f} (tau {tau_value:.6g}) needs "
                f"{needed} float64 components (about {radius * LOG2_E:.0f} bits)"
            )
        points, manifold, built = _build_fast(plan, tau_value, dim, m, needed, radius, names, method)
        info.update(components=m, **built)
    elif kind == "float64":
        from hyperbolic import HalfSpace

        manifold = HalfSpace(dim)
        usable = manifold.contract(torch.float64).usable_radius
        if radius > usable:
            raise PrecisionError(
                f"precision float64 cannot hold the tree: radius bound {radius:.1f} exceeds the float64 "
                f"half-space's usable radius {usable:.1f}; use --precision auto (needs {needed} MCF components)"
            )
        full, mcf_manifold, built = _build_fast(plan, tau_value, dim, needed, needed, radius, names, method)
        points = torch.cat([mcf_manifold.horizontal(full).sum(-1), full[..., -1:]], -1)
        info.update(components=1, **built)
    elif kind == "mpmath":
        if radius > FLOAT64_CEILING:
            raise PrecisionError(
                f"radius bound {radius:.1f} is beyond the float64 MCF half-space's ceiling "
                f"{FLOAT64_CEILING:.0f}: the reference result could not be stored (a tiling representation "
                "would be needed)"
            )
        t0, c0 = time.perf_counter(), time.process_time()
        points, manifold = _reference(plan, tau_value, dim, number, method, needed, radius, names, progress)
        info.update(components=needed, bits=number, build_seconds=time.perf_counter() - t0,
                    build_cpu_seconds=time.process_time() - c0, path="mpmath")
    else:  # tiling
        points, manifold, built = _build_tiling(plan, tau_value, needed, radius, names)
        info.update(**built)

    if tree.virtual_root is not None:
        keep = torch.arange(plan.n) != tree.virtual_root
        points = points[keep]
    info["seconds"] = time.perf_counter() - started
    return CombinatorialEmbedding(points=points, manifold=manifold, names=names, tau=tau_value, info=info,
                                  plan=plan)


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 2**63 - 1


def _storage(plan, manifold, radius: float) -> torch.Tensor:
    """Zeroed float64 storage ``(n, storage_dim)``; :class:`PrecisionError` when it exceeds the memory."""
    size = plan.n * manifold.storage_dim * 8
    memory = _memory_bytes()
    if size > memory:
        raise PrecisionError(
            f"radius bound {radius:.6g} needs {manifold.storage_dim:.6g} floats per point in the {manifold.name} "
            f"model: {size / 2**30:.3g} GiB for {plan.n} points, more than the {memory / 2**30:.3g} GiB of "
            "memory; lower tau (--eps larger, or --tau) or the precision"
        )
    return torch.zeros(plan.n, manifold.storage_dim, dtype=torch.float64)


def _build_fast(plan, tau, dim, m, needed, radius, names, method):
    """The fast construction in the MCF half-space with ``m`` components, validated level by level:
    ``(points, manifold, facts for the info)``."""
    manifold = _mcf(dim, m)
    storage = _storage(plan, manifold, radius)
    validate = _Validator(plan, manifold, tau, storage, needed, radius, names)
    bits = fast.matrix_bits(radius, plan.max_depth, lorentz=dim > 2)
    t0, c0 = time.perf_counter(), time.process_time()
    if dim == 2:
        result = fast.build_sl2(plan, tau, bits, m, validate=validate)
    else:
        result = fast.build_lorentz(plan, tau, dim, bits, m, method=method, validate=validate)
    points = _finish_mcf(manifold, result.storage)
    return points, manifold, {"matrix_bits": bits, "limbs": result.limbs, "digit_bits": result.digit_bits,
                              "build_seconds": time.perf_counter() - t0,
                              "build_cpu_seconds": time.process_time() - c0, "path": "fast"}


def _build_tiling(plan, tau, needed, radius, names):
    """The 2-D construction in the L-tiling model (:mod:`embed.construction.tiled`), validated level by
    level: ``(points, manifold, facts for the info)``."""
    manifold = tiled.manifold_for_radius(radius)
    storage = _storage(plan, manifold, radius)
    validate = _Validator(plan, manifold, tau, storage, needed, radius, names, heights=False)
    t0, c0 = time.perf_counter(), time.process_time()
    points = tiled.build_ltiling(plan, tau, manifold, validate=validate)
    return points, manifold, {"limbs": manifold.limbs, "max_radius": manifold.max_radius,
                              "max_step": tiled.MAX_STEP, "build_seconds": time.perf_counter() - t0,
                              "build_cpu_seconds": time.process_time() - c0, "path": "tiling"}


def _finish_mcf(manifold, storage: torch.Tensor) -> torch.Tensor:
    """Canonical expansions from the long-division components, exactly (no value changes).

    Each component is the rounded quotient of an exact remainder, so it may overlap the next one by a
    few units in the last place; two top-down Fast-Two-Sum sweeps (exact: every leading term dominates)
    restore ``|x_(i+1)| <= ulp(x_i)/2``. Rows the check still rejects go through ``mcf.renormalize``.
    """
    import mcf

    horizontal = manifold.horizontal(storage).clone()  # (n, h, m)
    for _ in range(2):
        for i in range(horizontal.shape[-1] - 1):
            a, b = horizontal[..., i], horizontal[..., i + 1]
            s = a + b
            horizontal[..., i + 1] = b - (s - a)
            horizontal[..., i] = s
    bad = ~mcf.is_valid(horizontal).all(-1)
    if bool(bad.any()):
        horizontal[bad] = mcf.renormalize(horizontal[bad])
    return manifold.pack(horizontal, storage[..., -1:])


def _reference(plan, tau, dim, bits, method, needed, radius, names, progress):
    import mpmath

    manifold = _mcf(dim, needed)
    if dim == 2:
        lorentz = poincare_to_lorentz(reference_2d(plan, tau, bits, progress), bits)
    else:
        lorentz = reference_rd(plan, tau, dim, bits, method, progress)
    with mpmath.workprec(bits):
        bad = [i for i, X in enumerate(lorentz) if not (mpmath.isfinite(X[0]) and X[0] >= 1)]
    if bad:
        level = int(plan.depth[bad[0]])
        name = names[bad[0]] if bad[0] < len(names) else "<virtual root>"
        raise PrecisionError(
            f"mpmath reference at {bits} bits: {len(bad)} node(s) collapsed onto the boundary (first at level "
            f"{level}: {name!r}); tau = {tau:.6g}, radius bound {radius:.1f} needs about "
            f"{radius * LOG2_E:.0f} bits"
        )
    with mpmath.workprec(bits):
        points = manifold.from_reference(lorentz)
    storage = torch.zeros_like(points)
    validate = _Validator(plan, manifold, tau, storage, needed, radius, names, rtol=1e-6)
    for level, nodes in enumerate(plan.levels):
        validate(level, nodes, points[nodes])
    return points, manifold
