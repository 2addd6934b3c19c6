r"""Base distributions of the flows, with exact log-densities with respect to the Riemannian volume.

* :class:`WrappedNormal` on :math:`H^n` (any model, any curvature) and on :math:`S^n`;
* :class:`VonMisesFisher` on :math:`S^{p-1} \subset \mathbb{R}^p`.

Both declare their support as the manifold, so torch's argument validation checks samples and
``log_prob`` inputs for being on the manifold.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.distributions import Distribution, constraints

from ...manifold import HyperbolicManifold, OffManifoldError
from ...math import lorentz as lorentz_kernel
from ...numerics import guards
from .functional import log_sinc, log_sinhc
from .sphere import Sphere

__all__ = ["ManifoldConstraint", "WrappedNormal", "VonMisesFisher", "log_bessel_iv"]

_LOG_2PI = math.log(2 * math.pi)
_EMPTY = torch.Size()


class ManifoldConstraint(constraints.Constraint):
    """The support "points of ``manifold``" (event dimension 1), for torch's argument validation."""

    is_discrete = False
    event_dim = 1

    def __init__(self, manifold):
        super().__init__()
        self.manifold = manifold

    def check(self, value: torch.Tensor) -> torch.Tensor:
        if value.shape[-1:] != (self.manifold.storage_dim,):
            return torch.zeros(value.shape[:-1], dtype=torch.bool, device=value.device)
        g = guards(value.dtype)
        finite = torch.isfinite(value).all(-1)
        return finite & ~self.manifold._off_manifold_rows(value, g.atol, g.rtol)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.manifold!r})"


def _check_manifold(manifold) -> None:
    if not isinstance(manifold, (HyperbolicManifold, Sphere)):
        raise TypeError(f"expected a hyperbolic manifold or a Sphere, got {type(manifold).__name__}")


