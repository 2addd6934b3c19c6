"""Exact conversions between expansions and mpmath numbers.

Both directions are exact: :func:`to_mpmath` adds the components without rounding, and
:func:`from_mpmath` builds the greedy, correctly rounded expansion
``x_1 = fl(v), x_2 = fl(v - x_1), ...`` with the differences taken exactly. Neither depends
on ``mpmath.mp.prec``; the returned mpf values are exact, and arithmetic on them rounds to
the caller's working precision as usual.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mpmath
import torch
from mpmath import libmp

from .eft import FloatFormat, float_format

__all__ = ["to_mpmath", "from_mpmath"]

Number = Any  # mpmath.mpf | int | float


def _raw(v: Number) -> tuple:
    """The exact mpmath raw value (sign, mantissa, exponent, bitcount) of a number."""
    if isinstance(v, mpmath.mpf):
        return v._mpf_
    if hasattr(v, "_mpf_"):  # mpmath constants such as mpmath.pi, at the working precision
        return v._mpf_
    if isinstance(v, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(v, int):
        return libmp.from_int(v)
    if isinstance(v, float):
        return libmp.from_float(v)
    raise TypeError(f"expected an mpmath.mpf, int or float, got {type(v).__name__}")


def _round(raw: tuple, f: FloatFormat) -> float:
    """Round an exact value to the nearest number of format ``f`` (ties to even).

    Works on the integer mantissa, so neither precision nor exponent range of mpmath or of
    Python floats matters; subnormal results and overflow to infinity follow IEEE-754.
    """
    if raw == libmp.fnan:
        return math.nan
    if raw in (libmp.finf, libmp.fninf):
        return math.inf if raw == libmp.finf else -math.inf
    sign, man, exp, bc = raw
    if man == 0:
        return 0.0
    top = exp + bc - 1  # floor(log2 |v|)
    q = max(top - f.p + 1, f.emin - f.p + 1)  # exponent of the last kept bit
    if exp >= q:
        n = man << (exp - q)
    else:
        shift = q - exp
        n = man >> shift
        rest = man & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rest > half or (rest == half and n & 1):
            n += 1
    if n and q + n.bit_length() - 1 > f.emax:
        value = math.inf
    else:
        value = math.ldexp(n, q)
    return -value if sign else value


def _greedy(v: Number, m: int, f: FloatFormat) -> list[float]:
    raw = _raw(v)
    out: list[float] = []
    for _ in range(m):
        c = _round(raw, f)
        out.append(c)
        if not math.isfinite(c):
            return out + [0.0] * (m - len(out))
        raw = libmp.mpf_sub(raw, libmp.from_float(c), 0)  # prec 0: exact
    return out


def _map(values: Any, fn) -> Any:
    if isinstance(values, (list, tuple)):
        return [_map(v, fn) for v in values]
    return fn(values)


def from_mpmath(
    values: Number | Sequence,
    m: int,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The correctly rounded m-component expansions of exact numbers.

    Parameters
    ----------
    values : mpmath.mpf, int, float, or nested lists/tuples of them
        Taken exactly (no rounding to ``mpmath.mp.prec``); mpmath constants such as
        ``mpmath.pi`` are evaluated at the working precision first.
    m : int
        Number of components.
    dtype, device :
        Of the result (``device=None``: torch's default device).

    Returns
    -------
    Tensor of shape ``shape(values) + (m,)``
        ``x_1 = fl(v)``, ``x_k = fl(v - x_1 - ... - x_{k-1})`` with exact differences and
        round-to-nearest-even in ``dtype`` (subnormals included). The result is a valid
        expansion; it equals ``v`` exactly when ``v`` fits, otherwise the error is at most
        half an ulp of the last component. Infinite or nan values give ``(±inf or nan, 0,
        ..., 0)``.
    """
    f = float_format(dtype)
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    comps = _map(values, lambda v: _greedy(v, m, f))
    # Every component is exactly representable in dtype, hence in float64.
    return torch.tensor(comps, dtype=torch.float64, device=device).to(dtype)


def to_mpmath(x: torch.Tensor) -> Any:
    """The exact value of each expansion as an mpmath number.

    Parameters
    ----------
    x : Tensor (..., m)

    Returns
    -------
    mpmath.mpf for a 1-D ``x``, else nested lists of mpf with the leading shape of ``x``.
    Each is the exact sum of the components (an mpf may carry more bits than
    ``mpmath.mp.prec``).
    """
    if x.dim() == 0:
        raise ValueError("an expansion needs a trailing component axis")
    float_format(x.dtype)
    rows = x.detach().to(device="cpu", dtype=torch.float64).tolist()

    def exact_sum(components: list[float]) -> mpmath.mpf:
        total = libmp.fzero
        for c in components:
            total = libmp.mpf_add(total, libmp.from_float(c), 0)  # prec 0: exact
        return mpmath.mp.make_mpf(total)

    def walk(node: list, depth: int) -> Any:
        if depth == x.dim() - 1:
            return exact_sum(node)
        return [walk(child, depth + 1) for child in node]

    return walk(rows, 0)
