r"""The Poincaré ball model."""

from __future__ import annotations

import math
from collections.abc import Sequence

import mpmath
import torch

from . import reference
from .manifold import HyperbolicManifold, PrecisionContract, PrecisionError
from .math import lorentz as lorentz_kernel
from .math import poincare as kernel
from .numerics import guards
from .rounding import round_to_tensor

__all__ = ["PoincareBall", "CONVERSION_SLACK"]

#: Radius beyond the ceiling that ``PoincareBall.from_lorentz`` still takes as rounding of a point at the ceiling.
CONVERSION_SLACK = 1.0


class PoincareBall(HyperbolicManifold):
    r"""Ball :math:`\{p \in \mathbb{R}^n : \lVert p\rVert < R\}`, :math:`R = c^{-1/2}`, metric
    :math:`\lambda_{p/R}^2 \lVert dp\rVert^2` with :math:`\lambda_p = 2/(1 - \lVert p\rVert^2)`.

    Points within :math:`4\varepsilon R` of the boundary sphere cannot be told apart from it in floats,
    so the model ends at radius :math:`\ln(1/(2\varepsilon))` (36.0 in float64, 15.9 in float32).
    ``projx`` and ``expmap`` pull points back inside that sphere (the projection of Poincaré-embedding
    training); conversions into the model, ``from_reference`` and ``from_lorentz``, refuse points beyond it
    with :class:`~hyperbolic.manifold.PrecisionError` (``from_lorentz`` allows :data:`CONVERSION_SLACK` for the
    rounding of points at the ceiling itself: there, consecutive floats of the norm lie 0.3 to 0.7 apart in
    radius).
    """

    name = "poincare"

    @property
    def storage_dim(self) -> int:
        return self.dim

    def _max_norm(self, dtype) -> float:
        return 1 - guards(dtype).ball_boundary

    def contract(self, dtype: torch.dtype = torch.float64) -> PrecisionContract:
        eps = guards(dtype).eps
        return PrecisionContract(
            usable_radius=max(math.log(1e-6 / eps) - 1, 0.0),
            max_radius=2 * math.atanh(self._max_norm(dtype)),
            error_growth="eps*exp(r)",
        )

    def _unit(self, *tensors):
        R = self.scale(tensors[0])
        return R, [t / R for t in tensors]

    def dist(self, x, y, *, keepdim=False):
        R, (x, y) = self._unit(x, y)
        return R * kernel.dist(x, y, keepdim=keepdim)

    def inner(self, x, u, v=None, *, keepdim=False):
        R, (x,) = self._unit(x)
        return kernel.inner(x, u, u if v is None else v, keepdim=keepdim)

    def proju(self, x, u):
        return u

    def egrad2rgrad(self, x, u):
        R, (x,) = self._unit(x)
        return kernel.egrad2rgrad(x, u)

    def projx(self, x):
        R, (x,) = self._unit(x)
        return R * kernel.projx(x, self._max_norm(x.dtype))

    def expmap(self, x, u):
        R, (x, u) = self._unit(x, u)
        return R * kernel.projx(kernel.expmap(x, u), self._max_norm(x.dtype))

    def logmap(self, x, y):
        R, (x, y) = self._unit(x, y)
        return R * kernel.logmap(x, y)

    def to_lorentz(self, x):
        R, (x,) = self._unit(x)
        return R * lorentz_kernel.from_poincare(x)

    def from_lorentz(self, X):
        R, (X,) = self._unit(X)
        self._check_convertible(X)
        return R * kernel.projx(lorentz_kernel.to_poincare(X), self._max_norm(X.dtype))

    def _check_convertible(self, X: torch.Tensor) -> None:
        """Unit-hyperboloid rows beyond the ceiling (plus :data:`CONVERSION_SLACK`) raise PrecisionError."""
        ceiling = self.contract(X.dtype).max_radius + CONVERSION_SLACK
        beyond = X.detach()[..., 0] > math.cosh(ceiling)
        if bool(beyond.any()):
            row = tuple(int(i) for i in torch.nonzero(beyond)[0])
            radius = float(torch.acosh(X.detach()[row + (0,)].double()))
            raise PrecisionError(
                f"point {row[0] if len(row) == 1 else row} lies at radius {radius:.6g}, beyond the {self.name} "
                f"model's ceiling {ceiling - CONVERSION_SLACK:.6g} for {X.dtype} ({int(beyond.sum())} such rows); "
                "use a representation that holds it (halfspace-mcfN, a tiling)"
            )

    def to_poincare(self, x):
        return x

    def _off_manifold_rows(self, x, atol, rtol):
        R, (x,) = self._unit(x)
        return x.square().sum(-1) >= 1

    def to_reference(self, x: torch.Tensor) -> list[tuple]:
        with mpmath.mp.workprec(self._bridge_precision()):
            sqrt_c = self._reference_scale()
            rows = x.detach().reshape(-1, self.storage_dim).to(torch.float64).cpu().tolist()
            return [reference.from_poincare([mpmath.mpf(v) * sqrt_c for v in row]) for row in rows]

    def from_reference(self, points: Sequence[Sequence], dtype=torch.float64, device=None):
        r""":math:`p = R\,x_s/(1 + x_0)`, each coordinate rounded to nearest."""
        self._check_reference_radius(points, dtype)
        R = 1 / self._reference_scale()
        return round_to_tensor(
            ([c * R for c in reference.to_poincare(p)] for p in points), dtype, device, "Poincaré point"
        )
