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
monotonically with no step size. Its rate degrades when a set's points are far apart (the majoriser's
curvature overshoots :math:`F`'s by a factor growing with the distances), so sets still active after
``_NEWTON_AFTER`` steps also compute the Newton step with the closed-form Hessian below and take it
whenever it does not raise :math:`F` beyond rounding, else the MM step (a safeguarded Newton method: :math:`F` still decreases
monotonically, and convergence becomes quadratic near the mean). A set has converged when its Riemannian step
:math:`\lambda_\mu \lVert \Delta\mu\rVert = 2\lVert\Delta\mu\rVert/(1 - \lVert\mu\rVert^2)` is at most ``tol``,
or when its Euclidean step is down to float64 resolution, or (Newton phase) when its steps, already
below 1e-7, stop shrinking (rounding noise); converged sets are frozen and dropped from the
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

from ..math.poincare import one_minus_squared_norm_accurate
from ..numerics import guards
from ._scalar import _z, arc, d1, d1_with_d2_gradient, d2, mm_weight

__all__ = ["DenseMean", "SegmentMean", "mm_dense", "mm_segments"]

_EPS = guards(torch.float64).eps
# Steps of this many float64 units (times sqrt(n)) are rounding noise: the iteration cannot do better.
_FLOOR_ULPS = 16.0
# Sets still iterating after this many MM steps also try a Newton step (kept where it lowers F, else the
# MM step is taken): MM alone converges slowly for sets whose points are far apart.
_NEWTON_AFTER = 24
# Newton steps may raise F by this relative amount (rounding of F near the minimum).
_F_ROUNDING = 64 * _EPS
# In the Newton phase, a set whose Riemannian step is below this and stopped shrinking has converged to
# float64 precision (its steps are rounding noise).
_STALL_BELOW = 1e-7
# Below this fraction of A^2, the MM discriminant is recomputed from its cancellation-free expansion.
_DISC_RECOMPUTE = 1e-4
# Re-gather the working set once this fraction of it has converged.
_COMPACT_AT = 0.5
# Edge chunk for the per-edge outer products of the segment Hessian (bounds memory at chunk * n^2).
_CHUNK_ELEMENTS = 1 << 22


def _floor(n: int) -> float:
    return _FLOOR_ULPS * _EPS * max(n, 1) ** 0.5



# Below this value of 1 - |x|^2, the plain float64 form has lost more than 10 bits: use the compensated one.
_COMPENSATE_BELOW = 2.0**-10
# Sets whose initial centre has 1 - |m|^2 below this (distance from the origin above about 4.1) are
# translated to the origin before iterating.
_RECENTRE_BELOW = 1.0 / 16


def one_minus_squared_norm(x: torch.Tensor) -> torch.Tensor:
    r""":math:`1 - \lVert x\rVert^2` of unit-ball points, compensated where the plain form loses bits."""
    E = 1 - x.square().sum(-1)
    close = E < _COMPENSATE_BELOW
    if bool(close.any()):
        E = E.clone()
        E[close] = one_minus_squared_norm_accurate(x[close]).squeeze(-1)
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


# --------------------------------------------------------------------------- layouts


