r"""The Poincaré ball :math:`\{p : \lVert p\rVert < 1\}` at curvature -1.

Conformal factor :math:`\lambda_p = 2/(1 - \lVert p\rVert^2)`; metric :math:`\lambda_p^2 \lVert dp\rVert^2`.
Distance in its half-angle form

.. math::

    \sinh\frac{d(p,q)}{2} = \frac{\lVert p - q\rVert}{\sqrt{1 - \lVert p\rVert^2}\,\sqrt{1 - \lVert q\rVert^2}},

which has full relative accuracy for tiny distances and never takes ``artanh`` of a number near 1.
"""

from __future__ import annotations

import torch

from mcf.eft import two_prod, two_sum

from ..numerics import scaled_norm, tanhc

__all__ = [
    "one_minus_squared_norm",
    "one_minus_squared_norm_accurate",
    "conformal_factor",
    "mobius_add",
    "dist",
    "expmap",
    "logmap",
    "egrad2rgrad",
    "inner",
    "projx",
]


def one_minus_squared_norm(p: torch.Tensor) -> torch.Tensor:
    r""":math:`1 - \lVert p\rVert^2`, trailing axis kept (plain float arithmetic)."""
    return 1 - p.square().sum(-1, keepdim=True)


def one_minus_squared_norm_accurate(p: torch.Tensor) -> torch.Tensor:
    r""":math:`1 - \lVert p\rVert^2` (trailing axis kept) accurate to a few ulp of the result for ``‖p‖ <= 1``.

    The plain form loses about :math:`\log_2(1/(1 - \lVert p\rVert^2))` bits near the boundary. Here the
    squares and the running sum are carried exactly (Two-Prod, Two-Sum) and the value is rounded once at the
    end. The gradient is that of the plain expression, :math:`-2p`.
    """
    plain = one_minus_squared_norm(p)
    with torch.no_grad():
        total = torch.ones_like(plain)
        tail = torch.zeros_like(plain)
        for i in range(p.shape[-1]):
            square, square_error = two_prod(p[..., i : i + 1], p[..., i : i + 1])
            total, error = two_sum(total, -square)
            tail = tail + (error - square_error)
        exact = total + tail
    return exact + (plain - plain.detach())


def conformal_factor(p: torch.Tensor, keepdim: bool = True) -> torch.Tensor:
    r""":math:`\lambda_p = 2 / (1 - \lVert p\rVert^2)`."""
    factor = 2 / one_minus_squared_norm(p)
    return factor if keepdim else factor.squeeze(-1)


def mobius_add(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""Möbius addition :math:`p \oplus q = \frac{(1 + 2\langle p,q\rangle + \lVert q\rVert^2)p + (1 - \lVert p\rVert^2) q}{1 + 2\langle p,q\rangle + \lVert p\rVert^2\lVert q\rVert^2}`."""
    pq = (p * q).sum(-1, keepdim=True)
    p2 = p.square().sum(-1, keepdim=True)
    q2 = q.square().sum(-1, keepdim=True)
    numerator = (1 + 2 * pq + q2) * p + (1 - p2) * q
    return numerator / (1 + 2 * pq + p2 * q2)


def dist(p: torch.Tensor, q: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """Geodesic distance by the half-angle form (module docstring)."""
    tiny = torch.finfo(p.dtype).tiny
    scale_p = torch.sqrt(one_minus_squared_norm(p).clamp_min(tiny))
    scale_q = torch.sqrt(one_minus_squared_norm(q).clamp_min(tiny))
    d = 2 * torch.asinh(scaled_norm(p - q, keepdim=True) / scale_p / scale_q)
    return d if keepdim else d.squeeze(-1)


def inner(p: torch.Tensor, u: torch.Tensor, v: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    r""":math:`\lambda_p^2 \langle u, v\rangle`."""
    result = conformal_factor(p).square() * (u * v).sum(-1, keepdim=True)
    return result if keepdim else result.squeeze(-1)


def egrad2rgrad(p: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    r""":math:`\lambda_p^{-2} \nabla f`."""
    return grad / conformal_factor(p).square()


def projx(p: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Pull points with ``‖p‖ > max_norm`` back radially onto the sphere of radius ``max_norm``."""
    norm = scaled_norm(p, keepdim=True)
    factor = torch.where(norm > max_norm, max_norm / norm.clamp_min(max_norm), torch.ones_like(norm))
    return p * factor


def expmap(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r""":math:`\exp_p(u) = p \oplus \big(\tanh(\lambda_p\lVert u\rVert/2)\, u/\lVert u\rVert\big)`."""
    half_length = conformal_factor(p) * scaled_norm(u, keepdim=True) / 2
    step = tanhc(half_length) * conformal_factor(p) / 2 * u
    return mobius_add(p, step)


def logmap(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r""":math:`\log_p(q) = d(p,q)\, w / (\lambda_p \lVert w\rVert)` with :math:`w = (-p) \oplus q`.

    The length comes from the accurate :func:`dist` rather than :math:`\operatorname{artanh}\lVert w\rVert`.
    Only the direction of :math:`w` is used, and with :math:`\delta = q - p`

    .. math::

        (-p) \oplus q = \frac{(1 - \lVert p\rVert^2)\,\delta - \lVert\delta\rVert^2 p}
                              {\lVert\delta\rVert^2 + (1 - \lVert p\rVert^2)(1 - \lVert q\rVert^2)},

    so :math:`w` is taken as the numerator, which does not cancel: :func:`mobius_add` forms
    :math:`1 - 2\langle p, q\rangle + \lVert p\rVert^2\lVert q\rVert^2`, which is 0/0 for nearby points
    near the boundary.
    """
    delta = q - p
    w = one_minus_squared_norm(p) * delta - delta.square().sum(-1, keepdim=True) * p
    w_norm = scaled_norm(w, keepdim=True)
    safe = torch.where(w_norm > 0, w_norm, torch.ones_like(w_norm))
    scale = torch.where(w_norm > 0, dist(p, q, keepdim=True) / (conformal_factor(p) * safe), 0.0)
    return scale * w
