r"""Synthetic densities on :math:`H^2` (Lorentz model, curvature -1) and :math:`S^2`, with samplers and
exact log-densities (Riemannian volume), as defined in ``../shared/notes/flows.md`` §7.

:math:`H^2` (``space="hyperbolic"``); unless stated otherwise a sample is drawn in :math:`T_oH^2 \cong \mathbb{R}^2`
and pushed through :math:`\exp_o`, so its density is the tangent density times :math:`e^{-J_o(v)}`,
:math:`v = \log_o x`:

* ``1wrapped``: :math:`\mathcal{WN}(\exp_o(-1, 1), \sigma = (0.75, 0.75))`;
* ``5gaussians``: :math:`c + N(0, 0.5^2 I)`, :math:`c` uniform over :math:`3\{(1,0), (-1,0), (0,1), (0,-1), (0,0)\}`;
  :math:`\log p = \log\tfrac15\sum_c N(v; c, 0.25 I) - J_o(v)`;
* ``bigcheckerboard``: :math:`s = 1.5`, uniform on :math:`[0, s]^2` plus an offset uniform over
  :math:`\{(0,0), (0,-2s), (s,s), (s,-s), (-s,s), (-s,-s), (-2s,0), (-2s,-2s)\}` (8 disjoint squares);
  :math:`\log p = -\log(8s^2) - J_o(v)` on the squares;
* ``mult_wrapped``: equal parts from 4 wrapped normals centred at :math:`(\sqrt{1 + 2\cdot1.3^2}, \pm1.3, \pm1.3)`,
  :math:`\sigma = (0.3, 1.5)` for spatial parts :math:`\pm(1.3, 1.3)` and :math:`(1.5, 0.3)` for
  :math:`\pm(-1.3, 1.3)`.

:math:`S^2` (``space="sphere"``):

* ``1wrapped``: :math:`\mathcal{WN}(-(1,1,1)/\sqrt3, \sigma = 0.3)`;
* ``4wrapped``: equal parts from wrapped normals at :math:`\pm(1,1,1)/\sqrt3`, :math:`\pm(1,1,-1)/\sqrt3`, :math:`\sigma = 0.3`;
* ``bigcheckerboard``: :math:`s = \pi/2 - 0.2`; :math:`(\varphi, \theta)` uniform on
  :math:`[\pi, \pi+s]\times[\pi/2, \pi/2 + s/2]` plus an offset uniform over
  :math:`\{(0,0), (s,s/2), (s,-s/2), (0,-s), (-s,s/2), (-s,-s/2), (-2s,0), (-2s,-s)\}`, mapped by
  :math:`x = (\sin\theta\cos\varphi, \sin\theta\sin\varphi, \cos\theta)`. Uniform in :math:`(\varphi, \theta)`,
  so :math:`p = 1/(4s^2\sin\theta)` on the cells (area measure).

"Equal parts": ``n`` samples are split as evenly as possible (``n // 4`` each, the remainder to the first
components) and shuffled.
"""

from __future__ import annotations

import math

import torch

from ...lorentz import Lorentz
from .distributions import WrappedNormal
from .functional import HyperbolicChart
from .sphere import Sphere

__all__ = ["SyntheticDensity", "HYPERBOLIC", "SPHERE", "synthetic"]

HYPERBOLIC = ("1wrapped", "5gaussians", "bigcheckerboard", "mult_wrapped")
SPHERE = ("1wrapped", "4wrapped", "bigcheckerboard")

_H2_SQUARE = 1.5
_H2_OFFSETS = [(0, 0), (0, -2), (1, 1), (1, -1), (-1, 1), (-1, -1), (-2, 0), (-2, -2)]
_S2_SIDE = math.pi / 2 - 0.2
_S2_OFFSETS = [(0, 0), (1, 0.5), (1, -0.5), (0, -1), (-1, 0.5), (-1, -0.5), (-2, 0), (-2, -1)]
_GAUSSIAN_CENTRES = [(3.0, 0.0), (-3.0, 0.0), (0.0, 3.0), (0.0, -3.0), (0.0, 0.0)]


