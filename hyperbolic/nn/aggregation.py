r"""Fréchet aggregation: the weighted Fréchet mean of every node's incoming messages, edge-parallel.

.. math::

    h_i = \operatorname*{argmin}_y \sum_{e:\, j \to i} w_e\, d(x_e, y)^2

replaces HGCN's tangent aggregation :math:`\exp_0(\hat A \log_0 h)`. The mean is invariant to a rescaling
of a node's weights, so unit weights reproduce a row-normalised :math:`\hat A`; general edge weights
(e.g. a symmetric normalisation) change the result. See ``../shared/notes/frechet.md`` §5.

All nodes are solved together by the majorise–minimise iteration on the edge list (segment sums with
``index_add_``, O(E·n) per iteration, no padding), with per-node convergence masks; the backward pass
assembles each node's Hessian from per-edge terms and solves all of them with one batched Cholesky.
"""

from __future__ import annotations

import warnings

import torch

from ._charts import chart, describe
from ._kernel import SegmentMean
from .frechet import DEFAULT_MAX_ITER, FrechetInfo, check_weights, default_tol

__all__ = ["FrechetAggregation", "segment_frechet_mean"]


def _index_from_ptr(ptr: torch.Tensor, count: int) -> torch.Tensor:
    ptr = ptr.to(torch.long)
    if ptr.dim() != 1 or ptr.numel() < 1:
        raise ValueError(f"ptr must be a 1-D tensor of CSR offsets, got shape {tuple(ptr.shape)}")
    sizes = ptr.diff()
    if bool((sizes < 0).any()) or int(ptr[0]) != 0 or int(ptr[-1]) != count:
        raise ValueError(f"ptr must rise from 0 to the number of messages {count}, got {ptr.tolist()[:8]}...")
    return torch.repeat_interleave(torch.arange(ptr.numel() - 1, device=ptr.device), sizes)


def _targets(x: torch.Tensor, index, ptr, dim_size, dim: int) -> tuple[torch.Tensor, int, int]:
    """Resolve ``(index, ptr, dim_size, dim)`` to ``(index [E] long on x's device, N, message axis)``.

    ``ptr`` is turned into an index; when ``index`` is given too the two must describe the same targets.
    """
    if x.dim() < 2:
        raise ValueError(f"messages need at least 2 axes (messages, coordinates), got shape {tuple(x.shape)}")
    d = dim + x.dim() if dim < 0 else dim
    if not 0 <= d < x.dim() - 1:
        raise ValueError(f"dim={dim} must name the message axis, not the coordinate axis, of shape {tuple(x.shape)}")
    E = x.shape[d]
    if ptr is not None:
        from_ptr = _index_from_ptr(ptr, E).to(x.device)
        if index is not None:
            given = index.to(device=x.device, dtype=torch.long)
            if given.shape != from_ptr.shape or not torch.equal(given, from_ptr):
                raise ValueError("index and ptr describe different targets (ptr needs the messages sorted by "
                                 "target, and index must be the targets it describes); give one of them")
        index = from_ptr
        if dim_size is None:
            dim_size = ptr.numel() - 1
    elif index is None:
        index = torch.zeros(E, dtype=torch.long, device=x.device)
        if dim_size is None:
            dim_size = 1
    index = index.to(device=x.device, dtype=torch.long)
    if index.shape != (E,):
        raise ValueError(f"index must have shape ({E},) to match the messages, got {tuple(index.shape)}")
    if dim_size is None:
        dim_size = int(index.max()) + 1 if E else 0
    N = int(dim_size)
    if E and (int(index.min()) < 0 or int(index.max()) >= N):
        raise ValueError(f"index values must lie in [0, {N}), got range [{int(index.min())}, {int(index.max())}]")
    return index, N, d


