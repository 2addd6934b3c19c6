"""Exact mpmath conversions, validation (check_expansion, is_valid) and the exponent-range
check (representable)."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpmath import libmp

import mcf

from .helpers import exact_add, flat_values, numbers, raw_expansions

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [torch.float64, torch.float32]


def mpmath_round(v: mpmath.mpf, p: int) -> mpmath.mpf:
    """Round to p bits, to nearest with ties to even, by mpmath itself (an independent
    oracle for normal-range values)."""
    return mpmath.mp.make_mpf(libmp.mpf_pos(v._mpf_, p, libmp.round_nearest))


# -- from_mpmath / to_mpmath --


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 2, 3, 8])
def test_from_mpmath_is_greedy_and_round_trips(dtype, m):
    f = mcf.float_format(dtype)
    lo, hi = (-300, 300) if dtype == torch.float64 else (70, 100)
    normal = 2.0**f.emin

    @SETTINGS
    @given(st.lists(numbers(f.p, m + 1, lo, hi), min_size=1, max_size=5))
    def run(values):
        x = mcf.from_mpmath(values, m, dtype)
        assert x.shape == (len(values), m) and x.dtype == dtype
        assert bool(mcf.is_valid(x).all())
        exact = flat_values(x)
        for row, v, e in zip(x.tolist(), values, exact, strict=True):
            rest = v
            for c in row:  # x_k = fl(v - x_1 - ... - x_{k-1}), rounded by mpmath
                if abs(rest) < normal:  # mpmath has no subnormals; tested separately
                    break
                assert c == mpmath_round(rest, f.p)
                rest = exact_add(rest, -mpmath.mpf(c))
            else:
                assert abs(v - e) <= abs(v) * 2.0 ** (-m * f.p)
        # Round trip of the value. (Not always of the components: when the truncated value
        # is itself a midpoint, its greedy expansion breaks the tie the other way.)
        assert flat_values(mcf.from_mpmath(exact, m, dtype)) == exact

    run()


@pytest.mark.parametrize("dtype", DTYPES)
def test_to_mpmath_is_the_exact_sum(dtype):
    @SETTINGS
    @given(st.lists(raw_expansions(dtype, 4, -30, 30), min_size=1, max_size=5))
    def run(rows):
        x = torch.tensor(rows, dtype=torch.float64).to(dtype)
        for row, value in zip(x.double().tolist(), mcf.to_mpmath(x), strict=True):
            total = mpmath.mpf(0)
            for c in row:
                total = exact_add(total, mpmath.mpf(c))
            assert value == total

    run()


def test_to_mpmath_shapes_and_precision_independence():
    x = torch.tensor([[[1.0, 2.0**-60]], [[-3.0, 0.0]]], dtype=torch.float64)
    out = mcf.to_mpmath(x)
    assert len(out) == 2 and len(out[0]) == 1
    with mpmath.workprec(20):  # the value is exact whatever the working precision
        single = mcf.to_mpmath(x[0, 0])
    assert isinstance(single, mpmath.mpf) and single == 1 + mpmath.mpf(2) ** -60
    with pytest.raises(ValueError):
        mcf.to_mpmath(torch.tensor(1.0, dtype=torch.float64))


def test_from_mpmath_inputs_and_edges():
    assert mcf.from_mpmath(3, 2).tolist() == [3.0, 0.0]
    assert mcf.from_mpmath(0.1, 2).tolist() == [0.1, 0.0]
    big = 2**80 + 1
    assert mcf.from_mpmath(big, 2).tolist() == [2.0**80, 1.0]
    assert mcf.from_mpmath([[1, 2], [3, 4]], 3, torch.float32).shape == (2, 2, 3)
    third = mcf.from_mpmath(mpmath.mpf(1) / 3, 3)
    with mpmath.workprec(400):
        assert abs(mcf.to_mpmath(third) - mpmath.mpf(1) / 3) < mpmath.mpf(2) ** -160
    # subnormal results round to nearest, ties to even
    q64, q32 = 2.0**-1074, 2.0**-149
    assert mcf.from_mpmath(mpmath.mpf(q64) * 1.5, 1).item() == 2 * q64
    assert mcf.from_mpmath(mpmath.mpf(q64) * 2.5, 1).item() == 2 * q64
    assert mcf.from_mpmath(mpmath.mpf(q32) * 2.5, 1, torch.float32).item() == 2 * q32
    assert mcf.from_mpmath(mpmath.mpf(q64) / 2, 1).item() == 0.0
    # overflow: half an ulp above the largest float rounds to infinity
    top = (2 - 2.0**-52) * 2.0**1023
    assert mcf.from_mpmath(exact_add(mpmath.mpf(top), mpmath.mpf(2.0**970)), 2).tolist() == [
        math.inf,
        0.0,
    ]
    just_below = exact_add(mpmath.mpf(top), mpmath.mpf(2.0**969))
    assert mcf.from_mpmath(just_below, 2).tolist() == [top, 2.0**969]
    assert mcf.from_mpmath(mpmath.inf, 2).tolist() == [math.inf, 0.0]
    assert math.isnan(mcf.from_mpmath(mpmath.nan, 2)[0].item())
    with pytest.raises(TypeError):
        mcf.from_mpmath("1.5", 2)
    with pytest.raises(ValueError):
        mcf.from_mpmath(1, 0)


# -- validation --


def test_valid_expansions_pass():
    u = 2.0**-53
    x = torch.tensor(
        [[1.0, u, u * u / 2], [1.0, -u, 0.0], [-3.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
        dtype=torch.float64,
    )
    assert mcf.is_valid(x).tolist() == [True, True, True, True]
    assert mcf.check_expansion(x) is x


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_rejects_nonfinite(bad):
    x = torch.zeros(2, 3, 3, dtype=torch.float64)
    x[..., 0] = 1.0
    x[1, 2, 1] = bad
    assert not mcf.is_valid(x)[1, 2]
    with pytest.raises(
        ValueError, match=r"x\[\.\.\., 1\] is not finite .* at leading index \(1, 2\)"
    ):
        mcf.check_expansion(x)


def test_check_rejects_overlap():
    u = 2.0**-53
    x = torch.tensor([[1.0, u, 0.0], [1.0, u * (1 + 2.0**-52), 0.0]], dtype=torch.float64)
    assert mcf.is_valid(x).tolist() == [True, False]  # a tie is fine, one bit more is not
    with pytest.raises(
        ValueError, match=r"y\[\.\.\., 1\] = .* overlaps y\[\.\.\., 0\] = 1\.0.*index \(1,\)"
    ):
        mcf.check_expansion(x, name="y")
    decreasing = torch.tensor([[1.0, 2.0**-60, 2.0**-58]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"x\[\.\.\., 2\] .* overlaps x\[\.\.\., 1\]"):
        mcf.check_expansion(decreasing)
    with pytest.raises(ValueError, match="not renormalised"):
        mcf.check_expansion(torch.tensor([1.0, 1.0], dtype=torch.float32))


def test_check_rejects_inner_zeros():
    x = torch.tensor([1.0, 0.0, 2.0**-80], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"x\[\.\.\., 1\] is zero .*zeros only at the tail"):
        mcf.check_expansion(x)


def test_renormalize_repairs_what_check_rejects():
    x = torch.tensor([[1.0, 1.0, 2.0**-60], [2.0**-80, 0.0, 1.0]], dtype=torch.float64)
    assert not mcf.is_valid(x).any()
    y = mcf.check_expansion(mcf.renormalize(x))
    assert flat_values(y) == flat_values(x)


# -- exponent range --


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("m", [1, 2, 4, 8])
def test_representable_threshold(dtype, m):
    f = mcf.float_format(dtype)
    floor = mcf.min_leading(dtype, m)
    assert floor == 2.0 ** (f.emin + (m - 1) * f.p + 2)
    lead = torch.tensor([floor, floor * (1 - f.eps), 0.0, -floor], dtype=torch.float64)
    x = mcf.from_float(lead.to(dtype), m)
    assert mcf.representable(x).tolist() == [True, False, True, True]
    nan = mcf.from_float(torch.tensor([math.nan], dtype=dtype), m)
    assert not mcf.representable(nan).item()


def test_underflow_is_detected_and_its_loss_documented():
    """Below the threshold the trailing bits are lost: representable says so, and
    check_expansion raises on request instead of letting it pass silently."""
    m, dtype = 2, torch.float64
    floor = mcf.min_leading(dtype, m)  # 2**-967
    with mpmath.workprec(2000):
        deep = mpmath.mpf(2) ** -1000 / 3  # 106 bits would reach 2^-1107 < 2^-1074
        ok = mpmath.mpf(2) ** -900 / 3
    x = mcf.from_mpmath([deep, ok], m, dtype)
    assert mcf.representable(x).tolist() == [False, True]
    with mpmath.workprec(2000):
        err_deep, err_ok = (abs(v - r) / r for v, r in zip(flat_values(x), [deep, ok], strict=True))
    assert err_ok <= 2.0**-106 and err_deep > 2.0**-106 and err_deep < 2.0**-40
    mcf.check_expansion(x)  # structurally valid
    with pytest.raises(ValueError, match=r"leading index \(0,\) is too small for 2 components"):
        mcf.check_expansion(x, require_representable=True)
    assert x[1, 0].item() >= floor
