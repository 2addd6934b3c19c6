r"""Optimisation-based embedding on any manifold of the protocol.

Two objectives:

* ``"ranking"`` — Nickel & Kiela's reconstruction loss (:func:`embed.losses.ranking_loss`) over the pairs
  ``(u, v)`` of a directed graph (a transitive closure stored descendant -> ancestor; undirected graphs
  train on both directions), with negatives from :class:`embed.sampling.NegativeSampler`. The first
  ``burnin_epochs`` run at ``lr * burnin_lr_factor`` with negatives :math:`\propto c(n)^{\alpha}`.
  After burn-in, ``hard_negatives`` of each pair's negatives may come from ``u``'s nearest acceptable nodes
  under the current points (a table refreshed every ``hard_refresh`` epochs; checkpointed), and with
  ``relocate_leaves`` leaves trapped in another subtree's direction are moved out beyond their parent.
* ``"distortion"`` — metric targets: graph distances ``d_G`` (hop counts or weighted shortest paths), loss
  :func:`embed.losses.distortion_loss` of ``d(x_i, x_j)`` against ``scale * d_G``.

Training uses geoopt's Riemannian optimisers, dense (``RiemannianSGD``/``RiemannianAdam``) or sparse
(``SparseRiemannianSGD``/``SparseRiemannianAdam`` with sparse row gradients), in float32 or float64 on any
device. Every random draw comes from one seeded :class:`torch.Generator`, so a run is reproducible, and a
checkpoint (written atomically, between two optimizer steps) holds the points, the optimizer state, the
generator state and the position inside the epoch: resuming gives exactly the uninterrupted result.
A non-finite loss or point stops the run with :class:`NonFiniteTrainingError`; the last good checkpoint
stays in place.

The command line (``hyperbolic embed GRAPH --method train|hmds``) is in :mod:`embed.train_cli`.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import geoopt
import torch
from tqdm import tqdm

from hyperbolic.manifold import PrecisionError

from .checkpoint import CheckpointError, graph_fingerprint, load_checkpoint, save_checkpoint
from .graphs import Graph
from .kernels import is_plain_poincare, poincare_nearest, poincare_rows_distance, poincare_sgd_rows
from .losses import DISTORTION_KINDS, distortion_loss, ranking_loss
from .nearest import chart_nearest
from .sampling import NegativeSampler

__all__ = [
    "TrainConfig",
    "Trainer",
    "TrainResult",
    "NonFiniteTrainingError",
    "EuclideanBaseline",
    "initial_points",
    "warm_start",
    "make_manifold",
    "manifold_from_spec",
    "is_hyperbolic",
    "evaluate_embedding",
]

DTYPES = {"float64": torch.float64, "float32": torch.float32}
OPTIMIZERS = ("sgd", "adam", "row-sgd")
# Graphs up to this many nodes train the distortion loss on all pairs, with one BFS at start-up.
_ALL_PAIRS_LIMIT = 4096


#: Settings a resumed run cannot change: the saved optimizer state, points and batching depend on them.
FIXED_ON_RESUME = ("loss", "optimizer", "sparse", "dtype", "batch_size", "seed")
#: Settings ``TrainConfig.stages`` cannot change.
UNSCHEDULABLE = (*FIXED_ON_RESUME, "epochs", "device", "stages")


class NonFiniteTrainingError(FloatingPointError):
    """A loss or a point became NaN or infinite; the message says where and which checkpoint is good."""


# ============================================================================ configuration


@dataclass
class TrainConfig:
    r"""Everything that defines a training run (stored in checkpoints and embedding files as JSON).

    Parameters
    ----------
    loss : {"ranking", "distortion"}
        Objective (module docstring).
    epochs : int
        Epochs in total, burn-in included.
    batch_size : int
        Training pairs per optimizer step.
    lr : float
        Learning rate after burn-in. The loss is a batch mean, so the step one pair contributes scales
        with ``lr / batch_size`` (the published mammals recipe is ``lr = 0.3`` at batch 10).
    lr_final_factor : float
        After burn-in the learning rate falls linearly from ``lr`` to ``lr * lr_final_factor`` at the last
        epoch (1: constant, the published recipe).
    optimizer : {"sgd", "adam", "row-sgd"}
        geoopt's Riemannian SGD or Adam (dense or sparse, see ``sparse``), or ``"row-sgd"``: the update of
        geoopt's ``SparseRiemannianSGD`` without momentum (``retr(x, -lr * egrad2rgrad(x, g))`` on the rows of
        the batch) done in place on the batch's distinct rows, with no sparse tensors: the same result at
        about half the cost per step on large graphs.
    sparse : bool
        Sparse row gradients and geoopt's sparse optimisers (only the rows of a batch are touched; the
        right choice for large graphs). Dense updates every row at every step. ``row-sgd`` is always sparse.
    negatives : int
        Negatives per pair after burn-in (ranking loss).
    burnin_epochs, burnin_lr_factor, burnin_alpha, burnin_negatives
        Burn-in: epochs, learning-rate factor, exponent of the count distribution of negatives, and their
        number (None: ``negatives``).
    hard_negatives : int
        After burn-in, this many of the ``negatives`` of a pair ``(u, v)`` are drawn (a random subset, from
        the run's generator) from ``u``'s ``hard_candidates`` nearest acceptable nodes, the others uniformly
        as usual; the same rejection rule and distinctness hold for both (:mod:`embed.sampling`). 0: off
        (uniform negatives only). Uniform negatives rarely meet the few nodes crowding a leaf, which then
        get no push apart from it; these do.
    hard_candidates : int
        Candidates per node in the hard-negative table.
    hard_importance : bool
        Weight every negative by the inverse of its inclusion probability under the mixture
        (:meth:`~embed.sampling.NegativeSampler.hard_log_weights`; default): the softmax's sum then
        estimates the same partition sum as ``K`` uniform negatives, with each near node at its share of it
        in every step instead of as a rare full-weight hit. False: each counts once, as a uniform one does,
        which asks every pair, far ancestors included, for a margin over ``u``'s nearest nodes (on the noun
        closure this wrecked a trained embedding: benchmarks/RESULTS.md, issue 6); it allows
        ``hard_negatives == negatives``.
    hard_refresh : int
        Epochs between recomputations of the table from the current points (one chunked pass of
        nearest-neighbour search over all nodes on the training device, at the start of an epoch).
    relocate_leaves : bool
        After burn-in, at every computation of the nearest-node table (every ``hard_refresh`` epochs; the table
        is computed for this even without hard negatives), move each *trapped leaf* out beyond its parent, in
        the parent's direction. A leaf is a node that is nobody's ancestor; its parent is its deepest ancestor
        (the one with the most ancestors of its own: always a direct parent); it is trapped when the parent lies
        farther from it than all its ``hard_candidates`` nearest acceptable nodes (the parent's rank exceeds
        ``hard_candidates``). Such a leaf sits near the boundary in another subtree's direction: its distance to
        the parent is about :math:`r_u + r_p + 2\log\sin(\theta/2)`, so a radial step does not change the
        parent's rank and an angular one of hyperbolic length :math:`\ell` turns it by only :math:`\ell/\sinh
        r_u`; the ranking gradient cannot bring it back. The move goes :math:`\delta` further out along the ray
        through the parent, :math:`q = \exp_p(\delta\,\hat\xi)` (:math:`\hat\xi` the unit tangent pointing away
        from the origin), then :math:`s` sideways, :math:`u \leftarrow \exp_q(s\,\hat\zeta)` with
        :math:`\hat\zeta` a random unit tangent at :math:`q` orthogonal to the ray (drawn from the run's
        generator): the angle at :math:`q` is right, so :math:`\cosh d(u, p) = \cosh\delta\cosh s`, relocated
        siblings land about :math:`\operatorname{arcosh}(\cosh^2 s)` apart, and the leaf ends near radius
        :math:`r_p + \delta + s - \log 2`: beyond the other nodes, where nothing crowds it and it crowds nobody
        (on the noun closure a wide sideways step keeps the MAP: benchmarks/RESULTS.md, issue 6). That radius
        should lie where the representation is accurate: float64 Poincaré, Lorentz and half-space keep near-pair
        distances within 1e-6 to radius ≈ 20 and far pairs well beyond (README, Precision; on the noun closure
        the relocated leaves end at radius 13–26), the MCF and tiling models to hundreds. Only closures
        (directed graphs). With an optimizer that keeps per-row state (Adam, momentum), the moved rows' state is
        zeroed.
    relocate_distance : float
        :math:`\delta` (default 2).
    relocate_spread : float
        :math:`s` (default 11).
    relocate_rank : int or None
        A leaf counts as trapped when its parent lies beyond its ``relocate_rank``-th nearest acceptable node
        (None: ``hard_candidates``, the whole table; at most that).
    relocate_from : int
        First epoch at which leaves are relocated (at the first table computation from then on; 0: right
        after burn-in). Before it, the table is computed only for hard negatives.
    stages : sequence of (int, dict)
        A schedule of setting changes: ``(epoch, {field: value, ...})`` pairs, epochs increasing; at the start
        of each such epoch the fields take the new values for the rest of the run, exactly as if the run
        were stopped there and resumed with those changes (:meth:`Trainer.resume`), e.g. ``((60,
        {"hard_negatives": 10, "max_step": 1.0}),)``. Fields of :data:`FIXED_ON_RESUME`, ``epochs``,
        ``device`` and ``stages`` cannot be scheduled. The checkpointed config holds the settings in force.
    max_step : float or None
        Largest Riemannian length of one SGD update of a row: a row's gradient is scaled down so that
        ``lr * |grad|_x <= max_step`` (None: no clipping). With Adam it bounds the gradient fed to Adam.
    init_scale : float
        Initial points: Lorentz spatial coordinates uniform in ``[-init_scale, init_scale]`` (the recipe's
        ``U(-1e-4, 1e-4)``), unless a warm start is given.
    distortion : str
        Penalty of the distortion loss, a key of :data:`embed.losses.DISTORTION_KINDS`.
    distortion_scale : float
        Embedded distances are compared with ``distortion_scale * d_G`` (and evaluated divided by it).
    distortion_partners : int or None
        Distortion loss on graphs with more than 4,096 nodes: per epoch, every node is paired with its
        graph neighbours and this many random nodes (default 64). Smaller graphs use all pairs.
    seed : int
        Seed of the one generator behind initialisation, shuffling and negatives.
    dtype : {"float64", "float32"}
        Float type of the points.
    device : str
        Torch device of the points (sampling runs on the CPU).
    eval_every : int
        Evaluate every this many epochs (0: only at the end).
    eval_rows : int or None
        Evaluate on a seeded random sample of rows (progress only; the final evaluation uses all rows).
    final_eval_rows : int or None
        Rows of the final evaluation (None: all rows, the reported figure; a sample for quick comparisons).
    eval_distortion : bool
        Periodic evaluations of graphs scored by edge-MAP also compute the distortion (False: mean rank and
        MAP only; the final evaluation always has it). Closures trained with the ranking loss never do.
    checkpoint_every : int
        Write the checkpoint every this many epochs (when a checkpoint path is given).
    checkpoint_seconds : float or None
        Also write it when this many wall seconds passed since the last one (mid-epoch allowed).
    target_map : float or None
        Record the first evaluation with MAP >= this value (epoch, CPU and wall seconds).
    stop_at_target : bool
        Stop when ``target_map`` is reached.
    """

    loss: str = "ranking"
    epochs: int = 300
    batch_size: int = 1024
    lr: float = 30.0
    lr_final_factor: float = 1.0
    optimizer: str = "sgd"
    sparse: bool = False
    negatives: int = 50
    burnin_epochs: int = 10
    burnin_lr_factor: float = 0.01
    burnin_alpha: float = 0.75
    burnin_negatives: int | None = None
    hard_negatives: int = 0
    hard_candidates: int = 32
    hard_refresh: int = 5
    hard_importance: bool = True
    relocate_leaves: bool = False
    relocate_distance: float = 2.0
    relocate_spread: float = 11.0
    relocate_from: int = 0
    relocate_rank: int | None = None
    stages: tuple = ()
    max_step: float | None = 1.0
    init_scale: float = 1e-4
    distortion: str = "ratio"
    distortion_scale: float = 1.0
    distortion_partners: int | None = None
    seed: int = 0
    dtype: str = "float64"
    device: str = "cpu"
    eval_every: int = 10
    eval_rows: int | None = None
    final_eval_rows: int | None = None
    eval_distortion: bool = True
    checkpoint_every: int = 10
    checkpoint_seconds: float | None = None
    target_map: float | None = None
    stop_at_target: bool = False

    def __post_init__(self) -> None:
        def positive_int(name, allow_zero=False):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
                bound = "a non-negative" if allow_zero else "a positive"
                raise ValueError(f"TrainConfig.{name} must be {bound} integer, got {value!r}")

        def positive_float(name, allow_none=False):
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"TrainConfig.{name} must be a positive finite number, got {value!r}")

        if self.loss not in ("ranking", "distortion"):
            raise ValueError(f"TrainConfig.loss must be 'ranking' or 'distortion', got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"TrainConfig.dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}")
        if self.distortion not in DISTORTION_KINDS:
            raise ValueError(f"TrainConfig.distortion must be one of {tuple(DISTORTION_KINDS)}, got {self.distortion!r}")
        for name in ("epochs", "batch_size", "negatives"):
            positive_int(name)
        for name in ("burnin_epochs", "eval_every", "checkpoint_every", "seed", "hard_negatives", "relocate_from"):
            positive_int(name, allow_zero=True)
        for name in ("hard_candidates", "hard_refresh"):
            positive_int(name)
        if self.hard_negatives:
            if self.loss != "ranking":
                raise ValueError("TrainConfig.hard_negatives needs the ranking loss")
            if self.hard_negatives > self.negatives or (self.hard_importance
                                                        and self.hard_negatives == self.negatives):
                raise ValueError(f"TrainConfig.hard_negatives ({self.hard_negatives}) must be below negatives "
                                 f"({self.negatives}){'' if self.hard_importance else ' or equal'}")
            if self.hard_candidates < self.hard_negatives:
                raise ValueError(f"TrainConfig.hard_candidates ({self.hard_candidates}) must be at least "
                                 f"hard_negatives ({self.hard_negatives})")
        if self.relocate_leaves and self.loss != "ranking":
            raise ValueError("TrainConfig.relocate_leaves needs the ranking loss")
        if self.relocate_rank is not None and self.relocate_rank > self.hard_candidates:
            raise ValueError(f"TrainConfig.relocate_rank ({self.relocate_rank}) must be at most hard_candidates "
                             f"({self.hard_candidates})")
        for name in ("burnin_negatives", "eval_rows", "final_eval_rows", "distortion_partners", "relocate_rank"):
            if getattr(self, name) is not None:
                positive_int(name)
        for name in ("lr", "burnin_lr_factor", "init_scale", "distortion_scale", "lr_final_factor",
                     "relocate_distance", "relocate_spread"):
            positive_float(name)
        for name in ("max_step", "checkpoint_seconds"):
            positive_float(name, allow_none=True)
        if not isinstance(self.burnin_alpha, int | float) or not math.isfinite(self.burnin_alpha):
            raise ValueError(f"TrainConfig.burnin_alpha must be a finite number, got {self.burnin_alpha!r}")
        if self.target_map is not None and not 0 < self.target_map <= 1:
            raise ValueError(f"TrainConfig.target_map must lie in (0, 1], got {self.target_map!r}")
        torch.device(self.device)  # raises for a malformed device string
        self._check_stages()

    def _check_stages(self) -> None:
        try:
            stages = tuple((epoch, dict(changes)) for epoch, changes in self.stages)
        except (TypeError, ValueError):
            raise ValueError(f"TrainConfig.stages must be a sequence of (epoch, {{field: value}}) pairs, "
                             f"got {self.stages!r}") from None
        self.stages = stages
        known = {f.name for f in fields(self)}
        settings, previous = {**asdict(self), "stages": ()}, 0
        for epoch, changes in stages:
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch <= previous:
                raise ValueError(f"TrainConfig.stages: epochs must be increasing positive integers, got {epoch!r} "
                                 f"after {previous}")
            unknown = sorted(set(changes) - known)
            if unknown:
                raise ValueError(f"TrainConfig.stages: epoch {epoch}: unknown fields {', '.join(unknown)}")
            fixed = sorted(set(changes) & set(UNSCHEDULABLE))
            if fixed:
                raise ValueError(f"TrainConfig.stages: epoch {epoch}: {', '.join(fixed)} cannot change during a run")
            settings.update(changes)
            try:
                TrainConfig(**settings)
            except ValueError as error:
                raise ValueError(f"TrainConfig.stages: epoch {epoch}: {error}") from None
            previous = epoch

    def stage_changes(self, epoch: int) -> dict:
        """The changes scheduled for the start of ``epoch`` (empty if none)."""
        return next((dict(changes) for at, changes in self.stages if at == epoch), {})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]


# ============================================================================ manifolds and points


class EuclideanBaseline(geoopt.Euclidean):
    """Flat space :math:`R^n` with the distance ``|u - v|`` (not squared): the Euclidean baseline of the
    WordNet benchmarks, trained by the same code as the hyperbolic models."""

    name = "euclidean"

    def __init__(self, dim: int):
        super().__init__(ndim=1)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dimension must be a positive integer, got {dim!r}")
        self.dim = dim

    @property
    def storage_dim(self) -> int:
        return self.dim

    def dist(self, x, y, *, keepdim=False):
        return (x - y).norm(dim=-1, keepdim=keepdim)

    def spec(self) -> dict:
        return {"name": self.name, "dim": self.dim, "storage_dim": self.dim}

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def make_manifold(label: str, dim: int):
    """A manifold by registry label (``lorentz``, ``poincare``, ``halfspace``, ...) or ``euclidean``."""
    if label == "euclidean":
        return EuclideanBaseline(dim)
    from hyperbolic import registry

    try:
        return registry.get(label).create(dim)
    except KeyError as error:
        raise ValueError(str(error.args[0])) from None


def manifold_from_spec(spec: dict):
    """The manifold a saved ``spec()`` describes: a registered representation, or the Euclidean baseline."""
    if spec.get("name") == "euclidean":
        return EuclideanBaseline(int(spec["dim"]))
    from hyperbolic import registry

    return registry.manifold_from_spec(spec)


def is_hyperbolic(manifold) -> bool:
    """Whether ``manifold`` is a representation of hyperbolic space (it has the Lorentz bridge), not the
    Euclidean baseline."""
    return hasattr(manifold, "from_lorentz") and hasattr(manifold, "to_lorentz")


def initial_points(manifold, num_points: int, scale: float, dtype: torch.dtype, device, generator) -> torch.Tensor:
    """Points near the origin: Lorentz spatial coordinates uniform in ``[-scale, scale]``."""
    v = (torch.rand(num_points, manifold.dim, dtype=dtype, generator=generator) * 2 - 1) * scale
    v = v.to(device)
    if not is_hyperbolic(manifold):
        return v
    X = torch.cat([torch.sqrt(1 + v.square().sum(-1, keepdim=True)), v], dim=-1)
    with torch.no_grad():
        return manifold.from_lorentz(X * manifold.scale(X))


def warm_start(path: str | os.PathLike, graph: Graph, manifold, dtype: torch.dtype = torch.float64,
               device="cpu") -> torch.Tensor:
    """Initial points for ``graph`` from an embedding file (e.g. a combinatorial embedding).

    Nodes are matched by name (extra names in the file are ignored). Points of the same representation
    are copied exactly; otherwise they are converted through the Lorentz hub (rescaled when the
    curvatures differ, so the unit-curvature geometry is kept).
    """
    from hyperbolic.io import load_embedding

    if not is_hyperbolic(manifold):
        raise ValueError(f"warm start needs a hyperbolic manifold of the protocol, not {manifold.name!r}")
    names, points, source = load_embedding(path)
    position = {name: i for i, name in enumerate(names)}
    missing = [name for name in graph.names if name not in position]
    if missing:
        raise ValueError(
            f"warm start {path}: {len(missing)} of the graph's {graph.num_nodes} nodes are not in the file "
            f"(e.g. {', '.join(repr(m) for m in missing[:3])})"
        )
    rows = points[torch.tensor([position[name] for name in graph.names], dtype=torch.int64)]
    same = type(source) is type(manifold) and source.spec() == manifold.spec()
    if same:
        out = rows.to(dtype)
    else:
        if source.dim != manifold.dim:
            raise ValueError(f"warm start {path}: the file holds H^{source.dim}, the run trains H^{manifold.dim}")
        with torch.no_grad():
            X = source.to_lorentz(rows.to(torch.float64))
            X = X * (manifold.scale(X) / source.scale(X))
            try:
                out = manifold.from_lorentz(X).to(dtype)
            except PrecisionError as error:
                far = int(X[:, 0].argmax())
                radius = float(torch.acosh(X[far, 0] / manifold.scale(X)))
                raise PrecisionError(f"warm start {path}: {error}; the farthest node is {graph.names[far]!r} at "
                                     f"radius {radius:.6g}") from None
    manifold.assert_points(out, what=f"warm start {path}")
    return out.to(device)


# ============================================================================ evaluation


def evaluate_embedding(points: torch.Tensor, manifold, graph: Graph, *, loss: str = "ranking",
                       scale: float = 1.0, rows: int | None = None, seed: int = 0, distortion: bool = True) -> dict:
    """Reconstruction metrics of an embedding of ``graph`` (via :func:`embed.metrics.evaluate`).

    Directed graphs trained with the ranking loss are transitive closures: ``map`` and ``mean_rank`` are
    the directed closure-MAP and mean rank of Nickel & Kiela (every node with an ancestor is a query,
    against all nodes), and nothing else is computed. Otherwise ``map``/``mean_rank`` are edge-MAP and mean
    rank on the graph, with the distortion figures unless ``distortion`` is False.
    """
    from .metrics import evaluate

    points = points.detach()
    if graph.directed and loss == "ranking":
        metrics = evaluate(points, manifold, graph, closure=graph, closure_variant="directed", rows=rows, seed=seed,
                           edge_map=False, distortion=False)
        out = {"map": metrics.closure_map, "mean_rank": metrics.closure_mean_rank}
    else:
        metrics = evaluate(points, manifold, graph, scale=scale, rows=rows, seed=seed, distortion=distortion)
        out = {"map": metrics.edge_map, "mean_rank": metrics.mean_rank}
        if distortion:
            out.update(d_avg=metrics.d_avg, d_wc=metrics.d_wc)
    out.update({"rows": metrics.rows, "sampled": metrics.sampled, "nonfinite": metrics.nonfinite,
                "zero": metrics.zero})
    if metrics.sampled:
        out["map_se"] = metrics.closure_map_se if graph.directed and loss == "ranking" else metrics.edge_map_se
    return out


# ============================================================================ tasks


class _RankingTask:
    """Pairs ``(u, v)``, negatives for ``u``, softmax ranking loss."""

    def __init__(self, graph: Graph, config: TrainConfig):
        edges = graph.edges
        weights = graph.weights
        if not graph.directed:
            edges = torch.cat([edges, edges.flip(1)])
            weights = None if weights is None else torch.cat([weights, weights])
        keep = edges[:, 0] != edges[:, 1]
        self.edges = edges[keep]
        self.weights = None if weights is None or bool((weights == 1).all()) else weights[keep]
        if self.edges.shape[0] == 0:
            raise ValueError("the graph has no edges (besides self loops) to train on")
        self.sampler = NegativeSampler(self.edges, graph.num_nodes, self.weights)
        self.config = config
        self._burnin_probs = None
        self.hard: torch.Tensor | None = None  # the hard-negative candidate table (N, hard_candidates)
        self.hard_epoch: int | None = None  # the epoch at whose start it was computed
        self._leaf_parents: tuple[torch.Tensor, torch.Tensor] | None = None

    def hard_due(self, epoch: int, epoch_start: bool) -> bool:
        """Whether the nearest-node table (hard negatives, leaf relocation) must be (re)computed before the
        next step: after burn-in, when there is none, or at the start of an epoch ``hard_refresh`` epochs
        after the last one."""
        config = self.config
        relocating = config.relocate_leaves and epoch >= config.relocate_from
        if not (config.hard_negatives or relocating) or epoch < config.burnin_epochs:
            return False
        return self.hard is None or (epoch_start and epoch - self.hard_epoch >= config.hard_refresh)

    def refresh_hard(self, epoch: int, nearest, chunk: int) -> None:
        self.hard = self.sampler.hard_table(nearest, self.config.hard_candidates, chunk=chunk)
        self.hard_epoch = epoch

    def keep_table(self, table: torch.Tensor | None, epoch: int | None) -> None:
        """Take over a nearest-node table computed at ``epoch`` (from a checkpoint or the task this one
        replaces) if it has this config's width; otherwise it is recomputed before the next step."""
        if table is not None and table.shape[1] == self.config.hard_candidates:
            self.hard, self.hard_epoch = table, int(epoch)

    def leaf_parents(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The leaves (nodes that are nobody's ancestor, with at least one ancestor) and each one's deepest
        ancestor (most ancestors of its own; ties to the larger index): a direct parent in a closure."""
        if self._leaf_parents is None:
            u, a = self.edges[:, 0], self.edges[:, 1]
            n = self.sampler.num_nodes
            depth = torch.bincount(u, minlength=n)
            key = torch.full((n,), -1, dtype=torch.int64).scatter_reduce(0, u, depth[a] * n + a, "amax")
            leaf = (key >= 0) & (torch.bincount(a, minlength=n) == 0)
            leaves = torch.nonzero(leaf).squeeze(1)
            self._leaf_parents = (leaves, key[leaves] % n)
        return self._leaf_parents

    @property
    def size(self) -> int:
        return self.edges.shape[0]

    def plan(self, epoch: int, generator: torch.Generator) -> dict:
        return {"order": torch.randperm(self.size, generator=generator)}

    def loss(self, distance, plan: dict, batch: int, epoch: int, generator: torch.Generator):
        config = self.config
        ids = plan["order"][batch * config.batch_size:(batch + 1) * config.batch_size]
        pairs = self.edges[ids]
        u, v = pairs[:, 0], pairs[:, 1]
        if epoch < config.burnin_epochs:
            if self._burnin_probs is None:
                self._burnin_probs = self.sampler.distribution(config.burnin_alpha)
            probs, k = self._burnin_probs, config.burnin_negatives or config.negatives
        else:
            probs, k = None, config.negatives
        num_hard = config.hard_negatives if epoch >= config.burnin_epochs else 0
        threshold = None if self.weights is None else self.weights[ids]
        negatives, valid = self.sampler.sample(u, k, generator, probs=probs, threshold=threshold,
                                               hard=self.hard if num_hard else None, num_hard=num_hard)
        log_weights = None
        if num_hard and config.hard_importance:
            log_weights = self.sampler.hard_log_weights(u, negatives, self.hard, num_hard, k)
        distances = distance(u, torch.cat([v.unsqueeze(1), negatives], dim=1))
        return ranking_loss(distances, valid.to(distances.device),
                            None if log_weights is None else log_weights.to(distances.device))


class _DistortionTask:
    """Pairs ``(i, j)`` with graph-distance targets, distortion loss."""

    def __init__(self, graph: Graph, config: TrainConfig):
        from .metrics import graph_distances, neighbourhoods

        self.config = config
        self.n = graph.num_nodes
        self.graph = graph
        self._graph_distances = graph_distances
        if self.n < 2:
            raise ValueError("the distortion loss needs at least 2 nodes")
        self.all_pairs = self.n <= _ALL_PAIRS_LIMIT and config.distortion_partners is None
        if self.all_pairs:
            D = graph_distances(graph, torch.arange(self.n))
            i, j = torch.triu_indices(self.n, self.n, 1)
            target = D[i, j]
            finite = torch.isfinite(target)
            if not bool(finite.any()):
                raise ValueError("the graph has no connected pair of distinct nodes")
            self.pairs = torch.stack([i[finite], j[finite]], dim=1)
            self.targets = target[finite]
        else:
            self.indptr, self.indices = neighbourhoods(graph.as_undirected() if graph.directed else graph)

    def plan(self, epoch: int, generator: torch.Generator) -> dict:
        if self.all_pairs:
            order = torch.randperm(self.pairs.shape[0], generator=generator)
            return {"pairs": self.pairs[order], "targets": self.targets[order]}
        partners = self.config.distortion_partners or 64
        degree = self.indptr[1:] - self.indptr[:-1]
        rows = torch.repeat_interleave(torch.arange(self.n), degree)
        i = torch.cat([rows, torch.arange(self.n).repeat_interleave(partners)])
        j = torch.cat([self.indices, torch.randint(self.n, (self.n * partners,), generator=generator)])
        keep = i != j
        i, j = i[keep], j[keep]
        targets = torch.empty(i.shape[0], dtype=torch.float64)
        order_by_row = torch.argsort(i, stable=True)
        chunk = 1024
        for begin in range(0, self.n, chunk):
            sources = torch.arange(begin, min(begin + chunk, self.n))
            D = self._graph_distances(self.graph, sources)
            sel = order_by_row[(i[order_by_row] >= begin) & (i[order_by_row] < begin + chunk)]
            targets[sel] = D[i[sel] - begin, j[sel]]
        finite = torch.isfinite(targets)
        i, j, targets = i[finite], j[finite], targets[finite]
        order = torch.randperm(i.shape[0], generator=generator)
        return {"pairs": torch.stack([i, j], dim=1)[order], "targets": targets[order]}

    def loss(self, distance, plan: dict, batch: int, epoch: int, generator: torch.Generator):
        size = self.config.batch_size
        pairs = plan["pairs"][batch * size:(batch + 1) * size]
        distances = distance(pairs[:, 0], pairs[:, 1])
        targets = plan["targets"][batch * size:(batch + 1) * size].to(distances) * self.config.distortion_scale
        return distortion_loss(distances, targets, self.config.distortion)


def _distinct(flat: torch.Tensor, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.unique(flat, return_inverse=True)`` for node ids in ``[0, num_nodes)``, by marking a table
    instead of sorting."""
    present = torch.zeros(num_nodes, dtype=torch.bool)
    present[flat] = True
    ids = torch.nonzero(present).squeeze(1)
    slot = torch.empty(num_nodes, dtype=torch.int64)
    slot[ids] = torch.arange(ids.numel())
    return ids, slot[flat]


def _plan_size(plan: dict) -> int:
    return next(iter(plan.values())).shape[0]


# ============================================================================ the trainer


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes
    ----------
    points : torch.Tensor
        ``(N, storage_dim)`` final points (detached).
    manifold
        Their manifold.
    epoch : int
        Completed epochs (``step_in_epoch`` further steps when the run stopped mid-epoch).
    history : list of dict
        Every evaluation record (``epoch``, ``map``, ``mean_rank``, ``cpu_seconds``, ...).
    target : dict or None
        The first evaluation that reached ``target_map``.
    stopped : str
        ``"completed"``, ``"target"`` (stop at target), ``"interrupted"`` (SIGINT), ``"limit"``
        (``max_steps`` / ``max_seconds``).
    cpu_seconds, wall_seconds, eval_cpu_seconds : float
        Process CPU time and wall time of the run, resumed segments included, and the part spent evaluating.
    """

    points: torch.Tensor
    manifold: object
    epoch: int
    step_in_epoch: int
    history: list
    target: dict | None
    stopped: str
    cpu_seconds: float
    wall_seconds: float
    eval_cpu_seconds: float
    final: dict | None = field(default=None)


class Trainer:
    """Train an embedding of ``graph`` on ``manifold``.

    Parameters
    ----------
    graph : Graph
        The graph; for the ranking loss a directed graph is a closure stored descendant -> ancestor.
    manifold
        Any manifold of the protocol (``hyperbolic.registry``), or :class:`EuclideanBaseline`.
    config : TrainConfig or None
        The run's settings (default: ``TrainConfig()``).
    init : torch.Tensor or None
        Initial points ``(N, storage_dim)`` (e.g. from :func:`warm_start`); default :func:`initial_points`.
    checkpoint : str or path or None
        Where to write checkpoints.
    metrics : str or path or None
        JSON-lines file receiving one record per epoch, evaluation, checkpoint and target event (appended).
    progress : bool or None
        tqdm progress bar; None: only when standard error is a terminal.
    """

    def __init__(self, graph: Graph, manifold, config: TrainConfig | None = None, *, init: torch.Tensor | None = None,
                 checkpoint: str | os.PathLike | None = None, metrics: str | os.PathLike | None = None,
                 progress: bool | None = None):
        self.graph = graph
        self.manifold = manifold
        self.config = config or TrainConfig()
        self.checkpoint_path = None if checkpoint is None else Path(checkpoint)
        self.metrics_path = None if metrics is None else Path(metrics)
        self.progress = sys.stderr.isatty() if progress is None else progress
        cfg = self.config
        self.device = torch.device(cfg.device)
        self.dtype = cfg.torch_dtype
        if cfg.relocate_leaves and not graph.directed:
            raise ValueError("relocate_leaves needs a directed graph (a closure stored descendant -> ancestor)")
        self.task = _RankingTask(graph, cfg) if cfg.loss == "ranking" else _DistortionTask(graph, cfg)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        if init is None:
            points = initial_points(manifold, graph.num_nodes, cfg.init_scale, self.dtype, self.device, self.generator)
        else:
            points = torch.as_tensor(init)
            if points.shape != (graph.num_nodes, manifold.storage_dim):
                raise ValueError(f"init must have shape ({graph.num_nodes}, {manifold.storage_dim}), "
                                 f"got {tuple(points.shape)}")
            points = points.detach().to(device=self.device, dtype=self.dtype).clone()
            if hasattr(manifold, "assert_points"):
                manifold.assert_points(points, what="initial points")
        self.weight = geoopt.ManifoldParameter(points, manifold=manifold)
        # one plain tensor object over the weight's storage (sharing its version counter), written in place by
        # row-sgd and relocation: what a manifold's take_rows may remember between steps
        self._table = self.weight.as_subclass(torch.Tensor).detach()
        # the fused Poincaré distance and row update (embed.kernels) in place of the generic autograd path
        self._fused = is_plain_poincare(manifold)
        self.optimizer = self._make_optimizer()
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self._plan: dict | None = None
        self._loss_sum = 0.0
        self.history: list[dict] = []
        self.target: dict | None = None
        self._cpu_offset = 0.0
        self._wall_offset = 0.0
        self._eval_cpu = 0.0
        self._stop_requested = False
        self._last_checkpoint_epoch: int | None = None
        self._resumed_from: str | None = None

    # ------------------------------------------------------------------ construction helpers
    def _make_optimizer(self):
        cfg = self.config
        if cfg.optimizer == "row-sgd":
            return None
        classes = {
            ("sgd", False): geoopt.optim.RiemannianSGD,
            ("sgd", True): geoopt.optim.SparseRiemannianSGD,
            ("adam", False): geoopt.optim.RiemannianAdam,
            ("adam", True): geoopt.optim.SparseRiemannianAdam,
        }
        return classes[cfg.optimizer, cfg.sparse]([self.weight], lr=cfg.lr)

    @classmethod
    def resume(cls, checkpoint: str | os.PathLike, graph: Graph, *, metrics: str | os.PathLike | None = None,
               progress: bool | None = None, epochs: int | None = None, changes: dict | None = None) -> Trainer:
        """Continue the run saved in ``checkpoint`` (which keeps receiving checkpoints).

        ``epochs`` may raise the total number of epochs, and ``changes`` (``TrainConfig`` fields) may
        change other settings from here on (e.g. switch on ``hard_negatives``); everything else comes from
        the checkpoint. Without changes the run continues exactly as if it had not stopped. Raises
        :class:`~embed.checkpoint.CheckpointError` when the checkpoint belongs to another graph, and
        ValueError for a change of a field the saved state depends on (:data:`FIXED_ON_RESUME`).
        """
        state = load_checkpoint(checkpoint)
        if state["graph"] != graph_fingerprint(graph):
            raise CheckpointError(f"{checkpoint}: written for another graph (fingerprint differs from "
                                  f"{graph.source or 'the given graph'})")
        saved = asdict(TrainConfig.from_json(state["config"]))
        changes = {**(changes or {}), **({} if epochs is None else {"epochs": epochs})}
        unknown = sorted(set(changes) - set(saved))
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(unknown)}")
        fixed = sorted(name for name in FIXED_ON_RESUME if name in changes and changes[name] != saved[name])
        if fixed:
            raise ValueError(f"{checkpoint}: cannot change {', '.join(fixed)} when resuming "
                             f"(the checkpoint has {', '.join(f'{n}={saved[n]!r}' for n in fixed)})")
        config = TrainConfig(**{**saved, **changes})
        manifold = manifold_from_spec(state["spec"])
        trainer = cls(graph, manifold, config, init=state["points"], checkpoint=checkpoint, metrics=metrics,
                      progress=progress)
        if trainer.optimizer is not None:
            trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.generator.set_state(state["generator"])
        trainer.epoch = int(state["epoch"])
        trainer.step_in_epoch = int(state["step_in_epoch"])
        trainer.global_step = int(state["global_step"])
        trainer._plan = state["plan"] or None
        trainer._loss_sum = float(state["loss_sum"])
        trainer.history = json.loads(state["history"])
        trainer.target = json.loads(state["target"])
        trainer._cpu_offset = float(state["cpu_seconds"])
        trainer._wall_offset = float(state["wall_seconds"])
        trainer._eval_cpu = float(state["eval_cpu_seconds"])
        if isinstance(trainer.task, _RankingTask):
            trainer.task.keep_table(state.get("hard_table"), state.get("hard_table_epoch"))
        trainer._last_checkpoint_epoch = trainer.epoch
        trainer._resumed_from = str(checkpoint)
        return trainer

    # ------------------------------------------------------------------ state
    @property
    def points(self) -> torch.Tensor:
        """Current points ``(N, storage_dim)`` (detached view)."""
        return self.weight.detach()

    def _cpu(self) -> float:
        return self._cpu_offset + time.process_time() - self._cpu_start

    def _wall(self) -> float:
        return self._wall_offset + time.perf_counter() - self._wall_start

    def _state(self) -> dict:
        return {
            "config": self.config.to_json(),
            "spec": self.manifold.spec(),
            "graph": graph_fingerprint(self.graph),
            "points": self.weight.detach(),
            "optimizer": {} if self.optimizer is None else self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "plan": self._plan or {},
            "loss_sum": self._loss_sum,
            "history": json.dumps(self.history),
            "target": json.dumps(self.target),
            "cpu_seconds": self._cpu(),
            "wall_seconds": self._wall(),
            "eval_cpu_seconds": self._eval_cpu,
            "hard_table": getattr(self.task, "hard", None),
            "hard_table_epoch": getattr(self.task, "hard_epoch", None),
        }

    def save_checkpoint(self) -> None:
        """Write the checkpoint (points checked finite first; a bad state never replaces a good file)."""
        if self.checkpoint_path is None:
            return
        self._check_points()
        save_checkpoint(self.checkpoint_path, self._state())
        self._last_checkpoint_epoch = self.epoch
        self._last_checkpoint_wall = time.perf_counter()
        self._record({"event": "checkpoint", "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                      "path": str(self.checkpoint_path)})

    def _check_points(self) -> None:
        bad = ~torch.isfinite(self.weight.detach())
        if bool(bad.any()):
            row = int(torch.nonzero(bad)[0, 0])
            self._fail(f"point of node {self.graph.names[row]!r} (row {row}) became non-finite")

    def _fail(self, what: str) -> None:
        where = f"epoch {self.epoch + 1}, step {self.step_in_epoch + 1} (optimizer step {self.global_step + 1})"
        if self.checkpoint_path is not None and self._last_checkpoint_epoch is not None:
            kept = f"the last good checkpoint {self.checkpoint_path} (epoch {self._last_checkpoint_epoch}) is kept"
        elif self.checkpoint_path is not None:
            kept = "no checkpoint had been written yet"
        else:
            kept = "no checkpoint path was given"
        self._record({"event": "error", "epoch": self.epoch, "message": what})
        raise NonFiniteTrainingError(
            f"training stopped at {where}: {what}; {kept}. Try a smaller learning rate (lr={self.config.lr}) "
            f"or max_step, or float64."
        )

    def _record(self, record: dict) -> None:
        if self.metrics_path is None:
            return
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=json_default) + "\n")

    # ------------------------------------------------------------------ one step
    def _distance(self, u: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """Distances from the points of nodes ``u`` (``(B,)``) to those of ``other`` (``(B, K)`` or ``(B,)``),
        through one gather of the batch's distinct rows.

        Every row of the batch is read once, so its gradient arrives summed in one place: sparse gradients
        need no coalescing of repeats, and ``max_step`` clips each row's total gradient in a hook (or in the
        fused Poincaré update of ``row-sgd``). With ``row-sgd``, a manifold with a ``take_rows(table, ids)`` method
        (:meth:`tiling.BinaryTiling.take_rows`) gives the rows in a narrower storage together with the manifold of
        that storage, which computes the distances, the clipping and the step and writes the rows back
        (``put_rows``), with the results of the full storage.
        """
        flat = torch.cat([u, other.reshape(-1)])
        ids, inverse = _distinct(flat, self.graph.num_nodes)
        ids, inverse = ids.to(self.device), inverse.to(self.device)
        iu, io = inverse[:u.numel()], inverse[u.numel():].view(other.shape)
        table = self.weight.as_subclass(torch.Tensor)
        space = self.manifold
        if self.optimizer is None:  # row-sgd: the batch's rows are the leaf; the step writes them back
            take = None if self._fused else getattr(self.manifold, "take_rows", None)
            if take is not None:  # rows in a narrower storage, and the manifold of that storage
                space, rows = take(self._table, ids)
            else:
                rows = table.detach().index_select(0, ids)
            rows.requires_grad_()
            self._rows = (ids, rows, space)
        else:
            rows = torch.nn.functional.embedding(ids, table, sparse=self.config.sparse)
        if self.config.max_step is not None and rows.requires_grad and not (self._fused and self.optimizer is None):
            points = rows.detach()  # the rows' values before any update (the hook runs before the step)
            rows.register_hook(lambda grad: self._clip_rows(space, points, grad))
        if self._fused:
            return poincare_rows_distance(self.manifold, rows, iu, io)
        x_u = rows[iu]
        return space.dist(x_u.unsqueeze(1) if other.dim() == 2 else x_u, rows[io])

    def _nearest(self, rows: torch.Tensor, m: int) -> torch.Tensor:
        """The ``m`` nodes nearest to each of ``rows`` under the current points (on the training device)."""
        return self._nearest_search()[0](rows, m)

    def _nearest_search(self):
        """``(nearest, rows per call)`` for the current points: the fused Poincaré search, the charted search
        of :mod:`embed.nearest` (candidates from the float64 Poincaré view, ranked by ``dist``) or, where
        that view cannot rank the points, every distance."""
        points = self.points
        if self._fused:
            return partial(poincare_nearest, self.manifold, points), 512
        charted = chart_nearest(self.manifold, points)
        if charted is not None:
            return charted, 512

        def exact(rows, m):
            x = points[rows.to(points.device)].unsqueeze(1)
            return torch.topk(self.manifold.dist(x, points.unsqueeze(0)), m, dim=1, largest=False).indices
        return exact, max(1, (1 << 22) // (points.shape[0] * self.manifold.storage_dim))

    def _refresh_hard(self) -> None:
        """Compute the nearest-node table; with ``relocate_leaves`` move the trapped leaves, then compute the
        table again if any moved (hard negatives must see the leaves' new neighbours)."""
        self._compute_table()
        cfg = self.config
        if cfg.relocate_leaves and self.epoch >= cfg.relocate_from and self._relocate_leaves():
            self._compute_table()

    def _compute_table(self) -> None:
        started = time.process_time()
        with torch.no_grad():
            self.task.refresh_hard(self.epoch, *self._nearest_search())
        self._record({"event": "hard_table", "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                      "candidates": self.config.hard_candidates, "table_cpu_seconds": time.process_time() - started})

    def relocate_leaves(self, *, fresh_table: bool = True) -> int:
        """Relocate the trapped leaves now (``TrainConfig.relocate_leaves``'s rule and placement, whatever
        that flag says), after computing the nearest-node table from the current points (``fresh_table``) or
        with the table in hand; returns how many moved. For probes of a checkpoint; :meth:`fit` does this
        by itself at each table refresh."""
        if not isinstance(self.task, _RankingTask):
            raise ValueError("leaf relocation needs the ranking loss")
        if fresh_table or self.task.hard is None:
            self._compute_table()
        return self._relocate_leaves()

    def _relocate_leaves(self) -> int:
        """Move the trapped leaves out beyond their parents (``TrainConfig.relocate_leaves``); returns how many."""
        started = time.process_time()
        leaves, parents = self.task.leaf_parents()
        table = self.task.hard[leaves]
        moved = torch.zeros(0, dtype=torch.int64)
        points = self.points
        manifold = self.manifold
        with torch.no_grad():
            for start in range(0, leaves.numel(), 4096):
                rows, anchor = leaves[start:start + 4096], parents[start:start + 4096]
                near = table[start:start + 4096].long()
                filled = (near != rows.unsqueeze(1)).to(points.device)  # a small graph's table pads with u
                x = points[rows.to(points.device)]
                d_near = manifold.dist(x.unsqueeze(1), points[near.to(points.device)])
                d_near = torch.where(filled, d_near, torch.zeros_like(d_near))
                d_parent = manifold.dist(x, points[anchor.to(points.device)])
                k = self.config.relocate_rank or near.shape[1]
                trapped = (d_parent > d_near.sort(dim=1).values[:, k - 1]).cpu()
                moved = torch.cat([moved, rows[trapped]])
            if moved.numel():
                self._place_beyond_parents(moved, parents[torch.searchsorted(leaves, moved)])
        self._record({"event": "relocate", "epoch": self.epoch, "leaves": leaves.numel(), "moved": moved.numel(),
                      "cpu_seconds": time.process_time() - started})
        return moved.numel()

    def _place_beyond_parents(self, rows: torch.Tensor, parents: torch.Tensor) -> None:
        r"""Put each leaf of ``rows`` at :math:`\exp_q(s\,\hat\zeta)`, :math:`q = \exp_p(\delta\,\hat\xi)`
        (``TrainConfig.relocate_leaves``); ``p`` its parent."""
        manifold, dtype = self.manifold, self.dtype
        tiny = torch.finfo(dtype).tiny

        def unit(x, v):
            return v / manifold.norm(x, v, keepdim=True).clamp_min(tiny)

        def random_tangent(x):
            return unit(x, manifold.proju(x, torch.randn(x.shape, generator=self.generator, dtype=dtype).to(x.device)))

        def outward(x):  # unit tangent pointing away from the origin (random at the origin itself)
            away = -manifold.logmap(x, manifold.origin(*x.shape[:-1], dtype=dtype, device=x.device))
            length = manifold.norm(x, away, keepdim=True)
            return torch.where(length > torch.finfo(dtype).eps, away / length.clamp_min(tiny), random_tangent(x))

        p = self.points[parents.to(self.device)]
        q = manifold.expmap(p, self.config.relocate_distance * outward(p))
        radial = outward(q)
        zeta = random_tangent(q)
        zeta = unit(q, zeta - manifold.inner(q, zeta, radial, keepdim=True) * radial)
        new = manifold.expmap(q, self.config.relocate_spread * zeta)
        self._table[rows.to(self.device)] = new
        for state in self.optimizer.state.values() if self.optimizer is not None else ():
            for value in state.values():
                if torch.is_tensor(value) and value.dim() and value.shape[0] == self.graph.num_nodes:
                    value[rows.to(value.device)] = 0

    def _lr(self, epoch: int) -> float:
        cfg = self.config
        if epoch < cfg.burnin_epochs:
            return cfg.lr * cfg.burnin_lr_factor
        span = max(cfg.epochs - cfg.burnin_epochs - 1, 1)
        progress = min(max(epoch - cfg.burnin_epochs, 0) / span, 1.0)
        return cfg.lr * (1 + (cfg.lr_final_factor - 1) * progress)

    def _clip_rows(self, manifold, points: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Scale each row's gradient so that an SGD step ``lr * |rgrad|_x`` is at most ``max_step`` (``manifold``:
        that of the rows' storage)."""
        norm = manifold.norm(points, manifold.egrad2rgrad(points, grad.clone()))
        limit = self.config.max_step / self._current_lr
        factor = (limit / norm.clamp_min(torch.finfo(norm.dtype).tiny)).clamp(max=1)
        return grad * factor.unsqueeze(-1)

    def _step(self, lr: float) -> float:
        self._current_lr = lr
        loss = self.task.loss(self._distance, self._plan, self.step_in_epoch, self.epoch, self.generator)
        value = float(loss.detach())
        if not math.isfinite(value):
            self._fail(f"the loss is {value}")
        if self.optimizer is None:
            loss.backward()
            ids, rows, space = self._rows
            self._rows = None
            with torch.no_grad():
                x = rows.detach()
                if self._fused:
                    new = poincare_sgd_rows(self.manifold, x, rows.grad, lr, self.config.max_step)
                else:
                    new = space.retr(x, -lr * space.egrad2rgrad(x, rows.grad))
                if space is self.manifold:
                    self.weight.index_copy_(0, ids, new)
                else:
                    space.put_rows(self._table, ids, new)
            return value
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return value

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, rows: int | None = None, distortion: bool = True) -> dict:
        """Metrics of the current points (:func:`evaluate_embedding`)."""
        return evaluate_embedding(self.points, self.manifold, self.graph, loss=self.config.loss,
                                  scale=self.config.distortion_scale, rows=rows, seed=self.config.seed,
                                  distortion=distortion)

    def _evaluate_now(self, final: bool) -> dict:
        started = time.process_time()
        self._check_points()
        cfg = self.config
        metrics = self.evaluate(rows=cfg.final_eval_rows if final else cfg.eval_rows,
                                distortion=final or cfg.eval_distortion)
        self._eval_cpu += time.process_time() - started
        record = {"event": "eval", "epoch": self.epoch, "step": self.global_step, **metrics,
                  "cpu_seconds": self._cpu(), "wall_seconds": self._wall(),
                  "train_cpu_seconds": self._cpu() - self._eval_cpu}
        self.history.append(record)
        self._record(record)
        target = self.config.target_map
        if target is not None and self.target is None and metrics["map"] is not None and metrics["map"] >= target:
            self.target = {"target_map": target, **{k: record[k] for k in (
                "epoch", "map", "mean_rank", "rows", "sampled", "cpu_seconds", "wall_seconds", "train_cpu_seconds")}}
            self._record({"event": "target", **self.target})
        return record

    # ------------------------------------------------------------------ the loop
    def request_stop(self) -> None:
        """Ask :meth:`fit` to stop after the current step (and write a checkpoint), as SIGINT/SIGTERM do."""
        self._stop_requested = True

    def fit(self, *, max_steps: int | None = None, max_seconds: float | None = None,
            callback: Callable[[Trainer], None] | None = None) -> TrainResult:
        """Train until ``config.epochs`` (or the target, a limit, or SIGINT).

        Parameters
        ----------
        max_steps : int or None
            Stop (with a checkpoint) after this many optimizer steps in this call.
        max_seconds : float or None
            Stop (with a checkpoint) after this many wall seconds in this call.
        callback : callable or None
            Called with the trainer after every optimizer step.
        """
        cfg = self.config
        self._cpu_start = time.process_time()
        self._wall_start = time.perf_counter()
        self._last_checkpoint_wall = time.perf_counter()
        self._stop_requested = False
        steps_here = 0
        stopped = "completed"
        self._record({"event": "start", "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                      "resumed_from": self._resumed_from, "nodes": self.graph.num_nodes,
                      "pairs": self.task.size if cfg.loss == "ranking" else None,
                      "manifold": self.manifold.spec(), "config": asdict(cfg)})
        previous_handler = self._install_interrupt_handler()
        bar = tqdm(total=cfg.epochs, initial=self.epoch, disable=not self.progress, desc="epochs", leave=False)
        try:
            while self.epoch < cfg.epochs:
                if self._plan is None:
                    self._apply_stage()
                    cfg = self.config
                    self._plan = self.task.plan(self.epoch, self.generator)
                    self.step_in_epoch = 0
                    self._loss_sum = 0.0
                if cfg.loss == "ranking" and self.task.hard_due(self.epoch, epoch_start=self.step_in_epoch == 0):
                    self._refresh_hard()
                lr = self._lr(self.epoch)
                for group in self.optimizer.param_groups if self.optimizer is not None else ():
                    group["lr"] = lr
                batches = -(-_plan_size(self._plan) // cfg.batch_size)
                while self.step_in_epoch < batches:
                    self._loss_sum += self._step(lr)
                    self.step_in_epoch += 1
                    self.global_step += 1
                    steps_here += 1
                    if callback is not None:
                        callback(self)
                    if self._stop_requested:
                        stopped = "interrupted"
                    elif max_steps is not None and steps_here >= max_steps:
                        stopped = "limit"
                    elif max_seconds is not None and time.perf_counter() - self._wall_start >= max_seconds:
                        stopped = "limit"
                    if stopped != "completed":
                        break
                    if (cfg.checkpoint_seconds is not None and self.step_in_epoch < batches
                            and time.perf_counter() - self._last_checkpoint_wall >= cfg.checkpoint_seconds):
                        self.save_checkpoint()
                if stopped != "completed" and self.step_in_epoch < batches:
                    break
                self.epoch += 1
                mean_loss = self._loss_sum / batches
                self._plan = None
                self.step_in_epoch = 0
                self._record({"event": "epoch", "epoch": self.epoch, "loss": mean_loss, "lr": lr,
                              "cpu_seconds": self._cpu(), "wall_seconds": self._wall()})
                last = self.epoch == cfg.epochs
                if (cfg.eval_every and self.epoch % cfg.eval_every == 0) or last:
                    record = self._evaluate_now(final=last)
                    bar.set_postfix(loss=f"{mean_loss:.4g}", map=f"{record['map']:.4f}")
                else:
                    bar.set_postfix(loss=f"{mean_loss:.4g}")
                bar.update(1)
                if cfg.stop_at_target and self.target is not None:
                    stopped = "target"
                if self.checkpoint_path is not None and (
                        last or stopped != "completed" or (cfg.checkpoint_every and self.epoch % cfg.checkpoint_every == 0)):
                    self.save_checkpoint()
                if stopped != "completed":
                    break
            if stopped in ("interrupted", "limit") and self._plan is not None:
                self.save_checkpoint()
        finally:
            bar.close()
            self._restore_interrupt_handler(previous_handler)
        result = TrainResult(
            points=self.points.clone(), manifold=self.manifold, epoch=self.epoch, step_in_epoch=self.step_in_epoch,
            history=list(self.history), target=self.target, stopped=stopped, cpu_seconds=self._cpu(),
            wall_seconds=self._wall(), eval_cpu_seconds=self._eval_cpu,
            final=self.history[-1] if self.history and self.history[-1]["epoch"] == self.epoch else None,
        )
        self._cpu_offset, self._wall_offset = result.cpu_seconds, result.wall_seconds
        self._record({"event": "end", "stopped": stopped, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                      "cpu_seconds": result.cpu_seconds, "wall_seconds": result.wall_seconds})
        return result

    def _apply_stage(self) -> None:
        """At the start of an epoch, switch to the settings ``config.stages`` schedules for it: the new
        config and a task built from it, as :meth:`resume` with those changes would make them (the
        nearest-node table is kept if its width is unchanged)."""
        changes = self.config.stage_changes(self.epoch)
        if not changes:
            return
        self.config = TrainConfig(**{**asdict(self.config), **changes})
        old, self.task = self.task, type(self.task)(self.graph, self.config)
        if isinstance(old, _RankingTask):
            self.task.keep_table(old.hard, old.hard_epoch)
        self._record({"event": "stage", "epoch": self.epoch, "changes": changes})

    def _install_interrupt_handler(self) -> dict:
        """Ctrl-C (SIGINT) and SIGTERM stop after the current step with a checkpoint; a second one stops at
        once. Handlers are only installed in the main thread and over the default ones (a background job
        started with ``&`` ignores SIGINT: stop it with SIGTERM)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}

        def handler(signum, frame):
            if self._stop_requested:  # the second signal: stop at once
                self._restore_interrupt_handler(previous)
                raise KeyboardInterrupt
            self._stop_requested = True

        for number, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
            if signal.getsignal(number) is default:
                previous[number] = default
                signal.signal(number, handler)
        return previous

    @staticmethod
    def _restore_interrupt_handler(previous: dict) -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    # ------------------------------------------------------------------ output
    def save_embedding(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """Write the points as an embedding file (``hyperbolic.io``), with the run config."""
        from hyperbolic.io import save_embedding

        if not is_hyperbolic(self.manifold):
            raise ValueError(f"embedding files hold hyperbolic manifolds; {self.manifold.name!r} cannot be saved")
        save_embedding(path, self.points, self.manifold, self.graph.names,
                       config={"method": "train", **asdict(self.config), **(extra or {})})


def json_default(value):
    """``json.dumps``' ``default``: tensors as lists, paths as text."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

