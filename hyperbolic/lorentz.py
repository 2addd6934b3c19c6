r"""The Lorentz (hyperboloid) model: the hub chart every representation converts through."""

from __future__ import annotations

import math
from collections.abc import Sequence

import mpmath
import torch

from . import reference
from .manifold import HyperbolicManifold, PrecisionContract, PrecisionError
from .math import lorentz as kernel
from .numerics import check_finite, guards
from .rounding import round_to_tensor

__all__ = ["Lorentz"]


class Lorentz(HyperbolicManifold):
    r"""Hyperboloid :math:`\{x \in \mathbb{R}^{n+1} : \langle x,x\rangle_L = -R^2,\ x_0 > 0\}`, :math:`R = c^{-1/2}`.

    Storage ``(x0, x1, ..., xn)``, time coordinate first. Distances use the cancellation-free
    half-angle form of :mod:`hyperbolic.math.lorentz`: near-pair error grows like
    :math:`\varepsilon e^{r}`, not like :math:`\varepsilon e^{2r}` as with :math:`\operatorname{arcosh}(-\langle x, y\rangle_L)`.
    The precision contract is that of ``dist``. Tangent vectors are still handled through Minkowski products
    (``inner``, ``proju``, ``transp``, ``expmap``), whose error grows like :math:`\varepsilon e^{2r}`. In
    float64, ``transp`` between near points is off by up to about 3e-7 relative at radius 11 and 5e-4 at
    radius 15 (bounded by :math:`\varepsilon e^{2r}` against mpmath in ``tests/hyperbolic/test_float_models.py``).
    For training beyond radius 10, use the half-space or MCF models.

    Parameters
    ----------
    dim : int
        Dimension ``n``.
    curvature : float
        Negative curvature :math:`-c`, default -1.
    learnable : bool
        Learn the curvature.
    """

    name = "lorentz"

    @property
    def storage_dim(self) -> int:
        return self.dim + 1

    def contract(self, dtype: torch.dtype = torch.float64) -> PrecisionContract:
        eps = guards(dtype).eps
        return PrecisionContract(
            usable_radius=max(math.log(1e-6 / eps) - 1, 0.0),
            max_radius=math.log(torch.finfo(dtype).max),  # x0 = cosh r overflows past here
            error_growth="eps*exp(r)",
        )

    def _unit(self, *tensors):
        R = self.scale(tensors[0])
        return R, [t / R for t in tensors]

    def dist(self, x, y, *, keepdim=False):
        R, (x, y) = self._unit(x, y)
        return R * kernel.dist(x, y, keepdim=keepdim)

    def inner(self, x, u, v=None, *, keepdim=False):
        return kernel.inner(u, u if v is None else v, keepdim=keepdim)

    def proju(self, x, u):
        R, (x_unit,) = self._unit(x)
        return u + kernel.inner(x_unit, u, keepdim=True) * x_unit

    def egrad2rgrad(self, x, u):
        return self.proju(x, torch.cat([-u[..., :1], u[..., 1:]], dim=-1))

    def projx(self, x):
        R, (x,) = self._unit(x)
        return R * kernel.projx(x)

    def _finite(self, result: torch.Tensor, what: str, inputs: dict) -> torch.Tensor:
        """``result`` unchanged if finite; else :class:`~hyperbolic.numerics.NonFiniteError` for a non-finite input
        or :class:`~hyperbolic.manifold.PrecisionError` naming the first row whose coordinates overflowed."""
        bad = ~torch.isfinite(result).all(-1)
        if bool(bad.any()):
            for name, tensor in inputs.items():
                check_finite(tensor, name)
            row = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise PrecisionError(
                f"{what} row {row}: the result overflows {result.dtype} Lorentz coordinates (coordinates of size "
                f"e^r at radius r; the {result.dtype} range ends at radius {self.contract(result.dtype).max_radius:.1f})"
            )
        return result

    def expmap(self, x, u):
        """Exponential map; :class:`~hyperbolic.manifold.PrecisionError` for an end point beyond the float range
        (instead of coordinates that overflowed to inf or NaN)."""
        R, (x_unit, u_unit) = self._unit(x, u)
        return self._finite(R * kernel.expmap(x_unit, u_unit), "expmap", {"points": x, "tangent vectors": u})

    def logmap(self, x, y):
        """Logarithm; :class:`~hyperbolic.manifold.PrecisionError` where its coordinates (about :math:`d\\,x_0`)
        overflow, close to the ceiling."""
        R, (x_unit, y_unit) = self._unit(x, y)
        return self._finite(R * kernel.logmap(x_unit, y_unit), "logmap", {"points": x, "targets": y})

    def transp(self, x, y, v):
        R, (x, y, v) = self._unit(x, y, v)
        return R * kernel.transp(x, y, v)

    def to_lorentz(self, x):
        return x

    def from_lorentz(self, X):
        return X

    def _off_manifold_rows(self, x, atol, rtol):
        R2 = self.scale(x).square()
        defect = (kernel.inner(x, x) + R2).abs()
        return (x[..., 0] <= 0) | (defect > atol * R2 + rtol * x[..., 0].square())

    def to_reference(self, x: torch.Tensor) -> list[tuple]:
        """Spatial coordinates exactly; :math:`x_0 = \\sqrt{1 + \\lVert x_s\\rVert^2}` on the hyperboloid."""
        with mpmath.mp.workprec(self._bridge_precision()):
            sqrt_c = self._reference_scale()
            rows = x.detach().reshape(-1, self.storage_dim).to(torch.float64).cpu().tolist()
            return [reference.lift([mpmath.mpf(v) * sqrt_c for v in row[1:]]) for row in rows]

    def from_reference(self, points: Sequence[Sequence], dtype=torch.float64, device=None):
        """Each coordinate rounded to nearest."""
        self._check_reference_radius(points, dtype)
        R = 1 / self._reference_scale()
        return round_to_tensor(([c * R for c in p] for p in points), dtype, device, "Lorentz point")
