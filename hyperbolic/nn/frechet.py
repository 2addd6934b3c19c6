r"""Weighted Fréchet means and variances in hyperbolic space, differentiable by the implicit function theorem.

The Fréchet (Karcher) mean of points :math:`x_1, \dots, x_t` with weights :math:`w_l \ge 0` is

.. math::

    \mu = \operatorname*{argmin}_y F(y), \qquad F(y) = \sum_l w_l\, d(x_l, y)^2 ,

unique on a Hadamard manifold when some :math:`w_l > 0`, and invariant under a common rescaling of the
weights. It is computed on the unit Poincaré ball in float64 whatever the input dtype, by the
majorise–minimise iteration of :mod:`hyperbolic.nn._kernel` (monotone, no step size; sets still
iterating after 24 steps switch to a safeguarded Newton method), with a per-set convergence mask. Sets
whose initial centre lies far from the origin are iterated in a Möbius-translated frame centred there,
and :math:`1 - \lVert x\rVert^2` is computed with compensated arithmetic near the boundary, so the result
is as accurate as its float64 ball coordinates can be (about :math:`\varepsilon e^{r}` at radius ``r``). Its gradient with respect to the points, the weights and the curvature comes from
the implicit function theorem: one Cholesky solve with the Hessian of :math:`F` at the mean and one
vector–Jacobian product, never by unrolling the iterations. Curvature enters through the scaling of
the model (:mod:`hyperbolic.nn._charts`). Maths and pitfalls: ``../shared/notes/frechet.md`` §1–3.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

from ..math import poincare as poincare_kernel
from ..numerics import check_finite, guards
from ._charts import chart
from ._kernel import DenseMean

__all__ = ["frechet_mean", "frechet_variance", "FrechetInfo", "default_tol", "check_weights"]

DEFAULT_MAX_ITER = 1000


class FrechetInfo(NamedTuple):
    """Per-set diagnostics of :func:`frechet_mean` (each shaped like the leading axes of the output).

    Attributes
    ----------
    converged : torch.Tensor
        ``bool``: the set met the tolerance before ``max_iter``. False for degenerate sets.
    n_iter : torch.Tensor
        ``long``: MM iterations the set took.
    degenerate : torch.Tensor
        ``bool``: the set has no points or zero total weight; its mean is the origin and its gradient 0.
    """

    converged: torch.Tensor
    n_iter: torch.Tensor
    degenerate: torch.Tensor


def default_tol(dtype: torch.dtype) -> float:
    r"""Default tolerance on the Riemannian step of the MM iteration for inputs of ``dtype``.

    1e-12 for float64; the unit roundoff of the input dtype otherwise (the result is rounded to that
    dtype, so iterating further buys nothing).
    """
    return 1e-12 if dtype == torch.float64 else guards(dtype).eps


def check_weights(w: torch.Tensor, what: str = "weights") -> None:
    """Raise ``ValueError`` for negative weights and :class:`~hyperbolic.numerics.NonFiniteError` for NaN/inf."""
    check_finite(w, what)
    if bool((w < 0).any()):
        raise ValueError(f"{what} must be non-negative, got minimum {float(w.min())}")


def _normalise_dim(dim: int, ndim: int) -> int:
    if ndim < 2:
        raise ValueError(f"points need at least 2 axes (set, coordinates), got {ndim}")
    d = dim + ndim if dim < 0 else dim
    if not 0 <= d < ndim - 1:
        raise ValueError(f"dim={dim} must name a set axis of a {ndim}-axis tensor, not the last (coordinate) axis")
    return d


def _weights(w, x_shape_no_last, dtype, device):
    if w is None:
        return torch.ones(x_shape_no_last, dtype=dtype, device=device)
    if not torch.is_tensor(w):
        w = torch.as_tensor(w)
    check_weights(w)
    try:
        return torch.broadcast_to(w.to(device=device, dtype=dtype), x_shape_no_last)
    except RuntimeError:
        raise ValueError(
            f"weights of shape {tuple(w.shape)} do not match the points' shape without the coordinate axis "
            f"{tuple(x_shape_no_last)}"
        ) from None


def frechet_mean(
    x: torch.Tensor,
    w: torch.Tensor | None = None,
    manifold=None,
    dim: int = -2,
    *,
    tol: float | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    return_info: bool = False,
    warn: bool = True,
):
    r"""Weighted Fréchet mean :math:`\operatorname{argmin}_y \sum_l w_l d(x_l, y)^2` of each set, batched.

    Parameters
    ----------
    x : torch.Tensor
        Points ``[..., t, storage]`` (``storage = n`` on the ball, ``n + 1`` on the hyperboloid);
        ``dim`` picks the set axis.
    w : torch.Tensor, optional
        Non-negative weights, shape ``x.shape[:-1]`` or broadcastable to it (default: ones). Only ratios
        within a set matter.
    manifold : optional
        :class:`hyperbolic.PoincareBall`, :class:`hyperbolic.Lorentz` (any curvature, learnable or not),
        another :class:`~hyperbolic.manifold.HyperbolicManifold` (through its Lorentz bridge), or geoopt's
        ``PoincareBall`` / ``Lorentz``. ``None`` means the unit Poincaré ball (curvature -1).
    dim : int
        The set axis of ``x`` (default -2); it must not be the last axis.
    tol : float, optional
        Tolerance on each set's Riemannian step :math:`\lambda_\mu\lVert\Delta\mu\rVert` at curvature -1
        (default :func:`default_tol` of ``x.dtype``: 1e-12 for float64).
    max_iter : int
        Iteration cap per set (default 1000).
    return_info : bool
        Also return a :class:`FrechetInfo`.
    warn : bool
        Warn when a non-degenerate set did not converge.

    Returns
    -------
    torch.Tensor or (torch.Tensor, FrechetInfo)
        Means ``[..., storage]`` in ``x``'s dtype and device, on ``manifold``.

    Notes
    -----
    * The iteration runs in float64 whatever ``x.dtype``; the result is cast back.
    * Initialisation: the weighted Lorentzian centroid (the normalised weighted sum of the hyperboloid
      points; exact for two points of equal weight, independent of zero-weight or padded points).
    * Edge cases: a set with no points or zero total weight returns the origin, is flagged
      ``degenerate`` (``converged`` False) and gets zero gradient; a single point returns itself;
      ball points on or just outside the boundary (norm up to ``R (1 + rtol)`` of the input dtype) are
      pulled inside, points farther out raise :class:`~hyperbolic.manifold.OffManifoldError`; NaN/inf
      raise :class:`~hyperbolic.numerics.NonFiniteError`; negative weights raise ``ValueError``.
      Hyperboloid inputs: the time coordinate is recomputed from the spatial ones (its gradient is 0).
    * Gradients flow to ``x``, ``w`` and a learnable curvature by the implicit function theorem
      (``frechet.md`` §3); second derivatives are not supported.

    Shapes
    ------
    ``x: [..., t, storage]``, ``w: [..., t]`` → ``[..., storage]``.
    """
    ch = chart(manifold)
    d = _normalise_dim(dim, x.dim())
    x_moved = x.movedim(d, -2)
    lead, t, storage = x_moved.shape[:-2], x_moved.shape[-2], x_moved.shape[-1]
    if ch.ball_dim(storage) < 1:
        raise ValueError(f"points with {storage} storage coordinates do not fit the {ch.kind} model")
    if w is not None and torch.is_tensor(w) and w.dim() >= 1 and w.dim() == x.dim() - 1:
        w = w.movedim(d, -1)
    weights = _weights(w, x_moved.shape[:-1], torch.float64, x.device)
    R = ch.radius(x)
    B = 1
    for size in lead:
        B *= size
    p = ch.to_ball(x_moved, R).reshape(B, t, ch.ball_dim(storage))
    weights = weights.reshape(B, t)
    if tol is None:
        tol = default_tol(x.dtype)
    if B == 0:
        mu = p.new_zeros(0, p.shape[-1])
        converged = degenerate = torch.zeros(0, dtype=torch.bool, device=x.device)
        n_iter = torch.zeros(0, dtype=torch.long, device=x.device)
    else:
        mu, converged, n_iter, degenerate = DenseMean.apply(p, weights, float(tol), int(max_iter))
    out = ch.from_ball(mu, R, x.dtype).reshape(*lead, storage)
    info = FrechetInfo(converged.reshape(lead), n_iter.reshape(lead), degenerate.reshape(lead))
    if warn:
        _warn_unconverged(info, max_iter)
    return (out, info) if return_info else out


def _warn_unconverged(info: FrechetInfo, max_iter: int) -> None:
    failed = ~(info.converged | info.degenerate)
    if bool(failed.any()):
        warnings.warn(
            f"Fréchet mean: {int(failed.sum())} of {failed.numel()} sets did not converge in {max_iter} "
            "iterations (pass return_info=True for the mask)",
            RuntimeWarning,
            stacklevel=3,
        )


def frechet_variance(
    x: torch.Tensor,
    mu: torch.Tensor,
    w: torch.Tensor | None = None,
    manifold=None,
    dim: int = -2,
) -> torch.Tensor:
    r"""Weighted Fréchet variance :math:`\sigma^2 = \sum_l w_l\, d(x_l, \mu)^2 / \sum_l w_l` of each set.

    Unlike the published code, the result is always normalised by the total weight (the plain mean of
    :math:`d^2` when ``w`` is None). Sets with zero total weight get 0.

    Parameters
    ----------
    x : torch.Tensor
        Points ``[..., t, storage]``; ``dim`` picks the set axis.
    mu : torch.Tensor
        One point per set, ``[..., storage]`` (typically :func:`frechet_mean` of ``x``).
    w : torch.Tensor, optional
        Non-negative weights broadcastable to ``x.shape[:-1]``.
    manifold : optional
        As for :func:`frechet_mean`.
    dim : int
        The set axis of ``x``.

    Returns
    -------
    torch.Tensor
        ``[...]`` in ``x``'s dtype; differentiable in ``x``, ``mu``, ``w`` and the curvature. Distances
        are computed in float64 with the cancellation-free half-angle form.
    """
    ch = chart(manifold)
    d = _normalise_dim(dim, x.dim())
    x_moved = x.movedim(d, -2)
    if w is not None and torch.is_tensor(w) and w.dim() >= 1 and w.dim() == x.dim() - 1:
        w = w.movedim(d, -1)
    weights = _weights(w, x_moved.shape[:-1], torch.float64, x.device)
    R = ch.radius(x)
    p = ch.to_ball(x_moved, R)
    m = ch.to_ball(mu, R).unsqueeze(-2)
    dist = R * poincare_kernel.dist(p, m)
    total = weights.sum(-1)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    var = (weights * dist.square()).sum(-1) / safe
    return torch.where(total > 0, var, torch.zeros_like(var)).to(x.dtype)
