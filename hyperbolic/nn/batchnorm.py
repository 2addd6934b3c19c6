r"""Hyperbolic batch normalisation (Lou et al. 2020, with the fixes of ``../shared/notes/frechet.md`` §6).

Training step on a batch :math:`x_1, \dots, x_B` (per group when the input has a group axis):

1. :math:`\mu_B` = Fréchet mean of the batch (differentiable by the implicit function theorem) and
   :math:`\sigma_B^2 = \frac1B \sum_i d(x_i, \mu_B)^2`;
2. :math:`\text{out}_i = \exp_m\!\big(\sqrt{\sigma^2/(\sigma_B^2 + \epsilon)}\; PT_{\mu_B \to m}(\log_{\mu_B} x_i)\big)`
   with the learned location :math:`m = \exp_0(\text{location})` and learned variance :math:`\sigma^2`;
3. without gradient: :math:`\text{running\_mean} \leftarrow \exp_{rm}(\text{mom}\cdot\log_{rm}\mu_B)` and
   :math:`\text{running\_var} \leftarrow (1 - \text{mom})\,\text{running\_var} + \text{mom}\,\sigma_B^2 B/(B-1)`.

Evaluation uses only the running statistics, so each sample's output depends on that sample alone:
:math:`\text{out}_i = \exp_m\!\big(\sqrt{\sigma^2/(\text{running\_var} + \epsilon)}\; PT_{rm \to m}(\log_{rm} x_i)\big)`.

Because :math:`\sum_i \log_{\mu_B} x_i = 0` and parallel transport is a linear isometry, in training mode
the outputs have Fréchet mean exactly :math:`m` and Fréchet variance :math:`\sigma^2\sigma_B^2/(\sigma_B^2+\epsilon)`.

The geometry is evaluated on the unit hyperboloid in float64 (the user's model is reached through
:mod:`hyperbolic.nn._charts`); distances and variances are in the units of the user's curvature.
"""

from __future__ import annotations

import torch

from ..math import lorentz as L
from ._charts import chart, describe
from ._kernel import DenseMean
from .frechet import DEFAULT_MAX_ITER, default_tol

__all__ = ["HyperbolicBatchNorm"]


def _origin(shape, like: torch.Tensor) -> torch.Tensor:
    o = torch.zeros(*shape, like.shape[-1], dtype=like.dtype, device=like.device)
    o[..., 0] = 1
    return o


def _exp0(v: torch.Tensor) -> torch.Tensor:
    """Unit-hyperboloid exponential at the origin of spatial tangent vectors ``v [..., n]``."""
    u = torch.cat([torch.zeros_like(v[..., :1]), v], dim=-1)
    return L.expmap(_origin(v.shape[:-1], u), u)


