r"""h-MDS: hyperbolic multidimensional scaling (Sala, De Sa, Gu & Ré 2018), as a scikit-learn estimator.

Given all-pairs distances :math:`d_{ij}` and a scale :math:`s`, find points of :math:`H^k` whose distances
approximate :math:`s\,d_{ij}`. For points on the hyperboloid :math:`\cosh d_{ij} = x_{0i} x_{0j} -
\langle x_i, x_j\rangle`, so with :math:`Y = \cosh(s\,d)`

.. math:: -Y = X X^\top - x_0 x_0^\top .

**Simple method** (published): take the top-``n_components`` eigenpairs of :math:`-Y` (by magnitude, as
the published code; or the largest ones with ``selection="positive"``), keep those with a positive
eigenvalue, :math:`X = U\,\mathrm{diag}(\sqrt\lambda)`: spatial hyperboloid coordinates, time coordinate
:math:`\sqrt{1 + \lVert x\rVert^2}`. When the points are centred (:math:`X^\top x_0 = 0`) the positive
spectrum of :math:`-Y` is exactly :math:`X X^\top`: exact recovery up to an isometry. Keeping fewer
directions is the dimensionality reduction (a PCA of :math:`-Y`).

**Exact-centring variant** (published): :math:`Z = (\cosh(s d) - 1)/2`; Perron pair :math:`(\lambda, u)` of
:math:`Z`; :math:`b = 1 + (\sum u)^2/(\lambda u^\top u)`, :math:`\alpha = b - \sqrt{b^2 - 1}`,
:math:`u_s = u\lambda(1-\alpha)/\sum u`, :math:`\delta = (u_s + 1)/(1 + \alpha)`; :math:`Z_{ij} \leftarrow
Z_{ij}/(\delta_i\delta_j)`; double centring; :math:`-Z/2`; top eigenpairs, positive ones kept;
:math:`U\,\mathrm{diag}(\sqrt\lambda)` are Poincaré-ball coordinates (converted to the hyperboloid here).

With ``precision`` (bits) every step runs in mpmath (:func:`mpmath.eigsy`, cubic in the number of points in
pure Python: practical up to a few hundred points) and the points are also kept exactly, as mpmath
reference tuples, for :meth:`HMDS.to_manifold`.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

__all__ = ["HMDS", "hmds_graph", "evaluate_hmds", "COLLAPSE_BELOW"]

_METHODS = ("simple", "exact-centring")
_SELECTIONS = ("magnitude", "positive")
_SOLVERS = ("auto", "dense", "arpack")
# cosh(t) overflows float64 beyond t = 710.
_COSH_LIMIT = 709.0


class HMDS(BaseEstimator):
    """Hyperbolic MDS.

    Parameters
    ----------
    n_components : int
        Target dimension ``k`` (eigen-directions considered; those with a non-positive eigenvalue are
        dropped, see ``n_positive_``).
    scale : float
        Distances are multiplied by ``scale`` before embedding; embedded distances divided by it compare
        with the input.
    method : {"simple", "exact-centring"}
        The published simple eigen-method or the exact-centring variant (module docstring).
    selection : {"magnitude", "positive"}
        Which eigenpairs: the ``n_components`` largest in magnitude, of which the positive ones are kept
        (published), or the ``n_components`` largest (all positive ones up to ``n_components``).
    metric : str
        ``"precomputed"``: ``X`` is the ``(n, n)`` distance matrix. Any other value is a metric of
        :func:`sklearn.metrics.pairwise_distances` computing distances between the rows of ``X``.
    precision : int or None
        Bits of mpmath precision for the whole computation; None for float64 (NumPy/SciPy).
    eigen_solver : {"auto", "dense", "arpack"}
        float64 eigen-solver: dense symmetric (exact, cubic) or ARPACK (iterative, for large ``n``;
        started from a vector drawn with ``random_state``). "auto": dense up to 2,000 points.
    random_state : int, RandomState or None
        Seeds the ARPACK start vector.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
        Spatial hyperboloid coordinates at curvature -1 (time coordinate ``sqrt(1 + |x|^2)``); columns of
        dropped directions are zero.
    eigenvalues_ : ndarray of shape (n_components,)
        The selected eigenvalues, in selection order (non-positive ones included).
    n_positive_ : int
        Directions kept (positive eigenvalues).
    reference_points_ : list of tuple or None
        With ``precision``: the points as exact mpmath Lorentz tuples ``(x0, x1, ..., xk)``.
    n_features_in_ : int
        Columns of the input.
    """

    def __init__(self, n_components=2, *, scale=1.0, method="simple", selection="magnitude", metric="precomputed",
                 precision=None, eigen_solver="auto", random_state=None):
        self.n_components = n_components
        self.scale = scale
        self.method = method
        self.selection = selection
        self.metric = metric
        self.precision = precision
        self.eigen_solver = eigen_solver
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        if isinstance(self.n_components, bool) or not isinstance(self.n_components, int | np.integer) \
                or self.n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {self.n_components!r}")
        if not isinstance(self.scale, int | float | np.floating) or not math.isfinite(self.scale) or self.scale <= 0:
            raise ValueError(f"scale must be a positive finite number, got {self.scale!r}")
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        if self.selection not in _SELECTIONS:
            raise ValueError(f"selection must be one of {_SELECTIONS}, got {self.selection!r}")
        if self.eigen_solver not in _SOLVERS:
            raise ValueError(f"eigen_solver must be one of {_SOLVERS}, got {self.eigen_solver!r}")
        if self.precision is not None and (isinstance(self.precision, bool)
                                           or not isinstance(self.precision, int | np.integer)
                                           or self.precision < 53):
            raise ValueError(f"precision must be None or a number of bits >= 53, got {self.precision!r}")

    def _distances(self, X):
        if self.metric != "precomputed":
            from sklearn.metrics import pairwise_distances
            from sklearn.utils import check_array

            X = check_array(X, dtype=np.float64)
            self.n_features_in_ = X.shape[1]
            return pairwise_distances(X, metric=self.metric)
        if self.precision is not None and not isinstance(X, np.ndarray | torch.Tensor):
            rows = [list(row) for row in X]
            n = len(rows)
            if any(len(row) != n for row in rows):
                raise ValueError("a precomputed distance matrix must be square")
            self.n_features_in_ = n
            return rows  # kept as given (e.g. mpmath numbers) for the high-precision path
        D = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
        if D.ndim != 2 or D.shape[0] != D.shape[1]:
            raise ValueError(f"a precomputed distance matrix must be square, got shape {D.shape}")
        D = D.astype(np.float64)
        if not np.isfinite(D).all():
            i, j = np.argwhere(~np.isfinite(D))[0]
            raise ValueError(f"distance matrix holds a non-finite value at ({i}, {j}) "
                             "(a disconnected graph? embed each component separately)")
        self.n_features_in_ = D.shape[1]
        return D

    @staticmethod
    def _validate_matrix(D, n, get) -> None:
        if n < 2:
            raise ValueError(f"h-MDS needs at least 2 points, got n_samples={n}")
        for i in range(n):
            if get(i, i) != 0:
                raise ValueError(f"distance matrix has a non-zero diagonal entry at ({i}, {i})")
        for i in range(n):
            for j in range(i + 1, n):
                a, b = get(i, j), get(j, i)
                if a < 0:
                    raise ValueError(f"distance matrix has a negative entry at ({i}, {j})")
                if abs(a - b) > 1e-12 * max(abs(a), abs(b), 1):
                    raise ValueError(f"distance matrix is not symmetric at ({i}, {j}): {a} vs {b}")

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Compute the embedding; returns ``self``."""
        self._check_params()
        D = self._distances(X)
        if isinstance(D, list):
            self._fit_mp(D)
        else:
            n = D.shape[0]
            if n < 2:
                raise ValueError(f"h-MDS needs at least 2 points, got n_samples={n}")
            if np.any(np.diag(D) != 0):
                raise ValueError("distance matrix has a non-zero diagonal")
            if np.any(D < 0):
                i, j = np.argwhere(D < 0)[0]
                raise ValueError(f"distance matrix has a negative entry at ({i}, {j})")
            if not np.allclose(D, D.T, rtol=1e-12, atol=0):
                i, j = np.argwhere(~np.isclose(D, D.T, rtol=1e-12, atol=0))[0]
                raise ValueError(f"distance matrix is not symmetric at ({i}, {j}): {D[i, j]} vs {D[j, i]}")
            if self.precision is not None:
                self._fit_mp([[float(v) for v in row] for row in D])
            else:
                self._fit_float(D)
        return self

    def fit_transform(self, X, y=None):
        """Fit and return ``embedding_``."""
        return self.fit(X).embedding_

    def _select(self, values: np.ndarray) -> np.ndarray:
        k = min(int(self.n_components), len(values))
        key = -np.abs(values) if self.selection == "magnitude" else -values
        return np.argsort(key, kind="stable")[:k]

    def _fit_float(self, D: np.ndarray) -> None:
        s = float(self.scale)
        n = D.shape[0]
        if s * D.max() > _COSH_LIMIT:
            raise ValueError(
                f"scale * max distance = {s * D.max():.6g} overflows cosh in float64 (limit {_COSH_LIMIT}); "
                "use a smaller scale or precision=<bits>"
            )
        if self.method == "simple":
            matrix = -np.cosh(s * D)
        else:
            Z = np.sinh(s * D / 2) ** 2  # = (cosh(s d) - 1) / 2 without cancellation
            values, vectors = self._eig(Z, 1, "LA")
            lam, u = values[0], vectors[:, 0]
            u = u if u.sum() >= 0 else -u
            b = 1 + u.sum() ** 2 / (lam * (u @ u))
            alpha = b - math.sqrt(b * b - 1)
            u_s = u * lam * (1 - alpha) / u.sum()
            delta = (u_s + 1) / (1 + alpha)
            Z = Z / np.outer(delta, delta)
            Z = Z - Z.mean(axis=0, keepdims=True)
            Z = Z - Z.mean(axis=1, keepdims=True)
            matrix = -Z / 2
            matrix = (matrix + matrix.T) / 2
        k = min(int(self.n_components), n)
        values, vectors = self._eig(matrix, k, "LM" if self.selection == "magnitude" else "LA")
        order = self._select(values)
        values, vectors = values[order], vectors[:, order]
        vectors = vectors * np.where(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])] < 0, -1, 1)
        keep = values > 0
        coordinates = np.zeros((n, int(self.n_components)))
        coordinates[:, :int(keep.sum())] = vectors[:, keep] * np.sqrt(values[keep])
        if self.method == "exact-centring":
            coordinates = _poincare_to_spatial(coordinates)
        self.embedding_ = coordinates
        self.eigenvalues_ = values
        self.n_positive_ = int(keep.sum())
        self.reference_points_ = None

    def _eig(self, matrix: np.ndarray, k: int, which: str):
        n = matrix.shape[0]
        solver = self.eigen_solver
        if solver == "auto":
            solver = "dense" if n <= 2000 or k >= n - 1 else "arpack"
        if solver == "dense" or k >= n - 1:
            values, vectors = np.linalg.eigh(matrix)
            order = self._select(values) if which == "LM" else np.argsort(-values, kind="stable")[:k]
            return values[order], vectors[:, order]
        from scipy.sparse.linalg import eigsh

        rng = check_random_state(self.random_state)
        v0 = rng.uniform(-1, 1, n)
        values, vectors = eigsh(matrix, k=k, which=which, v0=v0)
        return values, vectors

    def _fit_mp(self, D: list) -> None:
        n = len(D)
        k = min(int(self.n_components), n)
        with mpmath.workprec(int(self.precision)):
            D = [[mpmath.mpf(v) for v in row] for row in D]  # rounded to the working precision, not to 53 bits
            self._validate_matrix(D, n, lambda i, j: D[i][j])
            s = mpmath.mpf(self.scale)
            if self.method == "simple":
                matrix = mpmath.matrix(n, n)
                for i in range(n):
                    for j in range(n):
                        matrix[i, j] = -mpmath.cosh(s * D[i][j])
            else:
                Z = mpmath.matrix(n, n)
                for i in range(n):
                    for j in range(n):
                        Z[i, j] = mpmath.sinh(s * D[i][j] / 2) ** 2
                values, vectors = mpmath.eigsy(Z)
                lam = values[n - 1]
                u = [vectors[i, n - 1] for i in range(n)]
                if mpmath.fsum(u) < 0:
                    u = [-x for x in u]
                total = mpmath.fsum(u)
                b = 1 + total ** 2 / (lam * mpmath.fsum(x * x for x in u))
                alpha = b - mpmath.sqrt(b * b - 1)
                delta = [(x * lam * (1 - alpha) / total + 1) / (1 + alpha) for x in u]
                for i in range(n):
                    for j in range(n):
                        Z[i, j] /= delta[i] * delta[j]
                for j in range(n):
                    mean = mpmath.fsum(Z[i, j] for i in range(n)) / n
                    for i in range(n):
                        Z[i, j] -= mean
                for i in range(n):
                    mean = mpmath.fsum(Z[i, j] for j in range(n)) / n
                    for j in range(n):
                        Z[i, j] -= mean
                matrix = mpmath.matrix(n, n)
                for i in range(n):
                    for j in range(n):
                        matrix[i, j] = -(Z[i, j] + Z[j, i]) / 4
            values, vectors = mpmath.eigsy(matrix)
            values_f = np.array([float(values[i]) for i in range(n)])
            key = [(-abs(values[i]) if self.selection == "magnitude" else -values[i], i) for i in range(n)]
            order = [i for _, i in sorted(key)][:k]
            kept = [i for i in order if values[i] > 0]
            columns = []
            for i in kept:
                column = [vectors[r, i] for r in range(n)]
                pivot = max(range(n), key=lambda r: abs(column[r]))
                sign = -1 if column[pivot] < 0 else 1
                root = mpmath.sqrt(values[i])
                columns.append([sign * root * x for x in column])
            points = []
            for r in range(n):
                spatial = [column[r] for column in columns]
                if self.method == "exact-centring":
                    squared = mpmath.fsum(x * x for x in spatial)
                    if squared >= 1:
                        raise ValueError(f"exact-centring put point {r} outside the unit ball (|y|^2 = "
                                         f"{mpmath.nstr(squared, 8)}); use a smaller scale")
                    spatial = [2 * x / (1 - squared) for x in spatial]
                x0 = mpmath.sqrt(1 + mpmath.fsum(x * x for x in spatial))
                points.append((x0, *spatial))
        coordinates = np.zeros((n, int(self.n_components)))
        for r, point in enumerate(points):
            coordinates[r, :len(kept)] = [float(x) for x in point[1:]]
        self.embedding_ = coordinates
        self.eigenvalues_ = values_f[order]
        self.n_positive_ = len(kept)
        self.reference_points_ = [(*p, *([mpmath.mpf(0)] * (int(self.n_components) - len(kept)))) for p in points]

    # ------------------------------------------------------------------ results
    def _check_fitted(self) -> None:
        if not hasattr(self, "embedding_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this HMDS instance is not fitted yet; call fit or fit_transform first")

    def lorentz(self, dtype=torch.float64, device=None) -> torch.Tensor:
        """The embedding as Lorentz coordinates ``(n, n_components + 1)`` at curvature -1 (a torch tensor)."""
        self._check_fitted()
        spatial = torch.as_tensor(self.embedding_, dtype=torch.float64)
        X = torch.cat([torch.sqrt(1 + spatial.square().sum(-1, keepdim=True)), spatial], dim=-1)
        return X.to(dtype=dtype, device=device)

    def to_manifold(self, manifold, dtype=torch.float64, device=None) -> torch.Tensor:
        """The embedding as points of ``manifold`` (any representation of the protocol, dimension
        ``n_components``, curvature -1): exactly from ``reference_points_`` when fitted with ``precision``,
        else through the Lorentz hub."""
        self._check_fitted()
        if manifold.dim != int(self.n_components):
            raise ValueError(f"manifold has dimension {manifold.dim}, the embedding {self.n_components}")
        if self.reference_points_ is not None:
            return manifold.from_reference(self.reference_points_, dtype=dtype, device=device)
        X = self.lorentz(torch.float64)
        with torch.no_grad():
            return manifold.from_lorentz(X * manifold.scale(X)).to(dtype=dtype, device=device)

    def distances(self) -> np.ndarray:
        """Embedded distances divided by ``scale``, ``(n, n)`` float64, by the cancellation-free Lorentz
        formula (mpmath at ``precision`` when fitted with it)."""
        self._check_fitted()
        if self.reference_points_ is not None:
            from hyperbolic import reference

            n = len(self.reference_points_)
            out = np.zeros((n, n))
            with mpmath.workprec(int(self.precision)):
                for i in range(n):
                    for j in range(i + 1, n):
                        d = reference.dist(self.reference_points_[i], self.reference_points_[j]) / self.scale
                        out[i, j] = out[j, i] = float(d)
            return out
        from hyperbolic.math import lorentz

        X = self.lorentz()
        return (lorentz.dist(X.unsqueeze(1), X.unsqueeze(0)) / float(self.scale)).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self.metric == "precomputed"
        return tags


