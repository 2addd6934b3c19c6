"""Multi-limb integers against Python's exact integers; overflow is raised, never wrapped."""

import random

import pytest
import torch

from tiling import bigint


def _random_ints(count, max_bits, seed):
    rng = random.Random(seed)
    return [rng.choice((-1, 1)) * rng.getrandbits(rng.randint(0, max_bits)) for _ in range(count)]


def test_round_trip_and_canonical_form():
    values = _random_ints(300, 400, 0) + [0, 1, -1, 2**24, -(2**24), 2**48 - 1]
    limbs = bigint.from_ints(values, 17)
    assert bigint.to_ints(limbs) == values
    assert bool((limbs.abs() < bigint.LIMB_BASE).all())
    assert bool(((limbs >= 0).all(-1) | (limbs <= 0).all(-1)).all())


def test_normalize_arbitrary_limbs():
    c = torch.randint(-(2**61), 2**61, (400, 7), generator=torch.Generator().manual_seed(1))
    expected = [sum(int(d) << (bigint.LIMB_BITS * k) for k, d in enumerate(row)) for row in c.tolist()]
    assert bigint.to_ints(bigint.normalize(c, 12)) == expected


def test_arithmetic_matches_python():
    x, y = _random_ints(200, 300, 2), _random_ints(200, 300, 3)
    a, b = bigint.from_ints(x, 13), bigint.from_ints(y, 13)
    assert bigint.to_ints(bigint.mul(a, b)) == [u * v for u, v in zip(x, y)]
    assert bigint.to_ints(bigint.add(a, b)) == [u + v for u, v in zip(x, y)]
    assert bigint.to_ints(bigint.sub(a, b)) == [u - v for u, v in zip(x, y)]
    assert bigint.sign(a).tolist() == [(v > 0) - (v < 0) for v in x]
    assert bigint.compare(a, b).tolist() == [(u > v) - (u < v) for u, v in zip(x, y)]
    assert bigint.bit_length(a).tolist() == [abs(v).bit_length() for v in x]
    floats = bigint.to_float(a).tolist()
    assert all(abs(f - float(v)) <= abs(float(v)) * 2**-52 for f, v in zip(floats, x))


def test_weighted_matmul_is_the_quadratic_form():
    rng = random.Random(4)
    A = [[[rng.getrandbits(90) - 2**89 for _ in range(3)] for _ in range(3)] for _ in range(6)]
    B = [[[rng.getrandbits(70) - 2**69 for _ in range(3)] for _ in range(3)] for _ in range(6)]
    w = (3, -1, -1)
    got = bigint.to_ints(bigint.matmul(bigint.from_ints(A), bigint.from_ints(B), weights=w))
    want = [[[sum(A[n][i][k] * w[k] * B[n][k][j] for k in range(3)) for j in range(3)] for i in range(3)]
            for n in range(6)]
    assert got == want


def test_shifts():
    x = _random_ints(200, 200, 5)
    rng = random.Random(6)
    shifts = [rng.randint(0, 120) for _ in x]
    a = bigint.from_ints(x, 9)
    assert bigint.to_ints(bigint.shift_left(a, torch.tensor(shifts), 15)) == [v << s for v, s in zip(x, shifts)]
    q, fraction = bigint.floor_shift_right(a, torch.tensor(shifts))
    assert bigint.to_ints(q) == [v >> s for v, s in zip(x, shifts)]
    for v, s, f in zip(x, shifts, fraction.tolist()):
        remainder = v - ((v >> s) << s)
        assert 0 <= f <= 1 and abs(f - remainder / 2**s) <= 2**-52  # rounds up to 1 only when s > 53


def test_int64_helpers():
    values = _random_ints(300, 48, 9) + [0, 1, -1, 2**24, -(2**24), 2**48 - 1, -(2**48 - 1)]
    assert bigint.to_int64(bigint.from_ints(values, 2)).tolist() == values
    with pytest.raises(ValueError, match="at most 2 limbs"):
        bigint.to_int64(bigint.from_ints(values, 3))
    wide = _random_ints(300, 62, 10) + [0, 2**53 - 1, 2**53, 2**53 + 1, 2**54 - 1, 2**62 - 1, -(2**63 - 1)]
    wide += [sign * (2**b - 1) for b in range(1, 64) for sign in (1, -1)]  # round up to 2^b in float64 from b = 54
    got = bigint.int64_bit_length(torch.tensor(wide, dtype=torch.int64)).tolist()
    assert got == [abs(v).bit_length() for v in wide]


def test_torch_int64_wraps_but_we_raise():
    assert (torch.tensor([2**62]) * 4).item() == 0  # the silent wrap this module exists to prevent
    with pytest.raises(bigint.IntegerOverflowError, match="int64"):
        bigint.checked_int64_matmul(torch.full((3, 3), 2**31), torch.full((3, 3), 2**31))
    with pytest.raises(bigint.IntegerOverflowError, match="does not fit 2 limbs"):
        bigint.from_ints([2**50], 2)
    with pytest.raises(bigint.IntegerOverflowError, match=r"index \(1,\) needs 49 bits"):
        bigint.normalize(torch.tensor([[1, 0, 0], [0, 0, 1]]), 2)
    with pytest.raises(bigint.IntegerOverflowError, match="2\\^62"):
        bigint.normalize(torch.tensor([[2**62, 0]]))
    small = bigint.checked_int64_matmul(torch.full((2, 3, 3), 7), torch.full((2, 3, 3), 5))
    assert bool((small == 105).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    x, y = _random_ints(50, 300, 7), _random_ints(50, 300, 8)
    a, b = bigint.from_ints(x, 13, device="cuda"), bigint.from_ints(y, 13, device="cuda")
    assert bigint.to_ints(bigint.mul(a, b)) == [u * v for u, v in zip(x, y)]
