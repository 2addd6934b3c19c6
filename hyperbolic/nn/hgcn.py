r"""HGCN building blocks on the Poincaré ball (Chami et al. 2019; ``../shared/notes/frechet.md`` §7).

One HGCN layer is ``HypLinear → aggregation → HypAct`` on the ball of radius :math:`R = c^{-1/2}`:

* :class:`HypLinear`: :math:`h = (W \otimes_c x) \oplus_c \exp_0^c(b)`, with the Möbius mat-vec
  :math:`W \otimes_c x = \exp_0^c(W \log_0^c x)`;
* aggregation: tangent, :math:`\exp_0^c(\hat A \log_0^c h)` with :math:`\hat A = D^{-1}(A + I)`, or Fréchet,
  :math:`h_i = \operatorname{argmin}_y \sum_{j \in N(i) \cup \{i\}} w_{ij} d(h_j, y)^2`
  (:class:`~hyperbolic.nn.FrechetAggregation`);
* :class:`HypAct`: :math:`\exp_0^{c_{out}}(\sigma(\log_0^{c_{in}} h))`, which may change curvature.

:class:`FermiDiracDecoder` turns squared distances into edge probabilities. Ball maps at the origin,
with the geoopt / HGCN convention (tangent vectors in ball coordinates, :math:`\lambda_0 = 2`):
:math:`\exp_0^c(v) = R\tanh(\lVert v\rVert/R)\,v/\lVert v\rVert` and
:math:`\log_0^c(y) = R\operatorname{artanh}(\lVert y\rVert/R)\,y/\lVert y\rVert`.

Curvatures come from :class:`hyperbolic.PoincareBall` instances (learnable or not); gradients with
respect to them flow through :math:`R`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..math import poincare as ball_kernel
from ..numerics import guards, scaled_norm, tanhc
from ..poincare import PoincareBall
from .aggregation import FrechetAggregation

__all__ = [
    "expmap0",
    "logmap0",
    "project",
    "mobius_add",
    "mobius_matvec",
    "HypLinear",
    "HypAct",
    "HGCNConv",
    "FermiDiracDecoder",
    "add_self_loops",
]


def _radius(manifold: PoincareBall, like: torch.Tensor) -> torch.Tensor:
    return manifold.scale(like)


def project(x: torch.Tensor, manifold: PoincareBall, margin: float | None = None) -> torch.Tensor:
    r"""Pull points beyond radius :math:`R(1 - \text{margin})` back onto that sphere.

    ``margin=None`` uses the representable boundary of ``x``'s dtype (4 units of roundoff). HGCN uses a
    margin of 4e-3 in float32 (1e-5 in float64), which caps the distance from the origin at
    :math:`2\operatorname{artanh}(1 - \text{margin})` (6.2 for 4e-3).
    """
    R = _radius(manifold, x)
    margin = guards(x.dtype).ball_boundary if margin is None else margin
    return R * ball_kernel.projx(x / R, 1 - margin)


def _artanhc(a: torch.Tensor) -> torch.Tensor:
    r""":math:`\operatorname{artanh}(a)/a` for :math:`0 \le a < 1` (Taylor :math:`1 + a^2/3` near 0)."""
    small = a < guards(a.dtype).taylor
    a_safe = torch.where(small, torch.full_like(a, 0.5), a)
    return torch.where(small, 1 + a.square() / 3, torch.atanh(a_safe) / a_safe)


def expmap0(v: torch.Tensor, manifold: PoincareBall, margin: float | None = None) -> torch.Tensor:
    r""":math:`\exp_0^c(v) = R\tanh(\lVert v\rVert/R)\,v/\lVert v\rVert`, projected into the ball (see :func:`project`)."""
    R = _radius(manifold, v)
    return project(tanhc(scaled_norm(v, keepdim=True) / R) * v, manifold, margin)


def logmap0(y: torch.Tensor, manifold: PoincareBall) -> torch.Tensor:
    r""":math:`\log_0^c(y) = R\operatorname{artanh}(\lVert y\rVert/R)\,y/\lVert y\rVert`."""
    R = _radius(manifold, y)
    a = (scaled_norm(y, keepdim=True) / R).clamp_max(1 - guards(y.dtype).ball_boundary)
    return _artanhc(a) * y


def mobius_add(x: torch.Tensor, y: torch.Tensor, manifold: PoincareBall) -> torch.Tensor:
    r"""Möbius addition :math:`x \oplus_c y` on the ball of radius :math:`R`."""
    R = _radius(manifold, x)
    return R * ball_kernel.mobius_add(x / R, y / R)


def mobius_matvec(weight: torch.Tensor, x: torch.Tensor, manifold: PoincareBall,
                  margin: float | None = None) -> torch.Tensor:
    r"""Möbius matrix–vector product :math:`W \otimes_c x = \exp_0^c(W \log_0^c x)` (``x [..., in]``)."""
    return expmap0(F.linear(logmap0(x, manifold), weight), manifold, margin)


def add_self_loops(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int):
    """Append one self loop per node (weight 1) to ``edge_index [2, E]``."""
    loops = torch.arange(num_nodes, device=edge_index.device)
    edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
    if edge_weight is not None:
        edge_weight = torch.cat([edge_weight, edge_weight.new_ones(num_nodes)])
    return edge_index, edge_weight


def _describe(manifold: PoincareBall) -> str:
    c = math.exp(float(manifold.log_c.detach()))
    return f"c={c:.4g}" + (" (learnable)" if manifold.learnable else "")


def _act_name(act) -> str:
    return getattr(act, "__name__", type(act).__name__)


def _frechet_options(aggregation: FrechetAggregation | None) -> str:
    """The Fréchet settings of a conv's ``extra_repr`` (empty for tangent aggregation)."""
    if aggregation is None:
        return ""
    tol = "" if aggregation.tol is None else f", tol={aggregation.tol}"
    warm = ", warm_start=True" if aggregation.warm_start else ""
    return f"{tol}, max_iter={aggregation.max_iter}{warm}"