class WrappedNormal(Distribution):
    r"""Wrapped normal :math:`\mathcal{WN}(\mu, \sigma)`: a diagonal normal in :math:`T_o`, transported to
    :math:`T_\mu` and pushed through :math:`\exp_\mu`.

    Sampling: :math:`v \sim N(0, \operatorname{diag}\sigma^2)` in the orthonormal frame of :math:`T_o`,
    :math:`u = PT_{o\to\mu}(v)`, :math:`x = \exp_\mu(u)`. Log-density (Riemannian volume), with
    :math:`u = \log_\mu x`, :math:`v = PT_{\mu\to o}(u)` and :math:`r = \lVert u\rVert = d(\mu, x)`:

    .. math::

        \log p(x) = \sum_i \log N(v_i; 0, \sigma_i^2) - (n-1)\log\frac{\sinh(\sqrt c\, r)}{\sqrt c\, r}
        \quad (H^n,\ \text{curvature } -c),

    with :math:`\log\lvert\sin r/r\rvert` in place of the last term on :math:`S^n`.

    On :math:`H^n`, :math:`o` is the origin, the frame is the spatial axes of the Lorentz model, and
    :math:`PT_{a\to b}(w) = w + \frac{\langle b, w\rangle_L}{1 - \langle a, b\rangle_L}(a + b)` (unit curvature).
    Points of any model are accepted through its Lorentz hub.

    On :math:`S^n`, :math:`o = (-1, 0, \dots, 0)`, :math:`PT_{a\to b}(w) = w - \frac{\langle b, w\rangle}{1 + \langle a, b\rangle}(a + b)`
    (so ``loc`` must not be :math:`-o`). The density counts only the preimage :math:`\log_\mu x` with
    :math:`\lVert u\rVert < \pi`; the true push-forward also sums over the preimages at
    :math:`\lVert u\rVert + 2\pi k`, mass that is negligible for :math:`\sigma \lesssim 0.3`
    (below :math:`10^{-20}` at :math:`\sigma = 0.3`) but not for wide distributions.

    Parameters
    ----------
    manifold : HyperbolicManifold or Sphere
        The space; ``loc`` and samples are in its storage coordinates ``(..., storage)``.
    loc : torch.Tensor
        Mean points ``(*batch, storage)``.
    scale : torch.Tensor or float
        Standard deviations ``(*batch, n)`` (or broadcastable, e.g. a float) in tangent coordinates at
        :math:`o`, in Riemannian units.
    """

    has_rsample = True

    def __init__(self, manifold, loc: torch.Tensor, scale, validate_args=None):
        _check_manifold(manifold)
        self.manifold = manifold
        n = manifold.dim
        if loc.shape[-1:] != (manifold.storage_dim,):
            raise ValueError(
                f"loc must have a last axis of size {manifold.storage_dim}, got shape {tuple(loc.shape)}"
            )
        if not torch.is_tensor(scale):
            scale = torch.tensor(float(scale), dtype=loc.dtype, device=loc.device)
        if scale.dim() == 0:
            scale = scale.expand(n)
        if scale.shape[-1] not in (1, n):
            raise ValueError(
                f"scale must have a last axis of size {n} (or 1), got shape {tuple(scale.shape)}"
            )
        scale = scale.expand(*scale.shape[:-1], n)
        batch_shape = torch.broadcast_shapes(loc.shape[:-1], scale.shape[:-1])
        self.loc = loc.expand(*batch_shape, manifold.storage_dim)
        self.scale = scale.expand(*batch_shape, n)
        if isinstance(manifold, Sphere) and bool((1 + self.loc[..., 0] * -1 < 1e-6).any()):
            raise ValueError("a wrapped normal on the sphere needs loc away from -o = (1, 0, ..., 0)")
        super().__init__(batch_shape, torch.Size([manifold.storage_dim]), validate_args=validate_args)

    @property
    def arg_constraints(self):
        return {
            "loc": ManifoldConstraint(self.manifold),
            "scale": constraints.independent(constraints.positive, 1),
        }

    @property
    def support(self):
        return ManifoldConstraint(self.manifold)

    @property
    def mean(self):
        raise NotImplementedError(
            "the wrapped normal's Fréchet mean is loc; its Euclidean mean is not defined here"
        )

    def __repr__(self) -> str:
        return f"WrappedNormal(manifold={self.manifold!r}, loc: {tuple(self.loc.shape)}, scale: {tuple(self.scale.shape)})"

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return WrappedNormal(
            self.manifold,
            self.loc.expand(*batch_shape, self.loc.shape[-1]),
            self.scale.expand(*batch_shape, self.scale.shape[-1]),
            validate_args=False,
        )

    # ----------------------------------------------------------------- geometry in the hub
    def _hyperbolic(self) -> bool:
        return isinstance(self.manifold, HyperbolicManifold)

    def _unit_loc(self, like: torch.Tensor):
        loc = self.loc.to(dtype=like.dtype, device=like.device)
        if self._hyperbolic():
            R = self.manifold.scale(like)
            return self.manifold.to_lorentz(loc) / R, R
        return loc, torch.ones((), dtype=like.dtype, device=like.device)

    def _from_origin(self, mu: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """:math:`PT_{o\\to\\mu}((0, v))` at unit curvature/radius."""
        w = torch.cat([torch.zeros_like(v[..., :1]), v], dim=-1)
        if self._hyperbolic():
            # <mu, w>_L / (1 - <o, mu>_L) (o + mu), with <o, mu>_L = -mu0.
            coefficient = (mu[..., 1:] * v).sum(-1, keepdim=True) / (1 + mu[..., :1])
            o = torch.zeros_like(mu)
            o[..., 0] = 1
        else:
            # -<mu, w>/(1 + <o, mu>) (o + mu), with <o, mu> = -mu0.
            coefficient = -(mu[..., 1:] * v).sum(-1, keepdim=True) / (1 - mu[..., :1])
            o = torch.zeros_like(mu)
            o[..., 0] = -1
        return w + coefficient * (o + mu)

    def _to_origin(self, mu: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """:math:`PT_{\\mu\\to o}(u)` without its 0-th coordinate."""
        if self._hyperbolic():
            # <o, u>_L / (1 - <mu, o>_L) (mu + o) = -u0/(1 + mu0) (mu + o)
            coefficient = -u[..., :1] / (1 + mu[..., :1])
            shift = mu[..., 1:]
        else:
            # -<o, u>/(1 + <mu, o>) (mu + o) = u0/(1 - mu0) (mu + o)
            coefficient = u[..., :1] / (1 - mu[..., :1])
            shift = mu[..., 1:]
        return u[..., 1:] + coefficient * shift

    # ----------------------------------------------------------------- sampling and density
    def from_tangent(self, v: torch.Tensor) -> torch.Tensor:
        r"""Points :math:`\exp_\mu(PT_{o\to\mu}(v))` ``(..., *batch, storage)`` of tangent coordinates
        ``v`` ``(..., *batch, n)`` at :math:`o` (Riemannian units); :meth:`rsample` applies it to
        :math:`v \sim N(0, \operatorname{diag}\sigma^2)`."""
        mu, R = self._unit_loc(v)
        u = self._from_origin(mu.expand(*v.shape[:-1], mu.shape[-1]), v / R)
        if self._hyperbolic():
            return self.manifold.from_lorentz(R * lorentz_kernel.expmap(mu, u))
        return self.manifold.expmap(mu, u)

    def rsample(self, sample_shape=_EMPTY, generator: torch.Generator | None = None) -> torch.Tensor:
        """Samples ``(*sample_shape, *batch, storage)``; differentiable in ``loc`` and ``scale``."""
        shape = self._extended_shape(sample_shape)[:-1] + (self.manifold.dim,)
        noise = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device, generator=generator)
        return self.from_tangent(noise * self.scale)

    def sample(self, sample_shape=_EMPTY, generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape, generator=generator)

    def _geometry(self, value: torch.Tensor):
        """Unit-curvature tangent coordinates at ``o`` and the distance to ``loc`` (both in units of ``R``)."""
        mu, R = self._unit_loc(value)
        if self._hyperbolic():
            mu, x = torch.broadcast_tensors(mu, self.manifold.to_lorentz(value) / R)
            u = lorentz_kernel.logmap(mu, x)
            r = lorentz_kernel.dist(mu, x, keepdim=True)
        else:
            mu, x = torch.broadcast_tensors(mu, value)
            u = self.manifold.logmap(mu, x)
            r = self.manifold.dist(mu, x, keepdim=True)
        return self._to_origin(mu, u), r, R

    def to_tangent(self, value: torch.Tensor) -> torch.Tensor:
        r"""Tangent coordinates :math:`v = PT_{\mu\to o}(\log_\mu x)` ``(..., n)`` at :math:`o` (Riemannian
        units) of points ``(..., storage)``: the inverse of :meth:`from_tangent`."""
        v, _, R = self._geometry(value)
        return R * v

    def _check_value(self, value: torch.Tensor) -> None:
        if self._validate_args:
            self._validate_sample(value)
        elif value.shape[-1:] != (self.manifold.storage_dim,):
            raise OffManifoldError(
                f"value must have a last axis of size {self.manifold.storage_dim}, got shape {tuple(value.shape)}"
            )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-density ``(*sample, *batch)`` of points ``(*sample, *batch, storage)`` (Riemannian volume)."""
        self._check_value(value)
        v, r, R = self._geometry(value)
        scale = self.scale.to(dtype=value.dtype, device=value.device)
        if self._hyperbolic():
            jacobian = log_sinhc(r.square())
        else:
            jacobian = log_sinc(r.square())
        gaussian = -0.5 * (R * v / scale).square() - torch.log(scale) - 0.5 * _LOG_2PI
        return gaussian.sum(-1) - (self.manifold.dim - 1) * jacobian.squeeze(-1)


class _LogBesselIv(torch.autograd.Function):
    r""":math:`\log I_\nu(\kappa)` for :math:`\kappa > 0` by scipy's exponentially scaled ``ive``, with
    :math:`\frac{d}{d\kappa}\log I_\nu(\kappa) = I_{\nu+1}(\kappa)/I_\nu(\kappa) + \nu/\kappa` from
    :class:`_BesselLogDerivative`."""

    @staticmethod
    def forward(ctx, order: float, kappa: torch.Tensor) -> torch.Tensor:
        from scipy import special

        k = kappa.detach().cpu().to(torch.float64).numpy()
        value = np.log(special.ive(order, k)) + k
        ctx.order = order
        ctx.save_for_backward(kappa)
        return torch.as_tensor(value, dtype=kappa.dtype, device=kappa.device)

    @staticmethod
    def backward(ctx, grad):
        (kappa,) = ctx.saved_tensors
        return None, grad * _BesselLogDerivative.apply(ctx.order, kappa)


class _BesselLogDerivative(torch.autograd.Function):
    r""":math:`R = \frac{d}{d\kappa}\log I_\nu(\kappa) = I_{\nu+1}(\kappa)/I_\nu(\kappa) + \nu/\kappa`, differentiable
    to any order through the Riccati equation :math:`R' = 1 - R^2 - R/\kappa + \nu^2/\kappa^2` (torch operations
    on the saved :math:`R`)."""

    @staticmethod
    def forward(ctx, order: float, kappa: torch.Tensor) -> torch.Tensor:
        from scipy import special

        k = kappa.detach().cpu().to(torch.float64).numpy()
        ratio = special.ive(order + 1, k) / special.ive(order, k) + order / k
        out = torch.as_tensor(ratio, dtype=kappa.dtype, device=kappa.device)
        ctx.order = order
        ctx.save_for_backward(kappa, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        kappa, ratio = ctx.saved_tensors
        return None, grad * (1 - ratio.square() - ratio / kappa + (ctx.order / kappa).square())


def log_bessel_iv(order: float, kappa: torch.Tensor) -> torch.Tensor:
    r""":math:`\log I_\nu(\kappa)` (modified Bessel function of the first kind), differentiable in
    :math:`\kappa > 0`; ``order`` :math:`\nu \ge 0` is a float."""
    if bool((kappa <= 0).any()):
        raise ValueError("log_bessel_iv needs kappa > 0")
    return _LogBesselIv.apply(float(order), kappa)


class VonMisesFisher(Distribution):
    r"""Von Mises–Fisher distribution on :math:`S^{p-1} \subset \mathbb{R}^p`, density with respect to area.

    .. math::

        p(x) = C_p(\kappa)\, e^{\kappa\langle\mu, x\rangle}, \qquad
        \log C_p(\kappa) = (p/2 - 1)\log\kappa - (p/2)\log 2\pi - \log I_{p/2-1}(\kappa).

    For :math:`p = 3` this is evaluated in closed form,
    :math:`\log p(x) = \log\kappa - \log 2\pi - \log(1 - e^{-2\kappa}) + \kappa(\langle\mu, x\rangle - 1)`
    (limit :math:`1/(4\pi)` at :math:`\kappa = 0`), and sampled by inverting the CDF of
    :math:`w = \langle\mu, x\rangle`: :math:`w = 1 + \log(\xi + (1 - \xi)e^{-2\kappa})/\kappa`. Other
    :math:`p` use the Bessel function (``scipy.special.ive``; :math:`\kappa > 0`) and Wood's (1994)
    rejection sampler.

    Parameters
    ----------
    loc : torch.Tensor
        Mean directions ``(*batch, p)``, unit norm.
    concentration : torch.Tensor or float
        :math:`\kappa \ge 0`, shape ``batch`` (or broadcastable).
    """

    def __init__(self, loc: torch.Tensor, concentration, validate_args=None):
        if loc.dim() < 1 or loc.shape[-1] < 2:
            raise ValueError(f"loc must have a last axis of size p >= 2, got shape {tuple(loc.shape)}")
        if not torch.is_tensor(concentration):
            concentration = torch.tensor(float(concentration), dtype=loc.dtype, device=loc.device)
        batch_shape = torch.broadcast_shapes(loc.shape[:-1], concentration.shape)
        self.manifold = Sphere(loc.shape[-1] - 1)
        self.loc = loc.expand(*batch_shape, loc.shape[-1])
        self.concentration = concentration.expand(batch_shape)
        if loc.shape[-1] != 3 and bool((self.concentration <= 0).any()):
            raise ValueError("VonMisesFisher with p != 3 needs concentration > 0")
        super().__init__(batch_shape, torch.Size([loc.shape[-1]]), validate_args=validate_args)

    @property
    def has_rsample(self) -> bool:
        return self.loc.shape[-1] == 3

    @property
    def arg_constraints(self):
        return {"loc": ManifoldConstraint(self.manifold), "concentration": constraints.nonnegative}

    @property
    def support(self):
        return ManifoldConstraint(self.manifold)

    def __repr__(self) -> str:
        return f"VonMisesFisher(p={self.loc.shape[-1]}, loc: {tuple(self.loc.shape)}, concentration: {tuple(self.concentration.shape)})"

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return VonMisesFisher(
            self.loc.expand(*batch_shape, self.loc.shape[-1]),
            self.concentration.expand(batch_shape),
            validate_args=False,
        )

    def log_normalizer(self, like: torch.Tensor | None = None) -> torch.Tensor:
        r""":math:`\log C_p(\kappa)`, shape ``batch``, in the dtype and device of ``like`` when given.

        For :math:`p = 3`: :math:`\log\kappa - \log(1 - e^{-2\kappa}) - \kappa - \log 2\pi`, with the
        limit :math:`-\log 4\pi` at :math:`\kappa = 0`.
        """
        kappa = (
            self.concentration
            if like is None
            else self.concentration.to(dtype=like.dtype, device=like.device)
        )
        p = self.loc.shape[-1]
        if p == 3:
            tiny = kappa < guards(kappa.dtype).taylor
            k = torch.where(tiny, torch.ones_like(kappa), kappa)
            # log(kappa / (1 - e^{-2 kappa})) -> -log 2 + kappa as kappa -> 0.
            ratio = torch.where(tiny, -math.log(2) + kappa, torch.log(k) - torch.log(-torch.expm1(-2 * k)))
            return ratio - kappa - _LOG_2PI
        return (p / 2 - 1) * torch.log(kappa) - (p / 2) * _LOG_2PI - log_bessel_iv(p / 2 - 1, kappa)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-density ``(*sample, *batch)`` of unit vectors ``(*sample, *batch, p)`` (area measure)."""
        if self._validate_args:
            self._validate_sample(value)
        elif value.shape[-1:] != self.loc.shape[-1:]:
            raise OffManifoldError(
                f"value must have a last axis of size {self.loc.shape[-1]}, got shape {tuple(value.shape)}"
            )
        loc = self.loc.to(dtype=value.dtype, device=value.device)
        kappa = self.concentration.to(dtype=value.dtype, device=value.device)
        return self.log_normalizer(value) + kappa * (loc * value).sum(-1)

    def _tangent_directions(self, shape, loc: torch.Tensor) -> torch.Tensor:
        """Uniform unit vectors orthogonal to ``loc``."""
        g = torch.randn(shape, dtype=loc.dtype, device=loc.device)
        g = g - (g * loc).sum(-1, keepdim=True) * loc
        return g / g.norm(dim=-1, keepdim=True)

    def rsample(self, sample_shape=_EMPTY) -> torch.Tensor:
        """Samples ``(*sample_shape, *batch, 3)`` by the inverse CDF (``p = 3`` only)."""
        if self.loc.shape[-1] != 3:
            raise NotImplementedError("reparameterised vMF samples exist here only for p = 3; use sample()")
        shape = self._extended_shape(sample_shape)
        loc = self.loc.expand(shape)
        kappa = self.concentration.expand(shape[:-1]).unsqueeze(-1)
        xi = torch.rand(shape[:-1] + (1,), dtype=loc.dtype, device=loc.device)
        tiny = kappa < guards(kappa.dtype).taylor
        k = torch.where(tiny, torch.ones_like(kappa), kappa)
        # log(xi + (1 - xi) e^{-2k}) / k, written with log1p for xi near 1 and small k.
        w = torch.where(tiny, 2 * xi - 1, 1 + torch.log1p((1 - xi) * torch.expm1(-2 * k)) / k)
        w = w.clamp(-1, 1)
        direction = self._tangent_directions(shape, loc)
        return w * loc + torch.sqrt((1 - w.square()).clamp_min(0)) * direction

    def sample(self, sample_shape=_EMPTY) -> torch.Tensor:
        """Samples ``(*sample_shape, *batch, p)``: inverse CDF for ``p = 3``, Wood's algorithm otherwise."""
        with torch.no_grad():
            if self.loc.shape[-1] == 3:
                return self.rsample(sample_shape)
            return self._wood(sample_shape)

    def _wood(self, sample_shape) -> torch.Tensor:
        r"""Wood's rejection sampler for :math:`w = \langle\mu, x\rangle`, :math:`m = p`:
        :math:`b = (m-1)/(2\kappa + \sqrt{4\kappa^2 + (m-1)^2})`, :math:`x_0 = (1-b)/(1+b)`,
        :math:`c = \kappa x_0 + (m-1)\log(1 - x_0^2)`; propose :math:`W = (1 - (1+b)Z)/(1 - (1-b)Z)` with
        :math:`Z \sim \mathrm{Beta}((m-1)/2, (m-1)/2)`, accept when
        :math:`\kappa W + (m-1)\log(1 - x_0 W) - c \ge \log U`."""
        shape = self._extended_shape(sample_shape)
        m = shape[-1]
        loc = self.loc.expand(shape)
        kappa = self.concentration.expand(shape[:-1])
        b = (m - 1) / (2 * kappa + torch.sqrt(4 * kappa.square() + (m - 1) ** 2))
        x0 = (1 - b) / (1 + b)
        c = kappa * x0 + (m - 1) * torch.log(1 - x0.square())
        beta = torch.distributions.Beta(
            torch.tensor((m - 1) / 2, dtype=loc.dtype, device=loc.device),
            torch.tensor((m - 1) / 2, dtype=loc.dtype, device=loc.device),
        )
        w = torch.empty(shape[:-1], dtype=loc.dtype, device=loc.device)
        pending = torch.ones(shape[:-1], dtype=torch.bool, device=loc.device)
        while bool(pending.any()):
            z = beta.sample(shape[:-1])
            u = torch.rand(shape[:-1], dtype=loc.dtype, device=loc.device)
            proposal = (1 - (1 + b) * z) / (1 - (1 - b) * z)
            accept = kappa * proposal + (m - 1) * torch.log(1 - x0 * proposal) - c >= torch.log(u)
            take = pending & accept
            w = torch.where(take, proposal, w)
            pending = pending & ~accept
        w = w.unsqueeze(-1)
        direction = self._tangent_directions(shape, loc)
        return w * loc + torch.sqrt((1 - w.square()).clamp_min(0)) * direction
