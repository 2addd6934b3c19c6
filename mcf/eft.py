"""Error-free transformations (EFTs) on torch tensors.

Every function here is elementwise: inputs broadcast against each other, results follow the
inputs' dtype and device, and no Python branch depends on tensor values. Exactness assumes
round-to-nearest-even, no overflow, no underflow of error terms and no flush-to-zero; eager
PyTorch runs every operation below as its own rounded kernel, which is what the proofs need.
A compiler that contracts ``a*b + c`` into an FMA or reassociates sums silently breaks
Two-Sum and Veltkamp's split: run :func:`fma_self_test` and the test-suite on such a path.

Notation: ``p`` significand bits (implicit bit included), ``u = 2**-p`` the unit roundoff,
``fl(.)`` one correctly rounded operation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "FloatFormat",
    "FORMATS",
    "SPLIT_CONSTANT",
    "float_format",
    "ulp",
    "two_sum",
    "fast_two_sum",
    "split",
    "two_prod",
    "two_prod_dekker",
    "two_prod_fma",
    "fma_self_test",
    "set_two_prod_method",
    "get_two_prod_method",
    "two_prod_uses_fma",
]


@dataclass(frozen=True)
class FloatFormat:
    """Constants of one IEEE-754 binary format.

    Attributes
    ----------
    p : int
        Significand bits including the implicit bit.
    split : float
        Veltkamp's constant ``2**ceil(p/2) + 1``.
    eps : float
        Unit roundoff ``u = 2**-p`` (half the machine epsilon).
    emin, emax : int
        Exponents of the smallest and largest normal numbers (``2**emin`` is the smallest
        normal, the largest finite number is ``(2 - 2**(1-p)) * 2**emax``).
    self_test_spread : int
        Exponent range ``[-spread, spread]`` of the random factors in :func:`fma_self_test`;
        small enough that the products' error terms stay normal.
    """

    p: int
    split: float
    eps: float
    emin: int
    emax: int
    self_test_spread: int

    @property
    def sigma(self) -> int:
        """Bits kept in the low part of a split: ``ceil(p/2)``."""
        return (self.p + 1) // 2

    @property
    def split_threshold(self) -> float:
        """|a| above which ``split * a`` could overflow; such inputs are pre-scaled."""
        return math.ldexp(1.0, self.emax - self.sigma)

    @property
    def split_shift(self) -> int:
        """Power of two by which inputs above the threshold are scaled down."""
        return self.sigma + 1

    @property
    def tiny(self) -> float:
        """Smallest positive (subnormal) number ``2**(emin - p + 1)``."""
        return math.ldexp(1.0, self.emin - self.p + 1)


def _format(p: int, emin: int, emax: int, spread: int) -> FloatFormat:
    return FloatFormat(
        p=p,
        split=float(2 ** ((p + 1) // 2) + 1),
        eps=math.ldexp(1.0, -p),
        emin=emin,
        emax=emax,
        self_test_spread=spread,
    )


FORMATS: dict[torch.dtype, FloatFormat] = {
    torch.float64: _format(53, -1022, 1023, 60),
    torch.float32: _format(24, -126, 127, 20),
    torch.float16: _format(11, -14, 15, 2),
    torch.bfloat16: _format(8, -126, 127, 20),
}
"""The one table of per-dtype constants; everything else derives from it."""

SPLIT_CONSTANT: dict[torch.dtype, float] = {dt: f.split for dt, f in FORMATS.items()}
"""Veltkamp's constant per dtype: float64 134217729 (2^27+1), float32 4097, float16 65,
bfloat16 17. (2^26+1 for float64, used by some published code, is wrong.)"""


def float_format(dtype: torch.dtype) -> FloatFormat:
    """Return the :class:`FloatFormat` of ``dtype``; raise ``TypeError`` if unsupported."""
    try:
        return FORMATS[dtype]
    except KeyError:
        raise TypeError(
            f"mcf supports the base dtypes {sorted(str(d) for d in FORMATS)}, not {dtype}"
        ) from None


def ulp(x: torch.Tensor) -> torch.Tensor:
    """Unit in the last place of each element.

    ``ulp(x) = 2**(floor(log2|x|) - p + 1)`` for normal ``x``; the subnormal spacing
    ``2**(emin - p + 1)`` for subnormal ``x`` and for zero. Exact (a power of two).
    """
    f = float_format(x.dtype)
    _, exponent = torch.frexp(x)  # |x| = mantissa * 2**exponent, mantissa in [1/2, 1)
    exponent = torch.clamp(exponent - f.p, min=f.emin - f.p + 1)
    return torch.where(x == 0, f.tiny, torch.ldexp(torch.ones_like(x), exponent))


def two_sum(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Knuth's Two-Sum: ``s = fl(a + b)`` and ``e`` with ``s + e == a + b`` exactly.

    No precondition on the order of ``a`` and ``b``; ``|e| <= ulp(s)/2``. Six flops::

        s = a + b;  b_v = s - a;  a_v = s - b_v;  e = (a - a_v) + (b - b_v)
    """
    s = a + b
    b_virtual = s - a
    a_virtual = s - b_virtual
    return s, (a - a_virtual) + (b - b_virtual)


