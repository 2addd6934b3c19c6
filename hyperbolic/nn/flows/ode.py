r"""Manifold ODEs integrated in exponential-map charts (Lou et al., "Neural Manifold ODEs", 2020).

An ODE :math:`\dot z = f_\theta(z, t)` with :math:`f_\theta(z, t) \in T_zM` is integrated through a chart
:math:`\varphi = \exp_p : T_pM \cong \mathbb{R}^n \to M` (orthonormal frame, ``n`` coordinates): with
:math:`z = \exp_p(y)`,

.. math::

    \dot y = g(y, t) = (D\exp_p(y))^{-1} f_\theta(\exp_p(y), t),

solved with a torchdiffeq solver, and mapped back with :math:`z = \exp_p(y)`.

* :math:`H^n`: one global chart at the origin. The field may be learned directly in chart coordinates
  (``field_on="chart"``, the published choice; legitimate because the chart is global) or on the
  manifold (``field_on="manifold"``, pulled back analytically).
* :math:`S^n`: :math:`\exp_p` is a diffeomorphism only for :math:`\lVert y\rVert < \pi`, so charts are
  switched: the time interval is cut into ``segments`` pieces; at the end of a piece a sample's chart is
  re-centred at its current point (:math:`p \leftarrow \exp_p(y)`, :math:`y \leftarrow 0`), every sample
  (the published fixed schedule, ``switch_radius=None``) or only those with :math:`\lVert y\rVert` beyond
  ``switch_radius`` (dynamic switching). The field is learned on the manifold (ambient vectors, projected
  onto :math:`T_zS^n`).

**Density bookkeeping.** :meth:`ManifoldODE.integrate` also returns, when asked, the change of
log-density between the two ends. With :math:`\ell(t_1) = \int_{t_0}^{t_1}\operatorname{tr}\partial g/\partial y\,dt`
and :math:`J_p(y) = \log\lvert\det D\exp_p(y)\rvert`,

.. math::

    \log p_{t_0}(x_{t_0}) = \log p_{t_1}(x_{t_1}) + \underbrace{\ell(t_1) + J_p(y(t_1)) - J_p(y(t_0))}_{\Delta},

summed over the charts used. It holds for either order of :math:`t_0, t_1`: the chart density is
:math:`q_t(y) = p_t(\exp_p y)e^{J_p(y)}` and :math:`\log q_{t_0}(y(t_0)) = \log q_{t_1}(y(t_1)) + \ell(t_1)`.
The chart terms are :math:`+J` at the :math:`t_1` end and :math:`-J` at the :math:`t_0` end (the published
:math:`H^n` code swaps them; see ``../shared/notes/flows.md`` §3).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...manifold import HyperbolicManifold
from .functional import HyperbolicChart, SphereChart
from .sphere import Sphere

__all__ = ["ChartDynamics", "ManifoldODE", "ChartDomainError"]

_DIVERGENCES = (None, "exact", "hutchinson")


class ChartDomainError(RuntimeError):
    """A sample's chart coordinate reached the radius where its exponential-map chart stops being one-to-one."""


def divergence_exact(g: torch.Tensor, y: torch.Tensor, create_graph: bool) -> torch.Tensor:
    r""":math:`\operatorname{tr}\partial g/\partial y = \sum_i \partial g_i/\partial y_i` with ``n``
    vector-Jacobian products; ``g``, ``y`` ``(batch, n)`` -> ``(batch,)``."""
    trace = torch.zeros(g.shape[:-1], dtype=g.dtype, device=g.device)
    for i in range(g.shape[-1]):
        (row,) = torch.autograd.grad(g[..., i].sum(), y, create_graph=create_graph, retain_graph=True)
        trace = trace + row[..., i]
    return trace


def divergence_hutchinson(
    g: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, create_graph: bool
) -> torch.Tensor:
    r"""Hutchinson's estimator :math:`\varepsilon^\top(\partial g/\partial y)\varepsilon` (one VJP); unbiased
    when :math:`E[\varepsilon\varepsilon^\top] = I`; ``(batch, n)`` -> ``(batch,)``."""
    (vjp,) = torch.autograd.grad((g * noise).sum(), y, create_graph=create_graph, retain_graph=True)
    return (vjp * noise).sum(-1)


