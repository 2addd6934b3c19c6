r"""The scaling factor tau and the precision a construction needs.

Sala, De Sa, Gu and Ré (2018), as published: with :math:`\theta = 2\pi / d_{max}` (or the smallest angle
between the directions used at any node) and :math:`w` the smallest edge weight,

.. math::

    \beta = \theta / 2.4, \quad v = -2 \ln\tan(\beta/2), \quad
    \alpha = \theta - 2\beta, \quad \nu = -2\ln\tan(\alpha/2) / w,

    \tau = \frac{1+\varepsilon}{\varepsilon}\,\frac{v}{w} \ \text{ if } \
           \frac{1+\varepsilon}{\varepsilon}\, v > w\,\nu, \text{ else } \nu.

The deepest node lies at hyperbolic radius at most :math:`R = \tau \cdot` (largest root-path weight), and
a point at radius :math:`R` needs about :math:`R \log_2 e` bits to be told apart from the boundary
(``../shared/notes/combinatorial.md`` section 3).
"""

from __future__ import annotations

import math

__all__ = ["tau_from_eps", "tau_for_radius", "bits_for_radius", "LOG2_E"]

LOG2_E = 1.0 / math.log(2.0)


def tau_from_eps(eps: float, max_degree: int, min_weight: float = 1.0, theta: float | None = None) -> float:
    r"""The published tau for distortion target ``eps`` (see the module notes).

    Parameters
    ----------
    eps : float
        Distortion target, > 0.
    max_degree : int
        Largest degree in the tree (children, plus one for the parent of a non-root node); at least 1.
    min_weight : float
        Smallest edge weight (1 for unweighted graphs).
    theta : float or None
        Smallest angle between directions at any node; default :math:`2\pi / d_{max}`.
    """
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive number, got {eps}")
    if not (min_weight > 0 and math.isfinite(min_weight)):
        raise ValueError(f"edge weights must be positive, smallest is {min_weight}")
    if theta is None:
        theta = 2 * math.pi / max(int(max_degree), 1)
    beta = theta / 2.4
    v = -2 * math.log(math.tan(beta / 2))
    alpha = theta - 2 * beta
    nu = -2 * math.log(math.tan(alpha / 2)) / min_weight
    factor = (1 + eps) / eps
    return factor * v / min_weight if factor * v > min_weight * nu else nu


def tau_for_radius(max_radius: float, max_path_weight: float) -> float:
    """Largest tau a representation accurate to ``max_radius`` can hold: the deepest node sits at
    ``max_radius / 1.3`` (30 % inside, the published margin)."""
    if max_path_weight <= 0:
        raise ValueError("the tree has no edges; tau is arbitrary")
    return max_radius / (1.3 * max_path_weight)


def bits_for_radius(radius: float) -> float:
    r""":math:`R \log_2 e`: bits needed to keep a point at hyperbolic radius ``R`` off the boundary."""
    return radius * LOG2_E
