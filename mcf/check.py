"""Validation of expansions: structure (:func:`is_valid`, :func:`check_expansion`) and
exponent range (:func:`representable`).

These are entry-point checks for data coming from outside (files, user code); the
arithmetic itself never branches on values. :func:`check_expansion` synchronises with the
device (it reads values back to raise).
"""

from __future__ import annotations

import math

import torch

from .eft import float_format, ulp

__all__ = ["is_valid", "representable", "min_leading", "check_expansion"]


def _problems(x: torch.Tensor) -> list[tuple[int, str, torch.Tensor]]:
    """(component, kind, bad-mask) for every kind of defect, in reporting order."""
    if x.dim() == 0 or x.shape[-1] < 1:
        raise ValueError(f"an expansion needs a trailing component axis, got shape {x.shape}")
    float_format(x.dtype)
    parts = x.unbind(-1)
    found = []
    for i, c in enumerate(parts):
        found.append((i, "nonfinite", ~torch.isfinite(c)))
    for i in range(len(parts) - 1):
        a, b = parts[i], parts[i + 1]
        found.append((i + 1, "gap", (a == 0) & (b != 0)))
        found.append((i + 1, "overlap", (a != 0) & (b.abs() > ulp(a) / 2)))
    return found


def is_valid(x: torch.Tensor) -> torch.Tensor:
    """Boolean tensor ``(...)``: finite components, ``|x_{i+1}| <= ulp(x_i)/2``, zeros
    only at the tail (the invariant every mcf operation returns)."""
    ok = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
    for _, _, bad in _problems(x):
        ok = ok & ~bad
    return ok


def representable(x: torch.Tensor) -> torch.Tensor:
    """Boolean tensor ``(...)``: the value has room for ``m*p`` significant bits.

    True where every component is finite and the leading component is zero or at least
    ``2**(emin + (m-1)*p + 2)`` in magnitude (:func:`min_leading`). Then the ``m*p`` bits
    of the value, and the error terms one or two binades below them that the arithmetic
    produces (halving, Two-Prod), lie on or above the subnormal spacing
    ``2**(emin - p + 1)``. Below it bits are lost to underflow and the documented accuracy
    does not hold. For float64 the bound is ``2**(53m - 1073)`` (2^-967 for m = 2); for
    float32 ``2**(24m - 148)``, so float32 with m = 8 only covers ``[2^44, 2^128)``.
    Arithmetic keeps its documented accuracy when operands and result are representable.
    """
    lead = x[..., 0].abs()
    floor = min_leading(x.dtype, x.shape[-1])
    return torch.isfinite(x).all(dim=-1) & ((lead == 0) | (lead >= floor))


def min_leading(dtype: torch.dtype, m: int) -> float:
    """Smallest nonzero leading-component magnitude :func:`representable` accepts."""
    f = float_format(dtype)
    return math.ldexp(1.0, f.emin + (m - 1) * f.p + 2)


def check_expansion(
    x: torch.Tensor, *, name: str = "x", require_representable: bool = False
) -> torch.Tensor:
    """Raise ``ValueError`` unless ``x`` is a valid expansion; return ``x`` otherwise.

    Checks, in this order, and names the first offending component and leading index:
    non-finite components; a zero followed by a nonzero component (zeros only at the tail);
    overlap ``|x_{i+1}| > ulp(x_i)/2`` (not renormalised); with ``require_representable``,
    values too small for m components (see :func:`representable`).
    """
    for i, kind, bad in _problems(x):
        if not bool(bad.any()):
            continue
        where = tuple(int(k) for k in torch.nonzero(bad)[0].tolist())
        row = x[where].tolist()
        if kind == "nonfinite":
            msg = f"{name}[..., {i}] is not finite ({row[i]}) at leading index {where}"
        elif kind == "gap":
            msg = (
                f"{name}[..., {i - 1}] is zero but {name}[..., {i}] = {row[i]!r} is not "
                f"(zeros only at the tail) at leading index {where}"
            )
        else:
            msg = (
                f"{name}[..., {i}] = {row[i]!r} overlaps {name}[..., {i - 1}] = {row[i - 1]!r}: "
                f"|x_{i + 1}| > ulp(x_{i})/2 at leading index {where}; not renormalised "
                "(use mcf.renormalize)"
            )
        raise ValueError(f"invalid expansion: {msg}; components {row}")
    if require_representable:
        ok = representable(x)
        if not bool(ok.all()):
            where = tuple(int(k) for k in torch.nonzero(~ok)[0].tolist())
            floor = min_leading(x.dtype, x.shape[-1])
            raise ValueError(
                f"{name} at leading index {where} is too small for {x.shape[-1]} components: "
                f"|{name}[..., 0]| = {x[where][0].item()!r} < 2**{math.frexp(floor)[1] - 1}, "
                "so trailing components would underflow into subnormals"
            )
    return x
