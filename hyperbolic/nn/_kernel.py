r"""The Fréchet-mean kernels on the unit Poincaré ball, in float64: dense sets and edge segments.

Forward: the majorise–minimise (MM) iteration of ``../shared/notes/frechet.md`` §2 at curvature -1. With
:math:`s_l = \lVert x_l\rVert^2`, :math:`E_l = 1 - s_l` and the current iterate :math:`\mu`,

.. math::

    u_l = \frac{\lVert x_l - \mu\rVert^2}{E_l (1 - \lVert\mu\rVert^2)},\quad
    \alpha_l = \frac{w_l\, g(u_l)}{E_l},\quad
    a = \sum \alpha_l,\ b = \sum \alpha_l x_l,\ c = \sum \alpha_l s_l,\ A = a + c,

.. math::

    \mu \leftarrow \eta\, b, \qquad \eta = \frac{2}{A + \sqrt{\max(A^2 - 4\lVert b\rVert^2, 0)}} .

Each step minimises a majoriser of :math:`F(y) = \sum_l w_l d(x_l, y)^2`, so :math:`F` decreases
monotonically with no step size. A set has converged when its Riemannian step
:math:`\lambda_\mu \lVert \Delta\mu\rVert = 2\lVert\Delta\mu\rVert/(1 - \lVert\mu\rVert^2)` is at most ``tol``,
or when its Euclidean step is down to float64 resolution; converged sets are frozen and dropped from the
working set.

Backward: the implicit function theorem (§3). With :math:`v = H^{-1} g` (Cholesky solve of the Hessian
:math:`H = \nabla^2_{yy} F` at the mean, assembled with batched products), every input gradient is
:math:`-\partial_\theta \langle \nabla_y F(\theta, \mu), v\rangle`, taken as one vector–Jacobian product of the
closed-form gradient :math:`\nabla_y F = \sum_l w_l d_1(v_l) T_l`.

Two layouts share this maths:

* dense sets: points ``[B, t, n]``, weights ``[B, t]``, means ``[B, n]``;
* segments: points ``[E, n]`` (one per edge), weights ``[E]``, target ``index [E]``, means ``[N, n]``.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ..numerics import guards
from ._scalar import d1, d1_with_d2_gradient, d2, mm_weight

__all__ = ["DenseMean", "SegmentMean", "mm_dense", "mm_segments"]

_EPS = guards(torch.float64).eps
# Steps of this many float64 units (times sqrt(n)) are rounding noise: the iteration cannot do better.
_FLOOR_ULPS = 16.0
# Re-gather the working set once this fraction of it has converged.
_COMPACT_AT = 0.5
# Edge chunk for the per-edge outer products of the segment Hessian (bounds memory at chunk * n^2).
_CHUNK_ELEMENTS = 1 << 22


def _eta(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Smaller root of ``‖b‖²η² − Aη + 1 = 0`` (``A = a + c``) in its rationalised form (0/0-free at ``b = 0``)."""
    disc = (A.square() - 4 * b.square().sum(-1)).clamp_min(0)
    return 2 / (A + torch.sqrt(disc))


def _floor(n: int) -> float:
    return _FLOOR_ULPS * _EPS * max(n, 1) ** 0.5



# Below this value of 1 - |x|^2, the plain float64 form has lost more than 10 bits: use the compensated one.
_COMPENSATE_BELOW = 2.0**-10
# Sets whose initial centre has 1 - |m|^2 below this (distance from the origin above about 4.1) are
# translated to the origin before iterating.
_RECENTRE_BELOW = 1.0 / 16


def _two_sum(a: torch.Tensor, b: torch.Tensor):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _one_minus_squared_norm_exact(x: torch.Tensor) -> torch.Tensor:
    r""":math:`1 - \lVert x\rVert^2` to a few units of float64 rounding *relative to the result*.

    Squares are split exactly (Dekker's product) and summed with error-free transformations, so the
    difference with 1 does not amplify rounding errors by :math:`1/(1 - \lVert x\rVert^2)`.
    """
    c = 134217729.0 * x  # 2^27 + 1
    hi = c - (c - x)
    lo = x - hi
    p = x * x
    err = ((hi * hi - p) + 2 * hi * lo) + lo * lo
    total = torch.zeros_like(x[..., 0])
    comp = err.sum(-1)
    for i in range(x.shape[-1]):
        total, e = _two_sum(total, p[..., i])
        comp = comp + e
    return (1 - total) - comp


