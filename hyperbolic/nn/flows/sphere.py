r"""The unit sphere :math:`S^n \subset \mathbb{R}^{n+1}` as a :class:`geoopt.Manifold`, for the sphere flows.

Accurate forms: the distance is :math:`2\operatorname{atan2}(\lVert x-y\rVert, \lVert x+y\rVert)` (full relative
accuracy for near and for antipodal pairs), the logarithm takes its angle from ``atan2`` rather than
``arccos``.
"""

from __future__ import annotations

import geoopt
import torch

from ...manifold import OffManifoldError
from ...numerics import check_finite, guards
from .functional import cos, sinc

__all__ = ["Sphere"]


def _dot(a: torch.Tensor, b: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    return (a * b).sum(-1, keepdim=keepdim)


class Sphere(geoopt.Manifold):
    r"""Unit sphere :math:`\{x \in \mathbb{R}^{n+1} : \lVert x\rVert = 1\}` with the round metric.

    Parameters
    ----------
    dim : int
        Dimension ``n`` of :math:`S^n`; points are stored as ``(..., n + 1)``.

    Notes
    -----
    :meth:`origin` is :math:`o = (-1, 0, \dots, 0)`, the base point of the published sphere flows; the
    tangent coordinates at :math:`o` are the last :math:`n` ambient coordinates.
    """

    name = "sphere"
    ndim = 1
    reversible = False

    def __init__(self, dim: int):
        super().__init__()
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dimension must be a positive integer, got {dim!r}")
        self.dim = dim

    @property
    def storage_dim(self) -> int:
        return self.dim + 1

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    # ----------------------------------------------------------------- geometry
    def inner(self, x, u, v=None, *, keepdim=False):
        return _dot(u, u if v is None else v, keepdim=keepdim)

    def norm(self, x, u, *, keepdim=False):
        return u.norm(dim=-1, keepdim=keepdim)

    def proju(self, x, u):
        r""":math:`u - \langle x, u\rangle x`."""
        return u - _dot(x, u, keepdim=True) * x

    def egrad2rgrad(self, x, u):
        return self.proju(x, u)

    def projx(self, x):
        return x / x.norm(dim=-1, keepdim=True)

    def expmap(self, x, u):
        r""":math:`\cos\lVert u\rVert\,x + \operatorname{sinc}\lVert u\rVert\,u`, renormalised."""
        s = u.square().sum(-1, keepdim=True)
        return self.projx(cos(s) * x + sinc(s) * u)

    def retr(self, x, u):
        return self.expmap(x, u)

    def logmap(self, x, y):
        r""":math:`\theta\,y_\perp/\lVert y_\perp\rVert` with :math:`y_\perp = y - \langle x,y\rangle x` and
        :math:`\theta = \operatorname{atan2}(\lVert y_\perp\rVert, \langle x, y\rangle)`; 0 for ``y = x``."""
        cosine = _dot(x, y, keepdim=True)
        perpendicular = y - cosine * x
        sine = perpendicular.norm(dim=-1, keepdim=True)
        safe = torch.where(sine > 0, sine, torch.ones_like(sine))
        return torch.where(sine > 0, torch.atan2(sine, cosine) / safe, 1.0) * perpendicular

    def dist(self, x, y, *, keepdim=False):
        r""":math:`2\operatorname{atan2}(\lVert x - y\rVert, \lVert x + y\rVert)`."""
        return 2 * torch.atan2((x - y).norm(dim=-1, keepdim=keepdim), (x + y).norm(dim=-1, keepdim=keepdim))

    def transp(self, x, y, v):
        r"""Parallel transport along the minimising geodesic:
        :math:`v - \frac{\langle y, v\rangle}{1 + \langle x, y\rangle}(x + y)` (undefined for antipodal pairs)."""
        return v - _dot(y, v, keepdim=True) / (1 + _dot(x, y, keepdim=True)) * (x + y)

    # ----------------------------------------------------------------- points
    def origin(self, *shape: int, dtype=torch.float64, device=None) -> torch.Tensor:
        """The point :math:`(-1, 0, \\dots, 0)`, with leading shape ``shape``."""
        x = torch.zeros(*shape, self.dim + 1, dtype=dtype, device=device)
        x[..., 0] = -1
        return x

    def random(self, *shape: int, dtype=torch.float64, device=None, generator=None) -> torch.Tensor:
        """Points uniform on the sphere (normalised Gaussians), leading shape ``shape``."""
        x = torch.randn(*shape, self.dim + 1, dtype=dtype, device=device, generator=generator)
        return self.projx(x)

    # ----------------------------------------------------------------- checks
    def _off_manifold_rows(self, x: torch.Tensor, atol: float, rtol: float) -> torch.Tensor:
        return (x.square().sum(-1) - 1).abs() > atol + rtol

    def _check_shape(self, shape, name):
        if len(shape) < 1 or shape[-1] != self.storage_dim:
            return False, f"{name} must have a last axis of size {self.storage_dim}, got shape {tuple(shape)}"
        return True, None

    def _check_point_on_manifold(self, x, *, atol=None, rtol=None):
        if not bool(torch.isfinite(x).all()):
            return False, "point holds a non-finite value"
        g = guards(x.dtype)
        bad = self._off_manifold_rows(x, atol or g.atol, rtol or g.rtol)
        if bool(bad.any()):
            return False, f"row {tuple(int(i) for i in torch.nonzero(bad)[0])} does not have unit norm"
        return True, None

    def _check_vector_on_tangent(self, x, u, *, atol=None, rtol=None):
        g = guards(u.dtype)
        defect = _dot(x, u).abs()
        if bool((defect > (atol or g.atol) + (rtol or g.rtol) * u.norm(dim=-1)).any()):
            return False, "vector is not orthogonal to its base point"
        return True, None

    def assert_points(self, x: torch.Tensor, what: str = "points") -> None:
        """Raise a clear error when ``x`` does not hold points of the unit sphere ``(..., n + 1)``."""
        ok, reason = self._check_shape(x.shape, what)
        if not ok:
            raise OffManifoldError(reason)
        check_finite(x, what)
        g = guards(x.dtype)
        bad = self._off_manifold_rows(x, g.atol, g.rtol)
        if bool(bad.any()):
            row = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise OffManifoldError(
                f"{what}: row {row} is not a point of the unit sphere S^{self.dim}: values {x[row].tolist()} "
                f"have norm {float(x[row].norm()):.17g}"
            )
