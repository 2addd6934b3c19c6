"""Multi-component floating point (floating-point expansions) on torch tensors.

An expansion is a plain tensor of shape ``(..., m)`` whose components, largest first and
nonoverlapping (``|x_{i+1}| <= ulp(x_i)/2``, zeros only at the tail), sum exactly to the
value represented; m float64 components carry about 53m bits. All functions are
elementwise over the leading shape, follow the inputs' dtype and device, and never branch
on tensor values. The package knows nothing of geometry.

Modules: :mod:`mcf.eft` (error-free transformations, constants, FMA self-test),
:mod:`mcf.expansion` (arithmetic), :mod:`mcf.convert` (exact mpmath conversions),
:mod:`mcf.check` (validation).
"""

from .check import check_expansion, is_valid, min_leading, representable
from .convert import from_mpmath, to_mpmath
from .eft import (
    FORMATS,
    SPLIT_CONSTANT,
    FloatFormat,
    fast_two_sum,
    float_format,
    fma_self_test,
    get_two_prod_method,
    set_two_prod_method,
    split,
    two_prod,
    two_prod_dekker,
    two_prod_fma,
    two_prod_uses_fma,
    two_sum,
    ulp,
)
from .expansion import (
    abs,
    add,
    add_float,
    compare,
    div,
    eq,
    expansion_sum,
    from_float,
    ge,
    grow_expansion,
    gt,
    le,
    lt,
    mul,
    ne,
    neg,
    renormalize,
    scale,
    sqrt,
    sub,
    to_float,
)

__all__ = [
    # error-free transformations and constants
    "FORMATS",
    "SPLIT_CONSTANT",
    "FloatFormat",
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
    # expansions
    "from_float",
    "to_float",
    "neg",
    "abs",
    "grow_expansion",
    "expansion_sum",
    "renormalize",
    "add",
    "sub",
    "add_float",
    "scale",
    "mul",
    "div",
    "sqrt",
    "compare",
    "lt",
    "le",
    "eq",
    "ne",
    "gt",
    "ge",
    # conversions and checks
    "to_mpmath",
    "from_mpmath",
    "check_expansion",
    "is_valid",
    "representable",
    "min_leading",
]
