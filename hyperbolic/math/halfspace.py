r"""The upper half-space :math:`\{(x, y) : x \in \mathbb{R}^{n-1},\ y > 0\}` at curvature -1.

Storage ``(x1, ..., x_{n-1}, y)``: height last. Metric :math:`(\lVert dx\rVert^2 + dy^2)/y^2`; origin
``(0, ..., 0, 1)``. The frame :math:`e_i = y\,\partial_i` is orthonormal, and frame coordinates of a tangent
vector ``u`` are ``u / y``.

Distance (overflow- and underflow-safe at every radius whose heights are normal floats):

.. math::

    \sinh\frac{d}{2} = \frac{\rho}{2\sqrt{y_1}\sqrt{y_2}},
    \qquad \rho = \lVert (x_1 - x_2,\ y_1 - y_2) \rVert ,

with :math:`\rho` computed by a scaled norm, so neither the squares nor :math:`y_1 y_2` under/overflow
(the textbook :math:`\cosh d = 1 + \rho^2/(2y_1y_2)` gives 0/0 past radius 355).
"""

from __future__ import annotations

import torch

from ..numerics import scaled_norm, sinhc, sinhc_inverse, tanhc

__all__ = [
    "split",
    "join",
    "dist",
    "dist_from_difference",
    "expmap_frame",
    "logmap_frame",
    "logmap_frame_from_difference",
    "transp",
    "transp_from_difference",
    "to_lorentz",
    "from_lorentz",
]


