r"""Fused training kernels for the Poincaré ball: the distance with its hand-derived gradient, and the
Riemannian SGD update of a set of rows.

Both compute the maths of :mod:`hyperbolic.math.poincare` (unit ball, curvature -1; other radii are
scaled to it) with fewer passes over memory: the generic path forms every intermediate of the scaled
norm and of Möbius addition and lets autograd store and replay them, which costs about three times as
much per optimizer step on the WordNet noun closure.

Distance
    With :math:`\delta = p - q`, :math:`s = \lVert\delta\rVert`, :math:`a = 1 - \lVert p\rVert^2`,
    :math:`b = 1 - \lVert q\rVert^2`, :math:`z = s / \sqrt{ab}`:

    .. math::

        d = 2\operatorname{asinh} z, \qquad
        \frac{\partial d}{\partial p} = \frac{2}{\sqrt{1 + z^2}}
            \Big(\frac{\delta}{s\sqrt{ab}} + \frac{z}{a}\,p\Big), \qquad
        \frac{\partial d}{\partial q} = \frac{2}{\sqrt{1 + z^2}}
            \Big(-\frac{\delta}{s\sqrt{ab}} + \frac{z}{b}\,q\Big).

    :math:`s` is the plain :math:`\sqrt{\sum_i \delta_i^2}` (as accurate as the kernel's scaled norm while
    :math:`s^2` is a normal number); the rare pairs closer than that take the scaled norm. At
    :math:`s = 0` the gradient's first term is 0 (the subgradient :func:`hyperbolic.numerics.safe_sqrt`
    also picks).

Row update
    :math:`x \leftarrow \exp_x(-\eta\,\lambda_x^{-2} g)` with the step's Riemannian length
    :math:`\eta\lVert g\rVert/\lambda_x` clipped to ``max_step``. The step vector is
    :math:`v = -\tanh(\lambda_x\lVert u\rVert/2)\,g/\lVert g\rVert`, so the Möbius sum
    :math:`x \oplus v = (\alpha x + \beta g)/\gamma` needs three row reductions
    (:math:`\lVert x\rVert^2, \lVert g\rVert^2, \langle x, g\rangle`); the result is projected like
    :func:`hyperbolic.math.poincare.projx`.
"""

from __future__ import annotations

import torch

from hyperbolic.numerics import guards, scaled_norm

from .nearest import poincare_gram_nearest

__all__ = ["poincare_rows_distance", "poincare_sgd_rows", "poincare_nearest", "is_plain_poincare"]


def is_plain_poincare(manifold) -> bool:
    """True for a :class:`hyperbolic.PoincareBall` (fixed curvature) whose distance and update these
    kernels reproduce."""
    from hyperbolic.poincare import PoincareBall

    return (isinstance(manifold, PoincareBall) and not manifold.learnable
            and type(manifold).dist is PoincareBall.dist and type(manifold).retr is PoincareBall.retr
            and type(manifold).egrad2rgrad is PoincareBall.egrad2rgrad)


def _norm(delta: torch.Tensor) -> torch.Tensor:
    """``|delta|`` over the last axis: plain where the square sum is a normal number (at full precision),
    scaled elsewhere (zeros included: underflowed squares look the same)."""
    squares = delta.square().sum(-1)
    norm = torch.sqrt(squares)
    small = squares < torch.finfo(delta.dtype).tiny / guards(delta.dtype).eps
    if bool(small.any()):
        norm[small] = scaled_norm(delta[small])
    return norm


