r"""Block floating point with exact integer limbs: the arithmetic of the fast construction.

A *block* (one matrix, or one number) of values is stored as signed integer digits held in ``float64``
(vectorised multiply-adds, exact while every sum stays below :math:`2^{53}`) along the last axis, most
significant first, with one ``int64`` exponent per block:

.. math::

    v = \sum_{k=0}^{L-1} d_k\, 2^{\,b\,(E - k)}, \qquad |d_k| \lesssim 2^{b-1} \text{ (nearly balanced digits).}

Products are exact: a limb convolution of two blocks sums at most ``inner * L`` digit products, each about
:math:`2^{2b-2}`, so :func:`limb_bits` picks ``b`` with every partial sum an integer below :math:`2^{53}`,
which float64 represents exactly in any summation order.
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
    # carry() leaves digits slightly above 2^(b-1); keep every product sum below 2^53 with them.
    while b > 8 and inner * limbs * (2.0 ** (b - 1) + 2.0 ** (53 - 2 * b) + 1) ** 2 > 2.0**53:
        b -= 1
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
    if shift:
        values = [v << shift for v in values]
    whole = (scale_bits + shift) // b
    top_bits = max(max(values), -min(values), 1).bit_length() + 1  # room for the sign
    width = max((top_bits + b - 1) // b, 1)
    if b % 8 == 0:
        # Byte-aligned digits: two's complement bytes, grouped b/8 at a time (no per-bit work).
        step = b // 8
        nbytes = width * step
        raw = b"".join(v.to_bytes(nbytes, "little", signed=True) for v in values)
        data = np.frombuffer(raw, dtype=np.uint8).reshape(len(values), width, step).astype(np.int64)
        digits = (data << (8 * np.arange(step, dtype=np.int64))).sum(-1)  # unsigned digits, least first
        negative = np.frombuffer(raw, dtype=np.uint8).reshape(len(values), nbytes)[:, -1] >= 128
        # two's complement: value = U - 2^(b * width) for negative values
        digits = np.concatenate([digits, -negative[:, None].astype(np.int64)], axis=1)
        width += 1
    else:
        magnitudes = [abs(v) for v in values]
        nbytes = (width * b + 7) // 8
        raw = b"".join(m.to_bytes(nbytes, "little") for m in magnitudes)
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8).reshape(len(values), nbytes), axis=1,
                             bitorder="little")[:, : width * b]
        digits = bits.reshape(len(values), width, b).astype(np.int64) @ (1 << np.arange(b, dtype=np.int64))
        digits = digits * np.array([-1 if v < 0 else 1 for v in values], dtype=np.int64)[:, None]
    digits = torch.from_numpy(np.ascontiguousarray(digits[:, ::-1]).astype(np.float64))
    digits = digits.reshape(count, block, width)
    # value = sum_k d_k 2^{b (width - 1 - k - whole)}
    exponent = torch.full((count,), width - 1 - whole, dtype=torch.int64)
    return normalize(digits, exponent, limbs, b, block_dims=1)


def carry(digits: torch.Tensor, b: int) -> torch.Tensor:
    r"""Two carry rounds, in place: digits below :math:`2^{53}` become nearly balanced,
    :math:`|d| \le 2^{b-1} + 2^{53-2b} + 1` (the bound :func:`limb_bits` budgets for).

    Round one leaves :math:`|d| \le 2^{b-1} + 2^{53-b}`, round two moves the rest. The first two
    digits must be zero headroom; the value is unchanged (every operation is exact).
    """
    base, inverse = float(1 << b), 2.0**-b
    for _ in range(2):
        up = digits.mul(inverse).add_(0.5).floor_()  # exact: a power-of-two scaling of an integer below 2^53
        digits.sub_(up, alpha=base)
        digits[..., :-1] += up[..., 1:]
    return digits


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
           chunk: int = 8192, keep: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Block matrix product ``(N, I, K, L) @ (N, K, J, Lb)``, rounded once to ``limbs`` limbs.

    The digit loop runs over the shorter operand; inside, the batch axis is innermost (contiguous), so
    every multiply-add is one long vectorised pass. Rows go ``chunk`` at a time to bound memory.
    ``keep``: product limbs computed (default all ``L + Lb - 1``); the terms below are dropped, an error
    under one unit of limb ``keep`` per term, so ``keep = limbs + g`` with ``g`` covering the headroom
    and any cancellation (in limbs) keeps the single rounding of :func:`normalize` dominant.
    """
    N, I, K, L = A.shape
    J, Lb = B.shape[-2], B.shape[-1]
    if Lb > L:
        # (A B)^T = B^T A^T: swap the roles so the loop runs over the shorter digit axis.
        P, eP = matmul(B.transpose(1, 2), eB, A.transpose(1, 2), eA, limbs, b, chunk, keep)
        return P.transpose(1, 2).contiguous(), eP
    width = L + Lb - 1 if keep is None else min(L + Lb - 1, keep)
    out = A.new_empty(N, I, J, width)
    for begin in range(0, N, chunk):
        a = A[begin:begin + chunk].permute(3, 1, 2, 0).contiguous()  # (L, I, K, n)
        bb = B[begin:begin + chunk].permute(3, 1, 2, 0).contiguous()  # (Lb, K, J, n)
        acc = a.new_zeros(width, I, J, a.shape[-1])
        for k in range(K):
            for t in range(min(Lb, width)):
                span = min(L, width - t)
                acc[t:t + span].addcmul_(a[:span, :, k, None, :], bb[t, None, k])  # (1, J, n) over L and I
        out[begin:begin + chunk] = acc.permute(3, 1, 2, 0)
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
    if bool((offset < 0).any()) and bool((T != 0).any(-1, keepdim=True).any()):
        # A leading digit of T above the frame must be zero; checked cheaply on the offending rows.
        positions = torch.arange(Lt, device=T.device) + offset
        if bool(((positions < 0) & (T != 0)).any()):
            raise OverflowError("subtract_aligned: the subtrahend does not fit the frame")
    source = torch.arange(W, device=R.device) - offset  # which T limb lands on R limb k
    valid = (source >= 0) & (source < Lt)
    gathered = torch.gather(T, -1, source.clamp(0, Lt - 1).expand(*T.shape[:-1], W))
    return R - torch.where(valid, gathered, 0)
