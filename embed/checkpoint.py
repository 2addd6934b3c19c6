"""Training checkpoints: atomic, weights-only, with everything an exact resume needs.

A checkpoint is a ``torch.save`` of a dictionary of tensors, strings, numbers, lists and dictionaries
(RNG states are byte tensors), so it loads with ``torch.load(weights_only=True)``. It is written to a
temporary file in the same folder and moved into place, so an interrupted write never replaces the
last good checkpoint.
"""

from __future__ import annotations

import hashlib
import os

import torch

from hyperbolic.io import atomic_write

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "graph_fingerprint", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 1
_KIND = "hyperbolic-train-checkpoint"


class CheckpointError(ValueError):
    """A file is not a usable training checkpoint (or belongs to another graph or run)."""


def graph_fingerprint(graph) -> str:
    """A short hash of a graph's names, edges and weights: a checkpoint only resumes on the same graph."""
    digest = hashlib.sha256()
    digest.update("\n".join(graph.names).encode())
    digest.update(graph.edges.numpy().tobytes())
    if graph.weights is not None:
        digest.update(graph.weights.numpy().tobytes())
    digest.update(b"directed" if graph.directed else b"undirected")
    return digest.hexdigest()[:32]


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` atomically; tensors are moved to the CPU first."""

    def to_cpu(value):
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().clone()
        if isinstance(value, dict):
            return {key: to_cpu(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(to_cpu(item) for item in value)
        return value

    payload = {"kind": _KIND, "format_version": CHECKPOINT_VERSION, **to_cpu(state)}
    atomic_write(path, lambda temporary: torch.save(payload, temporary))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises several types for foreign or unsafe files
        raise CheckpointError(f"{path}: not a loadable checkpoint ({error})") from None
    if not isinstance(payload, dict) or payload.get("kind") != _KIND:
        raise CheckpointError(f"{path}: not a training checkpoint (no '{_KIND}' marker)")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version!r}; this library reads up to {CHECKPOINT_VERSION}")
    return payload
