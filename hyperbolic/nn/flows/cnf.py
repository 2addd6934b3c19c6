r"""Continuous normalizing flows on :math:`H^n` and :math:`S^n` (manifold CNFs).

Data :math:`x` sits at :math:`t = 0`, the latent :math:`z` at :math:`t = 1`; :math:`\pi` is the base density
(Riemannian volume). By the instantaneous change of variables inside the chart(s),

.. math::

    \log p(x) = \log\pi(z) + \int_0^1 \operatorname{tr}\frac{\partial g}{\partial y}(y(t), t)\,dt
                + J_p(y(1)) - J_p(y(0)),

summed over the charts of the sphere schedule (:mod:`hyperbolic.nn.flows.ode`). The chart terms are
always :math:`+J` on the latent side and :math:`-J` on the data side.
"""

from __future__ import annotations

import torch
from torch import nn

from .distributions import VonMisesFisher, WrappedNormal
from .ode import ManifoldODE

__all__ = ["ManifoldCNF"]


class ManifoldCNF(nn.Module):
    r"""A manifold continuous normalizing flow: a :class:`ManifoldODE` pushing a base distribution.

    Parameters
    ----------
    ode : ManifoldODE
        The flow; data at :math:`t = 0`, latent at :math:`t = 1`.
    base : torch.distributions.Distribution
        Base density on the same manifold, with ``log_prob`` and ``sample``
        (:class:`WrappedNormal`, :class:`VonMisesFisher`). Default: :math:`\mathcal{WN}(o, I)` on
        :math:`H^n`, :math:`\mathrm{vMF}(o, \kappa = 1)` on :math:`S^n` (the published bases).
    trace : {"auto", "exact", "hutchinson"}
        Divergence used in training mode. ``"exact"`` costs ``n`` vector-Jacobian products per field
        evaluation (use for ``n`` up to about 4); ``"hutchinson"`` one, with a Rademacher (or Gaussian)
        probe drawn once per sample per solve (unbiased, variance growing with
        :math:`\lVert\partial g/\partial y\rVert_F`). ``"auto"``: exact for ``n <= 4``, Hutchinson above.
    noise : {"rademacher", "gaussian"}
        Hutchinson probe distribution.
    exact_in_eval : bool
        In eval mode (``model.eval()``) use the exact trace whatever ``trace`` says, so that reported
        log-likelihoods carry no estimator noise.

    Shapes
    ------
    ``forward(x)``: ``(batch, storage) -> ((batch, storage), (batch,))``; ``log_prob(x)``:
    ``(batch, storage) -> (batch,)``; ``sample(n)``: ``-> (n, storage)``.
    """

    def __init__(
        self,
        ode: ManifoldODE,
        base=None,
        *,
        trace: str = "auto",
        noise: str = "rademacher",
        exact_in_eval: bool = True,
    ):
        super().__init__()
        if not isinstance(ode, ManifoldODE):
            raise TypeError(f"ode must be a ManifoldODE, got {type(ode).__name__}")
        if trace not in ("auto", "exact", "hutchinson"):
            raise ValueError(f"trace must be 'auto', 'exact' or 'hutchinson', got {trace!r}")
        if trace == "auto":
            trace = "exact" if ode.manifold.dim <= 4 else "hutchinson"
        if noise not in ("rademacher", "gaussian"):
            raise ValueError(f"noise must be 'rademacher' or 'gaussian', got {noise!r}")
        self.ode = ode
        manifold = ode.manifold
        if base is None:
            if ode.is_sphere:
                base = VonMisesFisher(manifold.origin(), 1.0)
            else:
                base = WrappedNormal(manifold, manifold.origin(), 1.0)
        base_manifold = getattr(base, "manifold", None)
        if base_manifold is not None and (
            type(base_manifold) is not type(manifold) or base_manifold.dim != manifold.dim
        ):
            raise ValueError(f"base lives on {base_manifold!r}, the flow on {manifold!r}")
        self.base = base
        self.trace = trace
        self.noise = noise
        self.exact_in_eval = exact_in_eval

    def reset_parameters(self) -> None:
        """Re-initialise the flow's field (:meth:`ManifoldODE.reset_parameters`); the base is fixed."""
        self.ode.reset_parameters()

    @property
    def manifold(self):
        return self.ode.manifold

    def extra_repr(self) -> str:
        return (
            f"base={self.base!r}, trace={self.trace!r}"
            + (f", noise={self.noise!r}" if self.trace == "hutchinson" else "")
            + ("" if self.exact_in_eval else ", exact_in_eval=False")
        )

    def _divergence(self, like: torch.Tensor):
        if self.trace == "exact" or (self.exact_in_eval and not self.training):
            return "exact", None
        shape = (like.shape[0], self.manifold.dim)
        if self.noise == "gaussian":
            noise = torch.randn(shape, dtype=like.dtype, device=like.device)
        else:
            noise = torch.randint(0, 2, shape, device=like.device).to(like.dtype) * 2 - 1
        return "hutchinson", noise

    def _parameter_like(self) -> torch.Tensor | None:
        return next(iter(self.ode.parameters()), None)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Latents ``z`` ``(batch, storage)`` and ``delta`` ``(batch,)`` with
        :math:`\log p(x) = \log\pi(z) + \Delta`."""
        divergence, noise = self._divergence(x)
        return self.ode.integrate(x, 0.0, 1.0, divergence=divergence, noise=noise)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Model log-density ``(batch,)`` of points ``(batch, storage)``, Riemannian volume."""
        z, delta = self(x)
        return self.base.log_prob(z) + delta

    def inverse(
        self, z: torch.Tensor, *, divergence: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        r"""Flow latents back to data space: ``x`` and, with a divergence, :math:`\Delta` such that
        :math:`\log p(x) = \log\pi(z) - \Delta`."""
        return self.ode.integrate(z, 1.0, 0.0, divergence=divergence)

    def _base_sample(self, n: int) -> torch.Tensor:
        z = self.base.sample((n,))
        like = self._parameter_like()
        return z if like is None else z.to(dtype=like.dtype, device=like.device)

    def sample(self, n: int) -> torch.Tensor:
        """``n`` samples ``(n, storage)`` of the model: :math:`z \\sim \\pi`, flowed from ``t = 1`` to ``0``."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        return self.inverse(self._base_sample(n))[0]

    def sample_with_log_prob(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples ``(n, storage)`` and their model log-densities ``(n,)`` (exact trace)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        z = self._base_sample(n)
        x, delta = self.inverse(z, divergence="exact")
        return x, self.base.log_prob(z) - delta