def _equal_parts(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


class SyntheticDensity:
    r"""A synthetic density on :math:`H^2` or :math:`S^2` with a sampler and its exact log-density.

    Parameters
    ----------
    name : str
        One of :data:`HYPERBOLIC` or :data:`SPHERE`.
    space : {"hyperbolic", "sphere"}

    Attributes
    ----------
    manifold : Lorentz or Sphere
        ``Lorentz(2)`` (points ``(n, 3)``, curvature -1) or ``Sphere(2)`` (unit vectors ``(n, 3)``).
    """

    def __init__(self, name: str, space: str = "hyperbolic"):
        if space not in ("hyperbolic", "sphere"):
            raise ValueError(f"space must be 'hyperbolic' or 'sphere', got {space!r}")
        names = HYPERBOLIC if space == "hyperbolic" else SPHERE
        if name not in names:
            raise ValueError(f"unknown {space} dataset {name!r}; choose from {names}")
        self.name, self.space = name, space
        self.manifold = Lorentz(2) if space == "hyperbolic" else Sphere(2)
        self._chart = HyperbolicChart(self.manifold) if space == "hyperbolic" else None

    def __repr__(self) -> str:
        return f"SyntheticDensity({self.name!r}, space={self.space!r})"

    # ----------------------------------------------------------------- components
    def _wrapped(self, dtype=torch.float64, device=None) -> WrappedNormal:
        """The wrapped normal (mixture components along the batch axis) of the WN datasets."""
        if self.space == "hyperbolic":
            if self.name == "1wrapped":
                loc = self._chart.from_chart(torch.tensor([[-1.0, 1.0]], dtype=dtype, device=device))
                scale = torch.full((1, 2), 0.75, dtype=dtype, device=device)
            else:
                a = 1.3
                spatial = torch.tensor([[a, a], [-a, -a], [-a, a], [a, -a]], dtype=dtype, device=device)
                loc = torch.cat(
                    [torch.full((4, 1), math.sqrt(1 + 2 * a * a), dtype=dtype, device=device), spatial], -1
                )
                scale = torch.tensor(
                    [[0.3, 1.5], [0.3, 1.5], [1.5, 0.3], [1.5, 0.3]], dtype=dtype, device=device
                )
        else:
            if self.name == "1wrapped":
                loc = -torch.ones(1, 3, dtype=dtype, device=device) / math.sqrt(3)
            else:
                base = torch.tensor(
                    [[1.0, 1.0, 1.0], [1.0, 1.0, -1.0]], dtype=dtype, device=device
                ) / math.sqrt(3)
                loc = torch.cat([base, -base])
            scale = torch.full((loc.shape[0], 2), 0.3, dtype=dtype, device=device)
        return WrappedNormal(self.manifold, loc, scale)

    # ----------------------------------------------------------------- sampling
    def sample(
        self, n: int, generator: torch.Generator | None = None, dtype=torch.float64, device=None
    ) -> torch.Tensor:
        """``n`` samples ``(n, 3)`` on the manifold."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        kw = dict(dtype=dtype, device=device)
        if self.name in ("1wrapped", "mult_wrapped", "4wrapped"):
            wn = self._wrapped(**kw)
            counts = _equal_parts(n, wn.loc.shape[0])
            pieces = []
            for i, count in enumerate(counts):
                v = torch.randn(count, 2, generator=generator, **kw) * wn.scale[i]
                pieces.append(WrappedNormal(self.manifold, wn.loc[i], wn.scale[i]).from_tangent(v))
            x = torch.cat(pieces)
            return x[torch.randperm(n, generator=generator, device=device)]
        if self.name == "5gaussians":
            centres = torch.tensor(_GAUSSIAN_CENTRES, **kw)
            index = torch.randint(0, 5, (n,), generator=generator, device=device)
            v = centres[index] + 0.5 * torch.randn(n, 2, generator=generator, **kw)
            return self._chart.from_chart(v)
        if self.space == "hyperbolic":  # bigcheckerboard
            s = _H2_SQUARE
            offsets = s * torch.tensor(_H2_OFFSETS, **kw)
            index = torch.randint(0, 8, (n,), generator=generator, device=device)
            v = s * torch.rand(n, 2, generator=generator, **kw) + offsets[index]
            return self._chart.from_chart(v)
        s = _S2_SIDE
        offsets = s * torch.tensor(_S2_OFFSETS, **kw)
        index = torch.randint(0, 8, (n,), generator=generator, device=device)
        u = torch.rand(n, 2, generator=generator, **kw)
        phi = math.pi + s * u[:, 0] + offsets[index, 0]
        theta = math.pi / 2 + s / 2 * u[:, 1] + offsets[index, 1]
        return torch.stack([theta.sin() * phi.cos(), theta.sin() * phi.sin(), theta.cos()], dim=-1)

    # ----------------------------------------------------------------- density
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density ``(n,)`` of points ``(n, 3)`` (Riemannian volume); ``-inf`` off the support."""
        self.manifold.assert_points(x, "points")
        if self.name in ("1wrapped", "mult_wrapped", "4wrapped"):
            wn = self._wrapped(dtype=x.dtype, device=x.device)
            parts = wn.log_prob(x.unsqueeze(-2))
            return torch.logsumexp(parts, dim=-1) - math.log(parts.shape[-1])
        if self.space == "hyperbolic":
            v = self._chart.to_chart(x)
            jacobian = self._chart.log_det(v)
            if self.name == "5gaussians":
                centres = torch.tensor(_GAUSSIAN_CENTRES, dtype=x.dtype, device=x.device)
                squared = (v.unsqueeze(-2) - centres).square().sum(-1)
                gaussians = -squared / (2 * 0.25) - math.log(2 * math.pi * 0.25)
                return torch.logsumexp(gaussians, dim=-1) - math.log(5) - jacobian
            s = _H2_SQUARE
            inside = torch.zeros(v.shape[:-1], dtype=torch.bool, device=x.device)
            for ox, oy in _H2_OFFSETS:
                low = torch.tensor([ox * s, oy * s], dtype=x.dtype, device=x.device)
                inside |= ((v >= low) & (v <= low + s)).all(-1)
            value = -math.log(8 * s * s) - jacobian
            return torch.where(inside, value, torch.full_like(value, -math.inf))
        s = _S2_SIDE
        theta = torch.atan2(x[..., :2].norm(dim=-1), x[..., 2])
        phi = torch.remainder(torch.atan2(x[..., 1], x[..., 0]), 2 * math.pi)
        inside = torch.zeros(x.shape[:-1], dtype=torch.bool, device=x.device)
        for ophi, otheta in _S2_OFFSETS:
            phi0 = math.pi + ophi * s
            theta0 = math.pi / 2 + otheta * s
            inside |= (phi >= phi0) & (phi <= phi0 + s) & (theta >= theta0) & (theta <= theta0 + s / 2)
        value = -math.log(4 * s * s) - torch.log(torch.sin(theta))
        return torch.where(inside, value, torch.full_like(value, -math.inf))


def synthetic(name: str, space: str = "hyperbolic") -> SyntheticDensity:
    """The synthetic density ``name`` on :math:`H^2` (``space="hyperbolic"``) or :math:`S^2` (``"sphere"``)."""
    return SyntheticDensity(name, space)
