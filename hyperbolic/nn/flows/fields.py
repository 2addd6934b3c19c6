r"""Time-dependent vector-field networks for :class:`~hyperbolic.nn.flows.ManifoldODE`."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FieldMLP"]


class FieldMLP(nn.Module):
    r"""The published vector-field network: an MLP of :math:`[x, t]` with smooth activations.

    ``Linear(in + 1 -> hidden)``, then ``depth - 1`` times ``[tanh, Linear(hidden -> hidden)]``, then
    ``tanh, Linear(hidden -> out)``. With ``in = out = 2``, ``hidden = 32`` and ``depth = 4`` (the published
    :math:`H^2` chart field) it has 3,362 parameters; with ``in = out = 3`` (the :math:`S^2` ambient field)
    3,427. The activations must be smooth: the divergence differentiates the network, and training
    differentiates the divergence.

    Parameters
    ----------
    in_features : int
        Size of the state ``x`` (chart coordinates ``n`` or ambient coordinates ``n + 1``).
    out_features : int, optional
        Size of the output; defaults to ``in_features``.
    hidden : int
        Width of the hidden layers.
    depth : int
        Number of hidden layers (``Linear`` layers minus one).

    Shapes
    ------
    ``forward(t, x)``: ``t`` a scalar tensor (or ``(*batch, 1)``), ``x`` ``(*batch, in_features)`` ->
    ``(*batch, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int | None = None, hidden: int = 32, depth: int = 4):
        super().__init__()
        if in_features < 1 or hidden < 1 or depth < 1:
            raise ValueError(
                f"in_features, hidden and depth must be positive, got {in_features}, {hidden}, {depth}"
            )
        self.in_features = in_features
        self.out_features = in_features if out_features is None else out_features
        self.hidden = hidden
        self.depth = depth
        widths = [in_features + 1] + [hidden] * depth + [self.out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw every layer with torch's default ``Linear`` initialisation."""
        for layer in self.layers:
            layer.reset_parameters()

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        h = torch.cat([x, t.expand(*x.shape[:-1], 1)], dim=-1)
        h = self.layers[0](h)
        for layer in self.layers[1:]:
            h = layer(torch.tanh(h))
        return h

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(in_features={self.in_features}, out_features={self.out_features}, "
            f"hidden={self.hidden}, depth={self.depth})"
        )