class HyperbolicBatchNorm(torch.nn.Module):
    r"""Riemannian batch normalisation on a hyperbolic manifold.

    Parameters
    ----------
    dim : int
        Dimension ``n`` of the manifold (storage ``n`` on the ball, ``n + 1`` on the hyperboloid).
    manifold : optional
        Poincaré ball or Lorentz model, library or geoopt (default: the unit Poincaré ball).
    groups : int, optional
        Number of groups ``C`` with separate statistics; inputs are then ``[B, C, storage]``.
    momentum : float or None
        Weight of the new batch statistic in the running averages (PyTorch's convention, default 0.1);
        ``None`` gives the cumulative average, ``1/num_batches_tracked``.
    eps : float
        Added to the batch variance before dividing.
    tol, max_iter
        Fréchet-mean tolerance (default by input dtype) and iteration cap.

    Attributes
    ----------
    location : torch.nn.Parameter
        ``[C, n]`` tangent vector at the origin in an orthonormal frame (so ``‖location‖`` is the distance
        from the origin to :math:`m`); the output mean is :math:`m = \exp_0(\text{location})`.
    log_variance : torch.nn.Parameter
        ``[C]``: the output variance is :math:`\sigma^2 = e^{\text{log\_variance}}` (initialised to 1).
    running_mean : buffer
        ``[C, storage]`` point (initially the origin).
    running_var : buffer
        ``[C]`` (initially 1).
    num_batches_tracked : buffer
        Training steps seen.

    Shapes
    ------
    - **input**: ``[B, storage]`` (``groups=None``) or ``[B, C, storage]``
    - **output**: same shape, same dtype and device
    """

    def __init__(
        self,
        dim: int,
        manifold=None,
        groups: int | None = None,
        momentum: float | None = 0.1,
        eps: float = 1e-5,
        tol: float | None = None,
        max_iter: int = DEFAULT_MAX_ITER,
    ):
        super().__init__()
        self.chart = chart(manifold)
        self.manifold = manifold
        self.dim = dim
        self.groups = groups
        self.momentum = momentum
        self.eps = eps
        self.tol = tol
        self.max_iter = max_iter
        C = 1 if groups is None else groups
        self.storage = dim + self.chart.storage_extra if self.chart.kind != "generic" else manifold.storage_dim
        self.location = torch.nn.Parameter(torch.zeros(C, dim))
        self.log_variance = torch.nn.Parameter(torch.zeros(C))
        self.register_buffer("running_mean", torch.zeros(C, self.storage))
        self.register_buffer("running_var", torch.ones(C))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean to the origin, running variance to 1, counter to 0."""
        with torch.no_grad():
            rm = self.running_mean
            R = self.chart.radius(rm)
            zero = torch.zeros(rm.shape[0], self.dim, dtype=torch.float64, device=rm.device)
            rm.copy_(self.chart.from_ball(zero, R, rm.dtype))
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Location 0 (output mean at the origin), variance 1, and fresh running statistics."""
        self.reset_running_stats()
        with torch.no_grad():
            self.location.zero_()
            self.log_variance.zero_()

    # ------------------------------------------------------------------ helpers
    def _to_unit_lorentz(self, x: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        return L.from_poincare(self.chart.to_ball(x, R))

    def _from_unit_lorentz(self, X: torch.Tensor, R: torch.Tensor, dtype) -> torch.Tensor:
        return self.chart.from_ball(L.to_poincare(X), R, dtype)

    def _target(self, R: torch.Tensor) -> torch.Tensor:
        """The learned location :math:`m` on the unit hyperboloid, ``[C, n + 1]``."""
        return _exp0(self.location.to(torch.float64) / R)

    def _normalise(self, X, centre, var, R):
        """``exp_m(sqrt(sigma^2 / (var + eps)) PT_{centre -> m} log_centre X)`` on the unit hyperboloid."""
        m = self._target(R)
        sigma2 = self.log_variance.to(torch.float64).exp()
        factor = torch.sqrt(sigma2 / (var + self.eps)) / R  # tangent vectors scaled to unit curvature
        v = L.logmap(centre, X) * R
        v = L.transp(centre.expand_as(X), m.expand_as(X), v)
        return L.expmap(m.expand_as(X), factor.unsqueeze(-1) * v)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = self.groups is not None
        if x.dim() != (3 if grouped else 2) or x.shape[-1] != self.storage or (grouped and x.shape[1] != self.groups):
            expected = f"[B, {self.groups}, {self.storage}]" if grouped else f"[B, {self.storage}]"
            raise ValueError(f"HyperbolicBatchNorm expects input {expected}, got {tuple(x.shape)}")
        xs = x if grouped else x.unsqueeze(1)  # [B, C, storage]
        B = xs.shape[0]
        R = self.chart.radius(x)
        X = self._to_unit_lorentz(xs, R)  # [B, C, n + 1]
        if self.training:
            if B < 2:
                raise ValueError("HyperbolicBatchNorm needs more than one sample per group in training mode")
            p = L.to_poincare(X).transpose(0, 1)  # [C, B, n]
            w = torch.ones(p.shape[:2], dtype=torch.float64, device=x.device)
            tol = default_tol(x.dtype) if self.tol is None else self.tol
            mu_ball = DenseMean.apply(p, w, float(tol), int(self.max_iter))[0]
            centre = L.from_poincare(mu_ball)  # [C, n + 1]
            batch_var = (R * L.dist(X, centre)).square().mean(0)  # [C]
            out = self._normalise(X, centre, batch_var, R)
            self._update_running(centre.detach(), batch_var.detach(), B, R.detach())
        else:
            rm = self._to_unit_lorentz(self.running_mean, R)
            out = self._normalise(X, rm, self.running_var.to(torch.float64), R)
        out = self._from_unit_lorentz(out, R, x.dtype)
        return out if grouped else out.squeeze(1)

    @torch.no_grad()
    def _update_running(self, centre, batch_var, B, R):
        self.num_batches_tracked += 1
        mom = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        rm = self._to_unit_lorentz(self.running_mean, R)
        new_rm = L.expmap(rm, mom * L.logmap(rm, centre))
        self.running_mean.copy_(self._from_unit_lorentz(new_rm, R, self.running_mean.dtype))
        unbiased = batch_var * B / (B - 1)
        self.running_var.copy_(((1 - mom) * self.running_var.to(torch.float64) + mom * unbiased).to(self.running_var.dtype))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        m = describe(self.manifold)
        groups = "" if self.groups is None else f", groups={self.groups}"
        return f"{self.dim}, manifold={m}{groups}, momentum={self.momentum}, eps={self.eps}"
