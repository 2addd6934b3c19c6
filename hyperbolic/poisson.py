r"""The log Poisson kernel :math:`h_\omega(x) = -B_\omega(x)` of hyperbolic space, evaluated safely from
each model's native coordinates.

For a boundary point :math:`\omega` of :math:`H^n` (curvature -1) the log Poisson kernel

.. math::

    h_\omega(x) = \log P(x, \omega) = -B_\omega(x), \qquad
    P(x, \omega) = \frac{1 - \lVert x\rVert^2}{\lVert x - \omega\rVert^2} \quad\text{(ball)},

is the signed distance from the origin to the horosphere through ``x`` centred at :math:`\omega`
(:math:`h_\omega(0) = 0`, :math:`\lVert\nabla h\rVert = 1`, :math:`\Delta h = -(n-1)`). It is what the
random Laplacian features of :mod:`hyperbolic.nn.hyla` are built from.

Numerically safe evaluation of :math:`h` (all at unit curvature; the functions below take unit-model
coordinates):

* **ball** :func:`log_poisson_ball`: :math:`h = \log(1 - \lVert x\rVert^2) - \log\lVert x - \omega\rVert^2`,
  with :math:`1 - \lVert x\rVert^2` in doubled precision (error-free products and sums), so ``h`` is
  accurate for the stored floats at every radius the ball holds;
* **Lorentz** :func:`log_poisson_lorentz`: with :math:`c = \langle x_s, \omega\rangle`,
  :math:`h = -\log(x_0 - c)` for :math:`c \le 0` and :math:`h = \log(x_0 + c) - \log(1 + \lVert x_s - c\omega\rVert^2)`
  otherwise (sums of positive terms; :math:`x_0` is recomputed from the spatial part);
* **polar** :func:`log_poisson_polar`: for :math:`x` at distance ``s`` in unit direction ``u``,
  :math:`h = 2\log 2 - \operatorname{logaddexp}(s + \log\lVert u - \omega\rVert^2, -s + \log\lVert u + \omega\rVert^2)`;
* **upper half-space** :func:`log_poisson_halfspace`: for :math:`(x, y)` and a boundary point
  :math:`\omega \in \mathbb{R}^{n-1}`, :math:`h = \log y + \log(1 + \lVert\omega\rVert^2) - \log(\lVert x - \omega\rVert^2 + y^2)`,
  the last term as a ``logaddexp`` of logarithms (no overflow, no underflow of :math:`y^2`), and
  :math:`h = \log y` for :math:`\omega = \infty`;
* **MCF half-space** :func:`log_poisson_halfspace_mcf`: the same with :math:`x - \omega` formed from the
  exact expansion difference before rounding, so ``h`` is accurate at every radius the expansion holds;
* anything else (tiling models): the manifold's exact bridge ``to_reference`` turned into an MCF
  half-space expansion with as many components as the radius needs (:func:`log_poisson_reference`).

Every pairwise squared distance :math:`\lVert a - \omega\rVert^2` is first formed by the matrix product
:math:`\lVert a\rVert^2 - 2\langle a, \omega\rangle + \lVert\omega\rVert^2` (fast), which is accurate to a
few units of roundoff whenever it is at least half of :math:`\lVert a\rVert^2 + \lVert\omega\rVert^2`; the
remaining pairs (a small fraction in high dimension) are recomputed from explicit differences.

The boundary points are given as unit vectors :math:`\hat\omega \in S^{n-1}` of the ball and mapped
to each model's boundary (:func:`log_poisson`): Lorentz ideal direction :math:`(1, \hat\omega)`; half-space
point :math:`\omega = \hat\omega'/(1 - \hat\omega_n)` (:func:`ball_to_halfspace_boundary`: the image of the
ball boundary under the map sending the ball origin to ``(0, ..., 0, 1)``, as in
:class:`hyperbolic.HalfSpace`), so the same :math:`\hat\omega` gives the same ``h`` for the same point in
every model.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import mpmath
import torch
from torch.autograd.function import once_differentiable

from mcf.eft import two_sum

from . import reference
from .halfspace import HalfSpace
from .lorentz import Lorentz
from .manifold import HyperbolicManifold, PrecisionError
from .math.poincare import one_minus_squared_norm_accurate
from .numerics import guards, scaled_norm
from .poincare import PoincareBall

__all__ = [
    "log_poisson",
    "log_poisson_ball",
    "log_poisson_lorentz",
    "log_poisson_polar",
    "log_poisson_halfspace",
    "log_poisson_halfspace_mcf",
    "log_poisson_reference",
    "ball_to_halfspace_boundary",
]

_LOG2 = math.log(2.0)


# --------------------------------------------------------------------------- error-free transformations
def _accurate_sum(terms: list[torch.Tensor]) -> torch.Tensor:
    """The sum of ``k`` float tensors as if computed in ``k``-fold precision, then rounded (SumK of
    Ogita, Rump and Oishi: ``k - 1`` error-free Two-Sum sweeps, then an ordinary sum). Exact cancellation
    of up to ``(k - 1) p`` bits between the terms costs no accuracy."""
    terms = list(terms)
    for _ in range(len(terms) - 1):
        for i in range(len(terms) - 1):
            terms[i + 1], terms[i] = two_sum(terms[i], terms[i + 1])
    errors = terms[0]
    for term in terms[1:-1]:
        errors = errors + term
    return terms[-1] + errors


# --------------------------------------------------------------------------- pairwise squared distances
def _log1p_square(a: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(1 + a^2)` for ``a >= 0`` without overflow of :math:`a^2`."""
    big = a > 1
    a_big = torch.where(big, a, torch.ones_like(a))
    a_small = torch.where(big, torch.zeros_like(a), a)
    return torch.where(big, 2 * torch.log(a_big) + torch.log1p(a_big.reciprocal().square()), torch.log1p(a_small.square()))


