r"""Random Laplacian features (HyLa) on hyperbolic space, computed from each model's native coordinates.

Yu & De Sa, *Random Laplacian Features for Learning with Hyperbolic Space* (ICLR 2023). For a boundary
point :math:`\omega` of :math:`H^n` (curvature -1, :math:`\rho = (n-1)/2`) let
:math:`h_\omega(x) = \log P(x, \omega) = -B_\omega(x)` be the log Poisson kernel (defined, and evaluated
safely in every model, in :mod:`hyperbolic.poisson`). Then
:math:`e^{(\rho + i\lambda) h_\omega}` is a Laplace eigenfunction with eigenvalue
:math:`-(\lambda^2 + \rho^2)`. With :math:`\omega \sim U(S^{n-1})` and :math:`b \sim U[0, 2\pi)`,

.. math::

    \mathbb{E}_{\omega, b}\big[2\,e^{\rho h_\omega(x)}\cos(\lambda h_\omega(x) + b)\,
    e^{\rho h_\omega(y)}\cos(\lambda h_\omega(y) + b)\big] = \Phi_\lambda(d(x, y)),

the spherical function of :math:`H^n` (for :math:`n = 2` the conical Legendre function
:math:`P_{-1/2 + i\lambda}(\cosh d)`), and averaging over :math:`\lambda \sim N(0, s^2)` gives an
isometry-invariant positive-definite kernel: the hyperbolic analogue of random Fourier features.

The boundary points are sampled once as unit vectors :math:`\hat\omega \in S^{n-1}` of the ball and mapped
to each model's boundary by :func:`hyperbolic.poisson.log_poisson`, so one layer gives the same features
for the same point in every model.
"""

from __future__ import annotations

import math

import geoopt
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ..manifold import HyperbolicManifold
from ..math import poincare as poincare_kernel
from ..numerics import check_finite, guards, scaled_norm
from ..poincare import PoincareBall
from ..poisson import (
    ROUTES,
    ball_log_poisson_backward,
    ball_squared_distances,
    log_poisson,
    log_poisson_ball,
)

__all__ = [
    "RandomLaplacianFeatures",
    "RandomFourierFeatures",
    "OFFICIAL_MAX_NORM",
]

#: Published code: ball inputs are renormalised to at most this norm (geoopt's float64 projection).
OFFICIAL_MAX_NORM = 1 - 1e-5


# --------------------------------------------------------------------------- the ball in one pass
class _BallFeatures(torch.autograd.Function):
    r"""The whole feature map on the unit ball in one pass (the training hot path):

    .. math::

        \phi_k = \exp\big(\min(\rho h_k, a) - c_k + o\big)\cos(\lambda'_k h_k + b_k), \qquad
        \frac{\partial\phi_k}{\partial h_k} = \rho\,[\rho h_k < a]\,\phi_k - \lambda'_k e^{(\cdot)}\sin(\lambda'_k h_k + b_k),

    then :func:`ball_log_poisson_backward`. Arguments: rows ``x (N, n)``, ``omega (D, n)``, effective
    frequencies :math:`\lambda'` and phases ``b`` ``(D,)``, ``rho``, the amplitude cap ``a`` (or
    ``None``), the shift ``c`` ``(D,)`` (or ``None``), ``fit_shift`` (compute ``c`` as the column maxima
    of :math:`\min(\rho h, a)`), and the constant ``o``. Returns the features and the shift used
    (zeros without one). Only ``x`` gets a gradient.
    """

    @staticmethod
    def forward(ctx, x, omega, frequencies, phases, rho, cap, shift, fit_shift, offset):
        with torch.no_grad():
            gap = poincare_kernel.one_minus_squared_norm_accurate(x).clamp_min(guards(x.dtype).tiny)
            q, rows, cols = ball_squared_distances(x, omega)
            h = torch.log(q).neg_().add_(torch.log(gap))
            amplitude = h * rho
            capped = None
            if cap is not None:
                capped = amplitude > cap
                amplitude.clamp_max_(cap)
            if fit_shift:
                shift = amplitude.amax(0) if amplitude.shape[0] else torch.zeros_like(phases)
            if shift is not None:
                amplitude.sub_(shift)
            if offset:
                amplitude.add_(offset)
            amplitude.exp_()
            phase = torch.addcmul(phases, h, frequencies)
            features = torch.cos(phase).mul_(amplitude)
        used = torch.zeros_like(phases) if shift is None else shift.clone()
        ctx.mark_non_differentiable(used)
        ctx.rho = rho
        ctx.save_for_backward(x, omega, frequencies, gap, q, amplitude, phase, features, capped, rows, cols)
        return features, used

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_features, grad_shift):
        x, omega, frequencies, gap, q, amplitude, phase, features, capped, rows, cols = ctx.saved_tensors
        slope = features * ctx.rho
        if capped is not None:
            slope.masked_fill_(capped, 0)
        slope.sub_(torch.sin(phase).mul_(amplitude).mul_(frequencies)).mul_(grad_features)
        return ball_log_poisson_backward(x, omega, gap, q, slope, rows, cols), *([None] * 8)