class _OneLine(torch.nn.Module):
    """``repr`` on one line, without listing the manifold submodules (their curvature is in ``extra_repr``)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class HypLinear(_OneLine):
    r"""Hyperbolic linear layer :math:`h = \text{proj}\big((W \otimes_c x) \oplus_c \exp_0^c(b)\big)`.

    Parameters
    ----------
    in_features, out_features : int
        Ball dimensions of input and output.
    manifold : hyperbolic.PoincareBall, optional
        The ball (its curvature); default curvature -1. Its dimension attribute is not used.
    dropout : float
        Dropout on the weight matrix (as in HGCN).
    bias : bool
        Add a hyperbolic bias :math:`\exp_0^c(b)`.
    margin : float, optional
        Keep outputs within :math:`R(1 - \text{margin})` (:func:`project`; default: the dtype's boundary).

    Shapes
    ------
    - **input**: ``[..., in_features]`` ball points
    - **output**: ``[..., out_features]`` ball points
    """

    def __init__(self, in_features: int, out_features: int, manifold: PoincareBall | None = None,
                 dropout: float = 0.0, bias: bool = True, margin: float | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.margin = margin
        self.manifold = manifold if manifold is not None else PoincareBall(out_features)
        self.dropout = dropout
        self.weight = torch.nn.Parameter(torch.empty(out_features, in_features))
        self.bias = torch.nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights (gain √2) and zero bias, as HGCN."""
        torch.nn.init.xavier_uniform_(self.weight, gain=math.sqrt(2))
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = F.dropout(self.weight, self.dropout, training=self.training)
        h = mobius_matvec(weight, x, self.manifold, self.margin)
        if self.bias is not None:
            b = expmap0(self.bias.to(h.dtype), self.manifold, self.margin)
            h = project(mobius_add(h, b, self.manifold), self.manifold, self.margin)
        return h

    def extra_repr(self) -> str:
        margin = "" if self.margin is None else f", margin={self.margin}"
        return (f"{self.in_features}, {self.out_features}, {_describe(self.manifold)}, "
                f"dropout={self.dropout}, bias={self.bias is not None}{margin}")


class HypAct(_OneLine):
    r"""Activation with a change of curvature: :math:`\exp_0^{c_{out}}(\sigma(\log_0^{c_{in}} x))`.

    Parameters
    ----------
    manifold_in, manifold_out : hyperbolic.PoincareBall
        Input and output balls.
    act : callable
        Euclidean activation (default ReLU).
    margin : float, optional
        Boundary margin of the output (:func:`project`).

    Shapes
    ------
    - **input**: ``[..., n]`` points of ``manifold_in``
    - **output**: ``[..., n]`` points of ``manifold_out``
    """

    def __init__(self, manifold_in: PoincareBall, manifold_out: PoincareBall, act=F.relu,
                 margin: float | None = None):
        super().__init__()
        self.manifold_in, self.manifold_out, self.act, self.margin = manifold_in, manifold_out, act, margin

    def reset_parameters(self) -> None:
        """No parameters of its own (the curvatures belong to the manifolds)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return expmap0(self.act(logmap0(x, self.manifold_in)), self.manifold_out, self.margin)

    def extra_repr(self) -> str:
        return f"{_describe(self.manifold_in)} -> {_describe(self.manifold_out)}, act={_act_name(self.act)}"


class HGCNConv(_OneLine):
    r"""One HGCN layer: :class:`HypLinear`, neighbourhood aggregation, :class:`HypAct`.

    Parameters
    ----------
    in_features, out_features : int
        Ball dimensions.
    manifold_in, manifold_out : hyperbolic.PoincareBall, optional
        Curvature of the input and of the output (default: both -1; a learnable ball learns its
        curvature, with Fréchet aggregation through the implicit-function gradient).
    aggregation : {"tangent", "frechet"}
        ``"tangent"``: :math:`\exp_0(\hat A \log_0 h)` with the weighted row normalisation
        :math:`\hat A_{ij} = w_{ij} / \sum_k w_{ik}` (HGCN with unit weights);
        ``"frechet"``: the weighted Fréchet mean of the neighbourhood (:class:`FrechetAggregation`).
    dropout : float
        Dropout on the linear weights.
    bias : bool
        Hyperbolic bias in the linear map.
    act : callable
        Euclidean activation inside :class:`HypAct`.
    add_self_loops : bool
        Add :math:`I` to the adjacency (HGCN's :math:`A + I`).
    tol, max_iter, warm_start
        Fréchet tolerance, iteration cap, and warm start from the previous call on the same graph (see
        :class:`FrechetAggregation`). The gradient is the implicit-function gradient at the returned
        mean, which lies within about ``tol`` (Riemannian distance) of the exact one, so a loose training
        tolerance such as 1e-8 perturbs the gradients by that order only and saves MM iterations.
    margin : float, optional
        Boundary margin of every map onto the ball (:func:`project`; HGCN: 4e-3 in float32). It caps the
        distance from the origin at :math:`r_{max} = 2\operatorname{artanh}(1 - \text{margin})/\sqrt{c}`
        (6.2 for 4e-3, 3.7 for 0.05). With Fréchet aggregation the cap matters more than with tangent
        aggregation: the Möbius linear map readily saturates its outputs at :math:`r_{max}`, and the
        midpoint of two points at distance :math:`r` from the origin and angle :math:`\theta` lies at
        :math:`\rho` with :math:`\tanh\rho = \tanh r\,\cos(\theta/2)` (about 1.3 for
        :math:`\theta = 60°`, whatever :math:`r`), where the tangent average lies at
        :math:`r\cos(\theta/2)`. Nodes with neighbours are pulled deep inside while a node without
        any (only its self loop) stays at :math:`r_{max}`. Keep the inputs off the cap (scale features
        before :math:`\exp_0` so that they do not land on the margin sphere), or lower the cap, so that
        both kinds of node stay on comparable radii.

    Shapes
    ------
    - **x**: ``[N, in_features]`` ball points
    - **edge_index**: ``[2, E]`` (source, target); messages flow source → target
    - **edge_weight**: ``[E]`` optional non-negative weights
    - **output**: ``[N, out_features]`` points of ``manifold_out``
    """

    def __init__(self, in_features: int, out_features: int, manifold_in: PoincareBall | None = None,
                 manifold_out: PoincareBall | None = None, aggregation: str = "tangent", dropout: float = 0.0,
                 bias: bool = True, act=F.relu, add_self_loops: bool = True, tol: float | None = None,
                 max_iter: int = 1000, warm_start: bool = False, margin: float | None = None):
        super().__init__()
        if aggregation not in ("tangent", "frechet"):
            raise ValueError(f"aggregation must be 'tangent' or 'frechet', got {aggregation!r}")
        self.manifold_in = manifold_in if manifold_in is not None else PoincareBall(out_features)
        self.manifold_out = manifold_out if manifold_out is not None else self.manifold_in
        self.linear = HypLinear(in_features, out_features, self.manifold_in, dropout, bias, margin)
        self.margin = margin
        self.aggregation = aggregation
        self.frechet = (FrechetAggregation(self.manifold_in, tol, max_iter, warm_start)
                        if aggregation == "frechet" else None)
        self.act = HypAct(self.manifold_in, self.manifold_out, act, margin)
        self.add_self_loops = add_self_loops

    def reset_parameters(self) -> None:
        """Redraw the linear map and forget the Fréchet warm start. Learnable curvatures belong to the
        manifolds (which layers may share) and are left as they are."""
        self.linear.reset_parameters()
        if self.frechet is not None:
            self.frechet.reset_parameters()

    def aggregate(self, h: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None) -> torch.Tensor:
        N = h.shape[0]
        if self.add_self_loops:
            edge_index, edge_weight = add_self_loops(edge_index, edge_weight, N)
        source, target = edge_index[0], edge_index[1]
        if self.frechet is not None:
            return self.frechet(h[source], target, dim_size=N, weight=edge_weight)
        tangent = logmap0(h, self.manifold_in)
        w = torch.ones_like(target, dtype=h.dtype) if edge_weight is None else edge_weight.to(h.dtype)
        total = h.new_zeros(N).index_add_(0, target, w)
        summed = h.new_zeros(N, h.shape[-1]).index_add_(0, target, w.unsqueeze(-1) * tangent[source])
        mean = summed / torch.where(total > 0, total, torch.ones_like(total)).unsqueeze(-1)
        return expmap0(mean, self.manifold_in, self.margin)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None):
        h = self.linear(x)
        h = self.aggregate(h, edge_index, edge_weight)
        return self.act(h)

    def extra_repr(self) -> str:
        lin = self.linear
        return (f"{lin.in_features}, {lin.out_features}, {_describe(self.manifold_in)} -> "
                f"{_describe(self.manifold_out)}, aggregation={self.aggregation}, dropout={lin.dropout}, "
                f"bias={lin.bias is not None}, add_self_loops={self.add_self_loops}, act={_act_name(self.act.act)}"
                + ("" if self.margin is None else f", margin={self.margin}") + _frechet_options(self.frechet))


class FermiDiracDecoder(torch.nn.Module):
    r"""Edge probability :math:`p = 1/(\exp((d^2 - r)/t) + 1)` from a squared hyperbolic distance.

    Parameters
    ----------
    r : float
        Radius (default 2, as HGCN).
    t : float
        Temperature (default 1).

    Shapes
    ------
    - **dist2**: ``[...]`` squared distances
    - **output**: ``[...]`` probabilities in (0, 1); :meth:`logits` gives :math:`(r - d^2)/t` for
      ``binary_cross_entropy_with_logits``
    """

    def __init__(self, r: float = 2.0, t: float = 1.0):
        super().__init__()
        self.r, self.t = r, t

    def reset_parameters(self) -> None:
        """No parameters."""

    def logits(self, dist2: torch.Tensor) -> torch.Tensor:
        return (self.r - dist2) / self.t

    def forward(self, dist2: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(dist2))

    def extra_repr(self) -> str:
        return f"r={self.r}, t={self.t}"
