r"""Manifold ODEs and continuous normalizing flows on :math:`H^n` and :math:`S^n` (issue 9).

Needs the optional dependency ``torchdiffeq`` (imported when a flow is integrated). The published
fields are tiny MLPs: on a CPU, ``torch.set_num_threads(1)`` made a training step 20-30 times faster
in wall time than two threads on a loaded 2-core machine.

* :class:`ManifoldODE` — integrate a learned vector field in exponential-map charts (one global chart
  on :math:`H^n`, switched charts on :math:`S^n`);
* :class:`ManifoldCNF` — log-density by the instantaneous change of variables plus the chart Jacobian
  terms, exact or Hutchinson trace, ``log_prob`` and ``sample``;
* :class:`WrappedNormal`, :class:`VonMisesFisher` — base distributions with exact log-densities;
* :class:`Sphere` — the unit sphere as a geoopt manifold;
* :class:`FieldMLP` — the published vector-field network;
* :mod:`~hyperbolic.nn.flows.datasets` — synthetic densities on :math:`H^2` and :math:`S^2`;
* :mod:`~hyperbolic.nn.flows.quadrature` — normalisation checks by grid quadrature;
* :mod:`~hyperbolic.nn.flows.training` — maximum-likelihood training (published schedule);
* :mod:`~hyperbolic.nn.flows.plot` — density pictures on the Poincaré disk (matplotlib, Agg).
"""

from . import datasets, functional, quadrature, training
from .cnf import ManifoldCNF
from .distributions import ManifoldConstraint, VonMisesFisher, WrappedNormal
from .fields import FieldMLP
from .ode import ChartDomainError, ChartDynamics, ManifoldODE
from .sphere import Sphere

__all__ = [
    "ManifoldODE",
    "ManifoldCNF",
    "ChartDynamics",
    "ChartDomainError",
    "WrappedNormal",
    "VonMisesFisher",
    "ManifoldConstraint",
    "Sphere",
    "FieldMLP",
    "datasets",
    "functional",
    "quadrature",
    "training",
]