def _pairwise_log_squared_distance(
    points: torch.Tensor,
    omega: torch.Tensor,
    exact_difference: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    pairs: list | None = None,
) -> torch.Tensor:
    r""":math:`\log\lVert a_i - \omega_k\rVert^2` for all pairs: ``(N, n) x (D, n) -> (N, D)``.

    ``points`` holds the (rounded) rows :math:`a_i` for the fast Gram form;
    ``exact_difference(i, k)`` returns the rows :math:`a_i - \omega_k` for index vectors ``i, k``, formed as
    accurately as the representation allows, and is called only for the pairs the Gram form cannot
    resolve (cancellation, overflow or underflow); their indices are appended to ``pairs`` when given.
    """
    g = guards(points.dtype)
    a2 = points.square().sum(-1, keepdim=True)
    w2 = omega.square().sum(-1)
    gram = a2 - 2 * (points @ omega.transpose(0, 1)) + w2
    scale = a2 + w2
    # The Gram form has relative error <= (n + 3) eps * scale / gram: trust it only where gram >= scale / 2,
    # and where both it and the scale are comfortably inside the exponent range.
    trusted = (gram >= 0.5 * scale) & (gram > g.tiny / g.eps) & torch.isfinite(scale)
    log_sq = torch.log(torch.where(trusted, gram, torch.ones_like(gram)))
    rows, cols = torch.nonzero(~trusted, as_tuple=True)
    if rows.numel():
        norm = scaled_norm(exact_difference(rows, cols), dim=-1)
        log_sq = log_sq.index_put((rows, cols), 2 * torch.log(norm.clamp_min(g.tiny)))
        if pairs is not None:
            pairs.extend((rows, cols))
    return log_sq


# --------------------------------------------------------------------------- native-coordinate forms of h
def _flatten(x: torch.Tensor, width: int) -> torch.Tensor:
    return x.reshape(-1, width)


def _check_omega(omega: torch.Tensor, width: int, what: str) -> None:
    if omega.dim() != 2 or omega.shape[-1] != width:
        raise ValueError(f"{what} must have shape (n_features, {width}), got {tuple(omega.shape)}")


