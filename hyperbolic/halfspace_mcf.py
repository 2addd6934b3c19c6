r"""The upper half-space with multi-component horizontal coordinates (the MCF model).

Storage (last axis, size :math:`m(n-1) + 1`): ``[x⁽¹⁾ (n-1), x⁽²⁾ (n-1), …, x⁽ᵐ⁾ (n-1), y]``. Each horizontal
coordinate is the exact sum of its ``m`` components, a non-overlapping expansion largest first
(:mod:`mcf`); the height ``y`` is one float. A point at radius ``r`` needs its horizontal coordinates to
absolute precision :math:`\varepsilon y \approx \varepsilon e^{-r}` while they can be of size 1: ``m``
components give :math:`m\,p` bits, so near-pair distances stay accurate to :math:`r \approx 36.7\,m` in
float64 (``../shared/notes/mcf.md`` §5, ``precision.md`` §5). The height needs only relative precision.

Only three places touch the components: the exact difference :math:`x_p - x_q` (rounded once, to one
float per coordinate, from the exact expansion difference), the update :math:`x \leftarrow x + \Delta x`
(added exactly, then renormalised), and the exact bridge to mpmath. Everything else reuses the float
half-space kernels on ``(δ, y)``.

Tangent vectors are storage-shaped with the horizontal part in the ``x⁽¹⁾`` slots and zeros in the lower
component slots (``proju`` puts them there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mpmath
import torch

import mcf

from . import reference
from .halfspace import check_heights
from .manifold import HyperbolicManifold, OffManifoldError, PrecisionContract
from .math import halfspace as kernel
from .numerics import guards

__all__ = ["HalfSpaceMCF"]


def exact_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""``Σa - Σb`` rounded to one float, for expansions on the trailing axis (``mcf.md`` §5).

    Two-Sum of matching components, then a running Two-Sum over the partial sums and errors with the
    rounding errors accumulated separately: relative error at most about one unit roundoff even when
    the difference is :math:`2^{-pm}` times the operands.
    """
    total = torch.zeros_like(a[..., 0])
    carried = torch.zeros_like(total)
    for i in range(a.shape[-1]):
        s, e = mcf.two_sum(a[..., i], -b[..., i])
        for term in (s, e):
            total, error = mcf.two_sum(total, term)
            carried = carried + error
    return total + carried


