r"""The manifold protocol every representation of :math:`H^n` implements.

A point is one dense tensor ``(..., storage)``: the last axis packs the representation (Lorentz
coordinates, MCF components, tiling integers and floats). Operations broadcast over leading axes and are
row-local. Every manifold is a :class:`geoopt.Manifold`, so geoopt's optimisers train it unchanged.

The Lorentz model is the hub: ``to_lorentz`` / ``from_lorentz`` convert any representation (as floats,
which may lose precision far out), and ``to_reference`` / ``from_reference`` bridge exactly to the
mpmath oracle in :mod:`hyperbolic.reference` (curvature -1 coordinates of the represented point).

Curvature is :math:`-c` with :math:`c > 0`; a model at curvature :math:`-c` is the unit model scaled by
:math:`R = c^{-1/2}` (distances multiply by ``R``).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import geoopt
import mpmath
import torch
from torch.func import jvp

from . import math as hmath
from . import registry
from .numerics import check_finite, guards, safe_sqrt, sinhc

__all__ = [
    "HyperbolicManifold",
    "PrecisionContract",
    "PrecisionError",
    "OffManifoldError",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1


class PrecisionError(ValueError):
    """A point or request lies outside what the representation can hold (its precision contract)."""


class OffManifoldError(ValueError):
    """A tensor that should hold points of the model does not."""


@dataclass(frozen=True)
class PrecisionContract:
    """What a representation promises, as data (``../shared/notes/precision.md`` §8).

    Attributes
    ----------
    usable_radius : float
        Up to this distance from the origin, ``dist`` of two points one unit apart is promised to be within
        1e-6 of the truth (the hard case of siblings deep in a tree).
    max_radius : float
        Hard ceiling: points farther from the origin cannot be stored (exponent range, ball boundary,
        integer width). Conversions into the model raise :class:`PrecisionError` beyond it.
    error_growth : str
        How the near-pair error grows with the radius ``r``, e.g. ``"eps*exp(r)"``.
    """

    usable_radius: float
    max_radius: float
    error_growth: str


def _first_row(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.nonzero(mask)[0])


class HyperbolicManifold(geoopt.Manifold, abc.ABC):
    r"""Base class of every representation of :math:`H^n` (the protocol of ``DESIGN.md``).

    Parameters
    ----------
    dim : int
        Dimension ``n`` of :math:`H^n`.
    curvature : float
        Sectional curvature, negative. Default -1.
    learnable : bool
        Make :math:`c = -\text{curvature}` a parameter (stored as its logarithm so it stays positive).

    Notes
    -----
    Two optional methods, beyond the protocol of ``DESIGN.md``, are looked up with ``getattr`` by ``embed``;
    a model without them takes the general path:

    * ``take_rows(table, ids) -> (space, rows)`` and ``space.put_rows(table, ids, rows)``: rows of a large
      point table in a narrower storage that ``space`` computes on bit for bit as this model does on the full
      rows (:meth:`tiling.BinaryTiling.take_rows`; used by ``embed.train`` and ``embed.nearest``).
    * ``halfspace_components(points) -> (horizontal, height) | None``: the exact upper half-space
      coordinates as float expansions and heights, or None where they cannot be given exactly
      (:meth:`HalfSpaceMCF.halfspace_components`; used by the certified distances of ``embed.pair_distances``).
    """

    ndim = 1
    reversible = False
    name: str = "hyperbolic"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            registry.register_model(cls)

    @classmethod
    def from_spec(cls, spec: dict) -> HyperbolicManifold:
        """Rebuild from :meth:`spec`; models with more options override this."""
        return cls(spec["dim"], curvature=spec["curvature"], learnable=spec.get("learnable", False))

    def __init__(self, dim: int, curvature: float = -1.0, learnable: bool = False):
        super().__init__()
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dimension must be a positive integer, got {dim!r}")
        curvature = float(curvature)
        if not math.isfinite(curvature) or curvature >= 0:
            raise ValueError(
                f"curvature must be a finite negative number, got {curvature}; "
                "hyperbolic space has negative curvature (use -1.0 for the standard model)"
            )
        self.dim = dim
        log_c = torch.tensor(math.log(-curvature), dtype=torch.float64)
        if learnable:
            self.log_c = torch.nn.Parameter(log_c)
        else:
            self.register_buffer("log_c", log_c)
        self.learnable = learnable

    # ----------------------------------------------------------------- curvature
    @property
    def curvature(self) -> torch.Tensor:
        """Sectional curvature :math:`-c` (a float64 scalar tensor)."""
        return -torch.exp(self.log_c)

    def scale(self, like: torch.Tensor) -> torch.Tensor:
        r"""The curvature radius :math:`R = c^{-1/2}` in the dtype and device of ``like``."""
        return torch.exp(-0.5 * self.log_c).to(dtype=like.dtype, device=like.device)

    # ----------------------------------------------------------------- storage
    @property
    @abc.abstractmethod
    def storage_dim(self) -> int:
        """Size of the last (storage) axis of a point."""

    @abc.abstractmethod
    def contract(self, dtype: torch.dtype = torch.float64) -> PrecisionContract:
        """The precision contract of this representation when its floats have ``dtype``."""

    def spec(self) -> dict:
        """A plain description for saving: enough to rebuild the manifold with
        :func:`hyperbolic.registry.manifold_from_spec`."""
        return {
            "name": self.name,
            "dim": self.dim,
            "curvature": float(self.curvature.detach()),
            "learnable": self.learnable,
            "storage_dim": self.storage_dim,
            "format_version": FORMAT_VERSION,
        }

    def extra_repr(self) -> str:
        return f"dim={self.dim}, curvature={float(self.curvature.detach()):.6g}" + (
            ", learnable=True" if self.learnable else ""
        )

    # ----------------------------------------------------------------- the hub
    @abc.abstractmethod
    def to_lorentz(self, x: torch.Tensor) -> torch.Tensor:
        """Lorentz coordinates ``(..., dim + 1)`` of the same curvature (float; may lose precision far out)."""

    @abc.abstractmethod
    def from_lorentz(self, X: torch.Tensor) -> torch.Tensor:
        """Points of this model from Lorentz coordinates of the same curvature."""

    def to_poincare(self, x: torch.Tensor) -> torch.Tensor:
        """Poincaré-ball coordinates (ball of radius ``R``), e.g. for plotting."""
        R = self.scale(x)
        return R * hmath.lorentz.to_poincare(self.to_lorentz(x) / R)

    # ----------------------------------------------------------------- the exact bridge
    @abc.abstractmethod
    def to_reference(self, x: torch.Tensor) -> list[tuple]:
        """The represented points as exact mpmath Lorentz tuples at curvature -1 (leading axes flattened)."""

    @abc.abstractmethod
    def from_reference(
        self,
        points: Sequence[Sequence],
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Storage ``(len(points), storage_dim)`` of curvature -1 reference points, rounded by the model's
        own rule. Raises :class:`PrecisionError` for points beyond the contract's ``max_radius``."""

    def _bridge_precision(self) -> int:
        """Bits at which ``to_reference`` works: enough for any float magnitude (exponent range ±1024, so
        Minkowski products of the result cancel exactly) plus the representation's own bits."""
        return max(mpmath.mp.prec, 2 * 1024 + 64 * getattr(self, "components", 1))

    def _reference_scale(self) -> mpmath.mpf:
        r""":math:`\sqrt{c}` in mpmath: multiplies Lorentz coordinates at curvature :math:`-c` into curvature -1."""
        return mpmath.sqrt(mpmath.exp(mpmath.mpf(float(self.log_c))))

    def _check_reference_radius(self, points: Sequence[Sequence], dtype: torch.dtype) -> None:
        ceiling = self.contract(dtype).max_radius
        for row, point in enumerate(points):
            if len(point) != self.dim + 1:
                raise ValueError(
                    f"reference point {row} has {len(point)} coordinates; H^{self.dim} needs {self.dim + 1}"
                )
            x0 = mpmath.mpf(point[0])
            if not mpmath.isfinite(x0) or x0 < 1:
                raise OffManifoldError(f"reference point {row} has time coordinate {x0}, not >= 1")
            r = mpmath.acosh(x0)
            if r > ceiling:
                raise PrecisionError(
                    f"reference point {row} lies at radius {mpmath.nstr(r, 8)}, beyond the "
                    f"{self.name} model's ceiling {ceiling:.6g} for {dtype}"
                )

    # ----------------------------------------------------------------- points
    def origin(self, *shape: int, dtype=torch.float64, device=None) -> torch.Tensor:
        """The origin, with leading shape ``shape``: a tensor ``(*shape, storage_dim)``."""
        X = torch.zeros(*shape, self.dim + 1, dtype=dtype, device=device)
        X[..., 0] = 1
        with torch.no_grad():
            return self.from_lorentz(X * self.scale(X))

    def random(
        self,
        *shape: int,
        std: float = 1.0,
        dtype=torch.float64,
        device=None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        r"""Points :math:`\exp_O(v)` with :math:`v \sim N(0, \text{std}^2 I)` in an orthonormal frame at the
        origin (a wrapped normal), leading shape ``shape``."""
        v = std * torch.randn(*shape, self.dim, dtype=dtype, device=device, generator=generator)
        length = v.norm(dim=-1, keepdim=True)
        X = torch.cat([torch.cosh(length), sinhc(length) * v], dim=-1)
        with torch.no_grad():
            return self.from_lorentz(X * self.scale(X))

    # ----------------------------------------------------------------- defaults of the protocol
    def retr(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Retraction; every model here uses its exact exponential map."""
        return self.expmap(x, u)

    def transp(self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Parallel transport along the geodesic from ``x`` to ``y``, through the Lorentz hub.

        The tangent vector is pushed forward to the hyperboloid with the differential of ``to_lorentz``,
        transported there, and pulled back with the differential of ``from_lorentz``.
        """
        X, V = jvp(self.to_lorentz, (x,), (v,))
        Y = self.to_lorentz(y)
        R = self.scale(X)
        W = R * hmath.lorentz.transp(X / R, Y / R, V / R)
        return jvp(self.from_lorentz, (Y,), (W,))[1]

    def norm(self, x: torch.Tensor, u: torch.Tensor, *, keepdim: bool = False) -> torch.Tensor:
        """Riemannian length of ``u``; 0 with a zero gradient at ``u = 0`` (:func:`~hyperbolic.numerics.safe_sqrt`)."""
        return safe_sqrt(self.inner(x, u, keepdim=keepdim))

    # ----------------------------------------------------------------- checks
    def _check_shape(self, shape, name):
        if len(shape) < 1 or shape[-1] != self.storage_dim:
            return False, f"{name} must have a last axis of size {self.storage_dim}, got shape {tuple(shape)}"
        return True, None

    def _check_point_on_manifold(self, x: torch.Tensor, *, atol=None, rtol=None):
        if not bool(torch.isfinite(x).all()):
            row = _first_row(~torch.isfinite(x))
            return False, f"point holds a non-finite value at index {row}"
        g = guards(x.dtype)
        bad = self._off_manifold_rows(x, atol=atol or g.atol, rtol=rtol or g.rtol)
        if bool(bad.any()):
            row = _first_row(bad)
            return False, f"row {row} is not a point of the {self.name} model: {self._describe_row(x, row)}"
        return True, None

    def _check_vector_on_tangent(self, x: torch.Tensor, u: torch.Tensor, *, atol=None, rtol=None):
        if not bool(torch.isfinite(u).all()):
            return False, f"tangent vector holds a non-finite value at index {_first_row(~torch.isfinite(u))}"
        return True, None

    @abc.abstractmethod
    def _off_manifold_rows(self, x: torch.Tensor, atol: float, rtol: float) -> torch.Tensor:
        """Boolean mask ``x.shape[:-1]`` of rows that are not points of the model."""

    def _describe_row(self, x: torch.Tensor, row: tuple[int, ...]) -> str:
        return f"values {x[row].tolist()}"

    def assert_points(self, x: torch.Tensor, what: str = "points") -> None:
        """Raise a clear error when ``x`` is not a tensor of points of this model.

        :class:`~hyperbolic.numerics.NonFiniteError` for NaN/inf (naming the row),
        :class:`OffManifoldError` for rows off the model (naming the row and its values).
        """
        ok, reason = self._check_shape(x.shape, what)
        if not ok:
            raise OffManifoldError(reason)
        check_finite(x, what)
        g = guards(x.dtype)
        bad = self._off_manifold_rows(x, atol=g.atol, rtol=g.rtol)
        if bool(bad.any()):
            row = _first_row(bad)
            raise OffManifoldError(
                f"{what}: row {row} is not a point of the {self.name} model: {self._describe_row(x, row)}"
            )

    def contract_dict(self, dtype: torch.dtype = torch.float64) -> dict:
        return asdict(self.contract(dtype))
