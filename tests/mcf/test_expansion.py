"""Expansion arithmetic against mpmath: every operation, random and adversarial inputs,
m = 1, 2, 3, 4, 8, float64 and float32 bases.

Each hypothesis example draws a small batch, so every call also exercises vectorisation.
Error bounds (relative, in units of 2^(-m p), with slack 1 + 2^(4-p)) are the ones
documented in mcf.expansion: add/sub 3, add_float 2, scale 2, mul 2m+1, div/sqrt 4,
renormalize 1.
"""

from __future__ import annotations

import math
import random

import mpmath
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcf

from .helpers import (
    CONFIG_IDS,
    CONFIGS,
    WORK_PREC,
    bound,
    exact_add,
    exact_mul,
    flat_values,
    numbers,
    prec,
    raw_expansions,
    rel_error,
    related,
)


def shift(dtype, m) -> float:
    """Factor moving float32 x 8 quotients and roots into its narrow representable range."""
    return 2.0**64 if (dtype, m) == (torch.float32, 8) else 1.0


def hyp(m: int, large: int = 20, small: int = 5):
    """Hypothesis settings: fewer examples for m = 8 (an m = 8 product is ~2000 Two-Sums)."""
    return settings(
        max_examples=small if m >= 8 else large,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@st.composite
def pairs(draw, p, m, lo, hi):
    x = draw(numbers(p, m, lo, hi))
    return x, draw(related(x, p, m, lo, hi))


def draw_operands(data, dtype, m, rng, *, max_size=6):
    cases = data.draw(st.lists(pairs(prec(dtype), m, *rng), min_size=1, max_size=max_size))
    x = mcf.from_mpmath([a for a, _ in cases], m, dtype)
    y = mcf.from_mpmath([b for _, b in cases], m, dtype)
    return x, y


def fit(refs, m, dtype) -> list[bool]:
    """Whether each exact value is representable with m components."""
    return mcf.representable(mcf.from_mpmath(refs, m, dtype)).tolist()


def check(result, refs, c, *, what, mask=None, absolute=0.0):
    """Valid and within c 2^(-mp) |ref| + absolute where mask holds; valid wherever finite
    (results past the largest float are out of contract and may be inf or nan)."""
    m = result.shape[-1]
    mask = [True] * len(refs) if mask is None else mask
    finite = torch.isfinite(result).all(dim=-1).reshape(-1)
    must = torch.tensor(mask, dtype=torch.bool) | finite
    assert bool(mcf.is_valid(result).reshape(-1)[must].all()), f"{what}: invalid {result}"
    tol = bound(c, m, result.dtype)
    got = flat_values(result)
    with mpmath.workprec(WORK_PREC):
        for i, (g, r, keep) in enumerate(zip(got, refs, mask, strict=True)):
            if keep:
                err = abs(g - r)
                assert err <= tol * abs(r) + absolute, (
                    f"{what} case {i}: relative error {mpmath.nstr(rel_error(g, r), 5)} > "
                    f"{tol:.3g}; got {result.reshape(-1, m)[i].tolist()}, "
                    f"exact {mpmath.nstr(r, 50)}"
                )


# -- every operation on one drawn batch --


@pytest.mark.parametrize("dtype,m,rng", CONFIGS, ids=CONFIG_IDS)
def test_arithmetic_against_mpmath(dtype, m, rng):
    """add, sub, add_float, scale, mul, div, sqrt, Grow-Expansion, Expansion-Sum and
    renormalize on pairs that are independent, equal, opposite, nearly cancelling or
    separated by large exponent gaps, with ties and short mantissas (helpers.numbers)."""
    tiny = mcf.float_format(dtype).tiny

    @hyp(m)
    @given(data=st.data())
    def run(data):
        x, y = draw_operands(data, dtype, m, rng)
        xs, ys = flat_values(x), flat_values(y)
        x_ok, y_ok = mcf.representable(x).tolist(), mcf.representable(y).tolist()

        # Exact sums: the result is the exact value rounded, so only an exact result below
        # the representable range can lose more, by a few subnormal spacings.
        sums = [exact_add(a, b) for a, b in zip(xs, ys, strict=True)]
        diffs = [exact_add(a, -b) for a, b in zip(xs, ys, strict=True)]
        check(mcf.add(x, y), sums, 3, what="add", absolute=4 * tiny)
        check(mcf.sub(x, y), diffs, 3, what="sub", absolute=4 * tiny)

        b = y[..., 0]  # one float per case, related to x as the pair kinds say
        bs = flat_values(b.unsqueeze(-1))
        b_ok = mcf.representable(b.unsqueeze(-1)).tolist()
        grown = [exact_add(a, c) for a, c in zip(xs, bs, strict=True)]
        check(mcf.add_float(x, b), grown, 2, what="add_float", absolute=4 * tiny)
        scaled = [exact_mul(a, c) for a, c in zip(xs, bs, strict=True)]
        fits = [r and a and c for r, a, c in zip(fit(scaled, m, dtype), x_ok, b_ok, strict=True)]
        check(mcf.scale(x, b), scaled, 2, what="scale", mask=fits)
        # exact, up to subnormal components losing their last bit
        check(mcf.scale(x, 0.5), [a / 2 for a in xs], 0, what="scale by 1/2", absolute=m * tiny)
        check(mcf.scale(x, -3.0), [a * -3 for a in xs], 2, what="scale by -3")

        # Grow-Expansion and Expansion-Sum are exact; renormalising them rounds once.
        g = mcf.grow_expansion(x, b)
        assert g.shape[-1] == m + 1 and flat_values(g) == grown
        s = mcf.expansion_sum(x, y)
        assert s.shape[-1] == 2 * m and flat_values(s) == sums
        check(mcf.renormalize(g, m, nonoverlapping=True), grown, 1, what="renormalize(grow)",
              absolute=2 * tiny)  # fmt: skip
        check(mcf.renormalize(s, m, nonoverlapping=True), sums, 1, what="renormalize(sum)",
              absolute=2 * tiny)  # fmt: skip

        prods = [exact_mul(a, c) for a, c in zip(xs, ys, strict=True)]
        fits = [r and a and c for r, a, c in zip(fit(prods, m, dtype), x_ok, y_ok, strict=True)]
        check(mcf.mul(x, y), prods, 2 * m + 1, what="mul", mask=fits)

        num = x * shift(dtype, m)
        quots = [a / c if c != 0 else mpmath.mpf(0) for a, c in
                 zip(flat_values(num), ys, strict=True)]  # fmt: skip
        fits = [
            r and a and c and d != 0
            for r, a, c, d in zip(fit(quots, m, dtype), x_ok, y_ok, ys, strict=True)
        ]
        q = mcf.div(num, y)
        check(q, quots, 4, what="div", mask=fits)

        rad = mcf.abs(x) * shift(dtype, m)
        roots = [mpmath.sqrt(a) for a in flat_values(rad)]
        fits = [r and a for r, a in zip(fit(roots, m, dtype), x_ok, strict=True)]
        check(mcf.sqrt(rad), roots, 4, what="sqrt", mask=fits)

        signs = [int(mpmath.sign(d)) for d in diffs]
        assert mcf.compare(x, y).tolist() == signs
        e = torch.tensor(signs)
        assert mcf.lt(x, y).tolist() == (e < 0).tolist()
        assert mcf.le(x, y).tolist() == (e <= 0).tolist()
        assert mcf.eq(x, y).tolist() == (e == 0).tolist()
        assert mcf.ne(x, y).tolist() == (e != 0).tolist()
        assert mcf.gt(x, y).tolist() == (e > 0).tolist()
        assert mcf.ge(x, y).tolist() == (e >= 0).tolist()

    run()


def test_sqrt_and_div_special_values():
    x = mcf.from_float(torch.tensor([0.0, -0.0, -4.0, 4.0], dtype=torch.float64), 3)
    r = mcf.sqrt(x)
    assert r[0].tolist() == [0.0, 0.0, 0.0]
    assert math.copysign(1.0, r[1, 0].item()) == -1.0
    assert math.isnan(r[2, 0].item()) and r[2, 1:].tolist() == [0.0, 0.0]
    assert r[3].tolist() == [2.0, 0.0, 0.0]
    y = mcf.from_float(torch.tensor([0.0, 0.0, 0.0, 2.0], dtype=torch.float64), 3)
    q = mcf.div(mcf.from_float(torch.tensor([1.0, -1.0, 0.0, 1.0], dtype=torch.float64), 3), y)
    assert q[0, 0].item() == math.inf and q[1, 0].item() == -math.inf
    assert math.isnan(q[2, 0].item())
    assert q[:, 1:].eq(0).all() and q[3, 0].item() == 0.5


# -- exact algorithms and renormalisation --


@pytest.mark.parametrize(
    "dtype,m", [(torch.float64, 1), (torch.float64, 2), (torch.float64, 3), (torch.float64, 8),
                (torch.float32, 2), (torch.float32, 4)]
)  # fmt: skip
def test_renormalize_arbitrary_terms(dtype, m):
    """Unordered, overlapping floats with ties and cancellation."""
    f = mcf.float_format(dtype)

    @hyp(m, large=15)
    @given(data=st.data())
    def run(data):
        n = data.draw(st.integers(1, 10))
        rows = []
        for _ in range(data.draw(st.integers(1, 4))):
            row = []
            for _ in range(n):
                kind = data.draw(st.sampled_from(["random", "power", "negate"]))
                if kind == "negate" and row:
                    row.append(-data.draw(st.sampled_from(row)))
                    continue
                e = data.draw(st.integers(-3 * f.p, 0))
                man = 1 if kind == "power" else data.draw(st.integers(1, 2**f.p - 1))
                row.append(math.ldexp(man * data.draw(st.sampled_from([1, -1])), e))
            rows.append(row)
        c = torch.tensor(rows, dtype=torch.float64).to(dtype)
        with mpmath.workprec(WORK_PREC):
            refs = [mpmath.fsum(mpmath.mpf(v) for v in row) for row in c.double().tolist()]
        check(mcf.renormalize(c, m), refs, 1, what="renormalize")
        check(mcf.renormalize(c), refs, 1, what="renormalize to n")

    run()


def test_renormalize_shortcut_counterexample():
    """Sorting three values and dropping the smallest (the published shortcut) is wrong for
    (1, 1, 1); ours is exact."""
    c = torch.tensor([[1.0, 1.0, 1.0], [1.0, 2.0**-53, 2.0**-106]], dtype=torch.float64)
    r = mcf.renormalize(c, 2)
    assert r[0].tolist() == [3.0, 0.0]
    exact = mpmath.mpf(1) + 2.0**-53 + 2.0**-106  # exact at the tests' working precision
    assert rel_error(flat_values(r)[1], exact) <= bound(1, 2, torch.float64)
    assert r[1].tolist() == [1.0 + 2.0**-52, -(2.0**-53) + 2.0**-106]  # the tie broken upwards
    assert bool(mcf.is_valid(r).all())


# -- conversions, sign, comparison --


@pytest.mark.parametrize("dtype,m,rng", CONFIGS, ids=CONFIG_IDS)
def test_to_float_is_correctly_rounded(dtype, m, rng):
    @hyp(m, large=30, small=30)
    @given(data=st.data())
    def run(data):
        rows = data.draw(st.lists(raw_expansions(dtype, m, *rng), min_size=1, max_size=6))
        x = torch.tensor(rows, dtype=torch.float64).to(dtype)
        if not torch.equal(x.double(), torch.tensor(rows, dtype=torch.float64)):
            return  # a component underflowed in dtype; not a valid input
        assert bool(mcf.is_valid(x).all())
        expected = mcf.from_mpmath(flat_values(x), 1, dtype)[..., 0]
        assert torch.equal(mcf.to_float(x), expected)

    run()


def test_equal_values_in_different_representations():
    u = 2.0**-53
    x = torch.tensor([1.0, u, 0.0], dtype=torch.float64)  # a tie kept as is
    y = torch.tensor([1.0 + 2 * u, -u, 0.0], dtype=torch.float64)  # the same value
    assert bool(mcf.is_valid(torch.stack([x, y])).all())
    assert not torch.equal(x, y)
    assert mcf.eq(x, y) and mcf.compare(x, y) == 0
    z = torch.tensor([1.0, u, u * u], dtype=torch.float64)
    assert mcf.lt(x, z) and mcf.gt(z, y)
    assert mcf.to_float(z).item() == 1.0 + 2 * u  # the tie broken by the third component
    assert mcf.to_float(x).item() == 1.0  # an exact tie rounds to even


def test_from_float_neg_abs():
    v = torch.tensor([[1.5, -2.0], [0.0, -0.25]], dtype=torch.float32)
    x = mcf.from_float(v, 3)
    assert x.shape == (2, 2, 3) and x.dtype == torch.float32
    assert torch.equal(x[..., 0], v) and not x[..., 1:].any()
    assert torch.equal(mcf.to_float(x), v)
    y = torch.tensor([[-1.0, 2.0**-60], [1.0, -(2.0**-60)], [0.0, 0.0]], dtype=torch.float64)
    assert torch.equal(mcf.neg(y), -y)
    assert mcf.abs(y).tolist() == [[1.0, -(2.0**-60)], [1.0, -(2.0**-60)], [0.0, 0.0]]


# -- shapes, broadcasting, dtypes --


def test_broadcasting_and_mixed_widths():
    gen = torch.Generator().manual_seed(0)
    x = mcf.renormalize(torch.randn(4, 1, 3, generator=gen, dtype=torch.float64))
    y = mcf.renormalize(torch.randn(5, 2, generator=gen, dtype=torch.float64))
    s = mcf.add(x, y)
    assert s.shape == (4, 5, 3)
    assert mcf.mul(x, y, m=2).shape == (4, 5, 2)
    assert mcf.div(x, y, m=4).shape == (4, 5, 4)
    b = torch.randn(5, generator=gen, dtype=torch.float64)
    assert mcf.scale(x, b).shape == (4, 5, 3) and mcf.add_float(x, b).shape == (4, 5, 3)
    xs, ys = flat_values(x.expand(4, 5, 3)), flat_values(y.expand(4, 5, 2))
    check(s, [exact_add(a, c) for a, c in zip(xs, ys, strict=True)], 1, what="broadcast add")
    check(mcf.add(x, y, m=1), [exact_add(a, c) for a, c in zip(xs, ys, strict=True)], 1,
          what="add to 1 component")  # fmt: skip


def test_operand_dtype_must_match():
    x = mcf.from_float(torch.ones(3, dtype=torch.float32), 2)
    with pytest.raises(TypeError, match="dtype"):
        mcf.scale(x, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="m must be"):
        mcf.add(x, x, m=0)
    with pytest.raises(TypeError, match="base dtypes"):
        mcf.add(torch.ones(3, 2, dtype=torch.int64), torch.ones(3, 2, dtype=torch.int64))


def test_results_follow_input_dtype_and_device():
    for dtype in (torch.float32, torch.float64):
        x = mcf.from_float(torch.full((2,), 3.0, dtype=dtype), 2)
        for r in (mcf.add(x, x), mcf.mul(x, x), mcf.div(x, x), mcf.sqrt(x), mcf.scale(x, 2.0),
                  mcf.add_float(x, 1.0), mcf.renormalize(x, 3)):  # fmt: skip
            assert r.dtype == dtype and r.device == x.device


# -- seeded random stress: many cases per call, all operations --


def random_values(n, p, m, lo, hi, seed):
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        bits = m * p + 8
        man = rnd.getrandbits(bits) | (1 << (bits - 1))
        out.append(
            mpmath.ldexp(mpmath.mpf(man), rnd.randint(lo, hi) - bits + 1) * rnd.choice([1, -1])
        )
    return out


@pytest.mark.parametrize("dtype,m,rng", CONFIGS, ids=CONFIG_IDS)
def test_random_stress(dtype, m, rng):
    n = 30 if m >= 8 else 100
    p = prec(dtype)
    with mpmath.workprec(WORK_PREC):
        a = random_values(n, p, m, *rng, seed=1)
        b = random_values(n, p, m, *rng, seed=2)
        near = random_values(n // 4, p, m, rng[0] - 60, rng[0] - 30, seed=3)
        b[: n // 4] = [exact_add(-v, w) for v, w in zip(a, near, strict=False)]  # cancellation
    x, y = mcf.from_mpmath(a, m, dtype), mcf.from_mpmath(b, m, dtype)
    xs, ys = flat_values(x), flat_values(y)
    tiny = mcf.float_format(dtype).tiny
    check(mcf.add(x, y), [exact_add(u, v) for u, v in zip(xs, ys, strict=True)], 3,
          what="add", absolute=4 * tiny)  # fmt: skip
    prods = [exact_mul(u, v) for u, v in zip(xs, ys, strict=True)]
    check(mcf.mul(x, y), prods, 2 * m + 1, what="mul", mask=fit(prods, m, dtype))
    big = x * shift(dtype, m)
    bigs = flat_values(big)
    with mpmath.workprec(WORK_PREC):
        quots = [u / v for u, v in zip(bigs, ys, strict=True)]
        roots = [mpmath.sqrt(abs(u)) for u in bigs]
    check(mcf.div(big, y), quots, 4, what="div", mask=fit(quots, m, dtype))
    check(mcf.sqrt(mcf.abs(big)), roots, 4, what="sqrt")


# -- the underflow range --


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("m", [1, 2, 3])
def test_subnormal_range_loss_is_bounded(dtype, m):
    """Near and below the smallest normal number components become subnormal:
    representable() says so, results stay valid expansions, and the error exceeds the
    relative bound by at most a few subnormal spacings (the documented loss)."""
    f = mcf.float_format(dtype)
    tiny = f.tiny

    @hyp(m, large=15)
    @given(data=st.data())
    def run(data):
        lo, hi = f.emin - f.p + 3, f.emin + 2 * f.p
        x, y = draw_operands(data, dtype, m, (lo, hi))
        assert not mcf.representable(x[x[..., 0].abs() < mcf.min_leading(dtype, m)]).any()
        xs, ys = flat_values(x), flat_values(y)
        check(mcf.add(x, y), [exact_add(a, b) for a, b in zip(xs, ys, strict=True)], 3,
              what="add", absolute=4 * tiny)  # fmt: skip
        check(mcf.sub(x, y), [exact_add(a, -b) for a, b in zip(xs, ys, strict=True)], 3,
              what="sub", absolute=4 * tiny)  # fmt: skip
        check(mcf.scale(x, 0.5), [a / 2 for a in xs], 0, what="halve", absolute=m * tiny)
        # products whose low parts (Two-Prod error terms) underflow
        factors = data.draw(st.lists(numbers(f.p, m, -f.p, 4), min_size=len(xs), max_size=len(xs)))
        z = mcf.from_mpmath(factors, m, dtype)
        check(mcf.mul(x, z), [exact_mul(a, b) for a, b in zip(xs, flat_values(z), strict=True)],
              2 * m + 1, what="mul", absolute=2 * m * m * tiny)  # fmt: skip

    run()
