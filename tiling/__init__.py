"""Tiling-based models of hyperbolic space with exact integer parts.

* :class:`LTiling` — the L-tiling of :math:`H^2` (group element of :math:`G = \\langle g_a, g_b\\rangle` plus a
  float point of the fundamental domain), registered as ``ltiling``;
* :class:`BinaryTiling` — the binary half-space tiling of :math:`H^n` (:math:`p = 2^j(x + k)`), registered as
  ``binary-tiling``;
* :class:`LTilingPoints` — L-tiling points as an explicit pair (float parameter, integer buffer) that geoopt's
  dense optimisers train;
* :class:`LTilingProduct` — products of L-tilings with the Riemannian product distance (the published
  l1 sum only as ``combine="l1-sum"``);
* :mod:`tiling.compression` — encoding embeddings as (float part, variable-bit-width group word);
* :mod:`tiling.bigint` — exact multi-limb integers as torch tensors (CPU and GPU), overflow raised;
* :mod:`tiling.group` — the group, its invariant form and exact reduction from the mpmath reference.
"""

import torch

from hyperbolic import registry

from . import bigint, compression, group, reduction
from .binary import BinaryTiling
from .ltiling import LTiling
from .pair import LTilingPoints
from .product import LTilingProduct

__all__ = ["LTiling", "LTilingPoints", "BinaryTiling", "LTilingProduct", "bigint", "group", "compression", "reduction"]

# The precision table runs to radius 1000: its L-tiling holds group entries of that size.
PRECISION_TABLE_RADIUS = 1100.0


def _ltiling_for_table(dim: int) -> LTiling:
    if dim != 2:
        raise ValueError(f"the L-tiling is a model of H^2 only, not H^{dim}")
    return LTiling(max_radius=PRECISION_TABLE_RADIUS)


registry.register("ltiling", _ltiling_for_table, dtypes=(torch.float64, torch.float32))


def _binary_for_table(dim: int) -> BinaryTiling:
    return BinaryTiling(dim, max_radius=PRECISION_TABLE_RADIUS)


registry.register("binary-tiling", _binary_for_table, dtypes=(torch.float64, torch.float32))
