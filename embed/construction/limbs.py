r"""Block floating point with exact integer limbs: the arithmetic of the fast construction.

A *block* (one matrix, or one number) of values is stored as signed integer digits held in ``float64``
(vectorised multiply-adds, exact while every sum stays below :math:`2^{53}`) along the last axis, most
significant first, with one ``int64`` exponent per block:

.. math::

    v = \sum_{k=0}^{L-1} d_k\, 2^{\,b\,(E - k)}, \qquad |d_k| \le 2^{b-1} \text{ (balanced digits).}

Products are exact: a limb convolution of two blocks sums at most ``inner * L`` digit products, each at
most :math:`2^{2b-2}`, so :func:`limb_bits` picks ``b`` with ``inner * L * 2^(2b-2) <= 2^52`` and every
partial sum is an integer float64 represents exactly, in any summation order.
The only rounding is :func:`normalize`'s truncation to ``L`` limbs after the leading non-zero limb of the
block, a relative error below :math:`2^{-b(L-1)+1}` of the block's largest entry. That is the error model
the construction needs: an isometry matrix :math:`g` perturbed by :math:`\delta \lVert g\rVert` moves the
points it produces by about :math:`\delta \lVert g \rVert^2` hyperbolically.

Everything is vectorised over leading axes; the only Python loops run over limb positions and carry rounds.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "limb_bits",
    "from_ints",
    "normalize",
    "carry",
    "convolve",
    "matmul",
    "mantissa",
    "from_float",
    "subtract_aligned",
]


def _broadcast(a: torch.Size, b: torch.Size) -> tuple[int, ...]:
    # torch.broadcast_shapes imports sympy on first use (seconds); shapes here are plain.
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    return tuple(max(x, y) for x, y in zip(a, b))


def limb_bits(inner: int, limbs: int) -> int:
    """Digit width ``b`` that keeps every convolution sum of ``inner * limbs`` products exact in float64."""
    b = int((54 - math.log2(max(inner * limbs, 1))) // 2)
    if b < 8:
        raise ValueError(f"{limbs} limbs with inner dimension {inner} leave fewer than 8 bits per digit")
    return min(b, 24)


def from_ints(values: list[int], scale_bits: int, b: int, limbs: int, block: int = 1
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocks from Python integers: value ``i * 2**-scale_bits``.

    ``values`` is a flat list whose consecutive groups of ``block`` integers form one block. Returns
    ``(digits (count, block, limbs), exponent (count,))`` with the leading non-zero limb of each block at
    index 0 (the rest rounded to nearest by balanced digits).
    """
    count = len(values) // block
    shift = (-scale_bits) % b  # make the scale a whole number of limbs
    magnitudes = [abs(v) << shift for v in values]
    whole = (scale_bits + shift) // b
    top_bits = max((m.bit_length() for m in magnitudes), default=1)
    width = max((top_bits + b - 1) // b, 1)
    nbytes = (width * b + 7) // 8
    raw = b"".join(m.to_bytes(nbytes, "little") for m in magnitudes)
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8).reshape(len(values), nbytes), axis=1,
                         bitorder="little")[:, : width * b]
    weights = 1 << np.arange(b, dtype=np.int64)
    digits = bits.reshape(len(values), width, b).astype(np.int64) @ weights  # least significant first
    signs = np.array([-1 if v < 0 else 1 for v in values], dtype=np.int64)
    digits = torch.from_numpy(np.ascontiguousarray((digits * signs[:, None])[:, ::-1]).astype(np.float64))
    digits = digits.reshape(count, block, width)
    # value = sum_k d_k 2^{b (width - 1 - k - whole)}
    exponent = torch.full((count,), width - 1 - whole, dtype=torch.int64)
    return normalize(digits, exponent, limbs, b, block_dims=1)


def carry(digits: torch.Tensor, b: int) -> torch.Tensor:
    """Propagate carries until every digit is balanced, :math:`-2^{b-1} \\le d < 2^{b-1}`.

    The first digit must have room: callers prepend zero limbs before calling.
    """
    base, inverse = float(1 << b), 2.0**-b
    digits = digits.clone()
    for round_ in range(digits.shape[-1] + 8):
        up = torch.floor(digits * inverse + 0.5)  # exact: a power-of-two scaling of an integer below 2^53
        if round_ >= 3 and not bool(up.any()):
            return digits
        digits.addcmul_(up, digits.new_tensor(-base))
        digits[..., :-1] += up[..., 1:]
        if bool(up[..., 0].any()):
            raise OverflowError("limb carry left the block (internal error: too few leading zero limbs)")
    raise RuntimeError("carry propagation did not settle")