class HalfSpaceMCF(HyperbolicManifold):
    r"""Upper half-space :math:`H^n` whose horizontal coordinates are ``components``-term expansions.

    Parameters
    ----------
    dim : int
        Dimension ``n`` (at least 2: one horizontal coordinate and the height).
    components : int
        Number ``m`` of floats per horizontal coordinate.
    dtype : torch.dtype
        Base float type of the components and the height (float64 or float32).
    curvature : float
        Negative curvature :math:`-c`, default -1 (scales the metric only).
    learnable : bool
        Learn the curvature.
    """

    name = "halfspace-mcf"

    def __init__(
        self,
        dim: int,
        components: int = 2,
        dtype: torch.dtype = torch.float64,
        curvature: float = -1.0,
        learnable: bool = False,
    ):
        super().__init__(dim, curvature=curvature, learnable=learnable)
        if dim < 2:
            raise ValueError(f"the MCF half-space needs dimension >= 2 (a horizontal axis), got {dim}")
        if not isinstance(components, int) or isinstance(components, bool) or components < 1:
            raise ValueError(f"components must be a positive integer, got {components!r}")
        if dtype not in (torch.float64, torch.float32):
            raise ValueError(f"base dtype must be float64 or float32, got {dtype}")
        self.components = components
        self.base_dtype = dtype

    @classmethod
    def from_spec(cls, spec: dict) -> HalfSpaceMCF:
        return cls(
            spec["dim"],
            components=spec["components"],
            dtype=getattr(torch, spec["base_dtype"]),
            curvature=spec["curvature"],
            learnable=spec.get("learnable", False),
        )

    def spec(self) -> dict:
        return {
            **super().spec(),
            "components": self.components,
            "base_dtype": str(self.base_dtype).removeprefix("torch."),
        }

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, components={self.components}, dtype={self.base_dtype}"

    # ----------------------------------------------------------------- layout
    @property
    def storage_dim(self) -> int:
        return self.components * (self.dim - 1) + 1

    def horizontal(self, x: torch.Tensor) -> torch.Tensor:
        """The horizontal coordinates as expansions: ``(..., n - 1, m)``."""
        m, h = self.components, self.dim - 1
        return x[..., : m * h].unflatten(-1, (m, h)).transpose(-1, -2)

    def height(self, x: torch.Tensor) -> torch.Tensor:
        """The height ``y``: ``(..., 1)``."""
        return x[..., -1:]

    def halfspace_components(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(horizontal, height)``: the exact half-space coordinates as expansions ``(..., n - 1, m)`` and floats
        ``(...)`` (for the certified distances of ``embed.pair_distances``)."""
        return self.horizontal(x), x[..., -1]

    def pack(self, horizontal: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
        """Storage from expansions ``(..., n - 1, m)`` and heights ``(..., 1)``."""
        return torch.cat([horizontal.transpose(-1, -2).flatten(-2), height], dim=-1)

    def leading(self, x: torch.Tensor) -> torch.Tensor:
        """Float view ``(x⁽¹⁾, y)`` of a point (or the meaningful slots of a tangent vector)."""
        return torch.cat([x[..., : self.dim - 1], x[..., -1:]], dim=-1)

    def _tangent(self, leading: torch.Tensor) -> torch.Tensor:
        """Storage-shaped tangent vector from its float part ``(u_x, u_y)``."""
        lower = leading.new_zeros(*leading.shape[:-1], (self.components - 1) * (self.dim - 1))
        return torch.cat([leading[..., :-1], lower, leading[..., -1:]], dim=-1)

    def _difference(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x_x - x_y`` per horizontal coordinate, rounded once from the exact expansion difference."""
        a, b = torch.broadcast_tensors(self.horizontal(x), self.horizontal(y))
        return exact_difference(a, b)

    # ----------------------------------------------------------------- contract
    def contract(self, dtype: torch.dtype | None = None) -> PrecisionContract:
        """``dtype`` is ignored: the base dtype is fixed at construction."""
        g = guards(self.base_dtype)
        ceiling = -math.log(g.tiny)  # y ~ exp(-r) must stay a normal float
        per_component = math.log(1 / g.eps)
        usable = self.components * per_component - math.log(1e6) - 1
        return PrecisionContract(
            usable_radius=max(min(usable, ceiling), 0.0),
            max_radius=ceiling,
            error_growth=f"eps^{self.components}*exp(r)",
        )

    # ----------------------------------------------------------------- geometry
    def dist(self, x, y, *, keepdim=False):
        hx, hy = self.height(x), self.height(y)
        d = kernel.dist_from_difference(self._difference(x, y), hx - hy, hx, hy)
        d = self.scale(x) * d
        return d if keepdim else d.squeeze(-1)

    def inner(self, x, u, v=None, *, keepdim=False):
        # Frame coordinates first, as in :meth:`HalfSpace.inner` (no overflow of 1 / y^2).
        frame_u = self.leading(u) / self.height(x)
        frame_v = frame_u if v is None else self.leading(v) / self.height(x)
        result = self.scale(x).square() * (frame_u * frame_v).sum(-1, keepdim=True)
        return result if keepdim else result.squeeze(-1)

    def proju(self, x, u):
        return self._tangent(self.leading(u))

    def egrad2rgrad(self, x, u):
        """Every component slot of a coordinate carries the same derivative; the ``x⁽¹⁾`` slot is used."""
        factor = self.height(x) / self.scale(x)
        return self._tangent(factor * (factor * self.leading(u)))

    def expmap(self, x, u):
        """Cancellation-free exponential map; the horizontal increment is added to the expansion exactly."""
        y = self.height(x)
        dx, y_new = kernel.expmap_frame(y, self.leading(u) / y)
        horizontal = mcf.add_float(self.horizontal(x), dx)
        return self._check_heights(self.pack(horizontal, y_new))

    def logmap(self, x, y):
        hx, hy = self.height(x), self.height(y)
        return self._tangent(hx * kernel.logmap_frame_from_difference(self._difference(y, x), hx, hy))

    def transp(self, x, y, v):
        hx, hy = self.height(x), self.height(y)
        moved = kernel.transp_from_difference(self._difference(y, x), hx, hy, self.leading(v))
        return self._tangent(moved)

    def projx(self, x):
        """Renormalise every expansion and check that every height is a positive normal float."""
        return self._check_heights(self.pack(mcf.renormalize(self.horizontal(x)), self.height(x)))

    def _check_heights(self, x):
        return check_heights(x, "MCF half-space", self.contract().max_radius)

    # ----------------------------------------------------------------- the hub (floats)
    def to_lorentz(self, x):
        """Lorentz coordinates from the rounded sum of the components (loses precision far out)."""
        horizontal = self.horizontal(x).sum(-1)
        return self.scale(x) * kernel.to_lorentz(torch.cat([horizontal, self.height(x)], dim=-1))

    def from_lorentz(self, X):
        point = kernel.from_lorentz(X / self.scale(X))
        horizontal = mcf.from_float(point[..., :-1], self.components)
        return self.pack(horizontal, point[..., -1:])

    # ----------------------------------------------------------------- the exact bridge
    def to_reference(self, x: torch.Tensor) -> list[tuple]:
        with mpmath.mp.workprec(self._bridge_precision()):
            rows = x.detach().reshape(-1, self.storage_dim)
            horizontal = mcf.to_mpmath(self.horizontal(rows))
            heights = rows[:, -1].to(torch.float64).tolist()
            return [
                reference.from_halfspace(coordinates, mpmath.mpf(height))
                for coordinates, height in zip(horizontal, heights)
            ]

    def from_reference(self, points: Sequence[Sequence], dtype=None, device=None):
        """Horizontal coordinates split greedily into ``m`` components (``x⁽¹⁾ = fl(x)``,
        ``x⁽²⁾ = fl(x - x⁽¹⁾)``, …, exact in mpmath); the height rounded to nearest."""
        dtype = self.base_dtype if dtype is None else dtype
        if dtype != self.base_dtype:
            raise ValueError(f"this MCF half-space has base dtype {self.base_dtype}, not {dtype}")
        self._check_reference_radius(points, dtype)
        horizontal, heights = [], []
        for point in points:
            coordinates, height = reference.to_halfspace(point)
            horizontal.append(coordinates)
            heights.append([height])
        expansions = mcf.from_mpmath(horizontal, self.components, dtype=dtype)
        y = mcf.from_mpmath(heights, 1, dtype=dtype)[..., 0]
        x = self.pack(expansions, y)
        if device is not None:
            x = x.to(device)
        return self._check_heights(x)

    # ----------------------------------------------------------------- checks
    def _off_manifold_rows(self, x, atol, rtol):
        return (x[..., -1] <= 0) | ~mcf.is_valid(self.horizontal(x)).all(-1)

    def _describe_row(self, x, row):
        y = x[row][-1].item()
        if y <= 0:
            return f"height {y} is not positive"
        return f"horizontal components {self.horizontal(x)[row].tolist()} are not a renormalised expansion"

    def assert_points(self, x, what: str = "points") -> None:
        super().assert_points(x, what)
        if x.dtype != self.base_dtype:
            raise OffManifoldError(f"{what} have dtype {x.dtype}; this MCF half-space stores {self.base_dtype}")