# --------------------------------------------------------------------------- the layer
CONVENTIONS = ("official", "kernel")
BOUNDARIES = ("uniform", "fixed_uniform")
DRAW_ORDERS = ("omega_first", "published")


def _make_generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    if generator is not None and seed is not None:
        raise ValueError("give either a generator or a seed, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return generator
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g


def _check_positive_int(value, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


class _RandomFeatureMap(nn.Module):
    """What the random feature maps share: the sizes and the source of their draws.

    The draws come from ``generator``, or from a private generator seeded with ``seed`` (default 0), which
    :meth:`_rewound_generator` rewinds so that ``reset_parameters`` reproduces the same draws.
    """

    def __init__(self, dim_in: int, n_features: int, generator: torch.Generator | None, seed: int | None):
        super().__init__()
        _check_positive_int(dim_in, "dim_in")
        _check_positive_int(n_features, "n_features")
        self.dim_in = dim_in
        self.n_features = n_features
        self.seed = seed
        self._generator = _make_generator(generator, seed)
        self._seeded = generator is None
        self._initial_state = self._generator.get_state()

    def _rewound_generator(self) -> torch.Generator:
        if self._seeded:
            self._generator.set_state(self._initial_state)
        return self._generator


def _positive_or_none(value, what: str):
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive finite number or None, got {value}")
    return value


class RandomLaplacianFeatures(_RandomFeatureMap):
    r"""Random Laplacian features :math:`\phi_k(x) = A\,e^{\rho h_k(x)}\cos(\lambda'_k h_k(x) + b_k)` of
    hyperbolic points.

    :math:`h_k = \log P(x, \omega_k)` is the log Poisson kernel (minus the Busemann function) computed
    from the native coordinates of ``manifold`` (see :mod:`hyperbolic.poisson`), :math:`\rho = (n-1)/2`. The
    boundary points :math:`\omega_k \sim U(S^{n-1})`, frequencies :math:`\lambda_k \sim N(0, s^2)` and
    phases :math:`b_k \sim U[0, 2\pi)` are drawn once (from ``seed`` or ``generator``) and kept as buffers
    ``omega``, ``frequencies``, ``phases``; they are never trained.

    Conventions (``convention=``):

    * ``"official"`` (the published code; reproduces its tuned hyperparameters): :math:`A = 1`,
      :math:`\lambda' = \lambda/2`, and points are first pulled to radius at most
      :math:`2\operatorname{artanh}(1 - 10^{-5}) \approx 12.2` (ball norm :math:`1 - 10^{-5}`), like the
      published in-place renormalisation: the value is moved, the gradient passes straight through;
    * ``"kernel"`` (the paper's normalised random-feature form): :math:`A = \sqrt{2/D}`,
      :math:`\lambda' = \lambda`, so that :math:`\sum_k \phi_k(x)\phi_k(y) \to k(d(x, y)) =
      \mathbb{E}_\lambda\,\Phi_\lambda(d(x, y))`.

    The amplitude :math:`e^{\rho h} \le e^{\rho d(0, x)}` is unbounded (about :math:`5\cdot 10^{39}` at
    ball norm :math:`1 - 10^{-5}` for ``n = 16``). Optional controls, all off by default:

    * ``radius_cap``: points farther than this from the origin are moved radially onto that sphere;
    * ``amplitude_cap``: :math:`\rho h` is clipped at this value inside the amplitude only;
    * ``log_scale``: the amplitude is :math:`e^{\rho h_k - c_k}` with :math:`c_k = \max_i \rho h_k(x_i)`
      over the rows of the input in training mode, kept in the buffer ``log_shift`` and frozen in
      evaluation mode (a positive column rescaling that a following linear layer absorbs).

    Parameters
    ----------
    manifold : HyperbolicManifold or None
        Model of the input points; ``None`` means ``PoincareBall(dim_in)``.
    dim_in : int
        Hyperbolic dimension ``n`` (must equal ``manifold.dim``).
    n_features : int
        Number of features ``D``.
    lambda_scale : float
        Standard deviation ``s`` of the frequencies (``>= 0``).
    convention : {"official", "kernel"}
    boundary : {"uniform", "fixed_uniform"}
        ``"fixed_uniform"`` (``n = 2`` only): equispaced angles :math:`2\pi k/D`.
    radius_cap, amplitude_cap : float, optional
    log_scale : bool
    route : {"auto", "lorentz", "reference"}
        How ``h`` is computed (:func:`hyperbolic.poisson.log_poisson`).
    generator : torch.Generator, optional
        Source of the random draws (then :meth:`reset_parameters` draws afresh from it).
    seed : int, optional
        Seed of a private generator (then :meth:`reset_parameters` reproduces the same draws). Default 0.
    dtype, device
        Of the buffers. Inputs of another dtype/device use the buffers converted to theirs.

    Shapes
    ------
    input ``(..., storage)`` -> output ``(..., n_features)``, in the input's dtype and device.
    """

    def __init__(
        self,
        manifold: HyperbolicManifold | None,
        dim_in: int,
        n_features: int,
        *,
        lambda_scale: float = 0.1,
        convention: str = "official",
        boundary: str = "uniform",
        radius_cap: float | None = None,
        amplitude_cap: float | None = None,
        log_scale: bool = False,
        route: str = "auto",
        generator: torch.Generator | None = None,
        seed: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ):
        super().__init__(dim_in, n_features, generator, seed)
        if manifold is None:
            manifold = PoincareBall(dim_in)
        if not isinstance(manifold, HyperbolicManifold):
            raise TypeError(
                f"manifold must be a hyperbolic.HyperbolicManifold (e.g. hyperbolic.PoincareBall({dim_in})), "
                f"got {type(manifold).__name__}"
            )
        if manifold.dim != dim_in:
            raise ValueError(f"dim_in={dim_in} does not match the manifold's dimension {manifold.dim}")
        if dim_in < 2:
            raise ValueError("random Laplacian features need dimension n >= 2 (the boundary of H^1 is two points)")
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        if boundary == "fixed_uniform" and dim_in != 2:
            raise ValueError("boundary='fixed_uniform' (equispaced angles) needs dim_in == 2")
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
        lambda_scale = float(lambda_scale)
        if not math.isfinite(lambda_scale) or lambda_scale < 0:
            raise ValueError(f"lambda_scale must be a finite number >= 0, got {lambda_scale}")
        if dtype not in (torch.float64, torch.float32):
            raise TypeError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
        self.manifold = manifold
        self.lambda_scale = lambda_scale
        self.convention = convention
        self.boundary = boundary
        self.radius_cap = _positive_or_none(radius_cap, "radius_cap")
        self.amplitude_cap = _positive_or_none(amplitude_cap, "amplitude_cap")
        self.log_scale = bool(log_scale)
        self.route = route
        self.register_buffer("omega", torch.empty(n_features, dim_in, dtype=dtype, device=device))
        self.register_buffer("frequencies", torch.empty(n_features, dtype=dtype, device=device))
        self.register_buffer("phases", torch.empty(n_features, dtype=dtype, device=device))
        self.register_buffer("log_shift", torch.full((n_features,), math.nan, dtype=dtype, device=device))
        self.reset_parameters()

    @property
    def rho(self) -> float:
        r""":math:`\rho = (n - 1)/2`."""
        return (self.dim_in - 1) / 2

    def reset_parameters(self, generator: torch.Generator | None = None, order: str = "omega_first") -> None:
        """Draw ``omega``, ``frequencies`` and ``phases`` and clear ``log_shift``.

        Parameters
        ----------
        generator : torch.Generator, optional
            Draw from this generator (advancing it) instead of the layer's own, e.g. to share one stream
            with a model's other initialisation as the published code does (``HyLaSGC(rng="published")``).
        order : {"omega_first", "published"}
            ``"omega_first"``: ω, λ, b; ``"published"``: λ, ω, b, the published code's order (ω from a
            ``(D, n)`` normal draw in both).
        """
        if order not in DRAW_ORDERS:
            raise ValueError(f"order must be one of {DRAW_ORDERS}, got {order!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        g = self._rewound_generator() if generator is None else generator
        D, n = self.n_features, self.dim_in

        def draw_frequencies():
            return self.lambda_scale * torch.randn(D, dtype=torch.float64, generator=g)

        frequencies = draw_frequencies() if order == "published" else None
        if self.boundary == "fixed_uniform":
            angles = 2 * math.pi * torch.arange(D, dtype=torch.float64) / D
            omega = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
        else:
            gauss = torch.randn(D, n, dtype=torch.float64, generator=g)
            omega = gauss / scaled_norm(gauss, keepdim=True)
        if frequencies is None:
            frequencies = draw_frequencies()
        phases = 2 * math.pi * torch.rand(D, dtype=torch.float64, generator=g)
        with torch.no_grad():
            self.omega.copy_(omega)
            self.frequencies.copy_(frequencies)
            self.phases.copy_(phases)
            self.log_shift.fill_(math.nan)

    # ----------------------------------------------------------------- the pieces
    @property
    def max_norm(self) -> float | None:
        r"""Largest unit-ball norm fed to the features (``1 - 1e-5`` in the official convention, the
        ``radius_cap`` as a norm :math:`\tanh(r/2)`), or ``None`` without a cap."""
        norms = [] if self.radius_cap is None else [math.tanh(self.radius_cap / 2)]
        if self.convention == "official":
            norms.append(OFFICIAL_MAX_NORM)
        return min(norms) if norms else None

    def _cap_ball(self, x: torch.Tensor) -> torch.Tensor:
        r"""Unit-ball rows as the features see them: the ``radius_cap`` applied (differentiably), then, in
        the official convention, the published renormalisation to norm :math:`1 - 10^{-5}`. The published
        code renormalises the parameter in place without recording it, so that step passes the gradient
        through unchanged (straight through) instead of removing its radial part."""
        if self.radius_cap is not None:
            x = poincare_kernel.projx(x, math.tanh(self.radius_cap / 2))
        if self.convention == "official":
            x = poincare_kernel.projx(x.detach(), OFFICIAL_MAX_NORM) + (x - x.detach())
        return x

    def log_poisson(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`h_k(x)` at unit curvature after the radius cap: ``(..., storage) -> (..., D)``."""
        self.manifold.assert_points(x, "points")
        omega = self.omega.to(device=x.device)
        max_norm = self.max_norm
        if max_norm is None:
            return log_poisson(self.manifold, x, omega.to(x.dtype), self.route)
        if isinstance(self.manifold, PoincareBall) and self.route == "auto":
            return log_poisson_ball(self._cap_ball(x / self.manifold.scale(x)), omega.to(x.dtype))
        max_radius = 2 * math.atanh(max_norm)
        # Other models: rows beyond the cap are replaced by ball points at the cap in the same direction.
        storage = x.shape[-1]
        flat = x.reshape(-1, storage)
        origin = self.manifold.origin(dtype=x.dtype, device=x.device)
        radius = self.manifold.dist(origin, flat) / self.manifold.scale(flat)
        far = radius > max_radius
        if not bool(far.any()):
            h = log_poisson(self.manifold, flat, omega.to(x.dtype), self.route)
        else:
            rows = torch.nonzero(far).squeeze(-1)
            near_rows = torch.nonzero(~far).squeeze(-1)
            h = torch.zeros(flat.shape[0], self.n_features, dtype=x.dtype, device=x.device)
            if near_rows.numel():
                h = h.index_put((near_rows,), log_poisson(self.manifold, flat[near_rows], omega.to(x.dtype), self.route))
            spatial = self.manifold.to_lorentz(flat[rows])[:, 1:]
            ball = max_norm * spatial / scaled_norm(spatial, keepdim=True)
            h = h.index_put((rows,), log_poisson_ball(ball, omega.to(x.dtype)))
        return h.reshape(*x.shape[:-1], self.n_features)

    def log_amplitude(self, h: torch.Tensor) -> torch.Tensor:
        r""":math:`\log A + \rho h - c` with the amplitude cap and the log-domain shift applied."""
        log_amp = self.rho * h
        if self.amplitude_cap is not None:
            log_amp = log_amp.clamp_max(self.amplitude_cap)
        if self.log_scale:
            log_amp = log_amp - self._shift(log_amp)
        if self.convention == "kernel":
            log_amp = log_amp + 0.5 * math.log(2 / self.n_features)
        return log_amp

    def _shift(self, log_amp: torch.Tensor) -> torch.Tensor:
        rows = log_amp.detach().reshape(-1, self.n_features)
        if self.training or bool(torch.isnan(self.log_shift).any()):
            shift = rows.amax(0) if rows.shape[0] else torch.zeros_like(rows[0])
            if self.training:
                with torch.no_grad():
                    self.log_shift.copy_(shift.to(self.log_shift))
            return shift
        return self.log_shift.to(log_amp)

    def phase(self, h: torch.Tensor) -> torch.Tensor:
        r""":math:`\lambda'_k h_k + b_k`."""
        frequencies = self.frequencies.to(h)
        if self.convention == "official":
            frequencies = frequencies / 2
        return frequencies * h + self.phases.to(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(..., storage) -> (..., n_features)``."""
        if isinstance(self.manifold, PoincareBall) and self.route == "auto":
            return self._ball_forward(x)
        h = self.log_poisson(x)
        return torch.exp(self.log_amplitude(h)) * torch.cos(self.phase(h))

    def _ball_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same features on the ball through :class:`_BallFeatures` (one pass, analytic gradient)."""
        self.manifold.assert_points(x, "points")
        flat = (x / self.manifold.scale(x)).reshape(-1, self.dim_in)
        flat = self._cap_ball(flat)
        fit_shift = self.log_scale and (self.training or bool(torch.isnan(self.log_shift).any()))
        shift = self.log_shift.to(flat) if self.log_scale and not fit_shift else None
        frequencies = self.frequencies.to(flat) / (2 if self.convention == "official" else 1)
        offset = 0.5 * math.log(2 / self.n_features) if self.convention == "kernel" else 0.0
        features, used = _BallFeatures.apply(
            flat, self.omega.to(flat), frequencies, self.phases.to(flat), self.rho, self.amplitude_cap,
            shift, fit_shift, offset,
        )
        if self.log_scale and self.training:
            with torch.no_grad():
                self.log_shift.copy_(used)
        return features.reshape(*x.shape[:-1], self.n_features)

    def extra_repr(self) -> str:
        parts = [
            f"manifold={self.manifold!r}".replace("\n", " "),
            f"dim_in={self.dim_in}",
            f"n_features={self.n_features}",
            f"lambda_scale={self.lambda_scale:g}",
            f"convention={self.convention!r}",
        ]
        if self.boundary != "uniform":
            parts.append(f"boundary={self.boundary!r}")
        if self.radius_cap is not None:
            parts.append(f"radius_cap={self.radius_cap:g}")
        if self.amplitude_cap is not None:
            parts.append(f"amplitude_cap={self.amplitude_cap:g}")
        if self.log_scale:
            parts.append("log_scale=True")
        if self.route != "auto":
            parts.append(f"route={self.route!r}")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return ", ".join(parts)


class RandomFourierFeatures(_RandomFeatureMap):
    r"""Euclidean random Fourier features :math:`\phi(x) = \sqrt{2/D}\cos(xW + b)` (the "RFF" baseline).

    :math:`W \sim N(0, s^2)^{n \times D}` and :math:`b \sim U[0, 2\pi)` are drawn once and kept as buffers
    ``weight`` and ``phases``; :math:`\phi(x)^\top\phi(y) \to e^{-s^2\lVert x - y\rVert^2/2}`.

    Parameters
    ----------
    dim_in : int
        Input dimension ``n``.
    n_features : int
        ``D``.
    scale : float
        ``s``.
    generator, seed, dtype, device
        As for :class:`RandomLaplacianFeatures`.

    Shapes
    ------
    input ``(..., n)`` -> output ``(..., n_features)``.
    """

    def __init__(
        self,
        dim_in: int,
        n_features: int,
        *,
        scale: float = 1.0,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ):
        super().__init__(dim_in, n_features, generator, seed)
        scale = float(scale)
        if not math.isfinite(scale) or scale < 0:
            raise ValueError(f"scale must be a finite number >= 0, got {scale}")
        self.manifold = geoopt.Euclidean(ndim=1)
        self.scale = scale
        self.register_buffer("weight", torch.empty(dim_in, n_features, dtype=dtype, device=device))
        self.register_buffer("phases", torch.empty(n_features, dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw ``weight`` then ``phases``."""
        g = self._rewound_generator()
        weight = self.scale * torch.randn(self.dim_in, self.n_features, dtype=torch.float64, generator=g)
        phases = 2 * math.pi * torch.rand(self.n_features, dtype=torch.float64, generator=g)
        with torch.no_grad():
            self.weight.copy_(weight)
            self.phases.copy_(phases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(..., n) -> (..., n_features)``."""
        if x.shape[-1] != self.dim_in:
            raise ValueError(f"expected inputs with last axis {self.dim_in}, got shape {tuple(x.shape)}")
        check_finite(x, "inputs")
        projection = x @ self.weight.to(x) + self.phases.to(x)
        return math.sqrt(2 / self.n_features) * torch.cos(projection)

    def extra_repr(self) -> str:
        text = f"dim_in={self.dim_in}, n_features={self.n_features}, scale={self.scale:g}"
        return text + (f", seed={self.seed}" if self.seed is not None else "")
