r"""Exact integers of any size as torch tensors (multi-limb arithmetic on CPU and GPU).

An integer :math:`N` is stored as ``L`` limbs along the last axis of an ``int64`` tensor,

.. math::

    N = \sum_{k=0}^{L-1} d_k\, B^k, \qquad B = 2^{24},

in **canonical sign-magnitude form**: every limb has the sign of :math:`N` and :math:`|d_k| < B`. The
canonical form is unique, so equality is limb-wise equality, and the leading limbs give a float
approximation of :math:`N` without cancellation. Limbs of 24 bits are exact in float64 *and* float32, so the
tiling models keep them inside their float storage tensors.

Arithmetic works on non-canonical limbs (any ``int64`` values) and ends with :func:`normalize`, which
propagates carries and checks that the result fits the requested number of limbs. Limb products are below
:math:`2^{48}`, so sums of up to :math:`2^{14}` of them are exact in ``int64``; every function below checks
that bound before it forms a sum and raises :class:`IntegerOverflowError` instead of wrapping (torch's
``int64`` arithmetic wraps silently: :math:`2^{62}\cdot 4 = 0`).

All operations broadcast over leading axes and are vectorised: the only Python loops run over limb
positions (the tensor's shape), never over the integers themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hyperbolic.manifold import PrecisionError

__all__ = [
    "LIMB_BITS",
    "LIMB_BASE",
    "IntegerOverflowError",
    "limbs_for_bits",
    "from_ints",
    "to_ints",
    "from_int64",
    "to_int64",
    "int64_bit_length",
    "normalize",
    "pad",
    "trim",
    "used_limbs",
    "negate",
    "add",
    "sub",
    "mul",
    "matmul",
    "scale_small",
    "sign",
    "compare",
    "bit_length",
    "leading",
    "to_float",
    "shift_left",
    "floor_shift_right",
    "checked_int64_matmul",
]

LIMB_BITS = 24
LIMB_BASE = 1 << LIMB_BITS
_MASK = LIMB_BASE - 1
# int64 holds |sum| < 2^63; each limb product is < 2^48, so at most 2^14 of them may be summed.
_MAX_PRODUCT_TERMS = 1 << (62 - 2 * LIMB_BITS)


class IntegerOverflowError(PrecisionError, OverflowError):
    """An integer does not fit the fixed width it was asked to fit (never wrapped silently)."""


def limbs_for_bits(bits: int) -> int:
    """Number of limbs that hold every integer of magnitude below :math:`2^{\\text{bits}}`."""
    return max(1, -(-int(bits) // LIMB_BITS))


def _first_index(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.nonzero(mask)[0])


# ----------------------------------------------------------------------------- conversion
def _digits_of(value: int, limbs: int) -> list[int]:
    magnitude, negative = abs(int(value)), value < 0
    if magnitude >> (LIMB_BITS * limbs):
        raise IntegerOverflowError(
            f"integer with {magnitude.bit_length()} bits does not fit {limbs} limbs of {LIMB_BITS} bits "
            f"({LIMB_BITS * limbs} bits)"
        )
    digits = [(magnitude >> (LIMB_BITS * k)) & _MASK for k in range(limbs)]
    return [-d for d in digits] if negative else digits


def from_ints(values, limbs: int | None = None, device=None) -> torch.Tensor:
    """Limbs of a (nested) sequence of Python integers: a tensor of shape ``(*shape, limbs)``.

    ``limbs=None`` uses the fewest limbs that hold the largest magnitude.
    """
    flat: list[int] = []
    shape: list[int] = []

    def walk(v, depth):
        if isinstance(v, Sequence) and not isinstance(v, (str, bytes)):
            if len(shape) <= depth:
                shape.append(len(v))
            elif shape[depth] != len(v):
                raise ValueError("ragged nested sequence of integers")
            for item in v:
                walk(item, depth + 1)
        else:
            if int(v) != v:
                raise ValueError(f"{v!r} is not an integer")
            flat.append(int(v))

    walk(values, 0)
    if limbs is None:
        limbs = limbs_for_bits(max((abs(v).bit_length() for v in flat), default=1))
    rows = [_digits_of(v, limbs) for v in flat]
    out = torch.tensor(rows, dtype=torch.int64, device=device).reshape(*shape, limbs)
    return out


def to_ints(digits: torch.Tensor):
    """Python integers (nested lists over the leading axes) of limbs in any form (canonical or not)."""
    rows = digits.detach().to(torch.int64).cpu().reshape(-1, digits.shape[-1]).tolist()
    values = [sum(d << (LIMB_BITS * k) for k, d in enumerate(row)) for row in rows]
    shape = tuple(digits.shape[:-1])
    if not shape:
        return values[0]

    def build(flat, dims):
        if len(dims) == 1:
            return flat
        step = len(flat) // dims[0]
        return [build(flat[i * step:(i + 1) * step], dims[1:]) for i in range(dims[0])]

    return build(values, shape)


def from_int64(x: torch.Tensor, limbs: int = 3) -> torch.Tensor:
    """Canonical limbs of an ``int64`` (or integer-valued float) tensor; 3 limbs hold every int64."""
    x = x.to(torch.int64)
    if bool((x == torch.iinfo(torch.int64).min).any()):  # -2^63 has no int64 magnitude
        raise IntegerOverflowError(f"int64 value {torch.iinfo(torch.int64).min} has no magnitude in int64")
    return _split_int64(x, limbs, "int64 value")


def to_int64(a: torch.Tensor) -> torch.Tensor:
    """The integers given by at most two canonical limbs (magnitude below :math:`2^{48}`) as ``int64``."""
    if a.shape[-1] > 2:
        raise ValueError(f"to_int64 takes at most 2 limbs ({2 * LIMB_BITS} bits), got {a.shape[-1]}")
    value = a[..., 0].clone() if a.shape[-1] else a.new_zeros(a.shape[:-1])
    if a.shape[-1] == 2:
        value += a[..., 1] << LIMB_BITS
    return value


def int64_bit_length(x: torch.Tensor) -> torch.Tensor:
    """Bit length of :math:`|x|` for ``int64`` ``x`` with :math:`|x| < 2^{63}` (0 for 0), as ``int64``.

    Exact: the bits above and below bit 31 are each converted to float64 without rounding, and the exponent
    of an exactly converted positive integer is its bit length.
    """
    magnitude = x.abs()
    high = magnitude >> 31
    bits_high = torch.frexp(high.to(torch.float64))[1].to(torch.int64)
    bits_low = torch.frexp(magnitude.to(torch.float64))[1].to(torch.int64)  # exact when high == 0
    return torch.where(high > 0, bits_high + 31, bits_low)


# ----------------------------------------------------------------------------- canonical form
def pad(a: torch.Tensor, limbs: int) -> torch.Tensor:
    """Append zero limbs up to ``limbs`` (no-op when already that long)."""
    extra = limbs - a.shape[-1]
    if extra <= 0:
        return a
    return torch.cat([a, a.new_zeros(*a.shape[:-1], extra)], dim=-1)


def trim(a: torch.Tensor, limbs: int, what: str = "integer") -> torch.Tensor:
    """Keep the lowest ``limbs`` limbs of canonical ``a``; raise when a dropped limb is non-zero."""
    if a.shape[-1] <= limbs:
        return pad(a, limbs)
    dropped = a[..., limbs:] != 0
    if bool(dropped.any()):
        index = _first_index(dropped.any(-1))
        raise IntegerOverflowError(
            f"{what} at index {index} needs {bit_length(a[index]).item()} bits, more than the "
            f"{limbs} limbs ({limbs * LIMB_BITS} bits) available"
        )
    return a[..., :limbs]


def used_limbs(*tensors: torch.Tensor) -> int:
    """Smallest limb count that holds every (canonical) integer in ``tensors`` (at least 1)."""
    used = 1
    for a in tensors:
        # From the top limb down: usually the first limb looked at is in use, so one limb is scanned, not all.
        for limb in range(a.shape[-1] - 1, used - 1, -1):
            if bool((a[..., limb] != 0).any()):
                used = limb + 1
                break
    return used


def normalize(c: torch.Tensor, limbs: int | None = None, what: str = "integer") -> torch.Tensor:
    """Canonical sign-magnitude limbs of the integer :math:`\\sum_k c_k B^k` given by any ``int64`` limbs.

    Parameters
    ----------
    c : torch.Tensor
        ``int64`` limbs ``(..., K)`` with :math:`|c_k| < 2^{62}`, any signs.
    limbs : int, optional
        Limbs of the result (default ``K``). Raises :class:`IntegerOverflowError` when the value needs more.
    what : str
        Name used in the error message.

    Notes
    -----
    When :math:`K \\le 3` and :math:`\\sum_k \\max|c_k|\\, B^k < 2^{62}` (the largest magnitude at each limb
    position, over all integers; checked in float64 with a safety factor), the value itself is formed in
    ``int64`` (every partial sum is bounded by that sum) and split into limbs.
    Otherwise carries are propagated limb by limb (limb-major, contiguous), which yields two's complement
    limbs and the sign; negative integers are then negated and carried again to get their magnitude.
    """
    if c.dtype != torch.int64:
        raise TypeError(f"limbs must be int64, got {c.dtype}")
    K = c.shape[-1]
    limbs = K if limbs is None else limbs
    if K == 0:
        return c.new_zeros(*c.shape[:-1], limbs)
    magnitudes = c.abs()
    if c.numel() and int(magnitudes.max()) >= 1 << 62:
        raise IntegerOverflowError(f"{what}: a limb reached 2^62 before carrying; the int64 sum would wrap")
    if K <= 3:
        largest = magnitudes.reshape(-1, K).amax(0).tolist() if c.numel() else [0] * K  # per limb position
        if sum(float(m) * 2.0 ** (LIMB_BITS * k) for k, m in enumerate(largest)) < 2.0**61:
            value = c[..., 0].clone()
            for k in range(1, K):
                value += c[..., k] << (LIMB_BITS * k)
            return _split_int64(value, limbs, what)
    width = K + 3  # |value| < 2^62 B^(K-1) K < B^(K+3): room for every carry
    source = c.movedim(-1, 0)
    twos, carry = _carry(source, width)
    negative = carry < 0
    if bool(negative.any()):
        magnitude, _ = _carry(torch.where(negative, -source, source), width)
        signed = torch.where(negative, -magnitude, magnitude)
    else:
        signed = twos
    return trim(signed.movedim(0, -1), limbs, what)


def _carry(source: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Limb-major carry propagation: limbs in :math:`[0, B)` and the final carry (0, or -1 for negatives)."""
    out = source.new_empty(width, *source.shape[1:])
    carry = torch.zeros_like(source[0])
    for k in range(width):
        total = source[k] + carry if k < source.shape[0] else carry
        out[k] = total & _MASK
        carry = total >> LIMB_BITS
    return out, carry