def fast_two_sum(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dekker's Fast-Two-Sum: ``s = fl(a + b)``, ``s + e == a + b`` exactly.

    **Precondition** ``exponent(a) >= exponent(b)`` (in particular ``|a| >= |b|``) or
    ``a == 0``; otherwise ``e`` can be wrong. Three flops: ``s = a + b; e = b - (s - a)``.
    """
    s = a + b
    return s, b - (s - a)


def _split_unscaled(a: torch.Tensor, constant: float) -> tuple[torch.Tensor, torch.Tensor]:
    c = constant * a
    a_big = c - a
    hi = c - a_big
    return hi, a - hi


def split(a: torch.Tensor, constant: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Veltkamp's split: ``a == hi + lo`` exactly, ``hi`` with ``p - sigma`` significant
    bits and ``lo`` with at most ``sigma - 1`` bits plus sign, ``sigma = ceil(p/2)``.

    With ``C = 2**sigma + 1``::

        c = C*a;  a_big = c - a;  hi = c - a_big;  lo = a - hi

    Inputs with ``|a| > 2**(emax - sigma)`` (where ``C*a`` could overflow) are scaled down
    by ``2**-(sigma+1)``, split and scaled back, which is exact; only for ``|a|`` within
    ``2**-sigma`` of the largest finite number can ``hi`` round up to infinity.

    Parameters
    ----------
    a : Tensor
        Floating tensor of a supported dtype.
    constant : float, optional
        Override of the split constant, for experiments only (the tests use it to show
        that ``2**26 + 1`` is wrong for float64).
    """
    f = float_format(a.dtype)
    constant = f.split if constant is None else constant
    big = a.abs() > f.split_threshold
    down = math.ldexp(1.0, -f.split_shift)
    up = math.ldexp(1.0, f.split_shift)
    hi, lo = _split_unscaled(torch.where(big, a * down, a), constant)
    return torch.where(big, hi * up, hi), torch.where(big, lo * up, lo)


def two_prod_dekker(
    a: torch.Tensor, b: torch.Tensor, *, split_constant: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dekker's Two-Prod: ``p = fl(a*b)`` and ``e`` with ``p + e == a*b`` exactly.

    ``e = (((a_h*b_h - p) + a_h*b_l) + a_l*b_h) + a_l*b_l`` with Veltkamp splits of both
    factors. Valid while nothing overflows and the error term does not underflow, i.e.
    roughly ``floor(log2|a|) + floor(log2|b|) >= emin + p - 1``. Factors above the split
    threshold are handled in a scaled copy (``a*s_a``, ``b*s_b``, powers of two), so ``e`` is
    right whenever ``p`` is finite.

    Parameters
    ----------
    split_constant : float, optional
        Override of Veltkamp's constant (experiments only, see :func:`split`).
    """
    f = float_format(a.dtype)
    constant = f.split if split_constant is None else split_constant
    p = a * b
    down = math.ldexp(1.0, -f.split_shift)
    up = math.ldexp(1.0, f.split_shift)
    big_a = a.abs() > f.split_threshold
    big_b = b.abs() > f.split_threshold
    a_s = torch.where(big_a, a * down, a)
    b_s = torch.where(big_b, b * down, b)
    a_hi, a_lo = _split_unscaled(a_s, constant)
    b_hi, b_lo = _split_unscaled(b_s, constant)
    p_s = a_s * b_s
    e = (((a_hi * b_hi - p_s) + a_hi * b_lo) + a_lo * b_hi) + a_lo * b_lo
    e = torch.where(big_a, e * up, e)
    return p, torch.where(big_b, e * up, e)


def _addcmul_error(a: torch.Tensor, b: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    # -p + a*b in one kernel; exact iff the kernel fuses the multiply-add.
    return torch.addcmul(-p, a, b)


def two_prod_fma(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-Prod through ``torch.addcmul``: ``p = fl(a*b)``, ``e = addcmul(-p, a, b)``.

    Exact **only** where the kernel computes ``-p + a*b`` with one rounding (a fused
    multiply-add). PyTorch documents no such guarantee; :func:`two_prod` uses this path only
    after :func:`fma_self_test` has confirmed it for the device type and dtype.
    """
    p = a * b
    return p, _addcmul_error(a, b, p)


# -- FMA detection --

_METHODS = ("auto", "fma", "dekker")
_method = "auto"
_fma_verdicts: dict[tuple[str, torch.dtype], bool] = {}


def _self_test_operands(
    f: FloatFormat, n: int, seed: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random factors spread over ``2**[-spread, spread]`` plus hand-made hard cases."""
    gen = torch.Generator().manual_seed(seed)
    spread = f.self_test_spread
    work = torch.float64

    def rand_factor(k: int) -> torch.Tensor:
        mantissa = 1.0 + torch.rand(k, generator=gen, dtype=work)
        exponent = torch.randint(-spread, spread + 1, (k,), generator=gen)
        sign = torch.where(torch.rand(k, generator=gen) < 0.5, -1.0, 1.0).to(work)
        return sign * torch.ldexp(mantissa, exponent.to(work))

    q = math.ldexp(1.0, 1 - f.p)  # ulp(1)
    small = torch.arange(1, 33, dtype=work)
    near_one = torch.cat([1.0 + small * q, 1.0 - small * q / 2, 2.0 - small * q])
    odd = torch.arange(3, 66, 2, dtype=work)
    grid_a, grid_b = torch.meshgrid(near_one, near_one, indexing="ij")
    odd_a, odd_b = torch.meshgrid(odd, near_one, indexing="ij")
    # (2^s + k)(2^s - k) / 2^(2s) = 1 - k^2 2^(-2s), s = ceil(p/2): for odd k exactly
    # halfway between two floats, so round-to-even decides.
    half = math.ldexp(1.0, f.sigma)
    tie_a = (half + small) / half
    tie_b = (half - small) / half
    big = math.ldexp(1.0, spread)
    hard_a = torch.cat([grid_a.flatten(), odd_a.flatten(), tie_a, big * near_one, 1 / big * odd])
    hard_b = torch.cat([grid_b.flatten(), odd_b.flatten(), tie_b, 1 / big * near_one, big * odd])
    flip = torch.rand(hard_a.numel(), generator=gen) < 0.5
    hard_a = torch.where(flip, -hard_a, hard_a)
    a = torch.cat([rand_factor(n), hard_a, torch.tensor([0.0, 1.0, -1.0], dtype=work)])
    b = torch.cat([rand_factor(n), hard_b, torch.tensor([1.0, 0.0, -1.0], dtype=work)])
    return a.to(dtype), b.to(dtype)


def fma_self_test(
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
    candidate: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    n: int = 10_000,
    seed: int = 0,
) -> bool:
    """Check whether ``candidate(a, b, p)`` returns the exact error ``a*b - p``.

    The reference is Dekker's Two-Prod with the correct split constant. Operands: ``n``
    random pairs with exponents in ``[-spread, spread]`` (60 for float64, 20 for float32)
    and random signs, plus hard cases (products near 1 and 4 from both sides, odd integers
    times numbers next to 1, products that round at ties, ``|a| >> |b|``, zeros). Each
    batch is run contiguous, as a strided view, and at every length 1..17 (kernels treat
    vector tails separately).

    Parameters
    ----------
    device, dtype :
        Where to run the test (``device=None`` means CPU).
    candidate : callable, optional
        ``(a, b, p) -> e``; default ``torch.addcmul(-p, a, b)``.
    n, seed :
        Number and seed of the random pairs (generated on the CPU, then moved to
        ``device``, so every device sees the same numbers).

    Returns
    -------
    bool
        True iff every error term is identical in value to Dekker's (``+0 == -0``).
    """
    f = float_format(dtype)
    candidate = _addcmul_error if candidate is None else candidate
    a, b = _self_test_operands(f, n, seed, dtype)
    device = torch.device("cpu") if device is None else torch.device(device)
    a, b = a.to(device), b.to(device)

    def agrees(x: torch.Tensor, y: torch.Tensor) -> bool:
        p, e_ref = two_prod_dekker(x, y)
        e = candidate(x, y, p)
        return bool(torch.all(torch.isfinite(e_ref) & (e == e_ref)))

    k = math.isqrt(a.numel())
    views = [(a, b), (a[::2], b[::2]), (a[: k * k].view(k, k).t(), b[: k * k].view(k, k).t())]
    views += [(a[:j], b[:j]) for j in range(1, 18)]
    views += [(a[5 : 5 + 2 * j : 2], b[7 : 7 + 2 * j : 2]) for j in range(1, 18)]
    return all(agrees(x, y) for x, y in views)


def set_two_prod_method(method: str) -> None:
    """Choose how :func:`two_prod` computes error terms.

    ``"auto"`` (default): ``torch.addcmul`` where :func:`fma_self_test` passed for the
    device type and dtype (run once, cached), Dekker elsewhere. ``"fma"``: always addcmul
    (only exact on kernels that fuse). ``"dekker"``: always Dekker.
    """
    global _method
    if method not in _METHODS:
        raise ValueError(f"two_prod method must be one of {_METHODS}, not {method!r}")
    _method = method


def get_two_prod_method() -> str:
    """The method set by :func:`set_two_prod_method`."""
    return _method


def two_prod_uses_fma(device: torch.device | str, dtype: torch.dtype) -> bool:
    """Whether :func:`two_prod` takes the addcmul path for this device type and dtype."""
    if _method != "auto":
        return _method == "fma"
    device = torch.device(device)
    key = (device.type, dtype)
    verdict = _fma_verdicts.get(key)
    if verdict is None:
        verdict = dtype in FORMATS and fma_self_test(device, dtype)
        _fma_verdicts[key] = verdict
    return verdict


def two_prod(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-Prod: ``p = fl(a*b)`` and ``e`` with ``p + e == a*b`` exactly.

    Uses a fused multiply-add (``torch.addcmul``, 2 flops) where a self-test proved it
    exact for ``a``'s device type and dtype, otherwise Dekker's algorithm (17 flops); see
    :func:`set_two_prod_method`. Exact while ``p`` is finite and the error term does not
    underflow (``floor(log2|a|) + floor(log2|b|) >= emin + p - 1``).
    """
    if two_prod_uses_fma(a.device, a.dtype):
        return two_prod_fma(a, b)
    return two_prod_dekker(a, b)
