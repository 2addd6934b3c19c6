"""Error-free transformations: exactness against exact rationals, the split constant, and the
FMA self-test."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcf
from mcf import eft

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [torch.float64, torch.float32]


def exact(t: torch.Tensor) -> list[Fraction]:
    return [Fraction(v) for v in t.to(torch.float64).flatten().tolist()]


def finite_floats(dtype: torch.dtype, max_exp: int | None = None):
    width = 64 if dtype == torch.float64 else 32
    f = mcf.float_format(dtype)
    limit = math.ldexp(1.0, f.emax - 2 if max_exp is None else max_exp)
    return st.floats(
        min_value=-limit, max_value=limit, allow_nan=False, allow_infinity=False, width=width
    )


def tensor(values: list[float], dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).to(dtype)


def random_factors(n: int, dtype: torch.dtype, spread: int, seed: int) -> torch.Tensor:
    """Full-precision random significands, exponents in [-spread, spread], random signs."""
    gen = torch.Generator().manual_seed(seed)
    f = mcf.float_format(dtype)
    man = torch.randint(2 ** (f.p - 1), 2**f.p, (n,), generator=gen, dtype=torch.int64)
    exp = torch.randint(-spread, spread + 1, (n,), generator=gen) - (f.p - 1)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
    return (sign * torch.ldexp(man.double(), exp.double())).to(dtype)


def fraction_exact_prod(a: torch.Tensor, b: torch.Tensor, p: torch.Tensor, e: torch.Tensor):
    return [
        x * y == s + t for x, y, s, t in zip(exact(a), exact(b), exact(p), exact(e), strict=True)
    ]


# -- constants --


def test_split_constant_table():
    assert mcf.SPLIT_CONSTANT[torch.float64] == 134217729.0 == 2**27 + 1
    assert mcf.SPLIT_CONSTANT[torch.float32] == 4097.0
    assert mcf.SPLIT_CONSTANT[torch.float16] == 65.0
    assert mcf.SPLIT_CONSTANT[torch.bfloat16] == 17.0
    for dtype, f in mcf.FORMATS.items():
        info = torch.finfo(dtype)
        assert f.split == 2 ** math.ceil(f.p / 2) + 1
        assert f.eps == info.eps / 2  # unit roundoff u = 2^-p
        assert math.ldexp(1.0, f.emin) == info.tiny
        assert (2 - math.ldexp(1.0, 1 - f.p)) * math.ldexp(1.0, f.emax) == info.max
        assert f.tiny == info.smallest_normal * 2.0 ** (1 - f.p)


def test_unsupported_dtype():
    with pytest.raises(TypeError, match="base dtypes"):
        mcf.float_format(torch.int32)


def test_ulp():
    x = torch.tensor([1.0, -1.0, 1.5, 2.0, 0.0, 5e-324, 2.0**-1022, 2.0**1023], dtype=torch.float64)
    expected = [2.0**-52, 2.0**-52, 2.0**-52, 2.0**-51, 5e-324, 5e-324, 5e-324, 2.0**971]
    assert mcf.ulp(x).tolist() == expected
    y = torch.tensor([1.0, 3.0, 0.0, 2.0**-126], dtype=torch.float32)
    assert mcf.ulp(y).tolist() == [2.0**-23, 2.0**-22, 2.0**-149, 2.0**-149]


# -- Two-Sum, Fast-Two-Sum --


@pytest.mark.parametrize("dtype", DTYPES)
def test_two_sum_exact(dtype):
    @SETTINGS
    @given(st.lists(st.tuples(finite_floats(dtype), finite_floats(dtype)), min_size=1, max_size=8))
    def check(pairs):
        a = tensor([x for x, _ in pairs], dtype)
        b = tensor([y for _, y in pairs], dtype)
        s, e = mcf.two_sum(a, b)
        assert torch.equal(s, a + b)
        for x, y, u, v in zip(exact(a), exact(b), exact(s), exact(e), strict=True):
            assert u + v == x + y
        assert bool((e.abs() <= mcf.ulp(s) / 2).all())

    check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_two_sum_exact_under_precondition(dtype):
    @SETTINGS
    @given(st.lists(st.tuples(finite_floats(dtype), finite_floats(dtype)), min_size=1, max_size=8))
    def check(pairs):
        big = [x if abs(x) >= abs(y) else y for x, y in pairs]
        small = [y if abs(x) >= abs(y) else x for x, y in pairs]
        a, b = tensor(big, dtype), tensor(small, dtype)
        s, e = mcf.fast_two_sum(a, b)
        for x, y, u, v in zip(exact(a), exact(b), exact(s), exact(e), strict=True):
            assert u + v == x + y

    check()


def test_fast_two_sum_needs_its_precondition():
    a = torch.tensor([1e-20], dtype=torch.float64)
    b = torch.tensor([1.0], dtype=torch.float64)
    s, e = mcf.fast_two_sum(a, b)  # |a| < |b|: the error term is lost
    assert exact(s)[0] + exact(e)[0] != Fraction(1e-20) + 1
    s, e = mcf.two_sum(a, b)
    assert exact(s)[0] + exact(e)[0] == Fraction(1e-20) + 1


# -- split and Two-Prod --


def significant_bits(v: float) -> int:
    """Number of bits from the leading to the last set bit of |v| (0 for zero)."""
    if v == 0:
        return 0
    num, den = Fraction(abs(v)).as_integer_ratio()
    while num % 2 == 0:
        num //= 2
    return num.bit_length()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_split_is_exact_with_the_right_widths(dtype):
    f = mcf.float_format(dtype)
    a = random_factors(3000, dtype, min(f.emax - 2, 60), seed=1)
    hi, lo = mcf.split(a)
    for x, h, low in zip(
        a.double().tolist(), hi.double().tolist(), lo.double().tolist(), strict=True
    ):
        assert Fraction(h) + Fraction(low) == Fraction(x)
        assert significant_bits(h) <= f.p - f.sigma
        assert significant_bits(low) <= f.sigma - 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_prescales_near_overflow(dtype):
    f = mcf.float_format(dtype)
    a = random_factors(2000, dtype, 0, seed=2) * math.ldexp(1.0, f.emax - 2)  # ~2^(emax-2)
    assert bool((a.abs() > f.split_threshold).all())
    assert not torch.isfinite(f.split * a).all()  # the naive product would overflow
    hi, lo = mcf.split(a)
    assert bool(torch.isfinite(hi).all() & torch.isfinite(lo).all())
    for h, low, x in zip(exact(hi), exact(lo), exact(a), strict=True):
        assert h + low == x
    b = random_factors(2000, dtype, 0, seed=3) * math.ldexp(1.0, -4)
    p, e = mcf.two_prod_dekker(a, b)
    assert all(fraction_exact_prod(a, b, p, e))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_dekker_two_prod_exact(dtype):
    f = mcf.float_format(dtype)
    a = random_factors(5000, dtype, f.self_test_spread, seed=4)
    b = random_factors(5000, dtype, f.self_test_spread, seed=5)
    p, e = mcf.two_prod_dekker(a, b)
    assert torch.equal(p, a * b)
    assert all(fraction_exact_prod(a, b, p, e))


@pytest.mark.parametrize("dtype", DTYPES)
def test_two_prod_exact_hypothesis(dtype):
    f = mcf.float_format(dtype)
    factor = finite_floats(dtype, max_exp=f.emax // 2 - 1)  # products stay finite

    @SETTINGS
    @given(st.lists(st.tuples(factor, factor), min_size=1, max_size=8))
    def check(pairs):
        # Exact unless the error term underflows: floor(log2|a|) + floor(log2|b|) must be
        # at least emin + p - 1 (frexp's exponent is floor(log2|x|) + 1).
        ok_range = [
            x == 0 or y == 0 or math.frexp(x)[1] + math.frexp(y)[1] >= f.emin + f.p + 1
            for x, y in pairs
        ]
        a = tensor([x for x, _ in pairs], dtype)
        b = tensor([y for _, y in pairs], dtype)
        for method in (mcf.two_prod, mcf.two_prod_dekker):
            p, e = method(a, b)
            for good, exact_ok in zip(ok_range, fraction_exact_prod(a, b, p, e), strict=True):
                assert exact_ok or not good

    check()


def test_wrong_split_constant_fails_often():
    """2^27+1 is exact on 100% of random float64 pairs; the published 2^26+1 is not."""
    a = random_factors(10_000, torch.float64, 60, seed=6)
    b = random_factors(10_000, torch.float64, 60, seed=7)
    p, e = mcf.two_prod_dekker(a, b)
    assert all(fraction_exact_prod(a, b, p, e))
    p, e = mcf.two_prod_dekker(a, b, split_constant=2.0**26 + 1)
    share = sum(fraction_exact_prod(a, b, p, e)) / a.numel()
    assert 0.5 < share < 0.95, share  # about 83% measured in the notes

    hi, lo = mcf.split(a, constant=2.0**26 + 1)
    assert max(significant_bits(h) for h in hi.tolist()) == 27  # one bit too many


# -- FMA detection --


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_fma_self_test_rejects_unfused_multiply_add(dtype):
    assert not mcf.fma_self_test(dtype=dtype, candidate=lambda a, b, p: a * b - p)
    assert not mcf.fma_self_test(dtype=dtype, candidate=lambda a, b, p: torch.zeros_like(p))


def test_fma_self_test_catches_rare_failures():
    def wrong_on_ties(a, b, p):
        # Exact except at the hard cases where the product's error is exactly half an ulp.
        _, e = mcf.two_prod_dekker(a, b)
        return torch.where(e.abs() == mcf.ulp(p) / 2, -e, e)

    assert not mcf.fma_self_test(dtype=torch.float64, candidate=wrong_on_ties)

    def wrong_on_short_tensors(a, b, p):
        _, e = mcf.two_prod_dekker(a, b)
        return e if a.numel() > 17 else a * b - p

    assert not mcf.fma_self_test(dtype=torch.float64, candidate=wrong_on_short_tensors)

    def wrong_when_strided(a, b, p):
        _, e = mcf.two_prod_dekker(a, b)
        return e if a.is_contiguous() else a * b - p

    assert not mcf.fma_self_test(dtype=torch.float64, candidate=wrong_when_strided)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_fma_self_test_accepts_an_exact_candidate(dtype):
    assert mcf.fma_self_test(dtype=dtype, candidate=lambda a, b, p: mcf.two_prod_dekker(a, b)[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_addcmul_exact_where_the_self_test_says_so(dtype):
    a = random_factors(10_000, dtype, 60 if dtype == torch.float64 else 20, seed=8)
    b = random_factors(10_000, dtype, 60 if dtype == torch.float64 else 20, seed=9)
    if not mcf.fma_self_test(dtype=dtype):
        pytest.skip("addcmul is not fused here; two_prod uses Dekker")
    p, e = mcf.two_prod_fma(a, b)
    assert all(fraction_exact_prod(a, b, p, e))


@pytest.mark.parametrize("dtype", DTYPES)
def test_chosen_two_prod_path_is_exact(dtype):
    f = mcf.float_format(dtype)
    a = random_factors(5_000, dtype, f.self_test_spread, seed=10)
    b = random_factors(5_000, dtype, f.self_test_spread, seed=11)
    uses_fma = mcf.two_prod_uses_fma("cpu", dtype)
    assert uses_fma == mcf.fma_self_test("cpu", dtype)
    p, e = mcf.two_prod(a, b)
    assert all(fraction_exact_prod(a, b, p, e))
    _, e_dekker = mcf.two_prod_dekker(a, b)
    assert torch.equal(e, e_dekker)


def test_two_prod_method_override():
    assert mcf.get_two_prod_method() == "auto"
    a = torch.tensor([1.0 + 2.0**-30], dtype=torch.float64)
    try:
        mcf.set_two_prod_method("dekker")
        assert not mcf.two_prod_uses_fma("cpu", torch.float64)
        mcf.set_two_prod_method("fma")
        assert mcf.two_prod_uses_fma("cpu", torch.float64)
        assert mcf.two_prod(a, a)[1].item() == 2.0**-60
        with pytest.raises(ValueError, match="auto"):
            mcf.set_two_prod_method("fast")
    finally:
        mcf.set_two_prod_method("auto")
    assert mcf.two_prod(a, a)[1].item() == 2.0**-60


def test_fma_verdict_is_cached_per_device_type_and_dtype(monkeypatch):
    calls = []
    monkeypatch.setattr(eft, "_fma_verdicts", {})
    real = eft.fma_self_test

    def counting(device, dtype):
        calls.append((torch.device(device).type, dtype))
        return real(device, dtype)

    monkeypatch.setattr(eft, "fma_self_test", counting)
    x = torch.ones(3, dtype=torch.float32)
    for _ in range(3):
        mcf.two_prod(x, x)
    assert calls == [("cpu", torch.float32)]
