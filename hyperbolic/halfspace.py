r"""The upper half-space model."""

from __future__ import annotations

import math
from collections.abc import Sequence

import mpmath
import torch

from . import reference
from .manifold import HyperbolicManifold, PrecisionContract, PrecisionError
from .math import halfspace as kernel
from .numerics import guards
from .rounding import round_to_tensor

__all__ = ["HalfSpace"]


def check_heights(x: torch.Tensor, what: str, max_radius: float) -> torch.Tensor:
    """``x`` unchanged if every height (the last coordinate) is a positive normal float, else
    :class:`PrecisionError` naming the first bad row (a height of 0 or infinity is a point at infinity)."""
    height = x[..., -1]
    g = guards(x.dtype)
    bad = ~((height >= g.tiny) & (height <= g.huge))
    if bool(bad.any()):
        row = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise PrecisionError(
            f"{what} point at row {row} has height {height[row].item()}: outside the normal range "
            f"of {x.dtype} (radius beyond {max_radius:.1f})"
        )
    return x


class HalfSpace(HyperbolicManifold):
    r"""Upper half-space :math:`\{(x, y) : x \in \mathbb{R}^{n-1},\ y > 0\}` with metric
    :math:`R^2(\lVert dx\rVert^2 + dy^2)/y^2`, :math:`R = c^{-1/2}`.

    Storage ``(x1, ..., x_{n-1}, y)``, height last; origin ``(0, ..., 0, 1)``. Curvature scales the metric
    only: coordinates, geodesics and the exponential map are those of the unit model.

    The height needs only relative precision, but the horizontal coordinates need absolute precision
    :math:`\varepsilon y`; one float per coordinate therefore gives near-pair error
    :math:`\varepsilon e^{r}` (:class:`hyperbolic.HalfSpaceMCF` stores ``x`` in several components).
    The exponent range of ``y`` is a hard ceiling: radius 708 in float64, 87 in float32.
    """

    name = "halfspace"

    @property
    def storage_dim(self) -> int:
        return self.dim

    def contract(self, dtype: torch.dtype = torch.float64) -> PrecisionContract:
        eps = guards(dtype).eps
        return PrecisionContract(
            usable_radius=max(math.log(1e-6 / eps) - 1, 0.0),
            max_radius=-math.log(torch.finfo(dtype).tiny),  # y ~ exp(-r) must stay normal
            error_growth="eps*exp(r)",
        )

    def dist(self, x, y, *, keepdim=False):
        return self.scale(x) * kernel.dist(x, y, keepdim=keepdim)

    def inner(self, x, u, v=None, *, keepdim=False):
        # Frame coordinates u / y first: (R / y)^2 alone overflows for heights below 1e-154 (radius 354).
        height = x[..., -1:]
        frame_u = u / height
        frame_v = frame_u if v is None else v / height
        result = self.scale(x).square() * (frame_u * frame_v).sum(-1, keepdim=True)
        return result if keepdim else result.squeeze(-1)

    def proju(self, x, u):
        return u

    def egrad2rgrad(self, x, u):
        # y (y u) rather than y^2 u: y^2 underflows to 0 for heights below 1e-154.
        factor = x[..., -1:] / self.scale(x)
        return factor * (factor * u)

    def projx(self, x):
        """Return ``x`` unchanged after checking that every height is a positive normal float.

        A height that underflowed to 0 or overflowed to infinity is a point at infinity: the point has
        left the representation, and :class:`~hyperbolic.manifold.PrecisionError` says so.
        """
        return check_heights(x, "half-space", self.contract(x.dtype).max_radius)

    def expmap(self, x, u):
        horizontal, height = kernel.split(x)
        dx, new_height = kernel.expmap_frame(height, u / height)
        return self.projx(kernel.join(horizontal + dx, new_height))

    def logmap(self, x, y):
        return x[..., -1:] * kernel.logmap_frame(x, y)

    def transp(self, x, y, v):
        return kernel.transp(x, y, v)

    def to_lorentz(self, x):
        return self.scale(x) * kernel.to_lorentz(x)

    def from_lorentz(self, X):
        return kernel.from_lorentz(X / self.scale(X))

    def _off_manifold_rows(self, x, atol, rtol):
        return x[..., -1] <= 0

    def to_reference(self, x: torch.Tensor) -> list[tuple]:
        with mpmath.mp.workprec(self._bridge_precision()):
            rows = x.detach().reshape(-1, self.storage_dim).to(torch.float64).cpu().tolist()
            return [reference.from_halfspace([mpmath.mpf(v) for v in row[:-1]], mpmath.mpf(row[-1])) for row in rows]

    def from_reference(self, points: Sequence[Sequence], dtype=torch.float64, device=None):
        r""":math:`y = 1/(X_0 - X_n)`, :math:`x_i = X_i\,y`, each rounded to nearest."""
        self._check_reference_radius(points, dtype)

        def rows():
            for p in points:
                horizontal, height = reference.to_halfspace(p)
                yield [*horizontal, height]

        return round_to_tensor(rows(), dtype, device, "half-space point")
