"""Numerical guards in one place, indexed by dtype, and the stable scalar functions built on them.

Every tolerance, clamp and Taylor threshold used by the float models comes from :data:`TABLE`, so a
reader can see in one screen how each dtype is treated, and a change of policy is one edit.

The functions here are the few building blocks whose naive forms produce NaN or lose accuracy:

* ``sqrt`` at 0 has an infinite derivative; :func:`safe_sqrt` returns 0 with a zero gradient.
* ``sinh(t)/t`` and ``t/sinh(t)`` are 0/0 at the origin; :func:`sinhc` and :func:`tanhc` use Taylor
  branches below a dtype threshold.
* ``‖v‖`` of tiny or huge vectors under- or overflows when squared; :func:`scaled_norm` divides by
  the largest component first (as ``hypot`` does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "Guards",
    "TABLE",
    "guards",
    "safe_sqrt",
    "scaled_norm",
    "sinhc",
    "tanhc",
    "sinhc_inverse",
    "check_finite",
    "NonFiniteError",
]


@dataclass(frozen=True)
class Guards:
    """The guards of one dtype.

    Attributes
    ----------
    eps : float
        Unit roundoff ``u = 2^-p``.
    taylor : float
        Below this argument the even functions ``sinh(t)/t`` and friends use their Taylor series;
        chosen so the first dropped term is below ``eps``.
    ball_boundary : float
        Largest ``1 - ‖p‖`` treated as inside the Poincaré ball by :meth:`projx` (points beyond are
        pulled back to radius ``1 - ball_boundary``).
    atol : float
        Absolute tolerance of the on-manifold checks.
    rtol : float
        Relative tolerance of the on-manifold checks.
    tiny : float
        Smallest positive normal number.
    huge : float
        Largest finite number.
    """

    eps: float
    taylor: float
    ball_boundary: float
    atol: float
    rtol: float
    tiny: float
    huge: float


def _guards_for(dtype: torch.dtype, atol: float, rtol: float) -> Guards:
    info = torch.finfo(dtype)
    eps = info.eps / 2
    return Guards(
        eps=eps,
        # sinh(t)/t = 1 + t^2/6 + t^4/120: with t^4/120 < eps the two-term series is exact to eps.
        taylor=(120 * eps) ** 0.25,
        ball_boundary=4 * eps,
        atol=atol,
        rtol=rtol,
        tiny=info.tiny,
        huge=info.max,
    )


TABLE: dict[torch.dtype, Guards] = {
    torch.float64: _guards_for(torch.float64, atol=1e-9, rtol=1e-9),
    torch.float32: _guards_for(torch.float32, atol=1e-4, rtol=1e-4),
    torch.float16: _guards_for(torch.float16, atol=1e-2, rtol=1e-2),
    torch.bfloat16: _guards_for(torch.bfloat16, atol=5e-2, rtol=5e-2),
}


def guards(dtype: torch.dtype) -> Guards:
    """Return the guards of ``dtype``; raise ``TypeError`` for a non-floating dtype."""
    try:
        return TABLE[dtype]
    except KeyError:
        raise TypeError(f"no numerical guards for dtype {dtype}; use a floating dtype") from None


class NonFiniteError(ValueError):
    """An input holds NaN or infinity."""


def check_finite(x: torch.Tensor, what: str = "input") -> None:
    """Raise :class:`NonFiniteError` naming the first offending row when ``x`` is not finite."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        index = tuple(int(i) for i in torch.nonzero(bad)[0])
        row = index[:-1] if len(index) > 1 else index
        value = x[index].item()
        raise NonFiniteError(f"{what} holds a non-finite value {value} at row {row} (index {index})")


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(max(x, 0))`` whose gradient at 0 is 0 instead of infinity."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), 0.0)


def scaled_norm(v: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    r"""Euclidean norm that neither under- nor overflows: :math:`s\,\lVert v/s\rVert` with
    :math:`s = \max_i |v_i|`. Its gradient at ``v = 0`` is 0."""
    scale = v.detach().abs().amax(dim=dim, keepdim=True)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    squares = (v / scale).square().sum(dim=dim, keepdim=True)
    norm = scale * safe_sqrt(squares)
    return norm if keepdim else norm.squeeze(dim)


def sinhc(t: torch.Tensor) -> torch.Tensor:
    r""":math:`\sinh(t)/t`, equal to 1 at 0 (Taylor branch :math:`1 + t^2/6` for small ``|t|``)."""
    small = t.abs() < guards(t.dtype).taylor
    t_safe = torch.where(small, torch.ones_like(t), t)
    return torch.where(small, 1 + t.square() / 6, torch.sinh(t_safe) / t_safe)


def sinhc_inverse(t: torch.Tensor) -> torch.Tensor:
    r""":math:`t/\sinh(t)`, equal to 1 at 0; tends to 0 (without overflow) for large ``|t|``.

    Computed as :math:`2|t|e^{-|t|}/(1 - e^{-2|t|})` so that ``sinh`` is never formed.
    """
    a = t.abs()
    small = a < guards(t.dtype).taylor
    a_safe = torch.where(small, torch.ones_like(a), a)
    large_form = 2 * a_safe * torch.exp(-a_safe) / -torch.expm1(-2 * a_safe)
    return torch.where(small, 1 - a.square() / 6, large_form)


def tanhc(t: torch.Tensor) -> torch.Tensor:
    r""":math:`\tanh(t)/t`, equal to 1 at 0 (Taylor branch :math:`1 - t^2/3`)."""
    small = t.abs() < guards(t.dtype).taylor
    t_safe = torch.where(small, torch.ones_like(t), t)
    return torch.where(small, 1 - t.square() / 3, torch.tanh(t_safe) / t_safe)


def log_max(dtype: torch.dtype) -> float:
    """Natural log of the largest finite number of ``dtype`` (the exponent-range ceiling)."""
    return math.log(torch.finfo(dtype).max)
