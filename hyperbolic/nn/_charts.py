r"""Move points between a user's manifold and the unit Poincaré ball, differentiably.

Every Fréchet computation in :mod:`hyperbolic.nn` runs on the unit ball (curvature -1) in float64. A
model of curvature :math:`K = -c` is the unit model scaled by :math:`R = c^{-1/2}`, so

* ball of radius :math:`R`: :math:`p = x / R`;
* hyperboloid :math:`\langle x, x\rangle_L = -R^2`: :math:`p = \tilde x_s / (1 + \tilde x_0)` with
  :math:`\tilde x = x / R` and :math:`\tilde x_0 = \sqrt{1 + \lVert\tilde x_s\rVert^2}` recomputed from the
  spatial part (the stored time coordinate is ignored, so its gradient is zero);
* any other :class:`~hyperbolic.manifold.HyperbolicManifold`: through its ``to_lorentz`` / ``from_lorentz``.

Distances scale by :math:`R` and the Fréchet mean commutes with the scaling, so the derivative with
respect to the curvature flows through :math:`R` by the chain rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import geoopt
import torch

from ..lorentz import Lorentz
from ..manifold import HyperbolicManifold, OffManifoldError
from ..math import lorentz as lorentz_kernel
from ..numerics import check_finite, guards
from ..poincare import PoincareBall

__all__ = ["Chart", "chart", "describe"]

_WORK = torch.float64


@dataclass
class Chart:
    """How to reach the unit ball from one manifold.

    Attributes
    ----------
    kind : str
        ``"ball"``, ``"lorentz"`` or ``"generic"`` (through the manifold's Lorentz bridge).
    manifold : object or None
        The manifold (``None`` for the unit ball).
    """

    kind: str
    manifold: object = None

    def radius(self, like: torch.Tensor) -> torch.Tensor:
        """:math:`R = (-K)^{-1/2}` as a float64 tensor on ``like``'s device (differentiable)."""
        m = self.manifold
        if m is None:
            return torch.ones((), dtype=_WORK, device=like.device)
        if isinstance(m, HyperbolicManifold):
            return torch.exp(-0.5 * m.log_c.to(device=like.device, dtype=_WORK))
        if isinstance(m, geoopt.Lorentz):
            return torch.sqrt(m.k.to(device=like.device, dtype=_WORK))
        if isinstance(m, geoopt.Stereographic):
            return torch.rsqrt(-m.k.to(device=like.device, dtype=_WORK))
        raise TypeError(f"unsupported manifold {type(m).__name__}")

    @property
    def storage_extra(self) -> int:
        """Storage coordinates beyond the dimension (1 for Lorentz storage)."""
        return 0 if self.kind == "ball" else 1

    def to_ball(self, x: torch.Tensor, R: torch.Tensor, check: bool = True) -> torch.Tensor:
        r"""Float64 unit-ball coordinates of the points ``x`` (differentiable in ``x`` and ``R``).

        Ball points with :math:`\lVert x\rVert/R > 1 + \text{rtol}` (the input dtype's check tolerance)
        raise :class:`~hyperbolic.manifold.OffManifoldError`; points on or just outside the boundary
        are pulled radially inside, to :math:`1 - 4\varepsilon_{64}`.
        """
        dtype = x.dtype
        if self.kind == "generic":
            x = self.manifold.to_lorentz(x)
        p = x.to(_WORK) / R
        if self.kind != "ball":
            spatial = p[..., 1:]
            p = spatial / (1 + torch.sqrt(1 + spatial.square().sum(-1, keepdim=True)))
        squared = p.square().sum(-1, keepdim=True)
        if check:
            if not bool(torch.isfinite(squared).all()):
                check_finite(x, "points")
                raise OffManifoldError("points lie too far out to convert to the float64 ball (norm overflows)")
            if self.kind == "ball":
                bad = squared.squeeze(-1) > (1 + guards(dtype).rtol) ** 2
                if bool(bad.any()):
                    row = tuple(int(i) for i in torch.nonzero(bad)[0])
                    raise OffManifoldError(
                        f"point {row} lies outside the ball: norm/R = {float(squared[row].sqrt()):.17g} > 1"
                    )
        # Pull points on or beyond the float64 boundary radially inside (differentiably).
        limit = 1 - guards(_WORK).ball_boundary
        outside = squared > limit * limit
        if bool(outside.any()):
            p = p * torch.where(outside, limit / torch.sqrt(torch.where(outside, squared, 1.0)), 1.0)
        return p

    def from_ball(self, p: torch.Tensor, R: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Points of the manifold, in ``dtype``, from float64 unit-ball coordinates."""
        if self.kind == "ball":
            return (R * p).to(dtype)
        X = R * lorentz_kernel.from_poincare(p)
        if self.kind == "generic":
            return self.manifold.from_lorentz(X.to(dtype))
        return X.to(dtype)

    def ball_dim(self, storage: int) -> int:
        """Dimension of the ball for points with ``storage`` coordinates."""
        if self.kind == "generic":
            return self.manifold.dim
        return storage - self.storage_extra


def chart(manifold) -> Chart:
    """The :class:`Chart` of ``manifold``.

    Accepted: ``None`` (unit Poincaré ball), :class:`hyperbolic.PoincareBall`, :class:`hyperbolic.Lorentz`,
    any other :class:`~hyperbolic.manifold.HyperbolicManifold` (through ``to_lorentz``), geoopt's
    ``PoincareBall`` / ``Stereographic`` with negative curvature, and geoopt's ``Lorentz``.
    """
    if manifold is None:
        return Chart("ball")
    if isinstance(manifold, PoincareBall):
        return Chart("ball", manifold)
    if isinstance(manifold, Lorentz):
        return Chart("lorentz", manifold)
    if isinstance(manifold, HyperbolicManifold):
        return Chart("generic", manifold)
    if isinstance(manifold, geoopt.Lorentz):
        return Chart("lorentz", manifold)
    if isinstance(manifold, geoopt.Stereographic):
        if not bool(manifold.k < 0):
            raise ValueError(
                f"geoopt Stereographic with curvature k = {float(manifold.k)} is not hyperbolic; "
                "Fréchet means here need k < 0 (a Poincaré ball)"
            )
        return Chart("ball", manifold)
    raise TypeError(
        f"frechet_mean supports the Poincaré ball and the Lorentz model (library or geoopt), "
        f"got {type(manifold).__name__}"
    )


def describe(manifold) -> str:
    """A one-line description of a manifold for layer ``repr``: model name and curvature."""
    if manifold is None:
        return "PoincareBall(curvature=-1)"
    R = chart(manifold).radius(torch.zeros(()))
    curvature = -1.0 / float(R.detach()) ** 2
    learnable = any(p.requires_grad for p in manifold.parameters()) if isinstance(manifold, torch.nn.Module) else False
    name = {"ball": "PoincareBall", "lorentz": "Lorentz"}.get(chart(manifold).kind, type(manifold).__name__)
    return f"{name}(curvature={curvature:.4g}{', learnable' if learnable else ''})"
