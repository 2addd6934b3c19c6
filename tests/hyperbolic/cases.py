"""The configurations every conformance test runs over: each registered manifold in each of its dtypes."""

import random

import mpmath
import pytest
import torch

from hyperbolic import reference, registry

DTYPE_TOLERANCE = {
    # relative accuracy of dist on stored points; exp/log round trip; generic small slack
    torch.float64: {"dist_rel": 1e-12, "inverse": 1e-8, "slack": 1e-10, "radius": 10.0},
    torch.float32: {"dist_rel": 2e-5, "inverse": 2e-3, "slack": 1e-4, "radius": 3.0},
}


DIMS = (2, 5)


def _dims(entry) -> list[int]:
    """The dimensions of ``DIMS`` the entry builds (the L-tiling is a tiling of the plane only)."""
    dims = []
    for dim in DIMS:
        try:
            entry.create(dim)
        except ValueError:
            continue
        dims.append(dim)
    return dims


def all_cases():
    return [
        pytest.param(entry.label, dtype, dim, id=f"{entry.label}-{str(dtype).removeprefix('torch.')}-d{dim}")
        for entry in registry.entries()
        for dtype in entry.dtypes
        for dim in _dims(entry)
    ]


def build(label: str, dim: int = 2):
    return registry.get(label).create(dim)


def reference_points(n: int, max_radius: float, dim: int, seed: int) -> list[tuple]:
    """``n`` exact points with radii uniform in ``[0, max_radius]`` and uniform directions."""
    rng = random.Random(seed)
    with mpmath.mp.workprec(reference.working_precision(max_radius)):
        return [
            reference.point_at(rng.uniform(0, max_radius), reference.random_direction(dim, rng))
            for _ in range(n)
        ]


def tangent(manifold, x: torch.Tensor, length: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random tangent vectors at ``x`` with Riemannian lengths ``length`` (shape ``x.shape[:-1]``)."""
    noise = torch.randn(x.shape, dtype=x.dtype, generator=generator)
    u = manifold.proju(x, noise)
    return u * (length / manifold.norm(x, u)).unsqueeze(-1)