def segment_frechet_mean(
    x: torch.Tensor,
    index: torch.Tensor | None = None,
    ptr: torch.Tensor | None = None,
    dim_size: int | None = None,
    dim: int = -2,
    *,
    weight: torch.Tensor | None = None,
    manifold=None,
    tol: float | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    init: torch.Tensor | None = None,
    return_info: bool = False,
    warn: bool = True,
):
    r"""Fréchet mean of each segment of messages (the functional form of :class:`FrechetAggregation`).

    Parameters
    ----------
    x : torch.Tensor
        Messages, the message axis at ``dim`` and points on the last axis: ``[..., E, ..., storage]``.
    index : torch.Tensor, optional
        ``[E]`` target node of each message (any order).
    ptr : torch.Tensor, optional
        CSR offsets ``[N + 1]`` of messages sorted by target, instead of ``index``; given with ``index``, the
        two must describe the same targets (ValueError otherwise).
    dim_size : int, optional
        Number of output nodes ``N`` (default ``len(ptr) - 1`` with ``ptr``, else ``max(index) + 1``).
    dim : int
        The message axis of ``x``.
    weight : torch.Tensor, optional
        ``[E]`` non-negative message weights (default 1).
    manifold, tol, max_iter, return_info, warn
        As for :func:`hyperbolic.nn.frechet_mean`.
    init : torch.Tensor, optional
        Starting points, shaped like the output (points of ``manifold``); a warm start, not differentiated.
        Invalid rows (non-finite, outside the model) fall back to the default start.

    Returns
    -------
    torch.Tensor or (torch.Tensor, FrechetInfo)
        ``[..., N, ..., storage]``: the mean of each node's messages; nodes with no message or zero
        total weight get the origin (flagged ``degenerate``, zero gradient).
    """
    ch = chart(manifold)
    index, N, d = _targets(x, index, ptr, dim_size, dim)
    E = x.shape[d]
    if weight is None:
        w = torch.ones(E, dtype=torch.float64, device=x.device)
    else:
        if weight.shape != (E,):
            raise ValueError(f"weight must have shape ({E},), got {tuple(weight.shape)}")
        check_weights(weight, "edge weights")
        w = weight.to(device=x.device, dtype=torch.float64)

    xm = x.movedim(d, 0)
    rest, storage = xm.shape[1:-1], xm.shape[-1]
    if ch.ball_dim(storage) < 1:
        raise ValueError(f"points with {storage} storage coordinates do not fit the {ch.kind} model")
    R_count = 1
    for size in rest:
        R_count *= size
    R = ch.radius(x)
    p = ch.to_ball(xm, R).reshape(E * R_count, ch.ball_dim(storage))
    offsets = torch.arange(R_count, device=x.device)
    flat_index = (index.unsqueeze(-1) * R_count + offsets).reshape(-1)
    flat_w = w.unsqueeze(-1).expand(E, R_count).reshape(-1)
    if tol is None:
        tol = default_tol(x.dtype)
    start = None
    if init is not None:
        with torch.no_grad():
            start = ch.to_ball(init.detach().movedim(d, 0), R.detach(), check=False).reshape(N * R_count, -1)
    mu, converged, n_iter, degenerate = SegmentMean.apply(
        p, flat_w, flat_index, N * R_count, float(tol), int(max_iter), start
    )
    out = ch.from_ball(mu, R, x.dtype).reshape(N, *rest, storage).movedim(0, d)
    info = FrechetInfo(*(t.reshape(N, *rest) for t in (converged, n_iter, degenerate)))
    if warn:
        failed = ~(info.converged | info.degenerate)
        if bool(failed.any()):
            warnings.warn(
                f"Fréchet aggregation: {int(failed.sum())} of {failed.numel()} nodes did not converge in "
                f"{max_iter} iterations",
                RuntimeWarning,
                stacklevel=2,
            )
    return (out, info) if return_info else out


class FrechetAggregation(torch.nn.Module):
    r"""Aggregate messages by their weighted Fréchet mean (PyTorch Geometric's aggregation signature).

    Drops into any ``MessagePassing`` layer as ``aggr=FrechetAggregation(manifold)``; PyG is not
    required. Per-edge weights arrive through the keyword ``weight`` (a conv passes them from its
    ``aggregate``).

    Parameters
    ----------
    manifold : optional
        Where the messages live (see :func:`hyperbolic.nn.frechet_mean`); default the unit Poincaré ball.
    tol : float, optional
        MM tolerance (default by input dtype).
    max_iter : int
        MM iteration cap per node.
    warm_start : bool
        Start each call from the previous call's result when the graph is the same (same targets, from
        ``index`` or ``ptr``, and output shape): in training the means move little between steps, so this
        saves most iterations.
        The result does not depend on the start beyond the tolerance.

    Shapes
    ------
    - **x**: ``[E, storage]`` messages (or any shape with the message axis at ``dim``)
    - **index**: ``[E]`` target nodes, or **ptr**: ``[N + 1]`` CSR offsets (both: they must agree)
    - **weight**: ``[E]`` optional non-negative weights
    - **output**: ``[N, storage]``; isolated nodes get the origin

    Attributes
    ----------
    last_info : FrechetInfo or None
        Convergence masks of the latest call (``converged``, ``n_iter``, ``degenerate`` per node).
    """

    def __init__(self, manifold=None, tol: float | None = None, max_iter: int = DEFAULT_MAX_ITER,
                 warm_start: bool = False):
        super().__init__()
        chart(manifold)
        self.manifold = manifold
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.last_info: FrechetInfo | None = None
        self._previous: tuple | None = None

    def reset_parameters(self) -> None:
        """No parameters (present for the PyG layer protocol); forgets the warm start and ``last_info``."""
        self.last_info = None
        self._previous = None

    def forward(
        self,
        x: torch.Tensor,
        index: torch.Tensor | None = None,
        ptr: torch.Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
        *,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        index, N, d = _targets(x, index, ptr, dim_size, dim)
        init = None
        if self.warm_start and self._previous is not None:
            prev_index, prev_out = self._previous
            shape = x.shape[:d] + (N,) + x.shape[d + 1:]
            if (prev_out.shape == shape and prev_out.dtype == x.dtype and prev_out.device == x.device
                    and prev_index.shape == index.shape and torch.equal(prev_index, index)):
                init = prev_out
        out, info = segment_frechet_mean(
            x,
            index,
            None,
            N,
            dim,
            weight=weight,
            manifold=self.manifold,
            tol=self.tol,
            max_iter=self.max_iter,
            init=init,
            return_info=True,
        )
        self.last_info = FrechetInfo(*(t.detach() for t in info))
        if self.warm_start:
            self._previous = (index.detach().clone(), out.detach())
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        warm = ", warm_start=True" if self.warm_start else ""
        return f"manifold={describe(self.manifold)}, tol={self.tol}, max_iter={self.max_iter}{warm}"