def normalize(digits: torch.Tensor, exponent: torch.Tensor, limbs: int, b: int, block_dims: int = 0,
              headroom: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Carry, then shift every block so its leading non-zero limb is at index 0, and keep ``limbs`` limbs.

    ``block_dims`` trailing axes before the limb axis belong to one block (2 for matrices); ``exponent``
    has the remaining leading shape. Dropping balanced digits rounds to nearest (up to one unit).
    """
    zeros = digits.new_zeros(*digits.shape[:-1], headroom)
    digits = carry(torch.cat([zeros, digits], dim=-1), b)
    exponent = exponent + headroom
    nonzero = digits != 0
    for _ in range(block_dims):
        nonzero = nonzero.any(-2)
    width = digits.shape[-1]
    first = torch.where(nonzero.any(-1), nonzero.to(torch.int8).argmax(-1), 0)
    index = first.reshape(*first.shape, *([1] * block_dims), 1) + torch.arange(limbs, device=digits.device)
    padded = torch.cat([digits, digits.new_zeros(*digits.shape[:-1], limbs)], dim=-1)
    index = index.expand(*digits.shape[:-1], limbs).clamp_max(width + limbs - 1)
    return torch.gather(padded, -1, index), exponent - first


def convolve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact limb convolution of broadcastable digit tensors (``La + Lb - 1`` limbs, not carried)."""
    La, Lb = a.shape[-1], b.shape[-1]
    if La > Lb:
        a, b, La, Lb = b, a, Lb, La
    out = torch.zeros(*_broadcast(a.shape[:-1], b.shape[:-1]), La + Lb - 1, dtype=b.dtype, device=b.device)
    for t in range(La):
        out[..., t:t + Lb].addcmul_(a[..., t:t + 1], b)
    return out


def matmul(A: torch.Tensor, eA: torch.Tensor, B: torch.Tensor, eB: torch.Tensor, limbs: int, b: int,
           chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Block matrix product ``(N, I, K, L) @ (N, K, J, L)``, rounded once to ``limbs`` limbs.

    Rows are processed ``chunk`` at a time so the accumulator stays in cache.
    """
    N, I, K, L = A.shape
    J, Lb = B.shape[-2], B.shape[-1]
    out = A.new_empty(N, I, J, L + Lb - 1)
    for begin in range(0, N, chunk):
        a, bb = A[begin:begin + chunk], B[begin:begin + chunk]
        acc = out[begin:begin + chunk]
        acc.zero_()
        for k in range(K):
            right = bb[:, None, k, :, :]  # (n, 1, J, Lb)
            for t in range(L):
                acc[..., t:t + Lb].addcmul_(a[:, :, k, t, None, None], right)
    return normalize(out, eA + eB, limbs, b, block_dims=2)


def mantissa(digits: torch.Tensor, exponent: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each value as ``m * 2**e`` with a float64 ``m`` from the three limbs at and after its own leading
    non-zero limb (relative error below ``2**-(2b-1)`` before the final rounding) and an int64 ``e``.

    ``exponent`` broadcasts against ``digits.shape[:-1]``. Zero values give ``m = 0``.
    """
    nonzero = digits != 0
    first = torch.where(nonzero.any(-1), nonzero.to(torch.int8).argmax(-1), 0)
    L = digits.shape[-1]
    m = torch.zeros(digits.shape[:-1], dtype=torch.float64, device=digits.device)
    for offset in (3, 2, 1, 0):
        index = first + offset
        d = torch.gather(digits, -1, index.clamp_max(L - 1).unsqueeze(-1)).squeeze(-1)
        d = torch.where(index < L, d, 0)
        m = m * 2.0**-b + d.to(torch.float64)
    e = b * (exponent - first)
    return m, e


def from_float(x: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact digits of float64 values: ``(digits (..., 4), exponent (...))`` (zeros give zero digits)."""
    mantissa_, exponent2 = torch.frexp(x)  # x = m 2^e, 0.5 <= |m| < 1
    e = exponent2.to(torch.int64)
    E = torch.div(e + b - 1, b, rounding_mode="floor")  # smallest E with |x| < 2^{bE}
    v = torch.ldexp(mantissa_, (e - b * E).to(torch.float64))  # |v| < 1, exact
    digits = []
    for _ in range(4):
        v = v * float(1 << b)
        d = torch.trunc(v)
        v = v - d
        digits.append(d)
    # x = sum_k d_k 2^{b(E - 1 - k)}
    return torch.stack(digits, -1), E - 1


def subtract_aligned(R: torch.Tensor, eR: torch.Tensor, T: torch.Tensor, eT: torch.Tensor) -> torch.Tensor:
    """``R - T`` in ``R``'s frame (``R``'s exponent and width; limbs of ``T`` beyond the frame are dropped).

    Per row, limb ``k`` of ``T`` lands on limb ``k + eR - eT`` of ``R``. Not carried.
    """
    W, Lt = R.shape[-1], T.shape[-1]
    offset = (eR - eT).unsqueeze(-1)
    if bool((offset < 0).any() & (T != 0).any(-1, keepdim=True).any()):
        # A leading digit of T above the frame must be zero; checked cheaply on the offending rows.
        positions = torch.arange(Lt, device=T.device) + offset
        if bool(((positions < 0) & (T != 0)).any()):
            raise OverflowError("subtract_aligned: the subtrahend does not fit the frame")
    source = torch.arange(W, device=R.device) - offset  # which T limb lands on R limb k
    valid = (source >= 0) & (source < Lt)
    gathered = torch.gather(T, -1, source.clamp(0, Lt - 1).expand(*T.shape[:-1], W))
    return R - torch.where(valid, gathered, 0)