class _DenseSets:
    """Working set of dense sets: points ``[b, t, n]``, ``E = 1 - |x|^2`` and weights ``[b, t]``."""

    def __init__(self, x, E, w):
        self.x, self.E, self.w = x, E, w
        self.wE, self.one_plus_s = w / E, 2 - E

    @property
    def count(self) -> int:
        return self.x.shape[0]

    def gather(self, node: torch.Tensor) -> torch.Tensor:
        return node.unsqueeze(1)

    def reduce(self, edge: torch.Tensor) -> torch.Tensor:
        return edge.sum(1)

    def squared_distances(self, m: torch.Tensor) -> torch.Tensor:
        return _squared_distances(self.x, m)

    def weighted_sum(self, alpha: torch.Tensor) -> torch.Tensor:
        return _weighted_sum(alpha, self.x)

    def outer(self, T: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
        r""":math:`\sum_l c_l T_l T_l^\top` as one batched product ``Tᵀ diag(c) T``."""
        return torch.bmm((T * coef.unsqueeze(-1)).transpose(1, 2), T)

    def keep(self, mask: torch.Tensor) -> _DenseSets:
        return _DenseSets(self.x[mask], self.E[mask], self.w[mask])


class _SegmentSets:
    """Working set of segments: edge ``e`` (point ``x[e]``, ``E[e]``, weight ``w[e]``) belongs to set
    ``index[e]`` of ``N``."""

    def __init__(self, x, E, w, index, N):
        self.x, self.E, self.w, self.index, self.N = x, E, w, index, N
        self.wE, self.one_plus_s = w / E, 2 - E

    @property
    def count(self) -> int:
        return self.N

    def gather(self, node: torch.Tensor) -> torch.Tensor:
        return node[self.index]

    def reduce(self, edge: torch.Tensor) -> torch.Tensor:
        return edge.new_zeros(self.N, *edge.shape[1:]).index_add_(0, self.index, edge)

    def squared_distances(self, m: torch.Tensor) -> torch.Tensor:
        return (self.x - m[self.index]).square().sum(-1)

    def weighted_sum(self, alpha: torch.Tensor) -> torch.Tensor:
        return self.reduce(alpha.unsqueeze(-1) * self.x)

    def outer(self, T: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
        """Per-edge outer products, accumulated per set in chunks of edges."""
        n = T.shape[-1]
        H = T.new_zeros(self.N, n, n)
        chunk = max(1, _CHUNK_ELEMENTS // max(n * n, 1))
        for start in range(0, T.shape[0], chunk):
            Tc = T[start : start + chunk]
            products = (Tc * coef[start : start + chunk].unsqueeze(-1)).unsqueeze(-1) * Tc.unsqueeze(-2)
            H.index_add_(0, self.index[start : start + chunk], products)
        return H

    def keep(self, mask: torch.Tensor) -> _SegmentSets:
        edges = mask[self.index]
        relabel = torch.cumsum(mask, 0) - 1
        return _SegmentSets(self.x[edges], self.E[edges], self.w[edges], relabel[self.index[edges]],
                            int(mask.sum()))


# --------------------------------------------------------------------------- one step


def _mm_update(S, alpha: torch.Tensor) -> torch.Tensor:
    r"""The MM iterate :math:`\eta b` from the weights :math:`\alpha_l`.

    The discriminant :math:`A^2 - 4\lVert b\rVert^2` cancels when the new iterate lies near the boundary
    of the working frame (relative error :math:`\varepsilon A^2/\text{disc}`). Expanding it over pairs of
    points gives a sum of non-negative terms,

    .. math:: A^2 - 4\lVert b\rVert^2 = \Big(\sum_l \alpha_l E_l\Big)^2 + 4a \sum_l \alpha_l \lVert x_l - b/a\rVert^2 ,

    which is used for the sets where the plain form has lost more than ``_DISC_RECOMPUTE`` of ``A²``.
    """
    b = S.weighted_sum(alpha)
    A = S.reduce(alpha * S.one_plus_s)
    disc = A.square() - 4 * b.square().sum(-1)
    poor = disc < _DISC_RECOMPUTE * A.square()
    if bool(poor.any()):
        a = S.reduce(alpha)
        centroid = b / a.unsqueeze(-1)
        spread = S.reduce(alpha * S.squared_distances(centroid))
        accurate = S.reduce(alpha * S.E).square() + 4 * a * spread
        disc = torch.where(poor, accurate, disc)
    eta = 2 / (A + torch.sqrt(disc.clamp_min(0)))
    return eta.unsqueeze(-1) * b


def _mm_step(S, m: torch.Tensor, ym: torch.Tensor) -> torch.Tensor:
    r"""One majorise–minimise step from the iterates ``m [b, n]`` (``ym = 1 - |m|^2``).

    The weights :math:`\alpha_l` enter only through :math:`\eta b`, which is invariant under a common
    factor, so :math:`g(u)/8 = \frac{\log(1+z)}{z}\frac{1+z}{2+z}` replaces :math:`g`."""
    u = S.squared_distances(m) / (S.E * S.gather(ym))
    z = _z(u).clamp_min(1e-300)
    return _mm_update(S, S.wE * (torch.log1p(z) / z * (1 + z) / (2 + z)))


def _objective(S, m: torch.Tensor) -> torch.Tensor:
    r""":math:`F(m) = \sum_l w_l\, d(x_l, m)^2` per set (NaN-free; ``inf`` outside the ball)."""
    ym = 1 - m.square().sum(-1)
    inside = ym > 0
    u = S.squared_distances(m) / (S.E * S.gather(torch.where(inside, ym, torch.ones_like(ym))))
    F = S.reduce(S.w * arc(u).square())
    return torch.where(inside, F, torch.full_like(F, float("inf")))


def _gradient_and_hessian(S, m: torch.Tensor, pair=None):
    r"""Gradient and Hessian of :math:`F` in ball coordinates at ``m`` (``frechet.md`` §3, K = -1):
    :math:`\nabla F = \sum_l w_l d_1 T_l`, :math:`H = T^\top \mathrm{diag}(w d_2) T + m p^\top + p m^\top + \beta m m^\top
    + \gamma I`. ``pair`` = ``(diff, q, D, u, d1)`` when the caller has them already."""
    y = S.gather(m)
    if pair is None:
        diff = S.x - y
        q = diff.square().sum(-1)
        D = S.E * S.gather(1 - m.square().sum(-1))
        u = q / D
        first = d1(u)
    else:
        diff, q, D, u, first = pair
    E = S.E
    T = 4 * (-diff / D.unsqueeze(-1) + (q * E / D.square()).unsqueeze(-1) * y)
    wd1 = S.w * first
    grad = S.reduce(wd1.unsqueeze(-1) * T)
    H = S.outer(T, S.w * d2(u))
    p = S.reduce((wd1 * -8 * E / D.square()).unsqueeze(-1) * diff)
    beta = S.reduce(wd1 * 16 * E.square() * q / D.pow(3))
    gamma = S.reduce(wd1 * (4 / D + 4 * E * q / D.square()))
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    H = (
        H
        + m.unsqueeze(-1) * p.unsqueeze(-2)
        + p.unsqueeze(-1) * m.unsqueeze(-2)
        + beta[:, None, None] * m.unsqueeze(-1) * m.unsqueeze(-2)
        + gamma[:, None, None] * eye
    )
    return grad, H


def _safeguarded_newton_step(S, m: torch.Tensor) -> torch.Tensor:
    """The Newton step from ``m`` where it does not raise ``F`` beyond rounding, else the MM step (both
    from one set of distances)."""
    diff = S.x - S.gather(m)
    q = diff.square().sum(-1)
    D = S.E * S.gather(1 - m.square().sum(-1))
    u = q / D
    g = mm_weight(u)
    mm = _mm_update(S, S.wE * g)
    current = S.reduce(S.w * arc(u).square())
    grad, H = _gradient_and_hessian(S, m, (diff, q, D, u, g / 2))
    L, info = torch.linalg.cholesky_ex(H)
    newton = m - torch.cholesky_solve(grad.unsqueeze(-1), L).squeeze(-1)
    better = (info == 0) & (_objective(S, newton) <= current * (1 + _F_ROUNDING))
    return torch.where(better.unsqueeze(-1), newton, mm)


def _iterate(S, m: torch.Tensor, tol: float, max_iter: int):
    """Iterate every set of ``S`` from ``m`` to convergence; returns ``(m, converged, iterations)``."""
    count, n = m.shape
    converged = torch.zeros(count, dtype=torch.bool, device=m.device)
    n_iter = torch.zeros(count, dtype=torch.long, device=m.device)
    floor = _floor(n)
    idx = torch.arange(count, device=m.device)
    m = m.clone()
    ma = m
    frozen = torch.zeros(count, dtype=torch.bool, device=m.device)
    failed = torch.zeros(count, dtype=torch.bool, device=m.device)
    iters = torch.zeros(count, dtype=torch.long, device=m.device)
    previous = torch.full((count,), float("inf"), dtype=m.dtype, device=m.device)
    ym = 1 - ma.square().sum(-1)
    for it in range(max_iter):
        if idx.numel() == 0:
            break
        newton_phase = it >= _NEWTON_AFTER
        new = _safeguarded_newton_step(S, ma) if newton_phase else _mm_step(S, ma, ym)
        new_ym = 1 - new.square().sum(-1)
        # A step that leaves the ball (or is not finite) is a numerical failure: keep the iterate, stop.
        broken = ~(new_ym > 0)
        if bool(broken.any()):
            new = torch.where(broken.unsqueeze(-1), ma, new)
            new_ym = torch.where(broken, ym, new_ym)
            failed |= broken & ~frozen
        step = (new - ma).norm(dim=-1)
        # converged: Riemannian step 2|step|/ym <= tol, or a step at float64 resolution
        done = (step <= (ym * (0.5 * tol)).clamp_min(floor)) | broken
        if newton_phase:
            # Newton steps shrink quadratically; steps that stop shrinking this close to the mean are
            # rounding noise (the mean is as accurate as float64 allows in this frame).
            done |= (step <= ym * (0.5 * _STALL_BELOW)) & (step >= 0.5 * previous)
        previous = step
        ma = torch.where(frozen.unsqueeze(-1), ma, new)
        ym = torch.where(frozen, ym, new_ym)
        iters += ~frozen
        frozen = frozen | done
        n_frozen = int(frozen.sum())
        if n_frozen == 0:
            continue
        if n_frozen == frozen.numel() or n_frozen >= _COMPACT_AT * frozen.numel():
            m[idx] = ma
            n_iter[idx] = iters
            converged[idx[frozen & ~failed]] = True
            keep = ~frozen
            idx = idx[keep]
            S = S.keep(keep)
            ma, frozen, failed, iters, previous = ma[keep], frozen[keep], failed[keep], iters[keep], previous[keep]
            ym = ym[keep]
    if idx.numel():
        m[idx] = ma
        n_iter[idx] = iters
        converged[idx[frozen & ~failed]] = True
    return m, converged, n_iter


# --------------------------------------------------------------------------- forward


def _centroid(S, degenerate: torch.Tensor) -> torch.Tensor:
    r"""Starting points: the weighted Lorentzian centroid of each set, in ball coordinates.

    On the hyperboloid the centroid is :math:`\sum_l w_l X_l` rescaled back onto the sheet; in ball
    coordinates (:math:`X_l = (1 + s_l, 2x_l)/E_l`) it is the MM iterate :math:`\eta b` with
    :math:`\alpha_l = w_l/E_l`, i.e. the MM step with :math:`g \equiv 1`, so it comes from
    :func:`_mm_update` with its cancellation-free discriminant. It is the exact mean of two points with
    equal weights (a leaf and its parent with a self loop, say) and within :math:`O(\text{spread}^3)` of
    the mean of a tight set, far closer than the Euclidean average of the ball coordinates. Degenerate
    sets get the origin; a centroid rounded onto the boundary falls back to the Euclidean average.
    """
    mu = _mm_update(S, S.wE)
    wsum = S.reduce(S.w)
    euclid = S.weighted_sum(S.w) / torch.where(degenerate, torch.ones_like(wsum), wsum).unsqueeze(-1)
    usable = ~degenerate & (mu.square().sum(-1) < 1) & torch.isfinite(mu).all(-1)
    mu = torch.where(usable.unsqueeze(-1), mu, euclid)
    return torch.where(degenerate.unsqueeze(-1), torch.zeros_like(mu), mu)


def mm_dense(x: torch.Tensor, w: torch.Tensor, tol: float, max_iter: int):
    """Fréchet means of dense sets. Returns ``(mu [B,n], converged [B], n_iter [B], degenerate [B])``.

    ``degenerate`` marks sets with zero total weight (or no points): their mean is the origin.
    """
    B = x.shape[0]
    E = one_minus_squared_norm(x)
    degenerate = ~(w.sum(-1) > 0)
    mu = _centroid(_DenseSets(x, E, w), degenerate)
    # Sets far from the origin are iterated in a frame centred at their initial mean: ball coordinates
    # near the boundary carry relative errors of eps / (1 - |x|^2).
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
    active = torch.nonzero(~degenerate).squeeze(-1)
    if active.numel() == B:
        S = _DenseSets(x, E, w)
    else:
        S = _DenseSets(x[active], E[active], w[active])
    m, conv, its = _iterate(S, mu[active], tol, max_iter)
    mu[active], converged[active], n_iter[active] = m, conv, its
    if centres is not None:
        mu[far] = _translate_back(centres, mu[far])
    return mu, converged, n_iter, degenerate


def mm_segments(x: torch.Tensor, w: torch.Tensor, index: torch.Tensor, N: int, tol: float, max_iter: int,
                init: torch.Tensor | None = None):
    """Fréchet means of edge segments (set ``index[e]`` holds point ``x[e]``).

    ``init`` (``[N, n]`` unit-ball points, optional) replaces the Lorentzian centroid as the starting
    point wherever it is finite and inside the ball (a warm start; the result does not depend on it
    beyond the tolerance). Returns ``(mu [N,n], converged [N], n_iter [N], degenerate [N])``; sets with no
    point or zero total weight are degenerate and get the origin.
    """
    E = one_minus_squared_norm(x)
    degenerate = ~(x.new_zeros(N).index_add_(0, index, w) > 0)
    S = _SegmentSets(x, E, w, index, N)
    mu = _centroid(S, degenerate)
    if init is not None:
        # Keep the warm start only where it is a point of the ball with a lower objective.
        usable = torch.isfinite(init).all(-1) & (init.square().sum(-1) < 1)
        init = torch.where(usable.unsqueeze(-1), init, mu)
        mu = torch.where((_objective(S, init) < _objective(S, mu)).unsqueeze(-1), init, mu)
    Em = one_minus_squared_norm(mu)
    far_node = (Em < _RECENTRE_BELOW) & ~degenerate
    far = torch.nonzero(far_node).squeeze(-1)
    centres = None
    if far.numel():
        centres = mu[far]
        far_edges = torch.nonzero(far_node[index]).squeeze(-1)
        target = index[far_edges]
        x, E = x.clone(), E.clone()
        x[far_edges], E[far_edges] = _translate_to_origin(x[far_edges], E[far_edges], mu[target], Em[target])
        mu[far] = 0
    converged = torch.zeros(N, dtype=torch.bool, device=x.device)
    n_iter = torch.zeros(N, dtype=torch.long, device=x.device)
    S = _SegmentSets(x, E, w, index, N).keep(~degenerate)
    active = torch.nonzero(~degenerate).squeeze(-1)
    m, conv, its = _iterate(S, mu[active], tol, max_iter)
    mu[active], converged[active], n_iter[active] = m, conv, its
    if centres is not None:
        mu[far] = _translate_back(centres, mu[far])
    return mu, converged, n_iter, degenerate


# --------------------------------------------------------------------------- backward


def _solve_spd(H: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Solve ``H z = g`` by Cholesky, falling back to LU for the batches whose factorisation fails."""
    L, info = torch.linalg.cholesky_ex(H)
    z = torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)
    failed = info != 0
    if bool(failed.any()):
        z = z.clone()
        z[failed] = torch.linalg.solve(H[failed], g[failed].unsqueeze(-1)).squeeze(-1)
    return z


def ift_backward(S, mu, grad, degenerate):
    """Gradients ``(dL/dx, dL/dw)`` of the means by the implicit function theorem (frechet.md §3)."""
    _, H = _gradient_and_hessian(S, mu)
    eye = torch.eye(mu.shape[-1], dtype=mu.dtype, device=mu.device)
    H = torch.where(degenerate[:, None, None], eye, H)
    grad = torch.where(degenerate.unsqueeze(-1), torch.zeros_like(grad), grad)
    z = S.gather(_solve_spd(H, grad))
    y = S.gather(mu)
    with torch.enable_grad():
        xr = S.x.detach().requires_grad_(True)
        wr = S.w.detach().requires_grad_(True)
        diff = xr - y
        q = diff.square().sum(-1)
        E = 1 - xr.square().sum(-1)
        D = E * (1 - y.square().sum(-1))
        T = 4 * (-diff / D.unsqueeze(-1) + (q * E / D.square()).unsqueeze(-1) * y)
        phi = (wr * d1_with_d2_gradient(q / D) * (T * z).sum(-1)).sum()
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
        gx, gw = ift_backward(_DenseSets(x, one_minus_squared_norm(x), w), mu, grad, degenerate)
        return gx, gw, None, None


class SegmentMean(torch.autograd.Function):
    """Fréchet means of edge segments on the unit ball (float64), with the IFT backward."""

    @staticmethod
    def forward(ctx, x, w, index, N, tol, max_iter, init=None):
        mu, converged, n_iter, degenerate = mm_segments(x, w, index, N, tol, max_iter, init)
        ctx.save_for_backward(x, w, index, mu, degenerate)
        ctx.N = N
        ctx.mark_non_differentiable(converged, n_iter, degenerate)
        return mu, converged, n_iter, degenerate

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, *_):
        x, w, index, mu, degenerate = ctx.saved_tensors
        S = _SegmentSets(x, one_minus_squared_norm(x), w, index, ctx.N)
        gx, gw = ift_backward(S, mu, grad, degenerate)
        return gx, gw, None, None, None, None, None
