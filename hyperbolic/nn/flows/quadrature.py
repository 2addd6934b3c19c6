r"""Normalisation checks by grid quadrature on :math:`H^2` and :math:`S^2`.

* :math:`H^2`: :math:`\int_{H^2} p\,d\mathrm{Vol} \approx h^2\sum_{y} \exp\big(\log p(\exp_o y) + J_o(y)\big)` over a
  square grid of :math:`T_oH^2 \cap [-a, a]^2` with spacing :math:`h`; :math:`e^{J_o(y)} = \sinh r / r` is the
  volume factor of the chart.
* :math:`S^2`: :math:`\int_{S^2} p\,dA \approx \sum p(\varphi, \theta)\sin\theta\,\Delta\varphi\,\Delta\theta` by the
  midpoint rule on a :math:`(\varphi, \theta) \in [0, 2\pi)\times(0, \pi)` grid.

The sums use ``logsumexp``. ``log_prob`` is called on chunks of grid points under ``torch.no_grad``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...lorentz import Lorentz
from .functional import HyperbolicChart

__all__ = ["hyperbolic_grid", "sphere_grid", "integrate_hyperbolic", "integrate_sphere"]


def hyperbolic_grid(points: int = 161, extent: float = 8.0, dtype=torch.float64, device=None):
    """Grid ``(points**2, 2)`` of :math:`[-a, a]^2` in :math:`T_oH^2` and its cell area :math:`h^2`."""
    axis = torch.linspace(-extent, extent, points, dtype=dtype, device=device)
    y = torch.cartesian_prod(axis, axis)
    h = 2 * extent / (points - 1)
    return y, h * h


def sphere_grid(n_phi: int = 200, n_theta: int = 100, dtype=torch.float64, device=None):
    """Midpoints ``(n_phi * n_theta, 3)`` of a :math:`(\\varphi, \\theta)` grid and their area weights
    :math:`\\sin\\theta\\,\\Delta\\varphi\\,\\Delta\\theta` ``(n_phi * n_theta,)``."""
    d_phi, d_theta = 2 * math.pi / n_phi, math.pi / n_theta
    phi = (torch.arange(n_phi, dtype=dtype, device=device) + 0.5) * d_phi
    theta = (torch.arange(n_theta, dtype=dtype, device=device) + 0.5) * d_theta
    grid = torch.cartesian_prod(phi, theta)
    phi, theta = grid[:, 0], grid[:, 1]
    x = torch.stack([theta.sin() * phi.cos(), theta.sin() * phi.sin(), theta.cos()], dim=-1)
    return x, theta.sin() * d_phi * d_theta


def _chunked(log_prob: Callable, x: torch.Tensor, chunk: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([log_prob(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)])


def integrate_hyperbolic(
    log_prob: Callable,
    manifold=None,
    points: int = 161,
    extent: float = 8.0,
    chunk: int = 8192,
) -> float:
    r""":math:`\int_{H^2} p\,d\mathrm{Vol}` by the grid rule of the module docstring.

    Parameters
    ----------
    log_prob : callable
        Points ``(m, storage)`` of ``manifold`` -> log-densities ``(m,)``.
    manifold : HyperbolicManifold, optional
        A 2-dimensional model; default ``Lorentz(2)``.
    points, extent : int, float
        Grid of ``points x points`` nodes on :math:`[-a, a]^2`, ``a = extent``.
    """
    manifold = Lorentz(2) if manifold is None else manifold
    if manifold.dim != 2:
        raise ValueError(f"grid quadrature is implemented for H^2, got dimension {manifold.dim}")
    chart = HyperbolicChart(manifold)
    y, area = hyperbolic_grid(points, extent)
    logp = _chunked(log_prob, chart.from_chart(y), chunk)
    return float(torch.exp(torch.logsumexp(logp + chart.log_det(y), 0)) * area)


def integrate_sphere(log_prob: Callable, n_phi: int = 200, n_theta: int = 100, chunk: int = 8192) -> float:
    r""":math:`\int_{S^2} p\,dA` by the midpoint rule on a :math:`(\varphi, \theta)` grid; ``log_prob`` maps
    unit vectors ``(m, 3)`` to ``(m,)``."""
    x, weight = sphere_grid(n_phi, n_theta)
    logp = _chunked(log_prob, x, chunk)
    return float(torch.exp(torch.logsumexp(logp + torch.log(weight), 0)))