def _split_int64(value: torch.Tensor, limbs: int, what: str) -> torch.Tensor:
    magnitude = value.abs()
    if limbs * LIMB_BITS < 63 and bool((magnitude >> (limbs * LIMB_BITS) != 0).any()):
        index = _first_index(magnitude >> (limbs * LIMB_BITS) != 0)
        raise IntegerOverflowError(
            f"{what} at index {index} needs {int(magnitude[index]).bit_length()} bits, more than the "
            f"{limbs} limbs ({limbs * LIMB_BITS} bits) available"
        )
    if limbs == 1:  # |value| < B: the value is its own limb
        return value.unsqueeze(-1).clone()
    sign = torch.where(value < 0, -1, 1)
    digits = [((magnitude >> (LIMB_BITS * k)) & _MASK) * sign if LIMB_BITS * k < 63 else torch.zeros_like(value)
              for k in range(limbs)]
    return torch.stack(digits, dim=-1)


# ----------------------------------------------------------------------------- arithmetic
def negate(a: torch.Tensor) -> torch.Tensor:
    return -a


def add(a: torch.Tensor, b: torch.Tensor, limbs: int | None = None, what: str = "sum") -> torch.Tensor:
    """:math:`a + b` (canonical), with ``limbs`` limbs (default: one more than the wider input)."""
    K = max(a.shape[-1], b.shape[-1])
    limbs = K + 1 if limbs is None else limbs
    return normalize(pad(a, K) + pad(b, K), limbs, what)