def _reset(module: nn.Module) -> None:
    """``module.reset_parameters()``, or else the same for each child (PyG's ``reset``)."""
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
    else:
        for child in module.children():
            _reset(child)


class ChartDynamics(nn.Module):
    r"""The right-hand side of the chart ODE, in the form torchdiffeq integrates.

    State (a tuple): ``y`` ``(batch, n)`` chart coordinates; with a divergence, ``ell`` ``(batch,)``, the
    running integral of the divergence (:math:`\dot\ell = \operatorname{tr}\partial g/\partial y`); on the
    sphere, the chart centres ``p`` ``(batch, n + 1)`` (constant, :math:`\dot p = 0`; kept in the state so
    the adjoint method propagates gradients through chart switches).

    Parameters
    ----------
    ode : ManifoldODE
        Supplies the manifold, chart and field.
    divergence : {None, "exact", "hutchinson"}
        Whether (and how) to integrate the divergence.
    noise : torch.Tensor, optional
        Hutchinson probe vectors ``(batch, n)``, fixed along the trajectory.
    """

    def __init__(self, ode: ManifoldODE, divergence: str | None = None, noise: torch.Tensor | None = None):
        super().__init__()
        if divergence not in _DIVERGENCES:
            raise ValueError(f"divergence must be one of {_DIVERGENCES}, got {divergence!r}")
        if divergence == "hutchinson" and noise is None:
            raise ValueError("the Hutchinson divergence needs noise vectors")
        self.field = ode.field
        self.manifold = ode.manifold
        self._ode = (ode,)  # not a submodule: its parameters are the field's
        self.divergence = divergence
        self.noise = noise
        self.evaluations = 0

    def velocity(self, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor | None = None) -> torch.Tensor:
        """Chart velocity :math:`g(y, t)` ``(batch, n)`` (``p``: sphere chart centres)."""
        ode = self._ode[0]
        if ode.field_on == "chart":
            return self.field(t, y)
        if p is None:
            z = ode.chart.from_chart(y)
            return ode.chart.pullback(y, z, self.field(t, z))
        z = ode.chart.from_chart(p, y)
        return ode.chart.pullback(p, y, z, self.field(t, z))

    def forward(self, t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        self.evaluations += 1
        sphere = isinstance(self.manifold, Sphere)
        p = state[-1] if sphere else None
        y = state[0]
        if self.divergence is None:
            g = self.velocity(t, y, p)
            return (g, torch.zeros_like(p)) if sphere else (g,)
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            # Without an outer graph, differentiate with respect to a fresh leaf: a view taken under
            # no_grad of a tensor that requires grad claims requires_grad but is not in any graph.
            if not create_graph or not y.requires_grad:
                y = y.detach().requires_grad_(True)
            g = self.velocity(t, y, p)
            if self.divergence == "exact":
                trace = divergence_exact(g, y, create_graph)
            else:
                trace = divergence_hutchinson(g, y, self.noise.to(g), create_graph)
        if not create_graph:
            g, trace = g.detach(), trace.detach()
        return (g, trace, torch.zeros_like(p)) if sphere else (g, trace)

    def extra_repr(self) -> str:
        return f"divergence={self.divergence!r}"


class ManifoldODE(nn.Module):
    r"""Integrate a learned vector field on :math:`H^n` (any model) or :math:`S^n` in exp-map charts.

    Parameters
    ----------
    manifold : HyperbolicManifold or Sphere
        The space; points are in its storage coordinates ``(batch, storage)``.
    field : nn.Module
        ``field(t, y) -> (batch, n)`` in chart coordinates (``field_on="chart"``, :math:`H^n` only), or
        ``field(t, z) -> (batch, storage)`` a tangent vector at ``z`` in the model's coordinates
        (``field_on="manifold"``; projected onto the tangent space). :class:`FieldMLP` fits both.
        On :math:`H^n` an ambient field should have bounded Riemannian speed: a raw MLP of Lorentz
        coordinates projected onto :math:`T_z` grows like :math:`\cosh r` and its flow can blow up in
        finite time (for the Lorentz model, output the spatial part :math:`f_s` and set
        :math:`f_0 = \langle z_s, f_s\rangle / z_0`, whose speed is at most :math:`\lVert f_s\rVert`).
    field_on : {"chart", "manifold"}, optional
        Default ``"chart"`` on :math:`H^n`, ``"manifold"`` on :math:`S^n` (where it is the only choice).
    segments : int, optional
        Sphere: number of equal time pieces after which charts are re-centred. Default 4 (published).
    switch_radius : float, optional
        Sphere: re-centre only samples with :math:`\lVert y\rVert >` ``switch_radius`` (``< pi``) at the
        end of a piece; ``None`` re-centres every sample (fixed schedule).
    method : str
        torchdiffeq solver. Default ``"dopri5"`` on :math:`H^n`, ``"rk4"`` on :math:`S^n`.
    atol, rtol : float
        Tolerances of adaptive solvers.
    step_size : float, optional
        Step of fixed-grid solvers. Default 1/16 on :math:`S^n`.
    adjoint : bool
        Backpropagate with the adjoint method (``odeint_adjoint``) instead of through the solver.

    Notes
    -----
    Construction re-initialises a field that has its own ``reset_parameters`` (e.g. :class:`FieldMLP`), as
    PyG layers do with the networks they wrap: load trained weights, or rescale the initial ones, after
    building the ODE, not before.

    Shapes
    ------
    ``forward(x)``: ``(batch, storage) -> (batch, storage)``.
    """

    def __init__(
        self,
        manifold,
        field: nn.Module,
        *,
        field_on: str | None = None,
        segments: int | None = None,
        switch_radius: float | None = None,
        method: str | None = None,
        atol: float = 1e-5,
        rtol: float = 1e-5,
        step_size: float | None = None,
        adjoint: bool = False,
    ):
        super().__init__()
        sphere = isinstance(manifold, Sphere)
        if not sphere and not isinstance(manifold, HyperbolicManifold):
            raise TypeError(
                f"manifold must be a hyperbolic manifold or a Sphere, got {type(manifold).__name__}"
            )
        if field_on is None:
            field_on = "manifold" if sphere else "chart"
        if field_on not in ("chart", "manifold"):
            raise ValueError(f"field_on must be 'chart' or 'manifold', got {field_on!r}")
        if sphere and field_on == "chart":
            raise ValueError("on the sphere the field must live on the manifold (charts are switched)")
        if not sphere and (segments is not None or switch_radius is not None):
            raise ValueError("H^n uses one global chart: segments and switch_radius apply to the sphere only")
        if switch_radius is not None and not 0 < switch_radius < math.pi:
            raise ValueError(f"switch_radius must lie in (0, pi), got {switch_radius}")
        if segments is not None and (not isinstance(segments, int) or segments < 1):
            raise ValueError(f"segments must be a positive integer, got {segments!r}")
        self.manifold = manifold
        self.field = field
        self.field_on = field_on
        self.chart = SphereChart(manifold.dim) if sphere else HyperbolicChart(manifold)
        self.segments = (segments or 4) if sphere else 1
        self.switch_radius = switch_radius
        self.method = method or ("rk4" if sphere else "dopri5")
        self.atol, self.rtol = atol, rtol
        self.step_size = step_size if step_size is not None else (1 / 16 if sphere else None)
        self.adjoint = adjoint
        if hasattr(field, "reset_parameters"):
            field.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the field: its own ``reset_parameters``, or else (as PyG's ``reset``) that of each
        submodule that has one, e.g. the ``Linear`` layers of an ``nn.Sequential`` field."""
        _reset(self.field)

    @property
    def is_sphere(self) -> bool:
        return isinstance(self.manifold, Sphere)

    def extra_repr(self) -> str:
        text = f"field_on={self.field_on!r}, method={self.method!r}"
        if self.step_size is not None:
            text += f", step_size={self.step_size:g}"
        if self.method not in ("euler", "midpoint", "rk4", "explicit_adams", "implicit_adams"):
            text += f", atol={self.atol:g}, rtol={self.rtol:g}"
        if self.is_sphere:
            text += f", segments={self.segments}, switch_radius={self.switch_radius}"
        return text + (", adjoint=True" if self.adjoint else "")

    # ----------------------------------------------------------------- solving
    def _solve(self, dynamics: ChartDynamics, state: tuple, t0: float, t1: float) -> tuple:
        import torchdiffeq

        like = state[0]
        t = torch.tensor([t0, t1], dtype=like.dtype, device=like.device)
        options = {"step_size": self.step_size} if self.step_size is not None else None
        kwargs = dict(rtol=self.rtol, atol=self.atol, method=self.method, options=options)
        if self.adjoint:
            params = tuple(p for p in dynamics.parameters() if p.requires_grad)
            solution = torchdiffeq.odeint_adjoint(dynamics, state, t, adjoint_params=params, **kwargs)
        else:
            solution = torchdiffeq.odeint(dynamics, state, t, **kwargs)
        return tuple(s[-1] for s in solution)

    def _check(self, x: torch.Tensor, what: str) -> None:
        if x.dim() != 2:
            raise ValueError(
                f"{what} must be a batch (batch, {self.manifold.storage_dim}), got shape {tuple(x.shape)}"
            )
        self.manifold.assert_points(x, what)

    def forward(self, x: torch.Tensor, t0: float = 0.0, t1: float = 1.0) -> torch.Tensor:
        """Flow points ``x`` ``(batch, storage)`` from time ``t0`` to ``t1``."""
        return self.integrate(x, t0, t1)[0]

    def integrate(
        self,
        x: torch.Tensor,
        t0: float = 0.0,
        t1: float = 1.0,
        *,
        divergence: str | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        r"""Flow ``x`` from ``t0`` to ``t1``; with a divergence, also the log-density change.

        Parameters
        ----------
        x : torch.Tensor
            Points ``(batch, storage)`` at time ``t0``.
        t0, t1 : float
            Start and end times (either order).
        divergence : {None, "exact", "hutchinson"}
            How to integrate :math:`\operatorname{tr}\partial g/\partial y`.
        noise : torch.Tensor, optional
            Hutchinson probes ``(batch, n)`` (required for ``"hutchinson"``).

        Returns
        -------
        z : torch.Tensor
            Points ``(batch, storage)`` at ``t1``.
        delta : torch.Tensor or None
            ``(batch,)``, :math:`\Delta` with :math:`\log p_{t_0}(x) = \log p_{t_1}(z) + \Delta` (module
            docstring); ``None`` without a divergence.
        """
        self._check(x, "points")
        dynamics = ChartDynamics(self, divergence, noise)
        if t0 == t1:
            return x, (torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device) if divergence else None)
        with_trace = divergence is not None
        if not self.is_sphere:
            y = self.chart.to_chart(x)
            state = (y, torch.zeros(y.shape[:-1], dtype=y.dtype, device=y.device)) if with_trace else (y,)
            solution = self._solve(dynamics, state, t0, t1)
            y1 = solution[0]
            delta = solution[1] + self.chart.log_det(y1) - self.chart.log_det(y) if with_trace else None
            return self.chart.from_chart(y1), delta
        return self._integrate_sphere(dynamics, x, t0, t1, with_trace)

    def _integrate_sphere(self, dynamics, x, t0, t1, with_trace):
        p = x
        y = torch.zeros(*x.shape[:-1], self.manifold.dim, dtype=x.dtype, device=x.device)
        delta = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device) if with_trace else None
        times = torch.linspace(t0, t1, self.segments + 1).tolist()
        for k in range(self.segments):
            state = (y, torch.zeros_like(delta), p) if with_trace else (y, p)
            solution = self._solve(dynamics, state, times[k], times[k + 1])
            y = solution[0]
            if with_trace:
                delta = delta + solution[1]
            radius = y.detach().norm(dim=-1)
            if bool((radius >= math.pi).any()):
                raise ChartDomainError(
                    f"a chart coordinate reached radius {float(radius.max()):.4g} >= pi during piece {k} of "
                    f"{self.segments}; use more segments (or a smaller switch_radius)"
                )
            last = k == self.segments - 1
            if self.switch_radius is None or last:
                switch = torch.ones_like(radius, dtype=torch.bool)
            else:
                switch = radius > self.switch_radius
            if bool(switch.any()):
                # Chart terms J(y_end) - J(y_start): y_start = 0 for a chart centred at the current point.
                if with_trace:
                    delta = delta + torch.where(switch, self.chart.log_det(y), torch.zeros_like(delta))
                moved = self.chart.from_chart(p, y)
                p = torch.where(switch.unsqueeze(-1), moved, p)
                y = torch.where(switch.unsqueeze(-1), torch.zeros_like(y), y)
        return p, delta