class _RowsDistance(torch.autograd.Function):
    """Distances ``d(rows[iu[b]], rows[io[b, k]])`` in the unit ball and their gradient w.r.t. ``rows``."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, iu: torch.Tensor, io: torch.Tensor) -> torch.Tensor:
        tiny = torch.finfo(rows.dtype).tiny
        one_minus = (1 - rows.square().sum(-1)).clamp_min(tiny)
        p = rows.index_select(0, iu).unsqueeze(1)  # (B, 1, n)
        q = rows.index_select(0, io.reshape(-1)).view(*io.shape, -1)  # (B, K, n)
        delta = p - q
        s = _norm(delta)
        a = one_minus[iu].unsqueeze(1)
        b = one_minus[io]
        root = torch.sqrt(a * b)
        z = s / root
        ctx.save_for_backward(rows, iu, io, p, q, delta, s, a, b, root, z)
        return 2 * torch.asinh(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rows, iu, io, p, q, delta, s, a, b, root, z = ctx.saved_tensors
        h = 2 * grad / torch.sqrt(1 + z.square())
        along = torch.where(s > 0, h / (s * root).clamp_min(torch.finfo(s.dtype).tiny), 0.0)  # (B, K)
        radial = h * z  # (B, K)
        grad_q = (radial / b).unsqueeze(-1) * q - along.unsqueeze(-1) * delta
        grad_p = torch.bmm(along.unsqueeze(1), delta) + (radial.sum(1, keepdim=True) / a).unsqueeze(-1) * p
        out = torch.zeros_like(rows)
        out.index_put_((io.reshape(-1),), grad_q.reshape(-1, rows.shape[-1]), accumulate=True)
        out.index_put_((iu,), grad_p.squeeze(1), accumulate=True)
        return out, None, None


def poincare_rows_distance(manifold, rows: torch.Tensor, iu: torch.Tensor, io: torch.Tensor) -> torch.Tensor:
    """Poincaré distances between ``rows[iu]`` and ``rows[io]`` with a fused backward.

    Parameters
    ----------
    manifold
        A :class:`hyperbolic.PoincareBall` (:func:`is_plain_poincare`).
    rows : torch.Tensor
        ``(M, n)`` points (typically the distinct rows of a batch, requiring grad).
    iu : torch.Tensor
        ``(B,)`` int64 indices into ``rows``.
    io : torch.Tensor
        ``(B, K)`` or ``(B,)`` int64 indices into ``rows``.

    Returns
    -------
    torch.Tensor
        ``(B, K)`` (or ``(B,)``) distances, equal to ``manifold.dist(rows[iu, None], rows[io])`` up to
        rounding.
    """
    flat = io.dim() == 1
    R = float(manifold.scale(rows))
    unit = rows if R == 1.0 else rows / R
    d = _RowsDistance.apply(unit, iu, io.unsqueeze(1) if flat else io)
    if R != 1.0:
        d = d * R
    return d.squeeze(1) if flat else d


def poincare_sgd_rows(manifold, x: torch.Tensor, grad: torch.Tensor, lr: float,
                      max_step: float | None = None) -> torch.Tensor:
    """``manifold.retr(x, -lr * manifold.egrad2rgrad(x, g))``, with ``g`` scaled down per row so that the
    step's Riemannian length ``lr * |g| / lambda_x`` is at most ``max_step`` (None: no clipping).

    ``x``, ``grad``: ``(M, n)`` rows and their Euclidean gradients; returns the new rows.
    """
    R = float(manifold.scale(x))
    p = x if R == 1.0 else x / R
    p2 = p.square().sum(-1, keepdim=True)
    g_norm = torch.sqrt(grad.square().sum(-1, keepdim=True))
    pg = (p * grad).sum(-1, keepdim=True)
    one_minus = 1 - p2
    # The step's Riemannian length lr |g| / lambda, lambda = 2 / (1 - |p|^2); the Möbius step of a
    # geodesic length L in the ball of radius R has Euclidean size tanh(L / 2R) in unit coordinates.
    length = lr * g_norm * one_minus / 2
    if max_step is not None:
        length = length.clamp_max(max_step)
    t = torch.tanh(length / (2 * R))
    unit_step = torch.where(g_norm > 0, t / g_norm.clamp_min(torch.finfo(grad.dtype).tiny), 0.0)  # v = -unit_step g
    pv = -unit_step * pg
    alpha = 1 + 2 * pv + t.square()
    beta = -one_minus * unit_step
    gamma = 1 + 2 * pv + p2 * t.square()
    out = (alpha * p + beta * grad) / gamma
    max_norm = 1 - guards(x.dtype).ball_boundary
    norm = torch.sqrt(out.square().sum(-1, keepdim=True))
    out = out * torch.where(norm > max_norm, max_norm / norm.clamp_min(max_norm), 1.0)
    return out if R == 1.0 else out * R


def poincare_nearest(manifold, points: torch.Tensor, rows: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` points nearest to each of ``points[rows]``, nearest first (up to rounding of the
    Gram form, :mod:`embed.nearest`), the query itself included.

    ``points``: ``(N, n)`` on a :class:`hyperbolic.PoincareBall` (:func:`is_plain_poincare`); ``rows``:
    ``(R,)`` int64. Returns ``(R, k)`` int64 on ``points``' device.
    """
    R = float(manifold.scale(points))
    return poincare_gram_nearest(points if R == 1.0 else points / R, rows, k)
