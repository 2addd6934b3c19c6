r"""L-tiling points stored as an explicit pair: a float parameter :math:`u` and an integer buffer :math:`T`.

:class:`~tiling.LTiling` packs the limbs of :math:`T` into the float storage tensor (one tensor per point set, as
the manifold protocol wants). :class:`LTilingPoints` keeps the two parts apart: the group elements in an
``int64`` buffer that no optimiser sees, the float part :math:`u \in F` as the only parameter. The parameter is a
geoopt ``ManifoldParameter`` on :class:`FloatPart`, a manifold that knows the buffer: its ``retr``/``expmap``
follow the geodesic, re-normalise into :math:`F` and write the new group elements into the buffer. So geoopt's
dense optimisers (``RiemannianSGD`` with or without momentum, ``RiemannianAdam``) train the pair unchanged, and
every step is the same arithmetic as on the packed storage.

Sparse optimisers hand the manifold a subset of rows, which cannot be matched to the buffer; they are refused
with a clear error (train the packed storage with them).
"""

from __future__ import annotations

import geoopt
import torch

from hyperbolic.manifold import OffManifoldError
from hyperbolic.math import lorentz as lorentz_kernel

from .ltiling import LTiling

__all__ = ["LTilingPoints", "FloatPart"]


class FloatPart(geoopt.Manifold):
    r"""The float parts :math:`u` ``(n, 3)`` of the points of one :class:`LTilingPoints` (a geoopt manifold).

    Tangent vectors are tangent vectors of the hyperboloid at :math:`u` in the frame of the tile (the true
    tangent vector is :math:`L T R\,h`), as for :class:`~tiling.LTiling`. Every method delegates to the
    packed model; ``retr``, ``expmap``, ``retr_transp``, ``expmap_transp`` and ``projx`` also update the
    owner's group elements.
    """

    name = "L-tiling float part"
    ndim = 1
    reversible = False

    def __init__(self, owner: LTilingPoints):
        super().__init__()
        # A plain attribute, not a submodule: the owner holds this manifold through its parameter.
        object.__setattr__(self, "_owner", owner)

    @property
    def model(self) -> LTiling:
        return self._owner.model

    def _packed(self, u: torch.Tensor) -> torch.Tensor:
        T = self._owner.T
        if u.shape[:-1] != T.shape[:-3]:
            raise ValueError(
                f"the float part has shape {tuple(u.shape)} but the pair holds {T.shape[0]} group elements: "
                "LTilingPoints trains with dense optimisers only (sparse ones pass a subset of rows); train the "
                "packed LTiling storage with sparse optimisers"
            )
        return self.model.pack(u, T)

    def _float(self, h: torch.Tensor) -> torch.Tensor:
        return self.model._float_only(h[..., :3], h)

    def _move(self, u, v, transported=None):
        x = self._packed(u)
        y = self.model.expmap(x, self._float(v))
        moved = None if transported is None else self.model.transp(x, y, self._float(transported))[..., :3]
        self._owner.T.copy_(self.model.split(y)[1])
        return y[..., :3], moved

    def retr(self, x, u):
        return self._move(x, u)[0]

    def expmap(self, x, u):
        return self._move(x, u)[0]

    def retr_transp(self, x, u, v):
        return self._move(x, u, v)

    def expmap_transp(self, x, u, v):
        return self._move(x, u, v)

    def projx(self, x):
        y = self.model.renormalize(self._packed(x))
        self._owner.T.copy_(self.model.split(y)[1])
        return y[..., :3]

    def proju(self, x, u):
        return self.model.proju(x, self._float(u))[..., :3]

    def egrad2rgrad(self, x, u):
        return self.model.egrad2rgrad(x, self._float(u))[..., :3]

    def inner(self, x, u, v=None, *, keepdim=False):
        return self.model.inner(x, u, v, keepdim=keepdim)

    def transp(self, x, y, v):
        raise NotImplementedError(
            "FloatPart cannot transport between two float parts alone (the group element of the old point is gone "
            "once the buffer is updated); optimisers use retr_transp / expmap_transp, which it implements"
        )

    def _check_point_on_manifold(self, x, *, atol=1e-5, rtol=1e-5):
        bad = self.model._off_manifold_rows(self._packed(x), atol, rtol)
        if bool(bad.any()):
            return False, f"row {int(torch.nonzero(bad)[0, 0])} is not a point of the L-tiling"
        return True, None

    def _check_vector_on_tangent(self, x, u, *, atol=1e-5, rtol=1e-5):
        ok = torch.allclose(lorentz_kernel.inner(x, u), torch.zeros_like(u[..., 0]), atol=atol, rtol=rtol)
        return (True, None) if ok else (False, "<u, h>_L != 0")


class LTilingPoints(torch.nn.Module):
    r"""``n`` points of the L-tiling as an explicit pair: float parameter ``u`` and integer buffer ``T``.

    Parameters
    ----------
    x : torch.Tensor
        Points ``(n, storage_dim)`` in the packed storage of ``model`` (e.g. ``model.random(n)``).
    model : LTiling
        The model (capacity, curvature).

    Attributes
    ----------
    u : geoopt.ManifoldParameter
        Float parts ``(n, 3)`` in :math:`F`, on :class:`FloatPart`; the only parameter.
    T : torch.Tensor
        Buffer ``(n, 3, 3, limbs)`` of ``int64`` canonical 24-bit limbs of the group elements
        (:mod:`tiling.bigint`), changed only by the re-normalisation that the optimiser's step runs.

    Examples
    --------
    >>> model = LTiling(max_radius=30)
    >>> points = LTilingPoints(model.random(10), model)
    >>> optimiser = geoopt.optim.RiemannianSGD(points.parameters(), lr=0.1)
    >>> loss = model.dist(points()[:5], points()[5:]).sum()  # doctest: +SKIP
    """

    def __init__(self, x: torch.Tensor, model: LTiling):
        super().__init__()
        if x.dim() != 2:
            raise OffManifoldError(f"LTilingPoints holds a batch of points (n, storage_dim), got shape {tuple(x.shape)}")
        model.assert_points(x.detach())
        u, T = model.split(x.detach())
        self.model = model
        self.register_buffer("T", T.clone())
        self.u = geoopt.ManifoldParameter(u.clone(), manifold=FloatPart(self))

    def forward(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """The packed points (all, or ``index``); gradients flow to ``u``."""
        if index is None:
            return self.model.pack(self.u, self.T)
        return self.model.pack(self.u[index], self.T[index])

    def extra_repr(self) -> str:
        return f"n={self.u.shape[0]}, limbs={self.T.shape[-1]}"