def log_poisson_ball(x: torch.Tensor, omega: torch.Tensor, *, analytic_gradient: bool = True) -> torch.Tensor:
    r"""Log Poisson kernel on the unit Poincaré ball.

    .. math:: h_k(x) = \log(1 - \lVert x\rVert^2) - \log\lVert x - \omega_k\rVert^2

    Parameters
    ----------
    x : Tensor ``(..., n)``
        Points of the unit ball (curvature -1).
    omega : Tensor ``(D, n)``
        Unit boundary directions.

    analytic_gradient : bool
        Backpropagate with the closed-form gradient of :class:`_BallLogPoisson` (one saved ``(N, D)``
        tensor; first derivatives only). ``False`` records the plain autograd graph, which also gives
        higher derivatives (e.g. Laplacians).

    Returns
    -------
    Tensor ``(..., D)``
        Exact to a few ulp for the stored floats (``1 - ‖x‖²`` is computed in doubled precision); the
        float ball itself holds points only to radius about 36 in float64.
    """
    n = x.shape[-1]
    _check_omega(omega, n, "omega")
    flat = _flatten(x, n)
    omega = omega.to(flat)
    if analytic_gradient and flat.requires_grad and torch.is_grad_enabled() and not omega.requires_grad:
        h = _BallLogPoisson.apply(flat, omega)
    else:
        h = _ball_log_poisson(flat, omega)
    return h.reshape(*x.shape[:-1], omega.shape[0])


def _ball_log_poisson(flat: torch.Tensor, omega: torch.Tensor):
    """``h`` ``(N, D)`` by differentiable torch operations (any order of derivatives)."""
    gap = one_minus_squared_norm_accurate(flat).clamp_min(guards(flat.dtype).tiny)
    log_sq = _pairwise_log_squared_distance(flat, omega, lambda i, k: flat[i] - omega[k])
    return torch.log(gap) - log_sq


def ball_squared_distances(x: torch.Tensor, omega: torch.Tensor):
    r""":math:`q_{ik} = \lVert x_i - \omega_k\rVert^2` ``(N, D)`` for ball rows and unit directions (no grad).

    The Gram form :math:`\lVert x\rVert^2 + \lVert\omega\rVert^2 - 2\langle x, \omega\rangle` is at least half
    of :math:`\lVert x\rVert^2 + \lVert\omega\rVert^2` (so accurate to a few ulp) wherever
    :math:`\langle x, \omega\rangle \le (\lVert x\rVert^2 + \min\lVert\omega\rVert^2)/4`; the other pairs,
    returned as ``(rows, cols)``, are recomputed from explicit differences.
    """
    tiny = guards(x.dtype).tiny
    a2 = x.square().sum(-1, keepdim=True)
    w2 = omega.square().sum(-1)
    q = x @ omega.transpose(0, 1)
    rows, cols = torch.nonzero(q > (a2 + w2.min()) / 4, as_tuple=True)
    q.mul_(-2).add_(a2).add_(w2)
    if rows.numel():
        q[rows, cols] = (x[rows] - omega[cols]).square().sum(-1)
    return q.clamp_min_(tiny), rows, cols


def ball_log_poisson_backward(x, omega, gap, q, grad_h, rows, cols):
    r""":math:`\nabla_x \sum_k G_k h_k = -\frac{2x}{1 - \lVert x\rVert^2}\sum_k G_k - 2\sum_k \frac{G_k}{q_k}(x - \omega_k)`,
    the last sum as :math:`x\sum_k g_k - g\,\Omega` over the Gram-form pairs (no cancellation there) plus
    explicit differences over ``(rows, cols)``."""
    weights = grad_h / q
    sum_g = grad_h.sum(-1, keepdim=True)
    if rows.numel():
        exact = weights[rows, cols]
        weights[rows, cols] = 0
    sum_w = weights.sum(-1, keepdim=True)
    grad_x = -2 * x * (sum_g / gap) - 2 * (x * sum_w - weights @ omega)
    if rows.numel():
        grad_x = grad_x.index_add(0, rows, -2 * exact.unsqueeze(-1) * (x[rows] - omega[cols]))
    return grad_x


class _BallLogPoisson(torch.autograd.Function):
    r""":math:`h_k(x) = \log(1 - \lVert x\rVert^2) - \log\lVert x - \omega_k\rVert^2` with the analytic gradient
    of :func:`ball_log_poisson_backward`. It keeps two ``(N, D)`` tensors instead of the dozen an autograd graph of
    the same computation keeps. ``omega`` gets no gradient; the backward is not itself differentiable
    (use ``analytic_gradient=False`` for higher derivatives)."""

    @staticmethod
    def forward(ctx, x, omega):
        with torch.no_grad():
            gap = one_minus_squared_norm_accurate(x).clamp_min(guards(x.dtype).tiny)
            q, rows, cols = ball_squared_distances(x, omega)
            h = torch.log(q).neg_().add_(torch.log(gap))
        ctx.save_for_backward(x, omega, gap, q, rows, cols)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h):
        x, omega, gap, q, rows, cols = ctx.saved_tensors
        return ball_log_poisson_backward(x, omega, gap, q, grad_h, rows, cols), None


