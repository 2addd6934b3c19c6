"""Shared oracles and input generators for the mcf tests.

Every reference value is computed here with mpmath from the exact inputs (exact sums and
products via mpmath's exact raw arithmetic, quotients and roots at 6000 bits), never copied
from a run.
"""

from __future__ import annotations

import math

import mpmath
import torch
from hypothesis import strategies as st
from mpmath import libmp

import mcf

WORK_PREC = 6000  # bits; far beyond 8 float64 components (424 bits) and any exponent gap

# (dtype, m) pairs the arithmetic tests run on, with the leading-bit exponent range of the
# operands: operands and results stay representable (see mcf.representable).
CONFIGS = [
    (torch.float64, 1, (-250, 250)),
    (torch.float64, 2, (-250, 250)),
    (torch.float64, 3, (-250, 250)),
    (torch.float64, 4, (-250, 250)),
    (torch.float64, 8, (-250, 250)),
    (torch.float32, 1, (-20, 20)),
    (torch.float32, 2, (-20, 20)),
    (torch.float32, 3, (-12, 12)),
    (torch.float32, 4, (-10, 10)),
    (torch.float32, 8, (45, 60)),  # float32 x 8 only fits in [2^42, 2^128)
]
CONFIG_IDS = [f"{str(dt).split('.')[-1]}-m{m}" for dt, m, _ in CONFIGS]


def prec(dtype: torch.dtype) -> int:
    return mcf.float_format(dtype).p


def mpf(raw: tuple) -> mpmath.mpf:
    return mpmath.mp.make_mpf(raw)


def exact_int_exp(man: int, exp: int) -> mpmath.mpf:
    """The exact number ``man * 2**exp``."""
    return mpf(libmp.from_man_exp(man, exp))


def exact_add(a: mpmath.mpf, b: mpmath.mpf) -> mpmath.mpf:
    return mpf(libmp.mpf_add(a._mpf_, b._mpf_, 0))


def exact_mul(a: mpmath.mpf, b: mpmath.mpf) -> mpmath.mpf:
    return mpf(libmp.mpf_mul(a._mpf_, b._mpf_, 0))


def flat_values(x: torch.Tensor) -> list[mpmath.mpf]:
    """Exact values of a batch of expansions ``(n, m)``."""
    out = mcf.to_mpmath(x.reshape(-1, x.shape[-1]))
    return out


def rel_error(got: mpmath.mpf, ref: mpmath.mpf) -> mpmath.mpf:
    with mpmath.workprec(WORK_PREC):
        if ref == 0:
            return mpmath.mpf(0) if got == 0 else mpmath.inf
        return abs(got - ref) / abs(ref)


def bound(c: float, m: int, dtype: torch.dtype) -> float:
    """``c * 2**(-m p)`` with the slack factor ``1 + 2**(4 - p)`` of the documented bounds."""
    p = prec(dtype)
    return c * 2.0 ** (-m * p) * (1 + 2.0 ** (4 - p))


def assert_within(results: torch.Tensor, refs: list, c: float, *, what: str) -> None:
    """Every result valid and within ``c * 2**(-m p)`` relative to its reference."""
    m = results.shape[-1]
    assert bool(mcf.is_valid(results).all()), f"{what}: invalid expansion {results}"
    tol = bound(c, m, results.dtype)
    got = flat_values(results)
    for i, (g, r) in enumerate(zip(got, refs, strict=True)):
        err = rel_error(g, r)
        assert err <= tol, (
            f"{what}: case {i}: relative error {mpmath.nstr(err, 5)} > {tol:.3g} "
            f"(= {c} * 2^-{m * prec(results.dtype)}); result {results.reshape(-1, m)[i]}, "
            f"exact {mpmath.nstr(r, 40)}"
        )


# -- hypothesis strategies --


@st.composite
def numbers(draw, p: int, m: int, lo: int, hi: int) -> mpmath.mpf:
    """Exact numbers with leading bit ``2**top``, ``top`` in ``[lo, hi]``.

    Kinds: full random mantissas of ``m*p + 8`` bits; sparse sums of signed powers of two
    with gaps near multiples of ``p`` (ties and exact short values); short mantissas.
    """
    top = draw(st.integers(lo, hi))
    sign = draw(st.sampled_from([1, -1]))
    kind = draw(st.sampled_from(["random", "sparse", "short"]))
    if kind == "random":
        bits = m * p + 8
        man = draw(st.integers(2 ** (bits - 1), 2**bits - 1))
        return exact_int_exp(sign * man, top - bits + 1)
    if kind == "short":
        man = draw(st.integers(1, 7)) * 2 + 1
        return exact_int_exp(sign * man, top - man.bit_length() + 1)
    value = exact_int_exp(sign, top)
    pos = top
    for _ in range(draw(st.integers(1, 4))):
        gap = draw(
            st.one_of(
                st.sampled_from([1, 2, p - 1, p, p + 1, 2 * p, 2 * p + 1]),
                st.integers(1, m * p + 20),
            )
        )
        pos -= gap
        value = exact_add(value, exact_int_exp(draw(st.sampled_from([1, -1])), pos))
    return value


@st.composite
def related(draw, x: mpmath.mpf, p: int, m: int, lo: int, hi: int) -> mpmath.mpf:
    """A second operand: independent, equal, opposite, nearly opposite, or far smaller."""
    kind = draw(st.sampled_from(["independent", "same", "opposite", "cancel", "gap"]))
    if kind == "independent" or x == 0:
        return draw(numbers(p, m, lo, hi))
    if kind == "same":
        return x
    if kind == "opposite":
        return -x
    _, man, exp, bc = x._mpf_
    top = exp + bc - 1  # floor(log2 |x|), exactly
    depth = draw(st.integers(1, m * p + 30))
    small = draw(numbers(p, m, top - depth, top - depth))
    if kind == "cancel":
        return exact_add(-x, small)
    return small


@st.composite
def raw_expansions(draw, dtype: torch.dtype, m: int, lo: int, hi: int) -> list[float]:
    """Valid but not necessarily canonical expansions, built component by component:
    each next component is 0, exactly +-ulp/2 of the previous one (a tie), or a short
    random multiple of a smaller power of two."""
    f = mcf.float_format(dtype)
    man = draw(st.integers(2 ** (f.p - 1), 2**f.p - 1))
    first = math.ldexp(man, draw(st.integers(lo, hi)) - f.p + 1) * draw(st.sampled_from([1, -1]))
    comps = [first]
    for _ in range(m - 1):
        prev = comps[-1]
        if prev == 0:
            comps.append(0.0)
            continue
        half = math.ldexp(1.0, math.frexp(prev)[1] - f.p - 1)  # ulp(prev) / 2
        kind = draw(st.sampled_from(["zero", "tie", "random"]))
        if kind == "zero":
            comps.append(0.0)
        elif kind == "tie":
            comps.append(half * draw(st.sampled_from([1, -1])))
        else:
            q = draw(st.integers(0, f.p - 1))
            n = draw(st.integers(1, 2**q))
            shift = draw(st.integers(0, 8))
            comps.append(half * n / 2**q / 2**shift * draw(st.sampled_from([1, -1])))
    return comps


def to_tensor(values: list, m: int, dtype: torch.dtype) -> torch.Tensor:
    return mcf.from_mpmath(values, m, dtype)
