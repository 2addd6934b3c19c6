r"""Smooth scalar functions of the exponential-map charts, and the charts themselves.

Every function of the chart radius :math:`r = \lVert y\rVert` that the flows need is an even analytic
function, so it is evaluated as a function of :math:`s = r^2 = \lVert y\rVert^2`: by its Taylor series in
:math:`s` for :math:`r \le 1` (11 terms, first dropped term below :math:`1/23! \approx 4\cdot 10^{-23}`) and
by its closed form beyond. Written this way the functions are polynomials in :math:`y` near the chart
centre, so first *and second* derivatives are exact at :math:`y = 0`, where every sphere chart starts
and where the divergence of the pulled-back field is differentiated again during training.

Functions (the hyperbolic ones at curvature -1; callers scale by the curvature radius):

* :math:`\operatorname{sinhc} r = \sinh r / r`, :math:`\operatorname{sinc} r = \sin r / r`;
* :math:`\cosh r`, :math:`\cos r`;
* :math:`\alpha_H(r) = (r\cosh r - \sinh r)/r^3` and :math:`\alpha_S(r) = (\sin r - r\cos r)/r^3`;
* the chart log-Jacobians :math:`\log(\sinh r/r)` and :math:`\log\lvert\sin r/r\rvert`.

The charts (:class:`HyperbolicChart`, :class:`SphereChart`) map chart coordinates :math:`y \in \mathbb{R}^n`
in an orthonormal frame of :math:`T_p M` to points, back, give the log-Jacobian
:math:`J_p(y) = \log\lvert\det D\exp_p(y)\rvert`, and pull tangent vectors at :math:`z = \exp_p(y)` back to
chart velocities :math:`g = (D\exp_p(y))^{-1} f`.
"""

from __future__ import annotations

import math

import torch
from torch.func import jvp

from ...manifold import HyperbolicManifold
from ...math import lorentz as lorentz_kernel
from ...numerics import guards

__all__ = [
    "sinhc",
    "sinc",
    "cosh",
    "cos",
    "alpha_hyperbolic",
    "alpha_sphere",
    "log_sinhc",
    "log_sinc",
    "arsinhc",
    "HyperbolicChart",
    "SphereChart",
]

_TERMS = 11


def _coefficients(kind: str) -> list[float]:
    """Taylor coefficients in ``s = r^2`` of the even functions above (hyperbolic signs)."""
    f = math.factorial
    if kind == "sinhc":
        return [1 / f(2 * k + 1) for k in range(_TERMS)]
    if kind == "cosh":
        return [1 / f(2 * k) for k in range(_TERMS)]
    if kind == "alpha":  # (r cosh r - sinh r)/r^3 = sum_{k>=1} 2k r^{2k-2}/(2k+1)!
        return [2 * (j + 1) / f(2 * j + 3) for j in range(_TERMS)]
    raise KeyError(kind)


_SERIES = {kind: _coefficients(kind) for kind in ("sinhc", "cosh", "alpha")}


def _horner(s: torch.Tensor, coefficients: list[float], alternate: bool) -> torch.Tensor:
    result = torch.zeros_like(s)
    for k in reversed(range(len(coefficients))):
        c = coefficients[k] * (-1) ** k if alternate else coefficients[k]
        result = result * s + c
    return result


def _even(s: torch.Tensor, kind: str, alternate: bool, closed) -> torch.Tensor:
    """Evaluate an even function of ``r = sqrt(s)``: its series for ``s <= 1``, ``closed(r)`` beyond."""
    small = s <= 1
    s_small = torch.where(small, s, torch.zeros_like(s))
    r_large = torch.sqrt(torch.where(small, torch.full_like(s, 4.0), s))
    return torch.where(small, _horner(s_small, _SERIES[kind], alternate), closed(r_large))


def sinhc(s: torch.Tensor) -> torch.Tensor:
    r""":math:`\sinh r / r` as a function of :math:`s = r^2`."""
    return _even(s, "sinhc", False, lambda r: torch.sinh(r) / r)


