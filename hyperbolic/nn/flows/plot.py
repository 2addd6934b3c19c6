r"""Density pictures of flows: :math:`H^2` on the Poincaré disk, :math:`S^2` on an equirectangular map.

Densities are drawn with respect to the Riemannian volume (the model's own density), evaluated on a grid
of the picture; matplotlib (the ``plot`` extra) is imported lazily with the Agg backend, and pictures are
written as PNG to the path the caller gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ...lorentz import Lorentz
from ...math import lorentz as lorentz_kernel

__all__ = ["poincare_density", "sphere_density", "save_density_panels"]


def _chunked(log_prob: Callable, x: torch.Tensor, device, dtype, chunk: int = 8192) -> torch.Tensor:
    x = x.to(device=device, dtype=dtype)
    with torch.no_grad():
        values = [log_prob(x[i : i + chunk]).cpu() for i in range(0, x.shape[0], chunk)]
    return torch.cat(values).to(torch.float64)


def poincare_density(
    log_prob: Callable, resolution: int = 200, max_norm: float = 0.99, manifold=None, device=None, dtype=None
) -> torch.Tensor:
    r"""Density ``(resolution, resolution)`` on a square grid of the unit Poincaré disk (``nan`` outside
    the disk of radius ``max_norm``); ``log_prob`` takes points of ``manifold`` (default ``Lorentz(2)``)
    on ``device`` in ``dtype`` (default: the CPU, float64), the image is float64 on the CPU."""
    manifold = Lorentz(2) if manifold is None else manifold
    axis = torch.linspace(-1, 1, resolution, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1).reshape(-1, 2)
    inside = grid.norm(dim=-1) < max_norm
    R = manifold.scale(grid)
    points = manifold.from_lorentz(R * lorentz_kernel.from_poincare(grid[inside]))
    density = torch.full((grid.shape[0],), math.nan, dtype=torch.float64)
    density[inside] = _chunked(log_prob, points, device, dtype).exp()
    return density.reshape(resolution, resolution)


def sphere_density(
    log_prob: Callable, n_phi: int = 240, n_theta: int = 120, device=None, dtype=None
) -> torch.Tensor:
    r"""Density ``(n_theta, n_phi)`` on a :math:`(\theta, \varphi)` grid of :math:`S^2` (rows: inclination);
    ``log_prob`` takes points on ``device`` in ``dtype`` (default: the CPU, float64), the image is float64
    on the CPU."""
    phi = (torch.arange(n_phi, dtype=torch.float64) + 0.5) * 2 * math.pi / n_phi
    theta = (torch.arange(n_theta, dtype=torch.float64) + 0.5) * math.pi / n_theta
    T, P = torch.meshgrid(theta, phi, indexing="ij")
    x = torch.stack([T.sin() * P.cos(), T.sin() * P.sin(), T.cos()], dim=-1).reshape(-1, 3)
    return _chunked(log_prob, x, device, dtype).exp().reshape(n_theta, n_phi)


def save_density_panels(
    panels: Sequence[tuple[str, torch.Tensor]], path, kind: str = "poincare", title: str | None = None
) -> None:
    """Save density images side by side as a PNG.

    Parameters
    ----------
    panels : sequence of (title, image)
        Images from :func:`poincare_density` or :func:`sphere_density`.
    path : str or path-like
        Output PNG file.
    kind : {"poincare", "sphere"}
        Axes of the images.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4 if kind == "poincare" else 2.4))
    axes = [axes] if len(panels) == 1 else list(axes)
    for ax, (name, image) in zip(axes, panels):
        if kind == "poincare":
            ax.imshow(image.numpy(), extent=(-1, 1, -1, 1), origin="lower", cmap="viridis")
            ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="black", linewidth=0.8))
            ax.set_xlim(-1.02, 1.02)
            ax.set_ylim(-1.02, 1.02)
        else:
            ax.imshow(image.numpy(), extent=(0, 2 * math.pi, math.pi, 0), aspect="auto", cmap="viridis")
            ax.set_xlabel("azimuth")
            ax.set_ylabel("inclination")
        ax.set_title(name)
        ax.set_aspect("equal" if kind == "poincare" else "auto")
        if kind == "poincare":
            ax.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