def sub(a: torch.Tensor, b: torch.Tensor, limbs: int | None = None, what: str = "difference") -> torch.Tensor:
    """:math:`a - b` (canonical)."""
    return add(a, -b, limbs, what)


def scale_small(a: torch.Tensor, factor: torch.Tensor | int) -> torch.Tensor:
    """Limb-wise product with small integers :math:`|f| < 2^{38}` (not normalised)."""
    factor = torch.as_tensor(factor, dtype=torch.int64, device=a.device)
    if bool((factor.abs() >= (1 << 38)).any()):
        raise IntegerOverflowError("scale_small: factor of 2^38 or more would overflow int64 limb products")
    return a * factor.unsqueeze(-1) if factor.dim() else a * factor


def _convolve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Limb convolution :math:`c_m = \\sum_{k} a_k b_{m-k}` (broadcast, not normalised)."""
    La, Lb = a.shape[-1], b.shape[-1]
    if min(La, Lb) > _MAX_PRODUCT_TERMS:
        raise IntegerOverflowError(f"limb convolution of {La} x {Lb} limbs would overflow int64")
    if La > Lb:
        a, b, La, Lb = b, a, Lb, La
    shape = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    out = a.new_zeros(*shape, La + Lb - 1)
    for k in range(La):
        out[..., k:k + Lb] += a[..., k:k + 1] * b
    return out


def mul(a: torch.Tensor, b: torch.Tensor, limbs: int | None = None, what: str = "product") -> torch.Tensor:
    """:math:`a\\,b` (canonical inputs, canonical output with ``limbs`` limbs, default ``La + Lb``)."""
    limbs = a.shape[-1] + b.shape[-1] if limbs is None else limbs
    return normalize(_convolve(a, b), limbs, what)


def matmul(
    A: torch.Tensor,
    B: torch.Tensor,
    limbs: int | None = None,
    weights: Sequence[int] | None = None,
    what: str = "matrix product",
) -> torch.Tensor:
    r"""Exact matrix product of integer matrices ``(..., n, m, L)`` and ``(..., m, p, L')``.

    ``weights`` (length ``m``) computes :math:`A\,\mathrm{diag}(w)\,B` instead, e.g. the quadratic form
    :math:`T^\top M_3 T`. Every output limb is a sum of at most :math:`m \max|w| \min(L, L')` limb products;
    this is checked against int64 before summing. No GEMM is used (int64 GEMM is missing on CUDA).
    """
    m = A.shape[-2]
    if B.shape[-3] != m:
        raise ValueError(f"matmul: inner dimensions {A.shape[-2]} and {B.shape[-3]} differ")
    weight_sum = m if weights is None else sum(abs(int(w)) for w in weights)
    terms = weight_sum * min(A.shape[-1], B.shape[-1])
    if terms > _MAX_PRODUCT_TERMS:
        raise IntegerOverflowError(f"{what}: {terms} limb products per output limb would overflow int64")
    total = None
    for k in range(m):
        term = _convolve(A[..., :, k, None, :], B[..., None, k, :, :])
        if weights is not None:
            term = term * int(weights[k])
        total = term if total is None else total + term
    limbs = A.shape[-1] + B.shape[-1] if limbs is None else limbs
    return normalize(total, limbs, what)


def checked_int64_matmul(A: torch.Tensor, B: torch.Tensor, what: str = "int64 matrix product") -> torch.Tensor:
    """Matrix product in plain ``int64`` that raises :class:`IntegerOverflowError` instead of wrapping.

    The bound :math:`\\lceil\\log_2\\max|A|\\rceil + \\lceil\\log_2\\max|B|\\rceil + \\lceil\\log_2 m\\rceil < 63`
    is checked before multiplying (sufficient for every partial sum to fit).
    """
    A, B = A.to(torch.int64), B.to(torch.int64)
    bits_a = int(A.abs().max().item()).bit_length() if A.numel() else 0
    bits_b = int(B.abs().max().item()).bit_length() if B.numel() else 0
    m = A.shape[-1]
    if bits_a + bits_b + max(m - 1, 0).bit_length() >= 63:
        raise IntegerOverflowError(
            f"{what}: entries of {bits_a} and {bits_b} bits summed over {m} terms overflow int64; "
            "use tiling.bigint.matmul (multi-limb) instead"
        )
    return (A.unsqueeze(-1) * B.unsqueeze(-3)).sum(-2)


# ----------------------------------------------------------------------------- inspection
def sign(a: torch.Tensor) -> torch.Tensor:
    """Sign (-1, 0, 1) of canonical integers."""
    return torch.sign(a).sum(-1).sign()


def compare(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sign of :math:`a - b` for canonical (or any) limbs."""
    return sign(sub(a, b))


def bit_length(a: torch.Tensor) -> torch.Tensor:
    """Bit length of the magnitude of canonical integers (0 for 0), as ``int64``."""
    magnitude = a.abs()
    nonzero = magnitude != 0
    L = a.shape[-1]
    positions = torch.arange(L, device=a.device)
    top = torch.where(nonzero, positions, -1).amax(-1)
    top_digit = magnitude.gather(-1, top.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    digit_bits = torch.where(
        top_digit > 0, torch.floor(torch.log2(top_digit.to(torch.float64))).to(torch.int64) + 1, 0
    )
    return torch.where(top >= 0, top * LIMB_BITS + digit_bits, 0)


def leading(a: torch.Tensor, top: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    r""":math:`a / B^{\text{top}}` as a float, from the four limbs at and below index ``top``.

    For canonical ``a`` with :math:`|a| < B^{\text{top}+1}` the dropped limbs change the value by less than
    :math:`B^{-3} = 2^{-72}` relative to :math:`B^{\text{top}}`: one rounding to float64.
    """
    L = a.shape[-1]
    shape = torch.broadcast_shapes(a.shape[:-1], top.shape)
    padded = a.expand(*shape, L)
    top = top.expand(shape)
    value = torch.zeros(shape, dtype=torch.float64, device=a.device)
    for offset in (3, 2, 1, 0):
        index = top - offset
        digit = padded.gather(-1, index.clamp(0, L - 1).unsqueeze(-1)).squeeze(-1)
        digit = torch.where(index >= 0, digit, 0)
        value = value / LIMB_BASE + digit.to(torch.float64)
    return value.to(dtype)


def to_float(a: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    """Nearest-ish float of canonical integers (relative error below 2^-52; inf beyond the float range)."""
    magnitude = a.abs()
    L = a.shape[-1]
    positions = torch.arange(L, device=a.device)
    top = torch.where(magnitude != 0, positions, 0).amax(-1)
    mantissa = leading(a, top)
    exponent = (top * LIMB_BITS).clamp_max(4096)
    return (mantissa * torch.exp2(exponent.to(torch.float64))).to(dtype)


# ----------------------------------------------------------------------------- shifts
def shift_left(a: torch.Tensor, shift: torch.Tensor, limbs: int, what: str = "shifted integer") -> torch.Tensor:
    r""":math:`a \cdot 2^{s}` for canonical ``a`` and per-integer shifts :math:`s \ge 0`, in ``limbs`` limbs."""
    shift = torch.as_tensor(shift, dtype=torch.int64, device=a.device)
    if bool((shift < 0).any()):
        raise ValueError("shift_left needs non-negative shifts")
    shape = torch.broadcast_shapes(a.shape[:-1], shift.shape)
    a = a.expand(*shape, a.shape[-1])
    shift = shift.expand(shape)
    whole, part = shift // LIMB_BITS, shift % LIMB_BITS
    scaled = a * (1 << part).unsqueeze(-1)  # < 2^47: limbs of the product by 2^part
    width = limbs + 1
    source = torch.arange(width, device=a.device) - whole.unsqueeze(-1)
    valid = (source >= 0) & (source < a.shape[-1])
    gathered = torch.gather(pad(scaled, width), -1, source.clamp(0, a.shape[-1] - 1).expand(*shape, width))
    moved = torch.where(valid, gathered, 0)
    # Every non-zero input limb must land inside the result.
    lost = (a != 0) & (torch.arange(a.shape[-1], device=a.device) + whole.unsqueeze(-1) >= width)
    if bool(lost.any()):
        raise IntegerOverflowError(f"{what} at index {_first_index(lost.any(-1))} exceeds {limbs} limbs")
    return normalize(moved, limbs, what)


def floor_shift_right(a: torch.Tensor, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Floor division by :math:`2^{s}`: :math:`a = 2^s q + r` with :math:`0 \le r < 2^s`.

    Parameters
    ----------
    a : torch.Tensor
        Canonical limbs ``(..., L)``.
    shift : torch.Tensor
        Per-integer shifts :math:`s \ge 0` (broadcast against ``a.shape[:-1]``).

    Returns
    -------
    q : torch.Tensor
        Canonical limbs of :math:`\lfloor a / 2^s\rfloor` (``L`` limbs).
    fraction : torch.Tensor
        :math:`r / 2^s` as float64, from the 72 bits below the cut (exact when
        :math:`s \le 53`; it may round up to 1 when :math:`s > 53`).
    """
    shift = torch.as_tensor(shift, dtype=torch.int64, device=a.device)
    if bool((shift < 0).any()):
        raise ValueError("floor_shift_right needs non-negative shifts")
    shape = torch.broadcast_shapes(a.shape[:-1], shift.shape)
    L = a.shape[-1]
    twos = _twos_complement(a.expand(*shape, L))
    # Limbs all in [0, B), followed by the sign limb (0 or -1) that repeats forever above.
    top = twos[..., -1:]
    sign_limb = top >> LIMB_BITS
    bits = torch.cat([twos[..., :-1], top & _MASK], dim=-1)  # value = sum bits_k B^k + sign_limb B^L
    fill = torch.where(sign_limb < 0, _MASK, 0)
    shift = shift.expand(shape)
    whole, part = (shift // LIMB_BITS).unsqueeze(-1), (shift % LIMB_BITS).unsqueeze(-1)

    def limb(index):
        value = torch.gather(bits, -1, index.clamp(0, L - 1))
        return torch.where(index >= L, fill, torch.where(index < 0, 0, value))

    positions = torch.arange(L, device=a.device)
    low = limb(positions + whole)
    high = limb(positions + whole + 1)
    q_bits = ((low >> part) | (high << (LIMB_BITS - part))) & _MASK
    q = normalize(torch.cat([q_bits, sign_limb], dim=-1), L, "quotient")
    # r / 2^s from the limbs just below the cut: bits below `part` in limb `whole`, then whole-1, whole-2.
    fraction = torch.zeros(shape, dtype=torch.float64, device=a.device)
    for offset in (3, 2, 1):
        index = whole - offset
        fraction = fraction + limb(index).squeeze(-1).to(torch.float64) * torch.exp2(
            (LIMB_BITS * (index - whole) - part).squeeze(-1).to(torch.float64)
        ) * (index >= 0).squeeze(-1)
    cut = limb(whole) & ((1 << part) - 1)
    fraction = fraction + cut.squeeze(-1).to(torch.float64) * torch.exp2(-part.squeeze(-1).to(torch.float64))
    return q, fraction


def _twos_complement(a: torch.Tensor) -> torch.Tensor:
    """Limbs in :math:`[0, B)` below a signed top limb, same value as ``a``."""
    t = a.clone()
    L = a.shape[-1]
    for k in range(L - 1):
        carry = t[..., k] >> LIMB_BITS
        t[..., k] = t[..., k] & _MASK
        t[..., k + 1] += carry
    return t


def from_float(x: torch.Tensor, limbs: int, what: str = "integer-valued float") -> torch.Tensor:
    r"""Canonical limbs of integer-valued floats of any magnitude (exact): :math:`x = M 2^E` with the 53-bit
    significand :math:`M` (int64) shifted by :math:`E`. Raises ``ValueError`` for non-integers or non-finite."""
    x = x.to(torch.float64)
    if not bool(torch.isfinite(x).all()) or bool((x != torch.floor(x)).any()):
        raise ValueError(f"{what}: expected finite integer-valued floats")
    mantissa, exponent = torch.frexp(x)
    M = (mantissa * 2.0**53).to(torch.int64)
    E = exponent.to(torch.int64) - 53
    down = (-E).clamp(0, 62)
    small = from_int64(M >> down, 3)  # exact: x is an integer, so the dropped bits are zero
    return shift_left(small, E.clamp_min(0), limbs, what)