def log_poisson_lorentz(x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    r"""Log Poisson kernel on the unit hyperboloid, :math:`h = -\log(-\langle x, (1, \omega)\rangle_L)`.

    With :math:`c = \langle x_s, \omega\rangle`:

    .. math::

        h = -\log(x_0 - c) \quad (c \le 0), \qquad
        h = \log(x_0 + c) - \log(1 + \lVert x_s - c\,\omega\rVert^2) \quad (c > 0),

    both sums of positive terms, since :math:`(x_0 - c)(x_0 + c) = 1 + \lVert x_s - c\omega\rVert^2`.
    The time coordinate is recomputed as :math:`\sqrt{1 + \lVert x_s\rVert^2}` (as the reference bridge of
    :class:`hyperbolic.Lorentz` does), so its gradient is zero.

    Parameters
    ----------
    x : Tensor ``(..., n + 1)``
        Points of the unit hyperboloid, time coordinate first.
    omega : Tensor ``(D, n)``
        Unit boundary directions.

    Returns
    -------
    Tensor ``(..., D)``
        Accurate to a few ulp while the float point is (radius about 18 in float64 when ``x`` points
        towards :math:`\omega`: the rounding of ``c`` enters as :math:`\delta c^2`).
    """
    n = x.shape[-1] - 1
    _check_omega(omega, n, "omega")
    spatial = _flatten(x, n + 1)[:, 1:]
    omega = omega.to(spatial)
    ones = torch.ones_like(spatial[:, :1])
    x0 = scaled_norm(torch.cat([ones, spatial], dim=-1), keepdim=True)
    c = spatial @ omega.transpose(0, 1)
    positive = c > 0
    c_pos = torch.where(positive, c, torch.zeros_like(c))
    c_neg = torch.where(positive, torch.zeros_like(c), c)

    # 1 + ‖x_s - c ω‖² for c > 0: the Gram form ‖x_s‖² - c² is trusted where c² <= ‖x_s‖²/2.
    s2 = spatial.square().sum(-1, keepdim=True)
    perp2 = s2 - c_pos.square()
    trusted = ~positive | ((c_pos.square() <= 0.5 * s2) & torch.isfinite(s2))
    log1p_perp = torch.log1p(torch.where(trusted, perp2, torch.zeros_like(perp2)).clamp_min(0))
    rows, cols = torch.nonzero(~trusted, as_tuple=True)
    if rows.numel():
        perp = spatial[rows] - c[rows, cols].unsqueeze(-1) * omega[cols]
        log1p_perp = log1p_perp.index_put((rows, cols), _log1p_square(scaled_norm(perp, dim=-1)))
    h = torch.where(positive, torch.log(x0 + c_pos) - log1p_perp, -torch.log(x0 - c_neg))
    return h.reshape(*x.shape[:-1], omega.shape[0])


def log_poisson_polar(radius: torch.Tensor, direction: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    r"""Log Poisson kernel of the point at distance ``radius`` from the origin in unit ``direction``.

    .. math::

        P = \frac{2}{(\delta^2/2)e^{s} + (2 - \delta^2/2)e^{-s}}, \qquad
        h = 2\log 2 - \operatorname{logaddexp}\big(s + \log\lVert u - \omega\rVert^2,\ -s + \log\lVert u + \omega\rVert^2\big),

    using :math:`2 - \delta^2/2 = \lVert u + \omega\rVert^2/2` for unit vectors. Accurate at every radius
    (``h = s`` when :math:`\omega = u`, ``h = -s`` when :math:`\omega = -u`).

    Parameters
    ----------
    radius : Tensor ``(...)``
        Distances from the origin, ``>= 0``.
    direction : Tensor ``(..., n)``
        Unit directions.
    omega : Tensor ``(D, n)``
        Unit boundary directions.

    Returns
    -------
    Tensor ``(..., D)``
    """
    n = direction.shape[-1]
    _check_omega(omega, n, "omega")
    u = _flatten(direction, n)
    omega = omega.to(u)
    s = radius.reshape(-1, 1).to(u)
    minus = _pairwise_log_squared_distance(u, omega, lambda i, k: u[i] - omega[k])
    plus = _pairwise_log_squared_distance(u, -omega, lambda i, k: u[i] + omega[k])
    h = 2 * _LOG2 - torch.logaddexp(s + minus, -s + plus)
    return h.reshape(*direction.shape[:-1], omega.shape[0])


def ball_to_halfspace_boundary(omega: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Half-space boundary points of unit ball directions: :math:`\omega = \hat\omega'/(1 - \hat\omega_n)`.

    For :math:`\hat\omega_n > 0` the denominator is formed as :math:`\lVert\hat\omega'\rVert^2/(1 + \hat\omega_n)`
    (no cancellation).

    Parameters
    ----------
    omega : Tensor ``(D, n)``
        Unit directions :math:`\hat\omega` of the ball (``n >= 2``).

    Returns
    -------
    (Tensor ``(D, n - 1)``, Tensor ``(D,)`` bool)
        The boundary points (zero where at infinity) and the mask of directions mapped to :math:`\infty`
        (:math:`\hat\omega' = 0`, :math:`\hat\omega_n > 0`).
    """
    head, last = omega[:, :-1], omega[:, -1:]
    head2 = head.square().sum(-1, keepdim=True)
    at_infinity = ((head2 == 0) & (last > 0)).squeeze(-1)
    gap = torch.where(last > 0, head2 / (1 + last), 1 - last)
    gap = torch.where(at_infinity.unsqueeze(-1), torch.ones_like(gap), gap)
    return torch.where(at_infinity.unsqueeze(-1), torch.zeros_like(head), head / gap), at_infinity


def _halfspace_core(
    fast: torch.Tensor,
    log_y: torch.Tensor,
    omega: torch.Tensor,
    at_infinity: torch.Tensor | None,
    exact_difference: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """``h`` from rounded horizontal rows ``fast (N, n-1)``, ``log_y (N, 1)`` and boundary points ``(D, n-1)``."""
    log_sq = _pairwise_log_squared_distance(fast, omega, exact_difference)
    log_omega = _log1p_square(scaled_norm(omega, dim=-1))
    h = log_y + log_omega - torch.logaddexp(log_sq, 2 * log_y)
    if at_infinity is not None:
        h = torch.where(at_infinity, log_y.expand_as(h), h)
    return h


def _halfspace_boundary(omega: torch.Tensor, at_infinity: torch.Tensor | None, like: torch.Tensor):
    omega = omega.to(like)
    if at_infinity is not None:
        at_infinity = at_infinity.to(device=like.device)
    return omega, at_infinity


def _check_heights(y: torch.Tensor) -> None:
    if bool((y <= 0).any()):
        row = int(torch.nonzero(y.reshape(-1) <= 0)[0])
        raise ValueError(f"half-space height at row {row} is {y.reshape(-1)[row].item()}, not positive")


def log_poisson_halfspace(
    x: torch.Tensor, omega: torch.Tensor, at_infinity: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Log Poisson kernel on the unit upper half-space (origin ``(0, ..., 0, 1)``).

    .. math::

        h_k = \log y + \log(1 + \lVert\omega_k\rVert^2) - \log(\lVert x - \omega_k\rVert^2 + y^2),
        \qquad h = \log y \ \text{ for } \omega_k = \infty.

    Parameters
    ----------
    x : Tensor ``(..., n)``
        Storage ``(x_1, ..., x_{n-1}, y)``, height last.
    omega : Tensor ``(D, n - 1)``
        Boundary points (see :func:`ball_to_halfspace_boundary`).
    at_infinity : Tensor ``(D,)`` bool, optional
        Boundary points at :math:`\infty` (their ``omega`` row is ignored).

    Returns
    -------
    Tensor ``(..., D)``
        Accurate to a few ulp for the stored floats at every radius whose height is a normal float.
    """
    n = x.shape[-1]
    _check_omega(omega, n - 1, "omega")
    flat = _flatten(x, n)
    omega, at_infinity = _halfspace_boundary(omega, at_infinity, flat)
    horizontal, y = flat[:, :-1], flat[:, -1:]
    _check_heights(y)
    h = _halfspace_core(horizontal, torch.log(y), omega, at_infinity, lambda i, k: horizontal[i] - omega[k])
    return h.reshape(*x.shape[:-1], omega.shape[0])


def log_poisson_halfspace_mcf(
    x: torch.Tensor, omega: torch.Tensor, components: int, at_infinity: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Log Poisson kernel on the MCF upper half-space (storage of :class:`hyperbolic.HalfSpaceMCF`).

    Storage ``[x^(1) (n-1), ..., x^(m) (n-1), y]``: the horizontal coordinate is the expansion
    :math:`x = \sum_j x^{(j)}` (largest component first) and ``y`` one float. The pairs where
    :math:`x \approx \omega` use the exact difference

    .. math:: x - \omega = s + e + \textstyle\sum_{j \ge 2} x^{(j)}, \qquad (s, e) = \text{Two-Sum}(x^{(1)}, -\omega),

    summed in ``m + 1``-fold precision (:func:`_accurate_sum`) and rounded once, so
    :math:`\lVert x - \omega\rVert` has full relative accuracy however close ``x`` is to
    :math:`\omega`, and ``h`` is accurate at every radius the expansion represents (while ``y`` and
    :math:`\lVert x - \omega\rVert` are normal floats: radius about 708 in float64).

    Parameters
    ----------
    x : Tensor ``(..., m (n - 1) + 1)``
        MCF half-space storage.
    omega : Tensor ``(D, n - 1)``
        Boundary points (single floats).
    components : int
        ``m``.
    at_infinity : Tensor ``(D,)`` bool, optional
        Boundary points at :math:`\infty`.

    Returns
    -------
    Tensor ``(..., D)``
        Differentiable in every component (the gradient of each component is the gradient in ``x``).
    """
    if not isinstance(components, int) or components < 1:
        raise ValueError(f"components must be a positive integer, got {components!r}")
    width = x.shape[-1]
    if (width - 1) % components or width < components + 1:
        raise ValueError(
            f"MCF half-space storage of width {width} does not split into {components} components of "
            "n - 1 coordinates plus a height"
        )
    n_minus_1 = (width - 1) // components
    _check_omega(omega, n_minus_1, "omega")
    flat = _flatten(x, width)
    omega, at_infinity = _halfspace_boundary(omega, at_infinity, flat)
    parts = [flat[:, j * n_minus_1 : (j + 1) * n_minus_1] for j in range(components)]
    y = flat[:, -1:]
    _check_heights(y)
    tail = torch.zeros_like(parts[0])
    for part in reversed(parts[1:]):
        tail = tail + part
    rounded = parts[0] + tail

    def exact_difference(i: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        s, e = two_sum(parts[0][i], -omega[k])
        return _accurate_sum([s, e, *(part[i] for part in parts[1:])])

    h = _halfspace_core(rounded, torch.log(y), omega, at_infinity, exact_difference)
    return h.reshape(*x.shape[:-1], omega.shape[0])


def _expansion(value: mpmath.mpf, components: int) -> list[float]:
    """``components`` float64 numbers, largest first, each the rounding of what the previous ones miss."""
    out = []
    rest = value
    for _ in range(components):
        head = float(rest)
        out.append(head)
        rest = rest - head
    return out


def log_poisson_reference(
    manifold: HyperbolicManifold,
    x: torch.Tensor,
    omega: torch.Tensor,
    at_infinity: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""``h`` for points of any representation, through its exact bridge ``to_reference``.

    Each point is converted once in mpmath to upper half-space coordinates, and the horizontal part is
    written as a float64 expansion with enough components for the point's radius (exact to
    :math:`2^{-53}` of the height); :func:`log_poisson_halfspace_mcf` then evaluates all features
    vectorised. The result is therefore as accurate as :func:`log_poisson_halfspace_mcf` (a few ulp),
    whatever float precision the representation's own coordinates would lose. This is the route for tiling
    models: it never goes through float ball coordinates. It is not differentiable (mpmath), and refuses
    points whose height is below the smallest normal float64 (radius beyond about 708).

    Parameters
    ----------
    manifold : HyperbolicManifold
        Any model with ``to_reference``.
    x : Tensor ``(..., storage)``
        Its points.
    omega : Tensor ``(D, n - 1)``
        Half-space boundary points (float64).
    at_infinity : Tensor ``(D,)`` bool, optional

    Returns
    -------
    Tensor ``(..., D)`` in float64.
    """
    if x.requires_grad and torch.is_grad_enabled():
        raise ValueError(
            f"features of {type(manifold).__name__} points go through the exact mpmath bridge, which is not "
            "differentiable; detach the points, or use route='lorentz' for a differentiable float path"
        )
    leading = x.shape[:-1]
    points = manifold.to_reference(x.detach())
    tiny = guards(torch.float64).tiny
    with mpmath.workprec(64):
        x0_max = max((mpmath.mpf(p[0]) for p in points), default=mpmath.mpf(1))
    radius = float(mpmath.log(2 * x0_max)) if x0_max > 1 else 0.0
    n = manifold.dim
    rows = []
    needed = 2
    with mpmath.workprec(reference.working_precision(radius)):
        converted = []
        for row, p in enumerate(points):
            horizontal, height = reference.to_halfspace(p)
            if height < tiny:
                raise PrecisionError(
                    f"point {row} has half-space height {mpmath.nstr(height, 5)}, below the float64 range "
                    f"(radius about {mpmath.nstr(mpmath.acosh(p[0]), 6)}): beyond what the features can be "
                    "computed for"
                )
            largest = max((abs(c) for c in horizontal), default=mpmath.mpf(0))
            if largest > 0:
                needed = max(needed, 2 + int(mpmath.log(largest / height, 2)) // 53 + 1)
            converted.append((horizontal, height))
        for horizontal, height in converted:
            parts = [_expansion(c, needed) for c in horizontal]
            flat = [parts[i][j] for j in range(needed) for i in range(n - 1)]
            rows.append(flat + [float(height)])
    storage = torch.tensor(rows, dtype=torch.float64, device=x.device).reshape(-1, needed * (n - 1) + 1)
    h = log_poisson_halfspace_mcf(storage, omega.to(storage), needed, at_infinity)
    return h.reshape(*leading, omega.shape[0])


# --------------------------------------------------------------------------- dispatch over the protocol
def _is_mcf_halfspace(manifold) -> bool:
    m = getattr(manifold, "components", None)
    return (
        isinstance(manifold, HyperbolicManifold)
        and isinstance(m, int)
        and "halfspace" in getattr(manifold, "name", "")
        and manifold.storage_dim == m * (manifold.dim - 1) + 1
    )


ROUTES = ("auto", "lorentz", "reference")


def log_poisson(
    manifold: HyperbolicManifold, x: torch.Tensor, omega: torch.Tensor, route: str = "auto"
) -> torch.Tensor:
    r"""``h`` at unit curvature for points of any model, from its native coordinates.

    Parameters
    ----------
    manifold : HyperbolicManifold
        The model of ``x``; a model of curvature :math:`-c` is first rescaled to curvature -1 (so
        :math:`\lambda` is measured in the rescaled metric).
    x : Tensor ``(..., storage)``
        Points.
    omega : Tensor ``(D, n)``
        Unit boundary directions of the ball (mapped to each model's boundary here).
    route : {"auto", "lorentz", "reference"}
        ``"auto"``: the native form of the model (Poincaré, Lorentz, half-space, MCF half-space) and the
        exact bridge for any other model (tiling); ``"lorentz"``: through the float ``to_lorentz``
        (differentiable, accurate to about radius 18 in float64 near :math:`\omega`);
        ``"reference"``: through ``to_reference`` (exact, not differentiable).

    Returns
    -------
    Tensor ``(..., D)``
    """
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    if route == "lorentz":
        X = manifold.to_lorentz(x)
        return log_poisson_lorentz(X / manifold.scale(X), omega)
    if route == "reference" or not (
        isinstance(manifold, (PoincareBall, Lorentz, HalfSpace)) or _is_mcf_halfspace(manifold)
    ):
        boundary, at_infinity = ball_to_halfspace_boundary(omega.to(torch.float64))
        return log_poisson_reference(manifold, x, boundary, at_infinity).to(x.dtype)
    if isinstance(manifold, PoincareBall):
        return log_poisson_ball(x / manifold.scale(x), omega)
    if isinstance(manifold, Lorentz):
        return log_poisson_lorentz(x / manifold.scale(x), omega)
    boundary, at_infinity = ball_to_halfspace_boundary(omega.to(x))
    if isinstance(manifold, HalfSpace):
        return log_poisson_halfspace(x, boundary, at_infinity)
    return log_poisson_halfspace_mcf(x, boundary, manifold.components, at_infinity)

