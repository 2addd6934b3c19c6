"""Correct rounding of mpmath numbers into torch tensors of a given dtype."""

from __future__ import annotations

from collections.abc import Iterable

import mpmath
import torch

from .manifold import PrecisionError

__all__ = ["round_to_tensor"]

_SIGNIFICAND_BITS = {torch.float64: 53, torch.float32: 24, torch.float16: 11, torch.bfloat16: 8}


def round_to_tensor(
    values: Iterable[Iterable], dtype: torch.dtype = torch.float64, device=None, what: str = "value"
) -> torch.Tensor:
    """Round rows of mpmath numbers to nearest in ``dtype`` (one rounding, no double rounding).

    Raises :class:`~hyperbolic.manifold.PrecisionError` when a value overflows ``dtype``.
    """
    bits = _SIGNIFICAND_BITS[dtype]
    rows = []
    with mpmath.mp.workprec(bits):
        for row in values:
            rows.append([float(+mpmath.mpf(v)) for v in row])
    out = torch.tensor(rows, dtype=torch.float64).to(dtype)
    if not bool(torch.isfinite(out).all()):
        index = tuple(int(i) for i in torch.nonzero(~torch.isfinite(out))[0])
        raise PrecisionError(f"{what} at row {index[0]} overflows {dtype}")
    return out.to(device) if device is not None else out
