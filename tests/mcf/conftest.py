"""mpmath arithmetic in these tests runs at WORK_PREC bits, so that sums, differences,
negations and products of the values involved are exact (mpmath rounds every operation to
mp.prec, 53 bits by default); the previous precision is restored after each test."""

import mpmath
import pytest

from .helpers import WORK_PREC


@pytest.fixture(autouse=True)
def high_precision_mpmath():
    with mpmath.workprec(WORK_PREC):
        yield
