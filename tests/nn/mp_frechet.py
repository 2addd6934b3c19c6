r"""The mpmath oracle for Fréchet means (tests and ``benchmarks/frechet.py``).

Everything here is at curvature -1 on the hyperboloid of :mod:`hyperbolic.reference`, at ``mp.dps``
digits (50 by default), and shares no code with :mod:`hyperbolic.nn`:

* :func:`residual` — :math:`\lVert \sum_l w_l \log_y x_l\rVert / \sum_l w_l`, the Riemannian gradient of
  :math:`\tfrac12 \sum w_l d^2 / \sum w_l`. Because :math:`\tfrac12 d(\cdot, x)^2` has Hessian
  :math:`\succeq I` in curvature -1, the residual bounds the distance to the true mean:
  :math:`d(y, \mu) \le \text{residual}(y)` (a certified error, one pass over the points).
* :func:`mean` — Riemannian Newton's method with the exact Hessian of :math:`\tfrac12 d^2`
  (:math:`1` along :math:`\log_y x`, :math:`r\coth r` across), damped by backtracking, to a residual
  below ``10^{-(dps-10)}``.
* :func:`benchmark_sets` — the sets of ``frechet.md`` §4 (Möbius-translated wrapped normals).
"""

from __future__ import annotations

import math

import mpmath
import torch
from mpmath import mp, mpf

from hyperbolic import reference

__all__ = ["ball_to_ref", "residual", "mean", "dist_ball", "benchmark_sets", "near_boundary_sets"]


def ball_to_ref(p) -> tuple:
    """Exact Lorentz tuple of a unit-ball point given as floats (each float taken exactly)."""
    return reference.from_poincare([mpf(float(c)) for c in p])


def _gradient(y, points, weights):
    total = mpmath.fsum(weights)
    logs = [reference.logmap(y, x) for x in points]
    g = tuple(mpmath.fsum(w * v[i] for w, v in zip(weights, logs)) / total for i in range(len(y)))
    return g, logs, total


def _norm(v) -> mpf:
    return mpmath.sqrt(max(reference.inner(v, v), mpf(0)))


def residual(y, points, weights) -> mpf:
    r""":math:`\lVert\sum w_l \log_y x_l\rVert/\sum w_l`: an upper bound of :math:`d(y, \text{mean})`."""
    return _norm(_gradient(y, points, weights)[0])


def _frame(y):
    """Orthonormal basis of the tangent space at ``y``: the standard basis transported from the origin."""
    n = len(y) - 1
    o = reference.origin(n)
    return [reference.transp(o, y, tuple(mpf(int(i == k + 1)) for i in range(n + 1))) for k in range(n)]


def mean(points, weights, start=None, max_iter: int = 60):
    """Fréchet mean by damped Riemannian Newton (see the module docstring). Returns a Lorentz tuple."""
    points = [tuple(p) for p in points]
    weights = [mpf(w) for w in weights]
    if start is None:
        total = mpmath.fsum(weights)
        ball = [reference.to_poincare(p) for p in points]
        start = reference.from_poincare(
            [mpmath.fsum(w * b[i] for w, b in zip(weights, ball)) / total for i in range(len(ball[0]))]
        )
    y = tuple(start)
    target = mpf(10) ** (-(mp.dps - 10))
    for _ in range(max_iter):
        g, logs, total = _gradient(y, points, weights)
        res = _norm(g)
        if res < target:
            return y
        frame = _frame(y)
        n = len(frame)
        H = mpmath.zeros(n, n)
        for w, v in zip(weights, logs):
            r = _norm(v)
            coords = [reference.inner(v, e) for e in frame]
            across = mpf(1) if r == 0 else r * mpmath.coth(r)
            for i in range(n):
                H[i, i] += w * across
                if r != 0:
                    for j in range(n):
                        H[i, j] += w * (1 - across) * coords[i] * coords[j] / r**2
        rhs = mpmath.matrix([reference.inner(g, e) * total for e in frame])
        step = mpmath.lu_solve(H, rhs)
        direction = tuple(mpmath.fsum(step[k] * frame[k][i] for k in range(n)) for i in range(n + 1))
        scale = mpf(1)
        for _ in range(30):
            candidate = reference.expmap(y, tuple(scale * c for c in direction))
            if residual(candidate, points, weights) < res:
                break
            scale /= 2
        y = candidate
    raise RuntimeError("mpmath reference mean did not converge")


def dist_ball(p, y_ref) -> mpf:
    """Distance between a unit-ball float point and a reference point."""
    return reference.dist(ball_to_ref(p), y_ref)


def _mobius_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    xy = (x * y).sum(-1, keepdim=True)
    x2 = x.square().sum(-1, keepdim=True)
    y2 = y.square().sum(-1, keepdim=True)
    return ((1 + 2 * xy + y2) * x + (1 - x2) * y) / (1 + 2 * xy + x2 * y2)


def _exp0(v: torch.Tensor) -> torch.Tensor:
    norm = v.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    return torch.tanh(norm) * v / norm


def benchmark_sets(B: int, t: int, n: int, spread: float, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    r"""``B`` sets of ``t`` unit-ball points in :math:`H^n` (``frechet.md`` §4): each set is the Möbius
    translation by :math:`\exp_0(z)`, :math:`z \sim N(0, I/n)` (so :math:`\lVert z\rVert \approx 1`), of
    :math:`\exp_0(v_l)`, :math:`v_l \sim N(0, (s^2/n) I)` with ``s = spread``. Built in float64, then cast."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, 1, n, generator=g, dtype=torch.float64) / math.sqrt(n)
    v = torch.randn(B, t, n, generator=g, dtype=torch.float64) * (spread / math.sqrt(n))
    return _mobius_add(_exp0(z), _exp0(v)).to(dtype)


def near_boundary_sets(B: int, t: int, n: int, radius: float, spread: float, seed: int = 0) -> torch.Tensor:
    r"""Sets centred at hyperbolic distance ``radius`` from the origin (ball coordinates float64):
    translation by :math:`\exp_0(r\,\omega)` of wrapped normals of scale ``spread``."""
    g = torch.Generator().manual_seed(seed)
    omega = torch.randn(B, 1, n, generator=g, dtype=torch.float64)
    omega = omega / omega.norm(dim=-1, keepdim=True)
    centre = math.tanh(radius / 2) * omega
    v = torch.randn(B, t, n, generator=g, dtype=torch.float64) * (spread / math.sqrt(n))
    return _mobius_add(centre, _exp0(v))
