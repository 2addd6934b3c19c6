"""Hyperbolic geometry: the manifold protocol, float models, the mpmath reference, io and layers.

Public models (curvature -1 by default, any negative curvature as an argument):

* :class:`Lorentz` — the hyperboloid, the hub chart;
* :class:`PoincareBall` — the Poincaré ball;
* :class:`HalfSpace` — the upper half-space;
* :class:`HalfSpaceMCF` — the upper half-space with multi-component horizontal coordinates, accurate to
  radius ≈ 36.7 per float64 component.
"""

import functools

import torch

from . import numerics, reference, registry
from .halfspace import HalfSpace
from .halfspace_mcf import HalfSpaceMCF
from .lorentz import Lorentz
from .manifold import (
    HyperbolicManifold,
    OffManifoldError,
    PrecisionContract,
    PrecisionError,
)
from .numerics import NonFiniteError
from .poincare import PoincareBall

__all__ = [
    "HyperbolicManifold",
    "PrecisionContract",
    "PrecisionError",
    "OffManifoldError",
    "NonFiniteError",
    "Lorentz",
    "PoincareBall",
    "HalfSpace",
    "HalfSpaceMCF",
    "numerics",
    "reference",
    "registry",
]

for _label, _cls in (("lorentz", Lorentz), ("poincare", PoincareBall), ("halfspace", HalfSpace)):
    registry.register(_label, _cls, dtypes=(torch.float64, torch.float32))
for _m in (1, 2, 3, 4, 8):
    registry.register(f"halfspace-mcf{_m}", functools.partial(HalfSpaceMCF, components=_m), dtypes=(torch.float64,))
