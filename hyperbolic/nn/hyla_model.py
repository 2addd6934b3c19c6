r"""HyLa-SGC node classification: a hyperbolic embedding, random Laplacian features and a linear classifier.

.. math::

    Z = (S^K X)\,\Phi(E) \in \mathbb{R}^{N \times D}, \qquad \text{logits} = Z W^\top + c,

with :math:`S = \tilde D^{-1/2}(A + I)\tilde D^{-1/2}` (symmetric normalisation with self loops),
:math:`X` the raw node features (one embedding row per feature) or, without features, the identity (one
embedding row per node), :math:`E` an embedding in :math:`H^n` trained jointly with the classifier, and
:math:`\Phi` the random Laplacian features of :class:`~hyperbolic.nn.hyla.RandomLaplacianFeatures`
(or Euclidean random Fourier features for the baseline). Training is full batch: each epoch is one step of
Riemannian SGD on :math:`E` and one Adam (or momentum SGD) step on the classifier, with cross-entropy on the
training nodes; the published protocol reports the test accuracy after the last epoch (no early stopping).

:data:`PRESETS` holds the published tuned hyperparameters (``../shared/notes/hyla.md`` §4).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace

import geoopt
import torch
import torch.nn.functional as F
from torch import nn

from ..manifold import HyperbolicManifold
from ..math import lorentz as lorentz_kernel
from ..poincare import PoincareBall
from .hyla import OFFICIAL_MAX_NORM, RandomFourierFeatures, RandomLaplacianFeatures

__all__ = [
    "HyLaConfig",
    "PRESETS",
    "preset",
    "normalized_adjacency",
    "sgc_propagate",
    "HyLaSGC",
    "TrainResult",
    "linear_warmup",
    "train_node_classifier",
]


# --------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class HyLaConfig:
    """Hyperparameters of one HyLa-SGC run.

    Attributes
    ----------
    he_dim : int
        Hyperbolic dimension ``n`` of the embedding.
    hyla_dim : int
        Number of random features ``D``.
    order : int
        Propagation steps ``K``.
    lambda_scale : float
        Standard deviation of the frequencies.
    lr_embedding, lr_classifier : float
        Riemannian SGD and Adam learning rates.
    epochs : int
    use_features : bool
        One embedding row per input feature (``True``) or per node (``False``).
    weight_decay : float
        L2 penalty on the classifier (the optimiser's ``weight_decay``); 0 in every published preset.
    classifier_optimizer : {"adam", "sgd"}
        The classifier's optimiser (see :func:`train_node_classifier`); ``"adam"`` in every published preset.
    """

    he_dim: int
    hyla_dim: int
    order: int
    lambda_scale: float
    lr_embedding: float
    lr_classifier: float
    epochs: int = 100
    use_features: bool = True
    weight_decay: float = 0.0
    classifier_optimizer: str = "adam"

    def as_dict(self) -> dict:
        return asdict(self)


#: Published tuned hyperparameters, ``PRESETS[dataset][he_dim]``. Disease is listed feature-free
#: (``use_features=False``): its feature file is missing upstream, so the published feature setting
#: cannot be run; its row keeps the published numbers otherwise.
PRESETS: dict[str, dict[int, HyLaConfig]] = {
    "cora": {
        16: HyLaConfig(16, 100, 2, 0.01, 0.05, 0.01),
        50: HyLaConfig(50, 250, 2, 0.5, 0.01, 0.01),
    },
    "citeseer": {
        16: HyLaConfig(16, 500, 5, 0.01, 0.1, 0.001),
        50: HyLaConfig(50, 1000, 5, 0.1, 0.001, 0.001),
    },
    "pubmed": {
        16: HyLaConfig(16, 250, 5, 0.01, 0.5, 0.01),
        50: HyLaConfig(50, 500, 10, 0.01, 0.1, 0.01),
    },
    "airport": {
        16: HyLaConfig(16, 1000, 2, 0.01, 0.5, 0.1, use_features=False),
        50: HyLaConfig(50, 100, 2, 0.01, 1.0, 0.01, use_features=False),
    },
    "disease": {
        16: HyLaConfig(16, 500, 5, 0.1, 0.1, 1e-4, use_features=False),
        50: HyLaConfig(50, 500, 5, 0.01, 0.01, 1e-4, use_features=False),
    },
}


def preset(dataset: str, dim: int = 16, **overrides) -> HyLaConfig:
    """The published configuration of ``dataset`` at embedding dimension ``dim`` (16 or 50), with
    ``overrides`` applied (field names of :class:`HyLaConfig`)."""
    key = {"disease_nc": "disease"}.get(dataset, dataset)
    if key not in PRESETS:
        raise ValueError(f"no preset for {dataset!r}; known: {', '.join(PRESETS)}")
    if dim not in PRESETS[key]:
        raise ValueError(f"no {dataset} preset at dimension {dim}; known: {sorted(PRESETS[key])}")
    return replace(PRESETS[key][dim], **overrides)


# --------------------------------------------------------------------------- propagation
def normalized_adjacency(
    edge_index: torch.Tensor, num_nodes: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    r"""Sparse :math:`S = \tilde D^{-1/2}(A + I)\tilde D^{-1/2}`, ``(N, N)``.

    ``edge_index`` ``(2, E)`` lists undirected edges (either or both orientations); ``A`` is their 0/1
    symmetric adjacency, in which a self loop of the data counts once, so such a node carries 2 on the
    diagonal of :math:`A + I` (as the Planetoid / HGCN preprocessing does).
    """
    edge_index = torch.as_tensor(edge_index, dtype=torch.long)
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"edge_index holds node ids outside 0..{num_nodes - 1}")
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    shape = (num_nodes, num_nodes)
    pattern = torch.sparse_coo_tensor(both, torch.ones(both.shape[1], dtype=dtype), shape, check_invariants=True)
    edges = pattern.coalesce().indices()
    loops = torch.arange(num_nodes).repeat(2, 1)
    augmented = torch.sparse_coo_tensor(
        torch.cat([edges, loops], dim=1),
        torch.ones(edges.shape[1] + num_nodes, dtype=dtype),
        shape,
        check_invariants=True,
    ).coalesce()
    degree = torch.zeros(num_nodes, dtype=dtype).index_add_(0, augmented.indices()[0], augmented.values())
    scale = degree.rsqrt()
    row, col = augmented.indices()
    values = scale[row] * augmented.values() * scale[col]
    return torch.sparse_coo_tensor(augmented.indices(), values, shape, check_invariants=True).coalesce()


def sgc_propagate(adjacency: torch.Tensor, features: torch.Tensor | None, order: int) -> torch.Tensor:
    r"""Dense :math:`S^K X` (``(N, F)``), or :math:`S^K` (``(N, N)``) when ``features`` is ``None``.

    Parameters
    ----------
    adjacency : sparse Tensor ``(N, N)``
        :math:`S` from :func:`normalized_adjacency`.
    features : Tensor ``(N, F)`` or None
    order : int
        ``K >= 0``.
    """
    if not isinstance(order, int) or order < 0:
        raise ValueError(f"order must be an integer >= 0, got {order!r}")
    n = adjacency.shape[0]
    out = torch.eye(n, dtype=adjacency.dtype) if features is None else features.to(adjacency.dtype)
    if out.is_sparse:
        out = out.to_dense()
    if out.shape[0] != n:
        raise ValueError(f"features have {out.shape[0]} rows for a graph of {n} nodes")
    for _ in range(order):
        out = torch.sparse.mm(adjacency, out)
    return out


# --------------------------------------------------------------------------- the model
RNGS = ("separate", "published")
STANDARDIZE_EPS = 1e-12


class HyLaSGC(nn.Module):
    r"""HyLa-SGC: ``logits = Linear((S^K X) Φ(E))`` with a trainable embedding ``E``.

    Parameters
    ----------
    n_rows : int
        Embedding rows ``F`` (input features, or nodes in the feature-free setting).
    n_classes : int
        ``C``.
    features : RandomLaplacianFeatures or RandomFourierFeatures
        The feature map; its ``manifold`` is the embedding's (a
        :class:`~hyperbolic.manifold.HyperbolicManifold`, or Euclidean for the RFF baseline).
    init_scale : float
        Initial points: ball coordinates (Euclidean coordinates for RFF) drawn from
        :math:`U(-a, a)` per coordinate, mapped into the manifold.
    seed : int, optional
        Seed of the initialisation of the embedding and the classifier (default 0).
    rng : {"separate", "published"}
        ``"separate"``: the embedding and the classifier are drawn from a generator seeded with ``seed``;
        the feature map keeps its own draws. ``"published"``: everything is drawn from one generator
        seeded with ``seed`` in the published code's order (the global torch generator after
        ``torch.manual_seed(seed)``, float64): ``nn.Embedding(n_rows, n)``'s own :math:`N(0, 1)` fill
        (overwritten), the embedding :math:`U(-a, a)`, then the feature map's λ, ω, b
        (:meth:`RandomLaplacianFeatures.reset_parameters` with ``order="published"``, replacing the draws
        of its own seed), then ``nn.Linear``'s default initialisation. With ``seed=43`` and the presets this
        reproduces the published runs exactly (Cora 82.60 % test / 78.20 % validation, Citeseer 72.00 % /
        73.20 %). Needs :class:`RandomLaplacianFeatures` with uniform boundary points.
    center : bool
        Subtract from each feature its mean over the embedding rows,
        :math:`\Phi \leftarrow \Phi - \mathbf 1\bar\phi^\top` (off in the published model). At
        initialisation all rows are near the origin, so every row has nearly the same features
        :math:`\phi_k \approx \cos b_k`; their common part makes Adam's first sign-like steps on the
        classifier move all logits together by about ``lr * Σ_k |cos b_k|`` (64 for Airport's ``D = 1000``,
        ``lr = 0.1``), the loss spikes of the published Airport run. Centring removes that direction.
    standardize : bool
        Centre each feature and divide it by its standard deviation over the embedding rows,
        :math:`\Phi_{:k} \leftarrow (\Phi_{:k} - \bar\phi_k) / (s_k + \epsilon)`, recomputed at every
        forward pass (the statistics are part of the graph; :math:`\epsilon = 10^{-12}`). Off in the
        published model; implies ``center``.
    mean_feature : bool
        Centre the features (implies ``center``) and append one constant feature :math:`1`, so that
        :math:`\text{logits} = S^K X\,[\Phi - \mathbf 1\bar\phi^\top,\ \mathbf 1]\,W^\top + c`. The published
        logits split as :math:`S^K X(\Phi - \mathbf 1\bar\phi^\top)W^\top + (S^K X\mathbf 1)(W\bar\phi)^\top`:
        the common part reaches each node through its propagated row sum :math:`S^K X\mathbf 1` (for
        Airport, without features, a degree signal) with the per-class weight :math:`W\bar\phi`, which
        Adam moves by up to ``lr * Σ_k |φ̄_k|`` per step. Here that weight is the last column of
        :math:`W`, a free parameter moved by about ``lr`` per Adam step: the model class contains the
        published one, and centring no longer discards the row-sum signal. The classifier then has
        ``D + 1`` inputs.

    Attributes
    ----------
    embedding : geoopt.ManifoldParameter ``(n_rows, storage)``
    classifier : nn.Linear ``(D -> C)``

    Shapes
    ------
    input: ``propagated`` ``(B, n_rows)`` rows of :math:`S^K X` -> logits ``(B, C)``.
    """

    def __init__(
        self,
        n_rows: int,
        n_classes: int,
        features: RandomLaplacianFeatures | RandomFourierFeatures,
        *,
        init_scale: float = 1e-4,
        seed: int | None = None,
        center: bool = False,
        standardize: bool = False,
        mean_feature: bool = False,
        rng: str = "separate",
    ):
        super().__init__()
        for value, what in ((n_rows, "n_rows"), (n_classes, "n_classes")):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{what} must be a positive integer, got {value!r}")
        if not isinstance(features, (RandomLaplacianFeatures, RandomFourierFeatures)):
            raise TypeError(f"features must be RandomLaplacianFeatures or RandomFourierFeatures, got {type(features).__name__}")
        if not (math.isfinite(init_scale) and 0 < init_scale < 0.5):
            raise ValueError(f"init_scale must be in (0, 0.5), got {init_scale}")
        if rng not in RNGS:
            raise ValueError(f"rng must be one of {RNGS}, got {rng!r}")
        if rng == "published" and not (isinstance(features, RandomLaplacianFeatures) and features.boundary == "uniform"):
            raise ValueError("rng='published' needs RandomLaplacianFeatures with boundary='uniform'")
        self.n_rows = n_rows
        self.n_classes = n_classes
        self.init_scale = float(init_scale)
        self.seed = seed
        self.standardize = bool(standardize)
        self.mean_feature = bool(mean_feature)
        self.center = bool(center) or self.standardize or self.mean_feature
        self.rng = rng
        self.features = features
        dtype = features.phases.dtype
        manifold = features.manifold
        storage = manifold.storage_dim if isinstance(manifold, HyperbolicManifold) else features.dim_in
        self.embedding = geoopt.ManifoldParameter(torch.empty(n_rows, storage, dtype=dtype), manifold=manifold)
        self.classifier = nn.Linear(features.n_features + self.mean_feature, n_classes, dtype=dtype)
        self.reset_parameters()

    @property
    def manifold(self):
        return self.features.manifold

    def reset_parameters(self) -> None:
        """Redraw the embedding and the classifier from ``seed``; with ``rng="published"`` also the feature
        map's λ, ω, b, all from one generator in the published order (see the class docstring). The feature
        map's fitted ``log_shift`` (``log_scale``) is cleared in either case."""
        g = torch.Generator().manual_seed(0 if self.seed is None else int(self.seed))
        dim = self.features.dim_in
        a = self.init_scale
        if self.rng == "published":
            torch.empty(self.n_rows, dim, dtype=torch.float64).normal_(generator=g)  # nn.Embedding's own init
            coords = torch.empty(self.n_rows, dim, dtype=torch.float64).uniform_(-a, a, generator=g)
            self.features.reset_parameters(generator=g, order="published")
        else:
            coords = (2 * torch.rand(self.n_rows, dim, dtype=torch.float64, generator=g) - 1) * a
            if hasattr(self.features, "log_shift"):
                self.features.log_shift.fill_(math.nan)
        manifold = self.manifold
        with torch.no_grad():
            if isinstance(manifold, PoincareBall):
                points = manifold.scale(coords) * coords  # exact at unit curvature, as the published draws
            elif isinstance(manifold, HyperbolicManifold):
                R = manifold.scale(coords)
                points = manifold.from_lorentz(R * lorentz_kernel.from_poincare(coords))
            else:
                points = coords
            self.embedding.copy_(points.to(self.embedding))
            # nn.Linear's default initialisation, drawn from the seeded generator.
            weight, bias = self.classifier.weight, self.classifier.bias
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=g)
            bound = 1 / math.sqrt(weight.shape[1])
            nn.init.uniform_(bias, -bound, bound, generator=g)

    def embed(self) -> torch.Tensor:
        r""":math:`\Phi(E)`, ``(n_rows, D)`` (column-centred when ``center``, and scaled to unit
        column standard deviation when ``standardize``)."""
        phi = self.features(self.embedding)
        if not self.center:
            return phi
        phi = phi - phi.mean(0, keepdim=True)
        if self.standardize:
            phi = phi / (phi.std(0, keepdim=True) + STANDARDIZE_EPS)
        if self.mean_feature:
            phi = torch.cat([phi, phi.new_ones(phi.shape[0], 1)], dim=1)
        return phi

    def scores(self) -> torch.Tensor:
        r""":math:`\Phi(E) W^\top`, ``(n_rows, C)``: the classifier applied to each row's features."""
        return F.linear(self.embed(), self.classifier.weight)

    def forward(self, propagated: torch.Tensor, scores: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, C)`` of the rows ``propagated`` ``(B, n_rows)`` of :math:`S^K X` (dense or sparse),
        reusing ``scores`` (from :meth:`scores`) when given."""
        if propagated.shape[-1] != self.n_rows:
            raise ValueError(f"propagated rows must have {self.n_rows} columns, got shape {tuple(propagated.shape)}")
        # (P Φ) Wᵀ computed as P (Φ Wᵀ): the same logits with the propagation applied to C columns, not D.
        if scores is None:
            scores = self.scores()
        if not propagated.is_sparse and propagated.layout == torch.strided:
            propagated = propagated.to(scores.dtype)
        return propagated @ scores + self.classifier.bias

    def extra_repr(self) -> str:
        text = f"n_rows={self.n_rows}, n_classes={self.n_classes}, init_scale={self.init_scale:g}"
        text += ", standardize=True" if self.standardize else ", center=True" if self.center else ""
        text += ", mean_feature=True" if self.mean_feature else ""
        text += ", rng='published'" if self.rng == "published" else ""
        return text + (f", seed={self.seed}" if self.seed is not None else "")


# --------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    """Outcome of :func:`train_node_classifier`.

    Attributes
    ----------
    losses : list of float
        Training cross-entropy at each epoch (before that epoch's step).
    train_acc, val_acc, test_acc : float
        Accuracies after the last epoch.
    seconds : float
        Wall time of the training loop and the final evaluation.
    unstable_epochs : list of int
        Epochs after the 10th whose loss exceeds the first epoch's.
    """

    losses: list[float] = field(default_factory=list)
    train_acc: float = math.nan
    val_acc: float = math.nan
    test_acc: float = math.nan
    seconds: float = math.nan
    unstable_epochs: list[int] = field(default_factory=list)


UPDATES = ("auto", "projected", "riemannian")
CLASSIFIER_OPTIMIZERS = ("adam", "sgd")
#: Momentum of the ``"sgd"`` classifier optimiser.
SGD_MOMENTUM = 0.9
WARMUPS = ("classifier", "embedding", "both")


def _projected_step(embedding: geoopt.ManifoldParameter, lr: float) -> None:
    """The published update on the ball: :math:`x \\leftarrow x - \\eta\\,\\nabla_E f\\,(1 - \\lVert x\\rVert^2)^2/4`,
    then renormalised to norm :math:`1 - 10^{-5}` (geoopt's ball retraction and projection)."""
    manifold = embedding.manifold
    with torch.no_grad():
        rgrad = manifold.egrad2rgrad(embedding, embedding.grad)
        moved = embedding - lr * rgrad
        R = manifold.scale(moved)
        norm = moved.norm(dim=-1, keepdim=True)
        limit = OFFICIAL_MAX_NORM * R
        moved = torch.where(norm > limit, moved * (limit / norm.clamp_min(1e-300)), moved)
        embedding.copy_(moved)


def _rows(propagated: torch.Tensor, idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Rows ``idx`` of :math:`S^K X`, as a sparse CSR matrix when at most a quarter of it is non-zero
    (the product with the ``(n_rows, C)`` scores then reads a fraction of the memory)."""
    rows = propagated[idx].to(dtype)
    if rows.dim() == 2 and rows.numel() and float((rows != 0).double().mean()) <= 0.25:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return rows.to_sparse_csr()
    return rows


def linear_warmup(epoch: int, warmup_epochs: int) -> float:
    r"""Learning-rate factor of a linear warm-up, :math:`\min(1, (t + 1)/W)` at epoch :math:`t` (0-based).

    ``warmup_epochs = 0`` means no warm-up (factor 1 throughout); with ``W > 0`` the first step is taken at
    ``lr / W`` and the full rate is reached at epoch ``W - 1``.
    """
    if not isinstance(warmup_epochs, int) or isinstance(warmup_epochs, bool) or warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}")
    return 1.0 if warmup_epochs == 0 else min(1.0, (epoch + 1) / warmup_epochs)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(-1) == labels).double().mean()) if labels.numel() else math.nan


def train_node_classifier(
    model: HyLaSGC,
    propagated: torch.Tensor,
    labels: torch.Tensor,
    train_idx: torch.Tensor,
    val_idx: torch.Tensor,
    test_idx: torch.Tensor,
    *,
    epochs: int,
    lr_embedding: float,
    lr_classifier: float,
    weight_decay: float = 0.0,
    classifier_optimizer: str = "adam",
    update: str = "auto",
    warmup_epochs: int = 0,
    warmup: str = "classifier",
    clip_classifier: float | None = None,
    clip_embedding: float | None = None,
    callback=None,
) -> TrainResult:
    r"""Full-batch joint training; accuracies after the last epoch.

    Each epoch: cross-entropy on the training rows, backward, one step of Riemannian SGD on the embedding and
    one Adam (by default, as published) or momentum-SGD step on the classifier. Only the training rows of
    :math:`S^K X` enter the forward pass; validation and test rows are evaluated once, at the end.

    Parameters
    ----------
    model : HyLaSGC
    propagated : Tensor ``(N, n_rows)``
        :math:`S^K X` for all nodes.
    labels : LongTensor ``(N,)``
    train_idx, val_idx, test_idx : LongTensor
    epochs : int
    lr_embedding, lr_classifier : float
    weight_decay : float
        L2 penalty :math:`\tfrac{w}{2}\lVert\theta\rVert^2` on the classifier's weight and bias (added to the
        gradient before the optimiser's moments); ``0`` (default) is the published protocol.
    classifier_optimizer : {"adam", "sgd"}
        ``"adam"`` (default, published): ``torch.optim.Adam``, whose first steps are about ``lr`` per
        coordinate whatever the gradient's size. ``"sgd"``: ``torch.optim.SGD`` with heavy-ball momentum
        :data:`SGD_MOMENTUM`, :math:`v \leftarrow 0.9\,v + g,\ \theta \leftarrow \theta - \eta v`, whose
        steps scale with the gradient. ``weight_decay`` and the warm-up apply to either.
    update : {"auto", "projected", "riemannian"}
        ``"projected"`` (Poincaré ball only): the published code's step (:func:`_projected_step`);
        ``"riemannian"``: ``geoopt.optim.RiemannianSGD`` with the manifold's own retraction (its exact
        exponential map; plain SGD for Euclidean embeddings); ``"auto"``: projected on the ball,
        Riemannian otherwise.
    warmup_epochs : int
        Linear learning-rate warm-up over the first ``W`` epochs (:func:`linear_warmup`): epoch ``t``
        steps with ``lr * min(1, (t + 1)/W)``. ``0`` (default, the published protocol): none.
    warmup : {"classifier", "embedding", "both"}
        Which learning rate the warm-up scales: Adam's on the classifier, the embedding's, or both.
    clip_classifier, clip_embedding : float, optional
        Clip the gradient of the classifier (weight and bias together) / of the embedding to this global
        Euclidean norm before the step (``torch.nn.utils.clip_grad_norm_``); ``None`` (default): no clipping.
        Adam's step is invariant to a constant rescaling of the gradient, so the classifier clip only acts
        through the changing ratio of clipped to unclipped steps in Adam's moment estimates.
    callback : callable, optional
        Called as ``callback(epoch, loss)`` after each epoch.
    """
    if update not in UPDATES:
        raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
    if classifier_optimizer not in CLASSIFIER_OPTIMIZERS:
        raise ValueError(f"classifier_optimizer must be one of {CLASSIFIER_OPTIMIZERS}, got {classifier_optimizer!r}")
    if warmup not in WARMUPS:
        raise ValueError(f"warmup must be one of {WARMUPS}, got {warmup!r}")
    linear_warmup(0, warmup_epochs)  # validates warmup_epochs
    for value, what in ((clip_classifier, "clip_classifier"), (clip_embedding, "clip_embedding")):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{what} must be a positive finite number or None, got {value!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    on_ball = isinstance(model.manifold, PoincareBall)
    if update == "auto":
        update = "projected" if on_ball else "riemannian"
    if update == "projected" and not on_ball:
        raise ValueError("update='projected' is the published ball update; use 'riemannian' on other manifolds")
    labels = labels.to(torch.long)
    dtype = model.embedding.dtype
    rows_train = _rows(propagated, train_idx, dtype)
    y_train = labels[train_idx]
    if classifier_optimizer == "adam":
        optimiser_c = torch.optim.Adam(model.classifier.parameters(), lr=lr_classifier, weight_decay=weight_decay)
    else:
        optimiser_c = torch.optim.SGD(model.classifier.parameters(), lr=lr_classifier, momentum=SGD_MOMENTUM,
                                      weight_decay=weight_decay)
    optimiser_e = None if update == "projected" else geoopt.optim.RiemannianSGD([model.embedding], lr=lr_embedding)
    result = TrainResult()
    started = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        optimiser_c.zero_grad()
        model.embedding.grad = None
        loss = F.cross_entropy(model(rows_train), y_train)
        loss.backward()
        factor = linear_warmup(epoch, warmup_epochs)
        lr_e = lr_embedding * (factor if warmup in ("embedding", "both") else 1.0)
        lr_c = lr_classifier * (factor if warmup in ("classifier", "both") else 1.0)
        if clip_embedding is not None:
            nn.utils.clip_grad_norm_([model.embedding], clip_embedding)
        if clip_classifier is not None:
            nn.utils.clip_grad_norm_(model.classifier.parameters(), clip_classifier)
        if optimiser_e is None:
            _projected_step(model.embedding, lr_e)
        else:
            for group in optimiser_e.param_groups:
                group["lr"] = lr_e
            optimiser_e.step()
        for group in optimiser_c.param_groups:
            group["lr"] = lr_c
        optimiser_c.step()
        result.losses.append(float(loss.detach()))
        if callback is not None:
            callback(epoch, result.losses[-1])
    model.eval()
    with torch.no_grad():
        scores = model.scores()
        for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
            logits = model(_rows(propagated, idx, dtype), scores)
            setattr(result, f"{name}_acc", _accuracy(logits, labels[idx]))
    result.seconds = time.perf_counter() - started
    first = result.losses[0]
    result.unstable_epochs = [e for e, value in enumerate(result.losses) if e >= 10 and not value <= first]
    return result