def sinc(s: torch.Tensor) -> torch.Tensor:
    r""":math:`\sin r / r` as a function of :math:`s = r^2`."""
    return _even(s, "sinhc", True, lambda r: torch.sin(r) / r)


def cosh(s: torch.Tensor) -> torch.Tensor:
    r""":math:`\cosh r` as a function of :math:`s = r^2`."""
    return _even(s, "cosh", False, torch.cosh)


def cos(s: torch.Tensor) -> torch.Tensor:
    r""":math:`\cos r` as a function of :math:`s = r^2`."""
    return _even(s, "cosh", True, torch.cos)


def alpha_hyperbolic(s: torch.Tensor) -> torch.Tensor:
    r""":math:`\alpha_H = (r\cosh r - \sinh r)/r^3 = \tfrac13 + \tfrac{r^2}{30} + \dots` of :math:`s = r^2`."""
    return _even(s, "alpha", False, lambda r: (r * torch.cosh(r) - torch.sinh(r)) / r**3)


def alpha_sphere(s: torch.Tensor) -> torch.Tensor:
    r""":math:`\alpha_S = (\sin r - r\cos r)/r^3 = \tfrac13 - \tfrac{r^2}{30} + \dots` of :math:`s = r^2`."""
    return _even(s, "alpha", True, lambda r: (torch.sin(r) - r * torch.cos(r)) / r**3)


