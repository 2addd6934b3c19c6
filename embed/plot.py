r"""Pictures of embeddings in the Poincaré disk (matplotlib is an optional extra, imported lazily).

Edges are drawn as geodesic arcs: the segment from :math:`p` to :math:`q` is the image of the straight
segment from 0 to :math:`T_p(q)` under :math:`T_p^{-1}`, with the disk automorphism
:math:`T_p(z) = (z - p)/(1 - \bar p z)`. Nodes are coloured by graph depth from the root(s), and the root
of a combinatorial embedding sits at the centre.

Display scale: deep embeddings put almost every node within a pixel of the boundary circle (a node at
hyperbolic radius 13 sits at Euclidean radius 0.999997), so by default the picture shrinks hyperbolic radii by
one factor ``k`` chosen to put the farthest node at Euclidean radius 0.97: a node at radius :math:`r` in
direction :math:`\theta` is drawn at :math:`\tanh(r / 2k)\,e^{i\theta}`. Radii come from the manifold's
accurate ``dist`` to the origin, directions from ``to_poincare``; the factor is stated in the picture.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["plot_embedding", "geodesic_arcs", "display_layout", "MissingMatplotlibError"]


class MissingMatplotlibError(ImportError):
    """matplotlib is not installed."""


def pyplot():
    """matplotlib's ``pyplot`` switched to the file-only Agg backend; :class:`MissingMatplotlibError` naming the
    extra to install when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingMatplotlibError(
            "plotting needs matplotlib, an optional extra: pip install 'hyperbolic-embeddings[plot]' "
            "(or pip install matplotlib)"
        ) from None
    return plt


def display_layout(graph, root=None, depth: int | None = None, bfs_order: str = "sorted"):
    """The same combinatorial construction (same tree, same slots) at a display tau that puts the fourth
    level (or the deepest, if shallower) at Euclidean radius 0.97: ``(points, manifold, tau)`` for a
    readable picture of a deep embedding, whose true picture puts nearly every node on the circle; also the
    tree edges ``(E, 2)`` of that construction, for drawing: ``(points, manifold, tau, edges)``."""
    from .combinatorial import embed_graph

    probe = embed_graph(graph, tau=1.0, root=root, precision="mcf2", bfs_order=bfs_order)
    depth = depth or max(int(probe.info["depth"]), 1)
    # Levels beyond the fourth crowd towards the circle, as in any Poincaré picture of a deep tree.
    levels = min(depth + (1 if probe.info["virtual_root"] else 0), 4)
    tau = 2 * float(np.arctanh(0.97)) / levels
    layout = embed_graph(graph, tau=tau, root=root, precision="mcf2", bfs_order=bfs_order)
    return layout.points, layout.manifold, tau, layout.tree_edges()


def geodesic_arcs(p: np.ndarray, q: np.ndarray, samples: int = 24) -> np.ndarray:
    """``(E, samples, 2)`` points along the Poincaré-disk geodesics from ``p[i]`` to ``q[i]`` (``(E, 2)``)."""
    zp = p[:, 0] + 1j * p[:, 1]
    zq = q[:, 0] + 1j * q[:, 1]
    w = (zq - zp) / (1 - np.conj(zp) * zq)
    t = np.linspace(0.0, 1.0, samples)[None, :]
    s = w[:, None] * t
    z = (s + zp[:, None]) / (1 + np.conj(zp[:, None]) * s)
    return np.stack([z.real, z.imag], -1)


def plot_embedding(
    path: str | os.PathLike,
    points: torch.Tensor,
    manifold,
    edges: torch.Tensor | None = None,
    depth: torch.Tensor | None = None,
    title: str | None = None,
    labels: dict[int, str] | None = None,
    size: float = 8.0,
    shrink: float | str = "auto",
) -> None:
    """Draw the embedding in the Poincaré disk and write ``path`` (``.png`` or ``.svg``) atomically.

    Parameters
    ----------
    points, manifold
        Points of any manifold of the protocol (dimensions beyond 2 are projected on the first two
        Poincaré coordinates).
    edges : (E, 2) tensor or None
        Node pairs drawn as geodesic arcs.
    depth : (n,) tensor or None
        Colour of each node (graph depth from the root).
    title : str or None
        Figure title (e.g. the metrics).
    labels : dict or None
        ``{node: text}`` annotations (e.g. the root's name).
    shrink : float or "auto"
        Divide hyperbolic radii by this factor for display (1: the true Poincaré picture).
    """
    from hyperbolic.io import atomic_write

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"{path}: picture format must be .png, .svg or .pdf")
    plt = pyplot()
    from matplotlib.collections import LineCollection

    with torch.no_grad():
        P = manifold.to_poincare(points).detach().to(torch.float64).cpu().numpy()
        origin = manifold.origin(1, dtype=points.dtype, device=points.device)
        radius = manifold.dist(points, origin.expand_as(points)).to(torch.float64).cpu().numpy()
    P = P[:, :2] if P.shape[1] >= 2 else np.concatenate([P, np.zeros_like(P)], 1)
    norms = np.linalg.norm(P, axis=1)
    direction = P / np.maximum(norms, 1e-300)[:, None]
    if shrink == "auto":
        shrink = max(float(radius.max()) / (2 * np.arctanh(0.97)), 1.0)
    P = direction * np.tanh(radius / (2 * float(shrink)))[:, None]
    fig, ax = plt.subplots(figsize=(size, size))
    ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="0.3", linewidth=0.8))
    if edges is not None and len(edges):
        e = edges.cpu().numpy() if isinstance(edges, torch.Tensor) else np.asarray(edges)
        arcs = geodesic_arcs(P[e[:, 0]], P[e[:, 1]])
        ax.add_collection(LineCollection(arcs, colors="0.55", linewidths=0.35, alpha=0.7, zorder=1))
    colours = depth.cpu().numpy() if isinstance(depth, torch.Tensor) else depth
    scatter = ax.scatter(P[:, 0], P[:, 1], c=colours, cmap="viridis", s=6, zorder=2, linewidths=0)
    if colours is not None:
        fig.colorbar(scatter, ax=ax, shrink=0.6, label="depth")
    for node, text in (labels or {}).items():
        ax.annotate(text, P[node], fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlim(-1.02, 1.02)
    ax.set_ylim(-1.02, 1.02)
    ax.set_aspect("equal")
    ax.axis("off")
    if shrink != 1.0:
        title = (title + "\n" if title else "") + f"display: hyperbolic radii divided by {shrink:.3g}"
    if title:
        ax.set_title(title, fontsize=9)

    def write(temporary):
        fig.savefig(temporary, format=fmt, dpi=150, bbox_inches="tight")

    try:
        atomic_write(path, write)
    finally:
        plt.close(fig)
