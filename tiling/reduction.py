r"""Vectorised reduction of float points of :math:`H^2` into the fundamental domain :math:`F` of the L-tiling.

One step (``../shared/notes/tiling.md`` §5), for a point :math:`w` outside :math:`F`: let ``p`` be the spatial
coordinate of larger magnitude (axis 1 on ties), ``q`` the other, and :math:`\sigma = +1` if :math:`p \le 0`
else :math:`-1` (this picks :math:`g_a, g_b, g_b^{-1}, g_a^{-1}` as in the note). The conjugated generator
:math:`L g R` maps

.. math::

    w_0 \mapsto 2w_0 + \sigma\sqrt3\,p, \qquad
    \text{slot of } p \mapsto -q, \qquad
    \text{slot of } q \mapsto \sigma\sqrt3\,w_0 + 2p,

and the accumulated group element absorbs :math:`g^{-1}` by column operations,
:math:`V_{:,0} \mapsto 2V_{:,0} - 3\sigma V_{:,p}`, :math:`V_{:,p} \mapsto -V_{:,q}`,
:math:`V_{:,q} \mapsto -\sigma V_{:,0} + 2V_{:,p}`, so that :math:`L (T V) R\, w` stays the represented point.
A step is taken only if it lowers :math:`w_0` (recomputed as :math:`\sqrt{1 + w_1^2 + w_2^2}`); this guard stops the
ping-pong that rounding can cause near :math:`\partial F` and makes the loop terminate.

The loop is masked over all points at once (no Python loop over points). Points are processed in chunks
that stay in cache, as separate contiguous coordinate arrays, and finished points are compacted away.
:math:`V` is kept exactly in float64; a point whose :math:`V` would pass :math:`2^{53}` pauses so that the caller
can multiply :math:`V` into its multi-limb :math:`T` and call again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["outside_domain", "reduce_into_domain", "CHUNK"]

SQRT3 = math.sqrt(3.0)
INV_SQRT3 = 1.0 / SQRT3
CHUNK = 1 << 16
# |V| grows at most 5x per step; checked every 4 steps, a pause at 2^43 keeps |V| < 2^53.
_CHECK_EVERY = 4
_PAUSE_BOUND = float(2**43)


def outside_domain(w: torch.Tensor) -> torch.Tensor:
    r""":math:`w \notin F`: :math:`|w_1| > w_0/\sqrt3` or :math:`|w_2| > w_0/\sqrt3` (rows of ``(..., 3)``)."""
    limit = w[..., 0] * INV_SQRT3
    return (w[..., 1].abs() > limit) | (w[..., 2].abs() > limit)


def reduce_into_domain(
    w: torch.Tensor, carried: Sequence[torch.Tensor] = (), max_steps: int | None = None
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor]:
    r"""Reduce points ``w`` ``(n, 3)`` into :math:`F`.

    Parameters
    ----------
    w : torch.Tensor
        Points of the hyperboloid (float32 or float64), ``(n, 3)``.
    carried : sequence of torch.Tensor
        Vectors ``(n, 3)`` (e.g. tangent vectors) transformed by the same steps.
    max_steps : int, optional
        Iteration cap; default from the largest :math:`w_0` (:math:`4\operatorname{arcosh} w_0 + 64`).

    Returns
    -------
    w, carried, V, paused
        Reduced points and vectors, the accumulated elements :math:`V` as exact float64 integers ``(n, 3, 3)``
        (:math:`L V R\, w_{\text{new}} = w_{\text{old}}`), and the rows that paused before :math:`V` overflowed
        float64 (call again after absorbing :math:`V`).
    """
    n = w.shape[0]
    out_w = w.clone()
    out_c = [c.clone() for c in carried]
    V = torch.zeros(n, 3, 3, dtype=torch.float64, device=w.device)
    V[:, 0, 0] = V[:, 1, 1] = V[:, 2, 2] = 1
    paused = torch.zeros(n, dtype=torch.bool, device=w.device)
    if n == 0:
        return out_w, out_c, V, paused
    if max_steps is None:
        peak = float(w[:, 0].max())
        max_steps = int(4 * math.acosh(max(peak, 1.0))) + 64 if math.isfinite(peak) else 64
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        _reduce_chunk(out_w, out_c, V, paused, start, stop, max_steps)
    return out_w, out_c, V, paused


def _reduce_chunk(out_w, out_c, out_V, paused, start, stop, max_steps):
    index = torch.arange(start, stop, device=out_w.device)
    first = outside_domain(out_w[start:stop])
    index = index[first]
    if index.numel() == 0:
        return
    w0, w1, w2 = (out_w[index, i].contiguous() for i in range(3))
    cs = [[c[index, i].contiguous() for i in range(3)] for c in out_c]
    k = index.numel()
    V = torch.zeros(3, 3, k, dtype=torch.float64, device=out_w.device)
    V[0, 0] = V[1, 1] = V[2, 2] = 1
    frozen = torch.zeros(k, dtype=torch.bool, device=out_w.device)
    dtype = w0.dtype

    def write_back(rows):
        target = index[rows]
        for i, coordinate in enumerate((w0, w1, w2)):
            out_w[target, i] = coordinate[rows]
        for c_out, c in zip(out_c, cs):
            for i in range(3):
                c_out[target, i] = c[i][rows]
        out_V[target] = V[:, :, rows].permute(2, 0, 1)
        paused[target] = frozen[rows] & outside_domain(out_w[target])

    for step in range(max_steps + 1):
        if step % _CHECK_EVERY == 0:
            frozen = frozen | (V.abs().amax((0, 1)) > _PAUSE_BOUND)
        a1, a2 = w1.abs(), w2.abs()
        limit = w0 * INV_SQRT3
        outside = (a1 > limit) | (a2 > limit)
        axis1 = a1 >= a2
        p = torch.where(axis1, w1, w2)
        q = torch.where(axis1, w2, w1)
        negative = p <= 0
        # sigma * sqrt(3), formed in the working dtype (a where() of two Python floats would be float32).
        s = negative.to(dtype) * (2 * SQRT3) - SQRT3
        new_other = torch.addcmul(2 * p, s, w0)
        new1 = torch.where(axis1, -q, new_other)
        new2 = torch.where(axis1, new_other, -q)
        # The new w0 is recomputed from (w1, w2) rather than as 2 w0 + s p: it keeps the point on the hyperboloid.
        lifted = torch.hypot(torch.hypot(new1, new2), torch.ones((), dtype=dtype, device=w0.device))
        accept = outside & (lifted < w0) & ~frozen
        if step == max_steps:
            if bool(accept.any()):
                row = int(index[torch.nonzero(accept)[0, 0]])
                raise RuntimeError(f"re-normalisation of row {row} did not reach the fundamental domain in "
                                   f"{max_steps} steps")
            break
        if not bool(accept.any()):
            break
        w0 = torch.where(accept, lifted, w0)
        w1 = torch.where(accept, new1, w1)
        w2 = torch.where(accept, new2, w2)
        for c in cs:
            cp = torch.where(axis1, c[1], c[2])
            cq = torch.where(axis1, c[2], c[1])
            c0 = torch.addcmul(2 * c[0], s, cp)
            c_other = torch.addcmul(2 * cp, s, c[0])
            c1 = torch.where(axis1, -cq, c_other)
            c2 = torch.where(axis1, c_other, -cq)
            c[0] = torch.where(accept, c0, c[0])
            c[1] = torch.where(accept, c1, c[1])
            c[2] = torch.where(accept, c2, c[2])
        sigma = negative.to(torch.float64) * 2 - 1
        P = torch.where(axis1, V[:, 1], V[:, 2])
        Qc = torch.where(axis1, V[:, 2], V[:, 1])
        col0 = torch.addcmul(2 * V[:, 0], sigma, P, value=-3)
        col_other = torch.addcmul(2 * P, sigma, V[:, 0], value=-1)
        col1 = torch.where(axis1, -Qc, col_other)
        col2 = torch.where(axis1, col_other, -Qc)
        V = torch.where(accept, torch.stack([col0, col1, col2], dim=1), V)
        done = ~accept
        finished = int(done.sum())
        if 4 * finished >= k:
            write_back(done)
            keep = accept
            index, w0, w1, w2, V, frozen = index[keep], w0[keep], w1[keep], w2[keep], V[:, :, keep], frozen[keep]
            cs = [[c[i][keep] for i in range(3)] for c in cs]
            k = index.numel()
    write_back(torch.ones(k, dtype=torch.bool, device=out_w.device))
