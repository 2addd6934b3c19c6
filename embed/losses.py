r"""Losses of the optimisation trainer.

* :func:`ranking_loss` — Nickel & Kiela's softmax ranking loss over one positive and sampled negatives:
  :math:`L = -\log\big(e^{-d(u,v)} / \sum_{w \in \{v\} \cup N(u)} e^{-d(u,w)}\big)`, the cross-entropy of
  the logits :math:`-d` with the positive as class 0, averaged over the batch. Negatives drawn with
  unequal probabilities carry log-weights :math:`\log w_n` added to their logits (sampled softmax: each
  stands for :math:`w_n` draws of the uniform sampler).
* :func:`distortion_loss` — metric targets (graph distances): a per-pair penalty on the ratio of the
  embedded distance to the target, averaged over the batch (variants of ``combinatorial.md`` §6).
"""

from __future__ import annotations

import torch

__all__ = ["ranking_loss", "distortion_loss", "DISTORTION_KINDS"]

#: Distortion penalties by name: ``r = d / target``.
DISTORTION_KINDS = {
    "ratio": "(r - 1)^2",
    "symmetric": "(r - 1)^2 + (1/r - 1)^2",
    "log": "log(r)^2",
    "squared": "(d - target)^2",
}


def ranking_loss(distances: torch.Tensor, valid: torch.Tensor | None = None,
                 log_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean softmax ranking loss.

    Parameters
    ----------
    distances : torch.Tensor
        ``(B, 1 + K)``: column 0 the distance to the positive, columns 1.. to the negatives.
    valid : torch.Tensor or None
        ``(B, K)`` bool: False marks negative slots to leave out (never the positive).
    log_weights : torch.Tensor or None
        ``(B, K)`` log-weights added to the negatives' logits ``-d`` (None: all 0).

    Returns
    -------
    torch.Tensor
        Scalar loss, in the dtype of ``distances``.
    """
    if distances.dim() != 2 or distances.shape[1] < 2:
        raise ValueError(f"distances must have shape (B, 1 + K) with K >= 1, got {tuple(distances.shape)}")
    logits = -distances
    if log_weights is not None:
        if log_weights.shape != (distances.shape[0], distances.shape[1] - 1):
            raise ValueError(f"log_weights must have shape {(distances.shape[0], distances.shape[1] - 1)}, "
                             f"got {tuple(log_weights.shape)}")
        logits = torch.cat([logits[:, :1], logits[:, 1:] + log_weights.to(logits)], dim=1)
    if valid is not None:
        if valid.shape != (distances.shape[0], distances.shape[1] - 1):
            raise ValueError(f"valid must have shape {(distances.shape[0], distances.shape[1] - 1)}, "
                             f"got {tuple(valid.shape)}")
        keep = torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1)
        logits = logits.masked_fill(~keep, float("-inf"))
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def distortion_loss(distances: torch.Tensor, targets: torch.Tensor, kind: str = "ratio") -> torch.Tensor:
    """Mean distortion penalty of embedded ``distances`` against positive ``targets`` (same shape).

    ``kind`` is one of :data:`DISTORTION_KINDS`. Pairs at embedded distance 0 make ``"symmetric"`` and
    ``"log"`` infinite; keep initial points distinct.
    """
    if kind not in DISTORTION_KINDS:
        raise ValueError(f"unknown distortion loss {kind!r}; choose from {', '.join(DISTORTION_KINDS)}")
    if distances.shape != targets.shape:
        raise ValueError(f"distances {tuple(distances.shape)} and targets {tuple(targets.shape)} differ in shape")
    if kind == "squared":
        return (distances - targets).square().mean()
    ratio = distances / targets
    if kind == "ratio":
        return (ratio - 1).square().mean()
    if kind == "symmetric":
        return ((ratio - 1).square() + (1 / ratio - 1).square()).mean()
    return torch.log(ratio).square().mean()
