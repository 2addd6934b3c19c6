r"""Stable scalar functions of the squared-distance objective (``../shared/notes/frechet.md`` §2).

With :math:`u \ge 0` the "half chord" variable of a pair of points at curvature -1,
:math:`\cosh s = v = 1 + 2u` and :math:`s = d(x, y)`:

* :func:`arc` — :math:`s = \log(1 + 2u + 2\sqrt{u}\sqrt{1+u})`, never forming :math:`u^2 + u`;
* :func:`mm_weight` — :math:`g(u) = \frac{d}{du}\operatorname{arcosh}(1+2u)^2 = 4s/\sinh s`;
* :func:`d2` — :math:`\frac{d^2}{dv^2}\operatorname{arcosh}(v)^2 = 2(\sinh s - s\cosh s)/\sinh^3 s`.

All of them take float64 tensors (the Fréchet code works in float64 whatever the input dtype) and are
finite for every :math:`u \in [0, 10^{300}]`.
"""

from __future__ import annotations

import mpmath
import torch

__all__ = ["arc", "mm_weight", "d1", "d2", "d1_with_d2_gradient"]

# Below this argument the Taylor branch of d2 is exact to float64 rounding (frechet.md §2).
_D2_TAYLOR = 1e-3


def arc(u: torch.Tensor) -> torch.Tensor:
    r""":math:`s = \operatorname{arcosh}(1 + 2u) = \log(1 + 2u + 2\sqrt{u}\sqrt{1+u})`."""
    return torch.log1p(_z(u))


def _z(u: torch.Tensor) -> torch.Tensor:
    r""":math:`z = e^s - 1 = 2u + 2\sqrt{u}\sqrt{1+u}`."""
    return 2 * u + 2 * torch.sqrt(u) * torch.sqrt(1 + u)


def _s_over_sinh(u: torch.Tensor) -> torch.Tensor:
    r""":math:`s/\sinh s` from :math:`z = e^s - 1`: :math:`\sinh s = z(2+z)/(2(1+z))`, so

    .. math:: \frac{s}{\sinh s} = 2\,\frac{\log(1+z)}{z}\,\frac{1+z}{2+z} .

    Every factor is accurate for all :math:`z > 0` (no cancellation, no overflow, no Taylor branch);
    :math:`z` is floored at 1e-300 so that :math:`u = 0` gives the limit 1. Measured against 60-digit
    mpmath: relative error below 3.1e-16 for :math:`u \in \{0\} \cup [10^{-30}, 10^{12}] \cup \{10^{300}\}`,
    against 2.6e-14 for the :math:`2se^{-s}/(1-e^{-2s})` form at large :math:`u`.
    """
    z = _z(u).clamp_min(1e-300)
    return 2 * torch.log1p(z) / z * (1 + z) / (2 + z)


def mm_weight(u: torch.Tensor) -> torch.Tensor:
    r"""The majorise–minimise weight :math:`g(u) = 4s/\sinh s` (limit 4 at :math:`u = 0`)."""
    return 4 * _s_over_sinh(u)


def d1(u: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac{d}{dv}\operatorname{arcosh}(v)^2 = 2s/\sinh s = g(u)/2` at :math:`v = 1 + 2u` (limit 2)."""
    return 2 * _s_over_sinh(u)


# 1 - s coth s = -sum_k c_k s^(2k), c_k = 2^(2k) B_(2k) / (2k)!; eight terms are exact to float64 for s < 1/2.
_COTH_SERIES = [float(2 ** (2 * k) * mpmath.bernoulli(2 * k) / mpmath.factorial(2 * k)) for k in range(1, 9)]
_SERIES_BELOW = 0.5


def d2(u: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac{d^2}{dv^2}\operatorname{arcosh}(v)^2 = \frac{2}{\sinh^2 s}(1 - s\coth s)` at :math:`v = 1 + 2u`.

    :math:`1 - s\coth s` cancels for small :math:`s`; below :math:`s = 1/2` it is summed from its Taylor
    series, and below :math:`s = 10^{-3}` the whole function is :math:`-2/3 + 4s^2/15`. For large
    :math:`s` the factor :math:`1/\sinh^2 s` is formed from :math:`e^{-s}`, so it underflows to 0 instead
    of overflowing. Relative error against 60-digit mpmath: below 1e-14 away from :math:`s = 10^{-3}`.
    """
    s = arc(u)
    tiny = s < _D2_TAYLOR
    s_safe = torch.where(tiny, torch.ones_like(s), s)
    e2 = torch.exp(-2 * s_safe)
    one_minus_e2 = -torch.expm1(-2 * s_safe)
    inv_sinh2 = 4 * e2 / one_minus_e2.square()
    coth = (1 + e2) / one_minus_e2
    s2 = s_safe.square()
    series = torch.zeros_like(s)
    for c in reversed(_COTH_SERIES):
        series = (series + c) * s2
    bracket = torch.where(s_safe < _SERIES_BELOW, -series, 1 - s_safe * coth)
    return torch.where(tiny, -2.0 / 3.0 + 4 * s.square() / 15, 2 * inv_sinh2 * bracket)


def d1_with_d2_gradient(u: torch.Tensor) -> torch.Tensor:
    r""":func:`d1` whose derivative with respect to ``u`` is ``2·d2`` (:math:`dv/du = 2`).

    Autograd through :func:`arc` would multiply an infinite :math:`ds/du` at :math:`u = 0` by a zero;
    this first-order expansion around the detached value gives the exact first derivative everywhere
    (it is not meant to be differentiated twice).
    """
    u0 = u.detach()
    return d1(u0) + 2 * d2(u0) * (u - u0)