def log_sinhc(s: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(\sinh r / r)` of :math:`s = r^2`.

    :math:`\operatorname{log1p}` of the series for :math:`r \le 1`;
    :math:`r - \log 2 + \operatorname{log1p}(-e^{-2r}) - \log r` beyond (no overflow).
    """
    small = s <= 1
    s_small = torch.where(small, s, torch.zeros_like(s))
    r = torch.sqrt(torch.where(small, torch.full_like(s, 4.0), s))
    series = torch.log1p(s_small * _horner(s_small, _SERIES["sinhc"][1:], False))
    large = r - math.log(2) + torch.log1p(-torch.exp(-2 * r)) - torch.log(r)
    return torch.where(small, series, large)


def log_sinc(s: torch.Tensor) -> torch.Tensor:
    r""":math:`\log\lvert\sin r / r\rvert` of :math:`s = r^2` (:math:`-\infty` at :math:`r = k\pi`).

    Alternating series (:math:`\operatorname{log1p}`) for :math:`r \le 1`; :math:`\log\lvert\sin r\rvert - \log r`
    beyond.
    """
    small = s <= 1
    s_small = torch.where(small, s, torch.zeros_like(s))
    r = torch.sqrt(torch.where(small, torch.full_like(s, 4.0), s))
    # sin r / r - 1 = -s/3! + s^2/5! - ...: the alternating series without its constant term.
    series = torch.log1p(-s_small * _horner(s_small, _SERIES["sinhc"][1:], True))
    large = torch.log(torch.sin(r).abs()) - torch.log(r)
    return torch.where(small, series, large)


def arsinhc(t: torch.Tensor) -> torch.Tensor:
    r""":math:`\operatorname{arsinh}(t)/t` for :math:`t \ge 0`, equal to 1 at 0 (Taylor :math:`1 - t^2/6`)."""
    small = t < guards(t.dtype).taylor
    t_safe = torch.where(small, torch.ones_like(t), t)
    return torch.where(small, 1 - t.square() / 6, torch.asinh(t_safe) / t_safe)


def _squared_norm(y: torch.Tensor) -> torch.Tensor:
    return y.square().sum(-1, keepdim=True)


class HyperbolicChart:
    r"""The global exponential-map chart of :math:`H^n` at the origin :math:`o`, any model and curvature.

    Coordinates :math:`y \in \mathbb{R}^n` are Riemannian tangent coordinates at :math:`o` in the frame of
    the spatial axes of the Lorentz model (curvature :math:`-c`, radius :math:`R = c^{-1/2}`):

    .. math::

        \exp_o(y) = R\Big(\cosh\frac{\lVert y\rVert}{R},\ \operatorname{sinhc}\frac{\lVert y\rVert}{R}\,\frac{y}{R}\Big),
        \qquad
        \log_o(x) = \operatorname{arsinh}\Big(\frac{\lVert x_s\rVert}{R}\Big)\,\frac{R\,x_s}{\lVert x_s\rVert},

    and :math:`J_o(y) = (n-1)\log\operatorname{sinhc}(\sqrt{c}\lVert y\rVert)`. Points of other models go
    through the manifold's Lorentz hub (``to_lorentz`` / ``from_lorentz``).
    """

    def __init__(self, manifold: HyperbolicManifold):
        self.manifold = manifold
        self.dim = manifold.dim

    def _radius(self, like: torch.Tensor) -> torch.Tensor:
        return self.manifold.scale(like)

    def to_chart(self, x: torch.Tensor) -> torch.Tensor:
        """Chart coordinates ``(..., n)`` of points ``(..., storage)``."""
        X = self.manifold.to_lorentz(x)
        R = self._radius(X)
        spatial = X[..., 1:] / R
        norm = spatial.norm(dim=-1, keepdim=True)
        return R * arsinhc(norm) * spatial

    def lorentz(self, y: torch.Tensor) -> torch.Tensor:
        """Unit-curvature Lorentz coordinates ``(..., n + 1)`` of :math:`\\exp_o(y)/R`."""
        R = self._radius(y)
        y = y / R
        spatial = sinhc(_squared_norm(y)) * y
        return torch.cat([torch.sqrt(1 + _squared_norm(spatial)), spatial], dim=-1)

    def from_chart(self, y: torch.Tensor) -> torch.Tensor:
        """Points ``(..., storage)`` of the manifold at chart coordinates ``(..., n)``."""
        X = self.lorentz(y) * self._radius(y)
        return self.manifold.from_lorentz(X)

    def log_det(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`J_o(y) = (n-1)\log\operatorname{sinhc}(\sqrt c\,\lVert y\rVert)`, shape ``y.shape[:-1]``."""
        R = self._radius(y)
        return (self.dim - 1) * log_sinhc(_squared_norm(y / R)).squeeze(-1)

    def pullback(self, y: torch.Tensor, z: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        r"""Chart velocity :math:`g = (D\exp_o(y))^{-1} f` of a tangent vector ``f`` at ``z = from_chart(y)``.

        ``f`` is in the manifold's own coordinates; it is pushed to the Lorentz model (for other models by
        the differential of ``to_lorentz``), projected onto :math:`T_Z`, and with :math:`Z = \exp_o(y)` at
        unit curvature, :math:`r = \lVert y\rVert`,

        .. math::

            g = \frac{r}{\sinh r} f_s + \alpha_H(r)\, r^2 f_0\, y
                - \cosh r\,\alpha_H(r)\frac{r}{\sinh r}\langle f_s, y\rangle\, y .

        (Radial part :math:`\langle f, e_r\rangle_L` with :math:`e_r = (\sinh r, \cosh r\,\hat y)`, the rest
        divided by :math:`\sinh r / r`.)
        """
        if self.manifold.name == "lorentz":
            F = f
        else:
            F = jvp(self.manifold.to_lorentz, (z,), (f,))[1]
        R = self._radius(y)
        y_unit = y / R
        Z = self.lorentz(y)
        F = lorentz_kernel.proju(Z, F / R)
        s = _squared_norm(y_unit)
        q = 1 / sinhc(s)
        alpha = alpha_hyperbolic(s)
        f0, fs = F[..., :1], F[..., 1:]
        radial = alpha * (s * f0 - cosh(s) * q * (fs * y_unit).sum(-1, keepdim=True))
        return R * (q * fs + radial * y_unit)


class SphereChart:
    r"""Exponential-map charts of the unit sphere :math:`S^n \subset \mathbb{R}^{n+1}`, one per sample.

    The frame of :math:`T_pS^n` is the last :math:`n` columns of the Householder reflection
    :math:`H = I - w w^\top/(1 + \lvert p_0\rvert)`, :math:`w = p + \operatorname{sign}(p_0) e_0`, which maps
    :math:`e_0` to :math:`\mp p`; :math:`\lvert w\rvert^2 = 2(1 + \lvert p_0\rvert) \ge 2`, so it is never
    singular. With :math:`E` that frame,

    .. math::

        \exp_p(y) = \cos r\, p + \operatorname{sinc} r\, E y, \qquad J_p(y) = (n-1)\log\lvert\operatorname{sinc} r\rvert,

    a diffeomorphism for :math:`r = \lVert y\rVert < \pi`.
    """

    def __init__(self, dim: int):
        self.dim = dim

    @staticmethod
    def frame(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """:math:`E_p y`: the tangent vector ``(..., n + 1)`` at ``p`` with frame coordinates ``y``."""
        p0, ps = p[..., :1], p[..., 1:]
        sign = torch.where(p0 >= 0, 1.0, -1.0).to(p.dtype)
        coefficient = (ps * y).sum(-1, keepdim=True) / (1 + p0.abs())
        return torch.cat([-(p0 + sign) * coefficient, y - ps * coefficient], dim=-1)

    @staticmethod
    def coordinates(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """:math:`E_p^\\top u`: frame coordinates ``(..., n)`` of an ambient vector ``u`` at ``p``."""
        p0, ps = p[..., :1], p[..., 1:]
        sign = torch.where(p0 >= 0, 1.0, -1.0).to(p.dtype)
        w_dot_u = (p0 + sign) * u[..., :1] + (ps * u[..., 1:]).sum(-1, keepdim=True)
        return u[..., 1:] - ps * w_dot_u / (1 + p0.abs())

    def from_chart(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """:math:`\\exp_p(E_p y)`, renormalised to unit length."""
        s = _squared_norm(y)
        z = cos(s) * p + sinc(s) * self.frame(p, y)
        return z / z.norm(dim=-1, keepdim=True)

    def to_chart(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r"""Frame coordinates of :math:`\log_p(x)`, with :math:`\theta = \operatorname{atan2}(\lVert x_\perp\rVert, \langle p, x\rangle)`."""
        cosine = (p * x).sum(-1, keepdim=True)
        perpendicular = x - cosine * p
        sine = perpendicular.norm(dim=-1, keepdim=True)
        theta = torch.atan2(sine, cosine)
        factor = torch.where(sine > 0, theta / torch.where(sine > 0, sine, torch.ones_like(sine)), 1.0)
        return self.coordinates(p, factor * perpendicular)

    def log_det(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`J_p(y) = (n-1)\log\lvert\operatorname{sinc}\lVert y\rVert\rvert`, shape ``y.shape[:-1]``."""
        return (self.dim - 1) * log_sinc(_squared_norm(y)).squeeze(-1)

    def pullback(self, p: torch.Tensor, y: torch.Tensor, z: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        r"""Chart velocity :math:`g = (D\exp_p(y))^{-1} f` of an ambient vector ``f`` at ``z = \exp_p(y)``.

        ``f`` is first projected onto :math:`T_z`; with :math:`f_p = \langle f, p\rangle`,
        :math:`f_E = E_p^\top f` and :math:`r = \lVert y\rVert`,

        .. math::

            g = \frac{r}{\sin r} f_E - \alpha_S(r)\, r^2 f_p\, y
                + \cos r\,\alpha_S(r)\frac{r}{\sin r}\langle f_E, y\rangle\, y .
        """
        f = f - (f * z).sum(-1, keepdim=True) * z
        s = _squared_norm(y)
        q = 1 / sinc(s)
        alpha = alpha_sphere(s)
        fp = (f * p).sum(-1, keepdim=True)
        fE = self.coordinates(p, f)
        radial = alpha * (cos(s) * q * (fE * y).sum(-1, keepdim=True) - s * fp)
        return q * fE + radial * y
