r"""The hyperboloid :math:`\{x : \langle x, x\rangle_L = -1,\ x_0 > 0\}` at curvature -1.

Coordinates are ``(x0, x1, ..., xn)`` with the time coordinate first, and
:math:`\langle u, v\rangle_L = -u_0 v_0 + \sum_{i\ge1} u_i v_i`.

Distance is evaluated without forming :math:`\langle x, y\rangle_L`. With the Poincaré coordinates
:math:`p = x_s/(1+x_0)` one has :math:`1 - \lVert p\rVert^2 = 2/(1+x_0)`, hence

.. math::

    \sinh\frac{d(x,y)}{2} = \frac12 \left\lVert \alpha\,x_s - \alpha^{-1} y_s \right\rVert,
    \qquad \alpha = \sqrt{\frac{1+y_0}{1+x_0}} .

Its error grows like :math:`\varepsilon e^{r}` at radius :math:`r`, against
:math:`\varepsilon e^{2r}` for :math:`\operatorname{arcosh}(-\langle x,y\rangle_L)`, and it keeps full
relative accuracy for tiny distances, where ``arcosh`` near 1 loses half the digits.
"""

from __future__ import annotations

import torch

from ..numerics import safe_sqrt, scaled_norm, sinhc, sinhc_inverse

__all__ = [
    "inner",
    "half_chord",
    "dist",
    "expmap",
    "logmap",
    "proju",
    "projx",
    "egrad2rgrad",
    "transp",
    "to_poincare",
    "from_poincare",
]


def inner(u: torch.Tensor, v: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    r"""Minkowski product :math:`-u_0 v_0 + \sum_{i\ge1} u_i v_i`."""
    product = u * v
    result = product[..., 1:].sum(-1, keepdim=True) - product[..., :1]
    return result if keepdim else result.squeeze(-1)


def half_chord(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r""":math:`\sinh(d(x, y)/2)` by the cancellation-free half-angle form (module docstring), keeping the last axis."""
    x0, y0 = x[..., :1], y[..., :1]
    # The value rounds the quotient once (near pairs far out lose accuracy with every rounding of alpha); the
    # gradient goes through sqrt(1 + y0) / sqrt(1 + x0), equal in value, as the backward pass of the quotient
    # squares 1 + x0, which overflows beyond radius 355 (44 in float32) and turns large gradients into NaN.
    alpha = torch.sqrt((1 + y0) / (1 + x0))
    if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):
        differentiable = torch.sqrt(1 + y0) / torch.sqrt(1 + x0)
        alpha = alpha.detach() + (differentiable - differentiable.detach())
    return 0.5 * scaled_norm(alpha * x[..., 1:] - y[..., 1:] / alpha, keepdim=True)


def dist(x: torch.Tensor, y: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """Geodesic distance by the cancellation-free half-angle form (module docstring)."""
    d = 2 * torch.asinh(half_chord(x, y))
    return d if keepdim else d.squeeze(-1)


def projx(x: torch.Tensor) -> torch.Tensor:
    r"""Put ``x`` on the hyperboloid by recomputing :math:`x_0 = \sqrt{1 + \lVert x_s\rVert^2}`.

    Formed as ``hypot(1, ‖x_s‖)`` with a scaled norm: the squares overflow from radius 355 (float64; 44 in
    float32), long before :math:`x_0` itself does.
    """
    spatial = x[..., 1:]
    x0 = torch.hypot(torch.ones_like(spatial[..., :1]), scaled_norm(spatial, keepdim=True))
    return torch.cat([x0, spatial], dim=-1)


def proju(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""Orthogonal projection onto :math:`T_x = \{u : \langle x, u\rangle_L = 0\}`: :math:`u + \langle x,u\rangle_L x`."""
    return u + inner(x, u, keepdim=True) * x


def egrad2rgrad(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Riemannian gradient: flip the sign of the time component (inverse metric), then project."""
    return proju(x, torch.cat([-grad[..., :1], grad[..., 1:]], dim=-1))


def expmap(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r""":math:`\exp_x(u) = \cosh(\lVert u\rVert_L)\,x + \frac{\sinh\lVert u\rVert_L}{\lVert u\rVert_L}\,u`, re-projected."""
    norm = safe_sqrt(inner(u, u, keepdim=True))
    return projx(torch.cosh(norm) * x + sinhc(norm) * u)


def logmap(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r""":math:`\log_x(y) = \frac{d}{\sinh d}\,(y + \langle x,y\rangle_L x)
    = \frac{d}{\sinh d}\,(y - x) - d\tanh\frac d2\,x` with :math:`d = d(x, y)`.

    The second form uses :math:`\langle x,y\rangle_L = -\cosh d` and takes :math:`d` from the half-angle form: no
    Minkowski product is formed, so nothing cancels (a product of points at radius ``r`` loses
    :math:`\varepsilon e^{2r}` and overflows past radius 355), and the map is smooth at :math:`y = x`, where it is 0.
    """
    d = 2 * torch.asinh(half_chord(x, y))
    return sinhc_inverse(d) * (y - x) - d * torch.tanh(d / 2) * x


def transp(x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Parallel transport along the geodesic: :math:`v + \frac{\langle y, v\rangle_L}{1 - \langle x, y\rangle_L}(x + y)`.

    Formed as :math:`\langle y - x, v\rangle_L / (2 + 2\sinh^2(d/2))`, equal for :math:`v` tangent at ``x``: the
    products of nearby points neither cancel nor overflow, and ``x = y`` gives ``v`` exactly.
    """
    s = half_chord(x, y)
    return v + inner(y - x, v, keepdim=True) / (2 + 2 * s.square()) * (x + y)


def to_poincare(x: torch.Tensor) -> torch.Tensor:
    r"""Stereographic projection :math:`p = x_s/(1 + x_0)` (no cancellation)."""
    return x[..., 1:] / (1 + x[..., :1])


def from_poincare(p: torch.Tensor) -> torch.Tensor:
    r"""Inverse projection :math:`x = \big(1 + \lVert p\rVert^2,\ 2p\big)/(1 - \lVert p\rVert^2)`."""
    squared = p.square().sum(-1, keepdim=True)
    denominator = (1 - squared).clamp_min(torch.finfo(p.dtype).tiny)
    return torch.cat([1 + squared, 2 * p], dim=-1) / denominator