def one_minus_squared_norm(x: torch.Tensor) -> torch.Tensor:
    r""":math:`1 - \lVert x\rVert^2` of unit-ball points, compensated where the plain form loses bits."""
    E = 1 - x.square().sum(-1)
    close = E < _COMPENSATE_BELOW
    if bool(close.any()):
        E = E.clone()
        E[close] = _one_minus_squared_norm_exact(x[close])
    return E


def _translate_to_origin(x: torch.Tensor, E: torch.Tensor, m: torch.Tensor, Em: torch.Tensor):
    r"""Möbius translation :math:`x' = (-m) \oplus x` and :math:`1 - \lVert x'\rVert^2`, from differences.

    With :math:`q = \lVert x - m\rVert^2`: :math:`x' = (E_m (x - m) - q\,m)/(q + E_m E_x)` and
    :math:`1 - \lVert x'\rVert^2 = E_m E_x/(q + E_m E_x)`, both free of cancellation.
    """
    diff = x - m
    q = diff.square().sum(-1, keepdim=True)
    Em = Em.unsqueeze(-1)
    den = q + Em * E.unsqueeze(-1)
    return (Em * diff - q * m) / den, (Em * E.unsqueeze(-1) / den).squeeze(-1)


def _translate_back(m: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Möbius addition :math:`m \oplus y`."""
    my = (m * y).sum(-1, keepdim=True)
    m2 = m.square().sum(-1, keepdim=True)
    y2 = y.square().sum(-1, keepdim=True)
    return ((1 + 2 * my + y2) * m + (1 - m2) * y) / (1 + 2 * my + m2 * y2)


def _squared_distances(xa: torch.Tensor, ma: torch.Tensor) -> torch.Tensor:
    r""":math:`\lVert x_l - \mu\rVert^2` ``[B, t]`` from differences, in one fused kernel (``cdist`` without
    the matrix-product shortcut, which would cancel for nearby points); measured 2.5–7× faster on CPU
    than ``(x - mu).square().sum(-1)``, relative error below 1e-15."""
    return torch.cdist(xa, ma.unsqueeze(1), compute_mode="donot_use_mm_for_euclid_dist").squeeze(-1).square()


def _weighted_sum(alpha: torch.Tensor, xa: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_l \alpha_l x_l` ``[B, n]``: a batched product, except for few points with many
    coordinates, where the broadcast product is faster on CPU."""
    if xa.shape[1] < 32 and xa.shape[2] > 4:
        return (alpha.unsqueeze(-1) * xa).sum(1)
    return torch.bmm(alpha.unsqueeze(1), xa).squeeze(1)


def mm_dense(x: torch.Tensor, w: torch.Tensor, tol: float, max_iter: int):
    """MM iteration on dense sets. Returns ``(mu [B,n], converged [B], n_iter [B], degenerate [B])``.

    ``degenerate`` marks sets with zero total weight (or no points): their mean is the origin.
    """
    B, t, n = x.shape
    E = one_minus_squared_norm(x)
    wsum = w.sum(-1)
    degenerate = ~(wsum > 0)
    safe_wsum = torch.where(degenerate, torch.ones_like(wsum), wsum)
    mu = (w.unsqueeze(-1) * x).sum(1) / safe_wsum.unsqueeze(-1)
    mu = torch.where(degenerate.unsqueeze(-1), torch.zeros_like(mu), mu)
    # Sets far from the origin are iterated in a frame centred at their initial mean (frechet.md §2 on
    # precision): ball coordinates near the boundary carry relative errors of eps / (1 - |x|^2).
    Em = one_minus_squared_norm(mu)
    far = torch.nonzero((Em < _RECENTRE_BELOW) & ~degenerate).squeeze(-1)
    centres = None
    if far.numel():
        centres = mu[far]
        x, E = x.clone(), E.clone()
        x[far], E[far] = _translate_to_origin(x[far], E[far], centres.unsqueeze(1), Em[far].unsqueeze(1))
        mu[far] = 0
    converged = torch.zeros(B, dtype=torch.bool, device=x.device)
    n_iter = torch.zeros(B, dtype=torch.long, device=x.device)
    floor = _floor(n)

    idx = torch.nonzero(~degenerate).squeeze(-1)
    if idx.numel() == B:
        xa, wa, Ea, ma = x, w, E, mu
    else:
        xa, wa, Ea, ma = x[idx], w[idx], E[idx], mu[idx]
    # Pre-divide the weights by E_l and keep 1 + s_l: alpha_l = (w_l/E_l) g(u_l), A = sum alpha_l (1 + s_l).
    wE = wa / Ea
    one_plus_s = 2 - Ea
    frozen = torch.zeros(idx.numel(), dtype=torch.bool, device=x.device)
    iters = torch.zeros(idx.numel(), dtype=torch.long, device=x.device)
    for _ in range(max_iter):
        if idx.numel() == 0:
            break
        ym = 1 - ma.square().sum(-1)
        u = _squared_distances(xa, ma) / (Ea * ym.unsqueeze(-1))
        alpha = wE * mm_weight(u)
        b = _weighted_sum(alpha, xa)
        new = _eta((alpha * one_plus_s).sum(-1), b).unsqueeze(-1) * b
        step = (new - ma).norm(dim=-1)
        done = (2 * step <= tol * ym) | (step <= floor)
        ma = torch.where(frozen.unsqueeze(-1), ma, new)
        iters += ~frozen
        frozen = frozen | done
        n_frozen = int(frozen.sum())
        if n_frozen == 0:
            continue
        if n_frozen == frozen.numel() or n_frozen >= _COMPACT_AT * frozen.numel():
            mu[idx] = ma
            n_iter[idx] = iters
            converged[idx[frozen]] = True
            keep = ~frozen
            idx = idx[keep]
            xa, wE, one_plus_s, Ea, ma = xa[keep], wE[keep], one_plus_s[keep], Ea[keep], ma[keep]
            frozen, iters = frozen[keep], iters[keep]
    if idx.numel():
        mu[idx] = ma
        n_iter[idx] = iters
        converged[idx[frozen]] = True
    if centres is not None:
        mu[far] = _translate_back(centres, mu[far])
    return mu, converged, n_iter, degenerate


def mm_segments(x: torch.Tensor, w: torch.Tensor, index: torch.Tensor, N: int, tol: float, max_iter: int):
    """MM iteration on edge segments (node ``index[e]`` receives message ``x[e]``).

    Returns ``(mu [N,n], converged [N], n_iter [N], degenerate [N])``; nodes with no message or zero total
    weight are degenerate and get the origin.
    """
    E_count, n = x.shape
    Ecoef = one_minus_squared_norm(x)
    wsum = x.new_zeros(N).index_add_(0, index, w)
    degenerate = ~(wsum > 0)
    safe_wsum = torch.where(degenerate, torch.ones_like(wsum), wsum)
    mu = x.new_zeros(N, n).index_add_(0, index, w.unsqueeze(-1) * x) / safe_wsum.unsqueeze(-1)
    Em = one_minus_squared_norm(mu)
    far_node = (Em < _RECENTRE_BELOW) & ~degenerate
    far = torch.nonzero(far_node).squeeze(-1)
    centres = None
    if far.numel():
        centres = mu[far]
        far_edges = torch.nonzero(far_node[index]).squeeze(-1)
        target = index[far_edges]
        x, Ecoef = x.clone(), Ecoef.clone()
        x[far_edges], Ecoef[far_edges] = _translate_to_origin(x[far_edges], Ecoef[far_edges], mu[target], Em[target])
        mu[far] = 0
    converged = torch.zeros(N, dtype=torch.bool, device=x.device)
    n_iter = torch.zeros(N, dtype=torch.long, device=x.device)
    floor = _floor(n)

    nodes = torch.nonzero(~degenerate).squeeze(-1)
    local = torch.full((N,), -1, dtype=torch.long, device=x.device)
    local[nodes] = torch.arange(nodes.numel(), device=x.device)
    edges = torch.nonzero(local[index] >= 0).squeeze(-1)
    xa, wa, Ea, ia = x[edges], w[edges], Ecoef[edges], local[index[edges]]
    wE, one_plus_s = wa / Ea, 2 - Ea
    ma = mu[nodes]
    frozen = torch.zeros(nodes.numel(), dtype=torch.bool, device=x.device)
    for _ in range(max_iter):
        if nodes.numel() == 0:
            break
        ym = 1 - ma.square().sum(-1)
        u = (xa - ma[ia]).square().sum(-1) / (Ea * ym[ia])
        alpha = wE * mm_weight(u)
        stacked = torch.cat([(alpha * one_plus_s).unsqueeze(-1), alpha.unsqueeze(-1) * xa], dim=-1)
        sums = ma.new_zeros(nodes.numel(), n + 1).index_add_(0, ia, stacked)
        b = sums[:, 1:]
        new = _eta(sums[:, 0], b).unsqueeze(-1) * b
        step = (new - ma).norm(dim=-1)
        done = (2 * step <= tol * ym) | (step <= floor)
        ma = torch.where(frozen.unsqueeze(-1), ma, new)
        n_iter[nodes[~frozen]] += 1
        frozen = frozen | done
        n_frozen = int(frozen.sum())
        if n_frozen == 0:
            continue
        if n_frozen == frozen.numel() or n_frozen >= _COMPACT_AT * frozen.numel():
            mu[nodes] = ma
            converged[nodes[frozen]] = True
            keep = ~frozen
            relabel = torch.cumsum(keep, 0) - 1
            edge_keep = keep[ia]
            xa, wE, one_plus_s, Ea = xa[edge_keep], wE[edge_keep], one_plus_s[edge_keep], Ea[edge_keep]
            ia = relabel[ia[edge_keep]]
            nodes, ma, frozen = nodes[keep], ma[keep], frozen[keep]
    if nodes.numel():
        mu[nodes] = ma
        converged[nodes[frozen]] = True
    if centres is not None:
        mu[far] = _translate_back(centres, mu[far])
    return mu, converged, n_iter, degenerate


# --------------------------------------------------------------------------- backward


class _Dense:
    """Reductions of the dense layout: sets on axis 1."""

    @staticmethod
    def gather(node: torch.Tensor) -> torch.Tensor:
        return node.unsqueeze(1)

    @staticmethod
    def reduce(edge: torch.Tensor) -> torch.Tensor:
        return edge.sum(1)

    @staticmethod
    def outer(T: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
        r""":math:`\sum_l c_l T_l T_l^\top` as one batched product ``Tᵀ diag(c) T``."""
        return torch.bmm((T * coef.unsqueeze(-1)).transpose(1, 2), T)


class _Segments:
    """Reductions of the segment layout: edge ``e`` belongs to node ``index[e]``."""

    def __init__(self, index: torch.Tensor, N: int):
        self.index, self.N = index, N

    def gather(self, node: torch.Tensor) -> torch.Tensor:
        return node[self.index]

    def reduce(self, edge: torch.Tensor) -> torch.Tensor:
        return edge.new_zeros(self.N, *edge.shape[1:]).index_add_(0, self.index, edge)

    def outer(self, T: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
        """Per-edge outer products, accumulated per node in chunks of edges."""
        n = T.shape[-1]
        H = T.new_zeros(self.N, n, n)
        chunk = max(1, _CHUNK_ELEMENTS // max(n * n, 1))
        for start in range(0, T.shape[0], chunk):
            Tc = T[start : start + chunk]
            products = (Tc * coef[start : start + chunk].unsqueeze(-1)).unsqueeze(-1) * Tc.unsqueeze(-2)
            H.index_add_(0, self.index[start : start + chunk], products)
        return H


def _pair_terms(x, y):
    r"""Per-point quantities at the mean: difference, :math:`q`, :math:`E`, :math:`D`, :math:`u`."""
    diff = x - y
    q = diff.square().sum(-1)
    E = 1 - x.square().sum(-1)
    D = E * (1 - y.square().sum(-1))
    return diff, q, E, D, q / D


def _direction(diff, q, E, D, y):
    r""":math:`T_l = \partial v_l/\partial y = 4[-(x_l - y)/D_l + q_l E_l y / D_l^2]` at curvature -1."""
    return 4 * (-diff / D.unsqueeze(-1) + (q * E / D.square()).unsqueeze(-1) * y)


def _solve_spd(H: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Solve ``H z = g`` by Cholesky, falling back to LU for the batches whose factorisation fails."""
    L, info = torch.linalg.cholesky_ex(H)
    z = torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)
    failed = info != 0
    if bool(failed.any()):
        z = z.clone()
        z[failed] = torch.linalg.solve(H[failed], g[failed].unsqueeze(-1)).squeeze(-1)
    return z


def ift_backward(layout, x, w, mu, grad, degenerate):
    """Gradients ``(dL/dx, dL/dw)`` of the mean by the implicit function theorem (frechet.md §3)."""
    y = layout.gather(mu)
    diff, q, E, D, u = _pair_terms(x, y)
    T = _direction(diff, q, E, D, y)
    wd1 = w * d1(u)
    H = layout.outer(T, w * d2(u))
    p = layout.reduce((wd1 * -8 * E / D.square()).unsqueeze(-1) * diff)
    beta = layout.reduce(wd1 * 16 * E.square() * q / D.pow(3))
    gamma = layout.reduce(wd1 * (4 / D + 4 * E * q / D.square()))
    n = mu.shape[-1]
    eye = torch.eye(n, dtype=mu.dtype, device=mu.device)
    H = (
        H
        + mu.unsqueeze(-1) * p.unsqueeze(-2)
        + p.unsqueeze(-1) * mu.unsqueeze(-2)
        + beta[:, None, None] * mu.unsqueeze(-1) * mu.unsqueeze(-2)
        + gamma[:, None, None] * eye
    )
    H = torch.where(degenerate[:, None, None], eye, H)
    grad = torch.where(degenerate.unsqueeze(-1), torch.zeros_like(grad), grad)
    z = layout.gather(_solve_spd(H, grad))
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        wr = w.detach().requires_grad_(True)
        diff, q, E, D, u = _pair_terms(xr, y)
        T = _direction(diff, q, E, D, y)
        phi = (wr * d1_with_d2_gradient(u) * (T * z).sum(-1)).sum()
        gx, gw = torch.autograd.grad(phi, (xr, wr))
    return -gx, -gw


class DenseMean(torch.autograd.Function):
    """Fréchet means of dense sets on the unit ball (float64), with the IFT backward."""

    @staticmethod
    def forward(ctx, x, w, tol, max_iter):
        mu, converged, n_iter, degenerate = mm_dense(x, w, tol, max_iter)
        ctx.save_for_backward(x, w, mu, degenerate)
        ctx.mark_non_differentiable(converged, n_iter, degenerate)
        return mu, converged, n_iter, degenerate

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, *_):
        x, w, mu, degenerate = ctx.saved_tensors
        gx, gw = ift_backward(_Dense, x, w, mu, grad, degenerate)
        return gx, gw, None, None


class SegmentMean(torch.autograd.Function):
    """Fréchet means of edge segments on the unit ball (float64), with the IFT backward."""

    @staticmethod
    def forward(ctx, x, w, index, N, tol, max_iter):
        mu, converged, n_iter, degenerate = mm_segments(x, w, index, N, tol, max_iter)
        ctx.save_for_backward(x, w, index, mu, degenerate)
        ctx.N = N
        ctx.mark_non_differentiable(converged, n_iter, degenerate)
        return mu, converged, n_iter, degenerate

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, *_):
        x, w, index, mu, degenerate = ctx.saved_tensors
        gx, gw = ift_backward(_Segments(index, ctx.N), x, w, mu, grad, degenerate)
        return gx, gw, None, None, None, None
