r"""Products of L-tilings: :math:`H^2 \times \cdots \times H^2` (``../shared/notes/tiling.md`` §9).

A point is ``k`` L-tiling points side by side, storage ``(..., k * factor.storage_dim)``. Every operation acts
factor by factor. The distance of the Riemannian product is

.. math::

    d(x, y) = \sqrt{\textstyle\sum_i d_{H^2}(x_i, y_i)^2},

the geodesic distance of the product metric. The published tiling code uses the :math:`\ell_1` sum
:math:`\sum_i d_{H^2}(x_i, y_i)` instead: a metric, but not the distance of the product manifold (nor of any
Riemannian metric); it is available only under its own name, ``combine="l1-sum"``, for reproducing
published numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import geoopt
import torch

from hyperbolic import registry
from hyperbolic.manifold import FORMAT_VERSION, OffManifoldError
from hyperbolic.numerics import safe_sqrt

from .ltiling import LTiling

__all__ = ["LTilingProduct", "COMBINATIONS"]

COMBINATIONS = ("riemannian", "l1-sum")


class LTilingProduct(geoopt.Manifold):
    r"""Riemannian product of ``factors`` copies of the L-tiling model of :math:`H^2`.

    Parameters
    ----------
    factors : int
        Number of :math:`H^2` factors.
    max_radius : float
        Capacity of each factor (see :class:`~tiling.LTiling`).
    combine : {"riemannian", "l1-sum"}
        ``"riemannian"`` (default): the product distance :math:`\sqrt{\sum_i d_i^2}` (its gradient is guarded
        at :math:`d = 0`). ``"l1-sum"``: :math:`\sum_i d_i`, the published tiling code's choice — not the
        distance of the product manifold.
    """

    name = "ltiling-product"
    ndim = 1
    reversible = False

    def __init__(self, factors: int, max_radius: float = 100.0, combine: str = "riemannian"):
        super().__init__()
        if not isinstance(factors, int) or isinstance(factors, bool) or factors < 1:
            raise ValueError(f"factors must be a positive integer, got {factors!r}")
        if combine not in COMBINATIONS:
            raise ValueError(f"combine must be one of {COMBINATIONS}, got {combine!r}")
        self.factors = factors
        self.combine = combine
        self.factor = LTiling(max_radius=max_radius)

    @property
    def storage_dim(self) -> int:
        return self.factors * self.factor.storage_dim

    def spec(self) -> dict:
        return {"name": self.name, "factors": self.factors, "max_radius": self.factor.max_radius,
                "combine": self.combine, "storage_dim": self.storage_dim, "format_version": FORMAT_VERSION}

    @classmethod
    def from_spec(cls, spec: dict) -> LTilingProduct:
        return cls(spec["factors"], max_radius=spec.get("max_radius", 100.0), combine=spec.get("combine", "riemannian"))

    def extra_repr(self) -> str:
        return f"factors={self.factors}, combine={self.combine!r}, factor={self.factor.extra_repr()}"

    # ------------------------------------------------------------------ layout
    def factor_view(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., factors, factor.storage_dim)`` view of product points or tangent vectors."""
        if x.shape[-1] != self.storage_dim:
            raise OffManifoldError(
                f"{self.factors}-factor L-tiling product points need a last axis of {self.storage_dim}, "
                f"got shape {tuple(x.shape)}"
            )
        return x.reshape(*x.shape[:-1], self.factors, self.factor.storage_dim)

    def _join(self, parts: torch.Tensor) -> torch.Tensor:
        return parts.reshape(*parts.shape[:-2], self.storage_dim)

    def _pair(self, x, y):
        a, b = self.factor_view(x), self.factor_view(y)
        shape = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
        return a.expand(*shape, a.shape[-1]), b.expand(*shape, b.shape[-1])

    # ------------------------------------------------------------------ geometry
    def factor_distances(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Distances in each factor, ``(..., factors)``."""
        return self.factor.dist(*self._pair(x, y))

    def dist(self, x, y, *, keepdim=False):
        d = self.factor_distances(x, y)
        if self.combine == "riemannian":
            out = safe_sqrt(d.square().sum(-1, keepdim=True))
        else:
            out = d.sum(-1, keepdim=True)
        return out if keepdim else out.squeeze(-1)

    def inner(self, x, u, v=None, *, keepdim=False):
        v = u if v is None else v
        out = self.factor.inner(self.factor_view(x), self.factor_view(u), self.factor_view(v)).sum(-1, keepdim=True)
        return out if keepdim else out.squeeze(-1)

    def norm(self, x, u, *, keepdim=False):
        return safe_sqrt(self.inner(x, u, keepdim=keepdim))

    def proju(self, x, u):
        return self._join(self.factor.proju(*self._pair(x, u)))

    def egrad2rgrad(self, x, u):
        return self._join(self.factor.egrad2rgrad(*self._pair(x, u)))

    def projx(self, x):
        return self._join(self.factor.projx(self.factor_view(x)))

    def expmap(self, x, u):
        return self._join(self.factor.expmap(*self._pair(x, u)))

    def retr(self, x, u):
        return self.expmap(x, u)

    def logmap(self, x, y):
        return self._join(self.factor.logmap(*self._pair(x, y)))

    def transp(self, x, y, v):
        a, b = self._pair(x, y)
        return self._join(self.factor.transp(a, b, self.factor_view(v).expand_as(a)))

    # ------------------------------------------------------------------ points and bridges
    def origin(self, *shape, dtype=torch.float64, device=None):
        return self._join(self.factor.origin(*shape, self.factors, dtype=dtype, device=device))

    def random(self, *shape, std=1.0, dtype=torch.float64, device=None, generator=None):
        return self._join(self.factor.random(*shape, self.factors, std=std, dtype=dtype, device=device,
                                             generator=generator))

    def to_reference(self, x: torch.Tensor) -> list[list[tuple]]:
        """Per point, the list of its factors' exact mpmath points."""
        flat = self.factor.to_reference(self.factor_view(x).reshape(-1, self.factor.storage_dim))
        return [flat[i:i + self.factors] for i in range(0, len(flat), self.factors)]

    def from_reference(self, points: Sequence[Sequence[Sequence]], dtype=torch.float64, device=None):
        for row, point in enumerate(points):
            if len(point) != self.factors:
                raise ValueError(f"product point {row} has {len(point)} factors, expected {self.factors}")
        flat = self.factor.from_reference([p for point in points for p in point], dtype=dtype, device=device)
        return flat.reshape(len(points), self.storage_dim)

    # ------------------------------------------------------------------ checks
    def _check_point_on_manifold(self, x, *, atol=1e-5, rtol=1e-5):
        ok, reason = self.factor._check_point_on_manifold(self.factor_view(x), atol=atol, rtol=rtol)
        return ok, reason

    def _check_vector_on_tangent(self, x, u, *, atol=1e-5, rtol=1e-5):
        return self.factor._check_vector_on_tangent(self.factor_view(x), self.factor_view(u), atol=atol, rtol=rtol)

    def _check_shape(self, shape, name):
        if len(shape) < 1 or shape[-1] != self.storage_dim:
            return False, f"{name} must have a last axis of size {self.storage_dim}, got shape {tuple(shape)}"
        return True, None

    def assert_points(self, x: torch.Tensor, what: str = "points") -> None:
        self.factor.assert_points(self.factor_view(x), what)


registry.register_model(LTilingProduct)