def _poincare_to_spatial(Y: np.ndarray) -> np.ndarray:
    squared = (Y ** 2).sum(axis=1, keepdims=True)
    outside = np.nonzero(squared[:, 0] >= 1)[0]
    if outside.size:
        raise ValueError(f"exact-centring put {outside.size} points outside the unit ball (first: point "
                         f"{outside[0]}, |y|^2 = {squared[outside[0], 0]:.6g}); use a smaller scale")
    return 2 * Y / (1 - squared)


def hmds_graph(graph, n_components: int = 2, **options) -> HMDS:
    """Fit :class:`HMDS` to the shortest-path distances of ``graph`` (hop counts, or weights when present;
    edge directions ignored)."""
    from .metrics import graph_distances

    D = graph_distances(graph, torch.arange(graph.num_nodes)).numpy()
    return HMDS(n_components, **options).fit(D)


#: Embedded distances below this are reported as collapsed (zero): float64 ``arcosh(1 + x)`` returns 0 for
#: ``x < 2^-53``, i.e. for distances below ``2^-26``, which is where the published pipeline reports zeros.
COLLAPSE_BELOW = 2.0 ** -26


def evaluate_hmds(model: HMDS, graph, *, collapse_below: float = COLLAPSE_BELOW) -> dict:
    """Metrics of an h-MDS embedding of ``graph`` (:func:`embed.metrics.evaluate`, all rows).

    Hyperbolic distances (before the division by ``scale``) below ``collapse_below`` count as zero, as in
    the published float64 pipeline: they are reported
    (``zero``, ordered pairs), enter ``d_avg`` with relative error 1 and make ``d_wc`` infinite.
    ``d_avg_skipping_zero`` is the published convention (those pairs left out), for comparison only.
    """
    from hyperbolic import Lorentz

    from .metrics import evaluate

    manifold = Lorentz(int(model.n_components))
    points = model.to_manifold(manifold)
    threshold = collapse_below

    def distance(ids: torch.Tensor) -> torch.Tensor:
        d = manifold.dist(points[ids].unsqueeze(1), points.unsqueeze(0))
        return torch.where(d < threshold, torch.zeros_like(d), d)

    metrics = evaluate(points, manifold, graph, scale=float(model.scale), distance=distance)
    out = metrics.as_json()
    if metrics.d_avg is not None and metrics.pairs > metrics.zero:
        out["d_avg_skipping_zero"] = (metrics.d_avg * metrics.pairs - metrics.zero) / (metrics.pairs - metrics.zero)
    out["n_positive"] = model.n_positive_
    out["collapse_below"] = collapse_below
    return out