def split(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` views of a storage tensor; ``y`` keeps a trailing axis of size 1."""
    return p[..., :-1], p[..., -1:]


def join(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, y], dim=-1)


def dist_from_difference(
    delta: torch.Tensor, eta: torch.Tensor, y1: torch.Tensor, y2: torch.Tensor
) -> torch.Tensor:
    """Distance from the horizontal difference ``delta``, the height difference ``eta`` and the heights.

    All arguments keep a trailing axis (``eta``, ``y1``, ``y2`` of size 1); so does the result. Shared
    with models that store ``x`` more precisely than one float and form ``delta`` exactly.
    """
    rho = scaled_norm(torch.cat([delta, eta], dim=-1), keepdim=True)
    return 2 * torch.asinh(rho / torch.sqrt(y1) / (2 * torch.sqrt(y2)))


def dist(p: torch.Tensor, q: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    x1, y1 = split(p)
    x2, y2 = split(q)
    d = dist_from_difference(x1 - x2, y1 - y2, y1, y2)
    return d if keepdim else d.squeeze(-1)


def expmap_frame(
    y: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exponential map in the orthonormal frame, cancellation-free in each branch.

    For the frame vector :math:`v = (v_x, v_y)` at height ``y`` (the tangent vector is :math:`y\,v`) and
    :math:`s = \lVert v\rVert`, returns the horizontal increment :math:`\Delta x` and the new height
    :math:`y'`, so that the end point is :math:`(x + \Delta x, y')`:

    * :math:`v_y \le 0` or :math:`s < 1/2`:
      :math:`\Delta x = y\,v_x/(s\coth s - v_y)`, :math:`y' = y/(\cosh s - v_y\sinh(s)/s)`;
    * otherwise (the first branch times its conjugate):
      :math:`\Delta x = y\,(s\coth s + v_y)\,v_x/((s/\sinh s)^2 + \lVert v_x\rVert^2)`,
      :math:`y' = y\,s\,(s + v_y\tanh s)/(\cosh s\,(\lVert v_x\rVert^2 + (v_y/\cosh s)^2))`.

    For :math:`s < 1/2` every combined term of the first branch is bounded away from cancellation
    (:math:`s\coth s \ge 1 > 2v_y`), which keeps the second branch away from :math:`s \to 0`.
    """
    vx, vy = v[..., :-1], v[..., -1:]
    s = scaled_norm(v, keepdim=True)
    first = (vy <= 0) | (s < 0.5)
    # Each branch sees harmless arguments on the rows of the other (v = 0 in the first, v = e_y in the second),
    # so its masked values are finite and where() passes finite gradients: the second branch divides by
    # ||v_x||^2 + v_y^2/cosh^2 s, which is 0 at v = 0, and the first cancels or overflows for long upward v.
    s_small = torch.where(first, s, torch.zeros_like(s))
    vx_small = torch.where(first, vx, torch.zeros_like(vx))
    vy_small = torch.where(first, vy, torch.zeros_like(vy))
    dx_first = vx_small / (1 / tanhc(s_small) - vy_small)
    y_first = 1 / (torch.cosh(s_small) - vy_small * sinhc(s_small))

    s_big = torch.where(first, torch.ones_like(s), s)
    vx = torch.where(first, torch.zeros_like(vx), vx)
    vy = torch.where(first, torch.ones_like(vy), vy)
    vx2 = vx.square().sum(-1, keepdim=True)
    cosh_big = torch.cosh(s_big)
    dx_second = (s_big / torch.tanh(s_big) + vy) / (sinhc_inverse(s_big).square() + vx2) * vx
    y_second = (
        s_big * (s_big + vy * torch.tanh(s_big)) / (cosh_big * (vx2 + (vy / cosh_big).square()))
    )
    dx = y * torch.where(first, dx_first, dx_second)
    y_new = y * torch.where(first, y_first, y_second)
    return dx, y_new


def logmap_frame_from_difference(
    delta: torch.Tensor, yp: torch.Tensor, yq: torch.Tensor
) -> torch.Tensor:
    r"""Frame coordinates of :math:`\log_p(q)` from :math:`\delta = x_q - x_p` and the heights.

    Move ``p`` to the origin by the isometry :math:`z \mapsto (z - x_p)/y_p`; there the chart differential
    to the hyperboloid is the identity, and :math:`\log_O(Q) = \frac{d}{\sinh d}\,(Q_1..Q_n)` gives

    .. math::

        v_x = \frac{d}{\sinh d}\,\frac{\delta'}{h}, \qquad
        v_y = \frac{d}{\sinh d}\,\frac{\lVert\delta'\rVert^2 + (h - 1)(h + 1)}{2h},

    with :math:`\delta' = \delta/y_p`, :math:`h = y_q/y_p` and :math:`h - 1 = (y_q - y_p)/y_p` formed
    without cancellation. That form is used for :math:`d \le 1` (it is smooth at :math:`q = p`, where its
    derivative is the identity); its terms grow like :math:`e^d` and :math:`h^2` overflows from
    :math:`d \approx 355` (44 in float32), so farther pairs take :math:`d` times the unit vector along
    :math:`(2\delta',\ \lVert\delta'\rVert^2 + (h - 1)(h + 1))`, computed as
    :math:`(2(\delta/S)(y_p/S),\ \lVert\delta/S\rVert^2 + ((y_q - y_p)/S)((y_q + y_p)/S))` with
    :math:`S = \max(y_p, y_q, \lVert\delta\rVert_\infty)`, whose terms are at most 2.
    """
    eta = yq - yp
    d = dist_from_difference(delta, eta, yp, yq)
    far = d > 1
    # Each branch sees harmless arguments on the rows of the other (p = q = origin in the near one), so that
    # where() passes finite gradients.
    yp_near = torch.where(far, 1.0, yp)
    local = torch.where(far, 0.0, delta) / yp_near
    h = torch.where(far, 1.0, yq) / yp_near
    h_minus_one = torch.where(far, 0.0, eta) / yp_near
    factor = sinhc_inverse(torch.where(far, 0.0, d))
    vx = factor * local / h
    vy = factor * (local.square().sum(-1, keepdim=True) + h_minus_one * (h + 1)) / (2 * h)
    near = torch.cat([vx, vy], dim=-1)

    S = torch.maximum(torch.maximum(yp, yq), delta.abs().amax(-1, keepdim=True)).detach()
    direction = torch.cat(
        [2 * (delta / S) * (yp / S), (delta / S).square().sum(-1, keepdim=True) + (eta / S) * ((yq + yp) / S)], -1
    )
    direction = torch.where(far, direction, torch.ones_like(direction))
    far_value = d * direction / scaled_norm(direction, keepdim=True)
    return torch.where(far, far_value, near)


def logmap_frame(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""Frame coordinates of :math:`\log_p(q)` (see :func:`logmap_frame_from_difference`)."""
    xp, yp = split(p)
    xq, yq = split(q)
    return logmap_frame_from_difference(xq - xp, yp, yq)


def transp_from_difference(
    delta: torch.Tensor, yp: torch.Tensor, yq: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    r"""Parallel transport of the tangent vector ``v`` at ``p`` to ``q``, given :math:`\delta = x_q - x_p`.

    The isometry :math:`z \mapsto (z - x_p)/y_p` moves ``p`` to the origin and ``q`` to
    :math:`q' = (\delta',\ h) = (\delta/y_p,\ y_q/y_p)`. The Lorentz transport from the origin to :math:`q'`,
    pulled back through the chart, is in frame coordinates (:math:`w = (-v_x, v_y)/y_p`, ``v`` with its
    horizontal part negated)

    .. math::

        t = \frac{2\langle a, w\rangle}{\lVert a\rVert^2}\,a - w, \qquad a = (\delta',\ 1 + h) \propto (\delta,\ y_p + y_q),

    minus the reflection of :math:`w` in the hyperplane orthogonal to :math:`a` (so an isometry of the
    frame), and the result is :math:`y_q\,t`. With :math:`a` scaled by its largest entry nothing overflows
    at any distance (going through the hyperboloid, coordinates of size :math:`e^d` overflow from
    :math:`d \approx 355`, 44 in float32), and the map is smooth, the identity at :math:`q = p`.
    """
    a = torch.cat([delta, yp + yq], dim=-1)
    a = a / a.detach().abs().amax(-1, keepdim=True)
    w = torch.cat([-v[..., :-1], v[..., -1:]], dim=-1) / yp
    m = 2 * (a * w).sum(-1, keepdim=True) / a.square().sum(-1, keepdim=True)
    return yq * (m * a - w)


def transp(p: torch.Tensor, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Parallel transport from ``p`` to ``q`` (see :func:`transp_from_difference`)."""
    xp, yp = split(p)
    xq, yq = split(q)
    return transp_from_difference(xq - xp, yp, yq, v)


def to_lorentz(p: torch.Tensor) -> torch.Tensor:
    r""":math:`X_0 = \frac{1 + \lVert x\rVert^2 + y^2}{2y}`, :math:`X_i = x_i/y`, :math:`X_n = \frac{\lVert x\rVert^2 + y^2 - 1}{2y}`."""
    x, y = split(p)
    x2 = x.square().sum(-1, keepdim=True)
    # (x2 + y^2 - 1) written as x2 + (y - 1)(y + 1) avoids cancellation near the origin.
    return torch.cat([(1 + x2 + y.square()) / (2 * y), x / y, (x2 + (y - 1) * (y + 1)) / (2 * y)], -1)


def from_lorentz(X: torch.Tensor) -> torch.Tensor:
    r""":math:`y = 1/(X_0 - X_n)`, :math:`x_i = X_i\,y`.

    When :math:`X_n > 0`, :math:`X_0 - X_n = (1 + \sum_{0<i<n} X_i^2)/(X_0 + X_n)` avoids cancellation.
    """
    x0, middle, xn = X[..., :1], X[..., 1:-1], X[..., -1:]
    gap_direct = x0 - xn
    gap_conjugate = (1 + middle.square().sum(-1, keepdim=True)) / (x0 + xn.clamp_min(0))
    y = 1 / torch.where(xn > 0, gap_conjugate, gap_direct)
    return torch.cat([middle * y, y], dim=-1)
