r"""The L-tiling model of :math:`H^2` (``../shared/notes/tiling.md``).

A point is :math:`x = L\,T\,R\,u` with :math:`T` an exact element of the group
:math:`G = \langle g_a, g_b\rangle` (:mod:`tiling.group`) and :math:`u` a float point of the bounded fundamental
domain :math:`F`. Rounding :math:`u` moves the point by :math:`O(\varepsilon)` at *any* radius, and the distance

.. math::

    \cosh d(x, y) = \tilde u^\top Q\, \tilde v, \qquad Q = T_u^\top M_3 T_v \in \mathbb{Z}^{3\times 3},
    \qquad \tilde u = R u = (u_0/\sqrt3, u_1, u_2),

is evaluated with the exact integer matrix :math:`Q`, so nothing cancels in floats.

Storage: one float tensor ``(..., 3 + 9 * limbs)``: ``u0, u1, u2`` and then the nine entries of :math:`T`
(row-major), each as ``limbs`` canonical limbs of :mod:`tiling.bigint` (24-bit integers, exact in float64 and
float32). Tangent vectors have the same shape: the first three slots hold a tangent vector of the hyperboloid
at :math:`u` (in the frame of the tile, i.e. the true tangent vector is :math:`L T R\,h`); the integer slots
are zero. Gradients flow to the float part only; optimisers change :math:`T` only through the
re-normalisation that ``retr``/``expmap`` run after every step. :class:`tiling.LTilingPoints` keeps the same
points as an explicit pair (float parameter, ``int64`` buffer of limbs) for geoopt's dense optimisers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mpmath
import torch
from mpmath import mp

from hyperbolic.manifold import HyperbolicManifold, OffManifoldError, PrecisionContract, PrecisionError
from hyperbolic.math import lorentz as lorentz_kernel
from hyperbolic.numerics import check_finite, safe_sqrt
from hyperbolic.rounding import round_to_tensor
from mcf.eft import two_sum

from . import bigint, group, reduction

__all__ = ["LTiling", "radius_bits"]

SQRT3 = math.sqrt(3.0)
_LOG2E = math.log2(math.e)


def radius_bits(radius: float) -> int:
    r"""Bits that hold every entry of :math:`T` for points within ``radius`` of the origin.

    The tile centre is within :math:`r + \operatorname{arcosh}\sqrt3` of the origin and
    :math:`|T_{ij}| \le \sqrt3\cosh(\text{its distance})`, so :math:`\log_2|T_{ij}| \le r\log_2 e + 1.45`.
    """
    return int(math.ceil(radius * _LOG2E + 1.5))


_FORM_BLOCK = 4096  # pairs per block of the two-limb form: its (block, 6, 6) products stay in cache
_FORM_WEIGHTS = (3.0, -1.0, -1.0)  # the diagonal of M3


def _two_limb_form(Tu: torch.Tensor, Tv: torch.Tensor) -> torch.Tensor:
    r""":math:`Q = T_u^\top M_3 T_v` as float64 from one or two 24-bit limbs ``(..., 3, 3, L)``, ``L <= 2``.

    With :math:`T = 2^{24}T^{(1)} + T^{(0)}`, one outer product per row :math:`k` of the limb vectors
    :math:`(T^{(1)}_{k,:}, T^{(0)}_{k,:})` gives the partial forms :math:`P_2` (:math:`T^{(1)}T^{(1)}`), :math:`P_1` (the
    cross terms) and :math:`P_0` (:math:`T^{(0)}T^{(0)}`): integers below :math:`5 \cdot 2^{49}`, exact in float64 in
    any order. :math:`Q = 2^{48}P_2 + 2^{24}P_1 + P_0` is summed with error-free transformations (TwoSum), so it
    is faithful, and exact below :math:`2^{53}`. Pairs go through in blocks that stay in cache.
    """
    shape = torch.broadcast_shapes(Tu.shape[:-3], Tv.shape[:-3])
    L = Tu.shape[-1]
    A = Tu.to(torch.float64).expand(*shape, 3, 3, L).reshape(-1, 3, 3 * L)  # row k: (i, limb) pairs
    B = Tv.to(torch.float64).expand(*shape, 3, 3, L).reshape(-1, 3, 3 * L)
    out = A.new_empty(A.shape[0], 3, 3)
    for start in range(0, A.shape[0], _FORM_BLOCK):
        a, b = A[start:start + _FORM_BLOCK], B[start:start + _FORM_BLOCK]
        S = None
        for k, weight in enumerate(_FORM_WEIGHTS):
            term = a[:, k, :, None] * (b[:, k, None, :] * weight)
            S = term if S is None else S + term
        S = S.view(-1, 3, L, 3, L)
        if L == 1:
            out[start:start + _FORM_BLOCK] = S[:, :, 0, :, 0]
            continue
        high = S[:, :, 1, :, 1] * float(2**48)
        middle = (S[:, :, 1, :, 0] + S[:, :, 0, :, 1]) * float(2**24)
        partial, error_1 = two_sum(high, middle)
        total, error_2 = two_sum(partial, S[:, :, 0, :, 0])
        out[start:start + _FORM_BLOCK] = total + (error_1 + error_2)
    return out.reshape(*shape, 3, 3)


def _float_limbs(V: torch.Tensor, limbs: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Canonical limbs ``(..., limbs)`` of float64 integers :math:`|V| < 2^{53}`, and what did not fit them.

    ``fmod`` by :math:`B = 2^{24}` keeps the sign of the dividend, so :math:`d_k = \operatorname{fmod}(V_k, B)`,
    :math:`V_{k+1} = (V_k - d_k)/B` are the sign-magnitude limbs; every operation is exact. The second result is
    zero wherever ``V`` fits ``limbs`` limbs.
    """
    out = V.new_empty(*V.shape, limbs)
    rest = V
    for limb in range(limbs):
        digit = torch.fmod(rest, float(bigint.LIMB_BASE))
        out[..., limb] = digit
        rest = (rest - digit) * (1.0 / bigint.LIMB_BASE)
    return out, rest


def _lift(spatial: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.sqrt(1 + spatial.square().sum(-1, keepdim=True)), spatial], dim=-1)


class LTiling(HyperbolicManifold):
    r"""L-tiling model of :math:`H^2`: exact group element :math:`T \in G` plus a float point of :math:`F`.

    Parameters
    ----------
    max_radius : float
        Radius (distance from the origin, curvature -1) up to which every point can be stored. It fixes the
        number of 24-bit limbs per entry of :math:`T`, hence ``storage_dim = 3 + 9 * limbs``; the default 100
        gives 7 limbs (66 floats per point). A point beyond the capacity raises
        :class:`~hyperbolic.manifold.PrecisionError`, never wraps. Arithmetic is exact at any size: distances
        form :math:`Q` with multi-limb products (:mod:`tiling.bigint`) when the entries exceed 24 bits.
    curvature : float
        Negative curvature :math:`-c` (distances scale by :math:`c^{-1/2}`; the storage holds the unit point).
    learnable : bool
        Learn the curvature.

    Notes
    -----
    Near-pair error (two points one unit apart) is :math:`O(\varepsilon)` at every radius within the capacity;
    far pairs use :math:`d = \log Q_{11} + \log(d_c + \sqrt{d_c^2 - Q_{11}^{-2}})`, :math:`d_c = \tilde u^\top
    (Q/Q_{11})\tilde v`, with :math:`\log Q_{11}` taken from the integer's limbs (no overflow past 709).
    """

    name = "ltiling"

    def __init__(self, max_radius: float = 100.0, curvature: float = -1.0, learnable: bool = False):
        super().__init__(2, curvature=curvature, learnable=learnable)
        max_radius = float(max_radius)
        if not math.isfinite(max_radius) or max_radius <= 0:
            raise ValueError(f"max_radius must be a positive finite number, got {max_radius}")
        self.limbs = bigint.limbs_for_bits(radius_bits(max_radius))
        self.max_radius = max_radius

    @classmethod
    def from_spec(cls, spec: dict) -> LTiling:
        return cls(
            max_radius=spec.get("max_radius", 100.0),
            curvature=spec["curvature"],
            learnable=spec.get("learnable", False),
        )

    def spec(self) -> dict:
        out = super().spec()
        out.update(max_radius=self.max_radius, limbs=self.limbs, limb_bits=bigint.LIMB_BITS)
        return out

    def extra_repr(self) -> str:
        return f"max_radius={self.max_radius:g}, limbs={self.limbs}, " + super().extra_repr()

    # ------------------------------------------------------------------ storage
    @property
    def storage_dim(self) -> int:
        return 3 + 9 * self.limbs

    @property
    def capacity_radius(self) -> float:
        """Radius up to which every point fits the integer limbs (at least ``max_radius``)."""
        return (bigint.LIMB_BITS * self.limbs - 1.5) / _LOG2E

    def contract(self, dtype: torch.dtype = torch.float64) -> PrecisionContract:
        if dtype not in (torch.float64, torch.float32):
            raise TypeError(
                f"the L-tiling stores 24-bit integer limbs, exact only in float64 and float32, not {dtype}"
            )
        return PrecisionContract(
            usable_radius=self.capacity_radius,
            max_radius=self.capacity_radius,
            error_growth="eps (independent of r)",
        )

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, T)``: the float part ``(..., 3)`` and the group element as int64 limbs ``(..., 3, 3, limbs)``."""
        if x.shape[-1] != self.storage_dim:
            raise OffManifoldError(
                f"L-tiling points need a last axis of {self.storage_dim} (3 floats + 9 x {self.limbs} limbs), "
                f"got shape {tuple(x.shape)}"
            )
        u = x[..., :3]
        T = x[..., 3:].detach().reshape(*x.shape[:-1], 3, 3, self.limbs).to(torch.int64)
        return u, T

    def pack(self, u: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        """Storage of float parts ``u`` ``(..., 3)`` and canonical limbs ``T`` ``(..., 3, 3, limbs)``."""
        T = bigint.trim(T, self.limbs, what="group element entry")
        shape = torch.broadcast_shapes(u.shape[:-1], T.shape[:-3])
        return torch.cat(
            [u.expand(*shape, 3), T.expand(*shape, 3, 3, self.limbs).reshape(*shape, -1).to(u.dtype)], dim=-1
        )

    def _identity(self, shape, device) -> torch.Tensor:
        T = torch.zeros(*shape, 3, 3, self.limbs, dtype=torch.int64, device=device)
        T[..., 0, 0, 0] = T[..., 1, 1, 0] = T[..., 2, 2, 0] = 1
        return T

    def from_parts(self, T, u: torch.Tensor) -> torch.Tensor:
        r"""Points :math:`L T R u` from group elements and float points.

        Parameters
        ----------
        T : nested sequences of Python ints or an integer tensor ``(..., 3, 3)``
            Elements of :math:`G` (checked exactly; anything else raises
            :class:`~hyperbolic.manifold.OffManifoldError` naming the row).
        u : torch.Tensor
            Points of :math:`H^2` ``(..., 3)`` (any, they are re-normalised into :math:`F`) or their spatial
            coordinates ``(..., 2)``.
        """
        if isinstance(T, torch.Tensor):
            if T.dtype.is_floating_point and bool((T != torch.round(T)).any()):
                raise OffManifoldError("group elements must have integer entries")
            T = T.to(torch.int64).tolist()
        digits = bigint.from_ints(T, self.limbs, device=u.device)
        if digits.shape[-3:-1] != (3, 3):
            raise OffManifoldError(f"group elements must be 3x3 integer matrices, got shape {digits.shape[:-1]}")
        bad = self._not_in_group(digits.reshape(-1, 3, 3, self.limbs)).reshape(digits.shape[:-3])
        if bool(bad.any()):
            row = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise OffManifoldError(
                f"row {row}: integer matrix {bigint.to_ints(digits[row])} is not an element of the L-tiling group "
                "generated by g_a, g_b (it must satisfy T^T diag(3,-1,-1) T = diag(3,-1,-1) and reduce to I)"
            )
        if u.shape[-1] == 2:
            u = _lift(u)
        elif u.shape[-1] == 3:
            self._check_hyperboloid(u, "u")
        else:
            raise OffManifoldError(f"u must have 2 or 3 coordinates, got shape {tuple(u.shape)}")
        return self.renormalize(self.pack(u, digits))

    def _check_hyperboloid(self, u: torch.Tensor, what: str) -> None:
        check_finite(u, what)
        tol = 1e-9 if u.dtype == torch.float64 else 1e-4
        defect = (lorentz_kernel.inner(u, u) + 1).abs()
        bad = (u[..., 0] <= 0) | (defect > tol * u[..., 0].square())
        if bool(bad.any()):
            row = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise OffManifoldError(
                f"{what}: row {row} = {u[row].tolist()} is not on the hyperboloid -u0^2 + u1^2 + u2^2 = -1, u0 > 0"
            )

    def group_elements(self, x: torch.Tensor):
        """The exact group elements of points ``x`` as nested lists of Python integers ``(..., 3, 3)``."""
        return bigint.to_ints(self.split(x)[1])

    # ------------------------------------------------------------------ re-normalisation
    def renormalize(self, x: torch.Tensor) -> torch.Tensor:
        r"""Move every float part back into :math:`F`, changing only the integer part.

        :math:`u_0` is first recomputed from :math:`(u_1, u_2)`. Then all rows outside :math:`F` take reduction
        steps together (:func:`tiling.reduction.reduce_into_domain`: a masked loop, no Python loop over points)
        until they are inside :math:`F` or the next step would not lower :math:`u_0`. The invariant
        :math:`L (T V) R\, w = L T R\, u` holds after every step, so the represented point never changes;
        :math:`V` is accumulated exactly and multiplied into :math:`T` with multi-limb arithmetic, raising
        :class:`~hyperbolic.manifold.PrecisionError` when :math:`T` outgrows ``limbs``.
        """
        shape = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])
        if flat.shape[-1] != self.storage_dim:
            self.split(x)
        w = _lift(flat[:, 1:3])
        w, _, rows, T_rows = self._reduce_rows(w, lambda r: self._limbs_of(flat[r]))
        return self._store(flat, w, rows, T_rows).reshape(*shape, self.storage_dim)

    def _limbs_of(self, flat: torch.Tensor) -> torch.Tensor:
        """Stored limbs of :math:`T` (floats holding exact integers), ``(n, 3, 3, limbs)``."""
        return flat[:, 3:].detach().reshape(-1, 3, 3, self.limbs)

    def _store(self, flat: torch.Tensor, w: torch.Tensor, rows: torch.Tensor, T_rows) -> torch.Tensor:
        """Storage with float parts ``w`` and, for ``rows``, the new group elements ``T_rows`` (limbs)."""
        out = torch.cat([w.to(flat.dtype), flat[:, 3:].detach()], dim=-1)
        if T_rows is not None and rows.numel():
            out[rows, 3:] = T_rows.reshape(rows.numel(), -1).to(flat.dtype)
        return out

    def _reduce_rows(self, w: torch.Tensor, limbs_of, carried: Sequence[torch.Tensor] = (), every_row=False,
                     first_row: int = 0):
        """Reduce float points ``w`` ``(N, 3)`` into F.

        ``limbs_of(rows)`` gives the current group elements of ``rows`` as stored limbs (``None``: the
        identity). Returns ``(w, carried, rows, T_rows)``: the reduced points and vectors, the rows whose group
        element may have changed (those outside F, or all rows with ``every_row``) and their new limbs (float64).
        Error messages number the rows from ``first_row``.
        """
        check_finite(w, "L-tiling float part")
        if every_row:
            rows = torch.arange(first_row, first_row + w.shape[0], device=w.device)
        else:
            rows = torch.nonzero(reduction.outside_domain(w)).squeeze(-1)
        if rows.numel() == 0:
            return w, list(carried), rows, None
        w_rows, c_rows = (w, list(carried)) if every_row else (w[rows], [c[rows] for c in carried])
        T_rows = limbs_of(rows - first_row)
        pending = None  # all rows in the first pass; afterwards only those that paused
        while True:
            if pending is None:
                try:
                    w_rows, c_rows, V, paused = reduction.reduce_into_domain(w_rows, c_rows)
                except RuntimeError as error:
                    raise PrecisionError(str(error)) from None
                T_rows = self._absorb(T_rows, V, rows)
                pending = torch.nonzero(paused).squeeze(-1)
            else:
                try:
                    w_p, c_p, V, paused = reduction.reduce_into_domain(w_rows[pending],
                                                                        [c[pending] for c in c_rows])
                except RuntimeError as error:
                    raise PrecisionError(str(error)) from None
                T_rows[pending] = self._absorb(T_rows[pending], V, rows[pending])
                w_rows[pending] = w_p
                for c, c_new in zip(c_rows, c_p):
                    c[pending] = c_new
                pending = pending[paused]
            if pending.numel() == 0:
                break
        if every_row:
            return w_rows, c_rows, rows, T_rows
        w = w.clone()
        w[rows] = w_rows
        carried = [c.clone() for c in carried]
        for c, c_new in zip(carried, c_rows):
            c[rows] = c_new
        return w, carried, rows, T_rows

    def _absorb(self, T, V: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        r""":math:`T V` as float64 limbs, for stored limbs ``T`` (``None``: the identity) and exact float64
        integer matrices ``V``; raises :class:`PrecisionError` naming the row when the result outgrows ``limbs``.

        * identity: the limbs of :math:`V` itself, split exactly in float64;
        * :math:`|V| < 2^{26}` (the usual case after an optimiser step): per limb, :math:`\sum_k T_{ik} V_{kj}`
          is an integer below :math:`3\cdot 2^{50}`, so a float64 GEMM is exact; carries then follow;
        * otherwise exact multi-limb products.
        """
        if T is None:
            limbs, rest = _float_limbs(V, self.limbs)
            overflow = (rest != 0).flatten(1).any(-1)
            if bool(overflow.any()):
                self._raise_capacity(rows, overflow)
            return limbs
        used = bigint.used_limbs(T)
        if used <= 2:
            # |T| < 2^48 is exact as one float64; if every sum_k |T_ik| |V_kj| is below 2^53, so is T V.
            limbs_64 = T[..., :used].to(torch.float64)  # (float32 storage would round the sum below)
            T_value = limbs_64[..., 0] if used == 1 else limbs_64[..., 0] + limbs_64[..., 1] * float(bigint.LIMB_BASE)
            bound = float(T_value.abs().amax()) * float(V.abs().sum(-2).amax()) if V.numel() else 0.0
            if bound < 2.0**53:
                limbs, rest = _float_limbs((T_value.unsqueeze(-1) * V.unsqueeze(-3)).sum(-2), self.limbs)
                overflow = (rest != 0).flatten(1).any(-1)
                if bool(overflow.any()):
                    self._raise_capacity(rows, overflow)
                return limbs
        if float(V.abs().max()) < 2.0**26:
            per_limb = torch.matmul(V.transpose(-1, -2).unsqueeze(1),
                                    T[..., :used].to(torch.float64).permute(0, 3, 1, 2).transpose(-1, -2))
            # per_limb[n, l] = (T_l V)^T; back to (n, 3, 3, limbs)
            product = bigint.normalize(per_limb.transpose(-1, -2).permute(0, 2, 3, 1).to(torch.int64),
                                       used + 2, "T V")
        else:
            V_digits = bigint.from_int64(V.to(torch.int64), 3)
            V_digits = V_digits[..., : bigint.used_limbs(V_digits)]
            product = bigint.matmul(T[..., :used].to(torch.int64), V_digits,
                                    limbs=used + V_digits.shape[-1] + 1)
        return self._check_capacity(product.to(torch.float64), rows)

    def _check_capacity(self, limbs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if limbs.shape[-1] > self.limbs:
            overflow = (limbs[..., self.limbs:] != 0).flatten(1).any(-1)
            if bool(overflow.any()):
                self._raise_capacity(rows, overflow)
            limbs = limbs[..., : self.limbs]
        return torch.nn.functional.pad(limbs, (0, self.limbs - limbs.shape[-1]))

    def _raise_capacity(self, rows: torch.Tensor, overflow: torch.Tensor):
        row = int(rows[torch.nonzero(overflow)[0, 0]])
        raise PrecisionError(
            f"row {row}: the group element outgrew {self.limbs} limbs of {bigint.LIMB_BITS} bits (the "
            f"capacity of LTiling(max_radius={self.max_radius:g}), radius about "
            f"{self.capacity_radius:.0f}); use a larger max_radius"
        )

    def _not_in_group(self, T: torch.Tensor) -> torch.Tensor:
        r"""Rows ``(N,)`` whose integer matrix is not an element of :math:`G`, decided exactly.

        The tile centre :math:`T e_0` is reduced with the same greedy steps as points, applied to the whole
        matrix (:math:`T \leftarrow g T`). For :math:`T \in G` each step lowers the centre's time coordinate
        until the centre is the origin, and the product is then exactly :math:`I` (:math:`G` acts freely on
        tile centres). Anything else — a matrix that does not preserve :math:`M_3`, the rotations of
        :math:`F` that do — stops elsewhere.
        """
        N, L = T.shape[0], T.shape[-1]
        width = L + 1
        identity = bigint.pad(self._identity((N,), T.device)[..., :1], width)
        state = bigint.pad(T, width)
        cap = 4 * bigint.LIMB_BITS * width + 64
        for _ in range(cap):
            c0, c1, c2 = state[:, 0, 0], state[:, 1, 0], state[:, 2, 0]
            outside = (bigint.compare(c1.abs(), c0) > 0) | (bigint.compare(c2.abs(), c0) > 0)
            if not bool(outside.any()):
                break
            axis1 = bigint.compare(c1.abs(), c2.abs()) >= 0
            sigma = torch.where(axis1, torch.where(bigint.sign(c1) <= 0, 1, -1),
                                torch.where(bigint.sign(c2) < 0, 1, -1))
            a = axis1.view(N, 1)
            row0, row1, row2 = state[:, 0], state[:, 1], state[:, 2]
            P = torch.where(a.unsqueeze(-1), row1, row2)
            Qr = torch.where(a.unsqueeze(-1), row2, row1)
            s = sigma.view(N, 1, 1)
            new0 = 2 * row0 + s * P
            new_other = 3 * s * row0 + 2 * P
            new1 = torch.where(a.unsqueeze(-1), -Qr, new_other)
            new2 = torch.where(a.unsqueeze(-1), new_other, -Qr)
            moved = bigint.normalize(torch.stack([new0, new1, new2], dim=1), width + 1, "group reduction")
            if bool((moved[..., width:] != 0).any()):
                grew = (moved[..., width:] != 0).flatten(1).any(-1)
                outside = outside & ~grew
            moved = moved[..., :width]
            lowers = bigint.compare(moved[:, 0, 0], c0) < 0
            accept = outside & lowers
            if not bool(accept.any()):
                break
            state = torch.where(accept.view(N, 1, 1, 1), moved, state)
        return ~(state == identity).flatten(1).all(-1)

    # ------------------------------------------------------------------ distance
    def _form_matrix(self, Tu: torch.Tensor, Tv: torch.Tensor):
        r"""Features of the exact :math:`Q = T_u^\top M_3 T_v` from limbs ``(..., 3, 3, L)`` (float or int).

        Returns ``(log_q, q_hat, q_exact, small)``: :math:`\log Q_{11}`, :math:`Q/Q_{11}` (float64, each entry
        rounded about once), and :math:`Q` itself as float64, exact where ``small`` (:math:`|Q| < 2^{48}`).

        * one limb (entries below :math:`2^{24}`, radius up to about 15): products below :math:`2^{48}` and
          their weighted sums below :math:`5 \cdot 2^{48}` are exact in float64;
        * two limbs (entries below :math:`2^{48}`, radius up to about 32): with :math:`T = 2^{24}T^{(1)} + T^{(0)}`
          the three partial forms :math:`P_2, P_1, P_0` (:math:`T^{(1)}T^{(1)}`, the cross terms, :math:`T^{(0)}T^{(0)}`)
          are exact float64 integers below :math:`2^{52}`, and :math:`Q = 2^{48}P_2 + 2^{24}P_1 + P_0` is summed with
          error-free transformations (TwoSum), so its float value is faithful (exact below :math:`2^{53}`);
        * more limbs: exact multi-limb products (:func:`tiling.bigint.matmul`) and the leading limbs.
        """
        used = bigint.used_limbs(Tu, Tv)
        if used <= 2:
            Q = _two_limb_form(Tu[..., :used], Tv[..., :used])
            small = Q[..., 0, 0] < float(2**48)
            q00 = Q[..., 0, 0]
            return torch.log(q00), Q / q00[..., None, None], Q, small
        Tu = Tu[..., :used].to(torch.int64)
        Tv = Tv[..., :used].to(torch.int64)
        Q = bigint.matmul(Tu.transpose(-3, -2), Tv, weights=group.M3, what="Q = T_u^T M3 T_v")
        q00 = Q[..., 0, 0, :]
        positions = torch.arange(Q.shape[-1], device=Q.device)
        top = torch.where(q00 != 0, positions, 0).amax(-1)
        scaled = bigint.leading(Q, top[..., None, None])
        lead = scaled[..., 0, 0]
        log_q = top.to(torch.float64) * (bigint.LIMB_BITS * math.log(2.0)) + torch.log(lead)
        small = top <= 1
        low = Q[..., :2].to(torch.float64)
        q_exact = low[..., 0] + low[..., 1] * float(bigint.LIMB_BASE) if Q.shape[-1] >= 2 else low[..., 0]
        return log_q, scaled / lead[..., None, None], q_exact, small

    def _limb_floats(self, x: torch.Tensor) -> torch.Tensor:
        """The limbs of :math:`T` as they are stored (floats), ``(..., 3, 3, limbs)``."""
        if x.shape[-1] != self.storage_dim:
            self.split(x)
        return x[..., 3:].detach().reshape(*x.shape[:-1], 3, 3, self.limbs)

    def dist(self, x: torch.Tensor, y: torch.Tensor, *, keepdim: bool = False) -> torch.Tensor:
        r"""Geodesic distance through the exact integer matrix :math:`Q`.

        * Tiles close together (:math:`Q` small and :math:`\cosh d \le 8`): map :math:`v` into :math:`u`'s tile
          with the integer matrix :math:`T_u^{-1}T_v = M_3^{-1}Q` and use
          :math:`d = 2\operatorname{arsinh}(\tfrac12\lVert u - v'\rVert_L)` (no loss for tiny distances);
        * otherwise the large-Q form :math:`d = \log Q_{11} + \log(d_c + \sqrt{d_c^2 - Q_{11}^{-2}})`.

        Gradients flow to the float parts only.
        """
        u, v = x[..., :3], y[..., :3]
        with torch.no_grad():
            log_q, q_hat, q_exact, small = self._form_matrix(self._limb_floats(x), self._limb_floats(y))
        out_dtype = torch.promote_types(u.dtype, v.dtype)
        # float32 storage is evaluated in float64: the only error left is the rounding of the stored floats.
        dtype = torch.promote_types(out_dtype, torch.float64)
        scale_tilde = torch.tensor([1 / SQRT3, 1.0, 1.0], dtype=dtype, device=u.device)
        ut, vt = u.to(dtype) * scale_tilde, v.to(dtype) * scale_tilde
        q_hat, q_exact, log_q = q_hat.to(dtype), q_exact.to(dtype), log_q.to(dtype)
        d_c = (ut.unsqueeze(-1) * q_hat * vt.unsqueeze(-2)).sum((-2, -1))
        use_near = small & (torch.exp(log_q) * d_c.detach() <= 8)
        # Each branch is evaluated only when some pair needs it (both are finite everywhere, for where()).
        some_near, some_far = bool(use_near.any()), not bool(use_near.all())
        if some_far:
            inverse_q2 = torch.exp(-2 * log_q)
            far = log_q + torch.log(d_c + safe_sqrt(d_c.square() - inverse_q2))
        if some_near:
            # v in u's tile: T' = M3^{-1} Q (rows: Q_0j / 3, -Q_1j, -Q_2j), exact for small Q.
            row_scale = torch.tensor([1 / 3, -1.0, -1.0], dtype=dtype, device=u.device).unsqueeze(-1)
            relative = torch.where(small[..., None, None], q_exact * row_scale, torch.zeros_like(q_exact))
            moved = (relative * vt.unsqueeze(-2)).sum(-1)
            diff = ut - moved
            chord2 = -3 * diff[..., 0].square() + diff[..., 1].square() + diff[..., 2].square()
            near = 2 * torch.asinh(0.5 * safe_sqrt(chord2))
        if not some_far:
            far = near
        elif not some_near:
            near = far
        d = (torch.where(use_near, near, far) * self.scale(d_c)).to(out_dtype)
        return d.unsqueeze(-1) if keepdim else d

    # ------------------------------------------------------------------ tangent space
    def _float_only(self, h: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        shape = torch.broadcast_shapes(h.shape[:-1], like.shape[:-1])
        zeros = h.new_zeros(*shape, self.storage_dim - 3)
        return torch.cat([h.expand(*shape, 3), zeros], dim=-1)

    def inner(self, x, u, v=None, *, keepdim=False):
        """Metric :math:`R^2\\langle h, k\\rangle_L` on the float slots (the tile map is an isometry)."""
        v = u if v is None else v
        result = lorentz_kernel.inner(u[..., :3], v[..., :3], keepdim=keepdim) * self.scale(u).square()
        return result

    def proju(self, x, v):
        r"""Project the float slots onto :math:`T_u H^2`: :math:`h + \langle u, h\rangle_L u`; integer slots zero."""
        u = x[..., :3]
        h = v[..., :3]
        return self._float_only(h + lorentz_kernel.inner(u, h, keepdim=True) * u, x)

    def egrad2rgrad(self, x, g):
        r"""Riemannian gradient of the float part: :math:`\operatorname{proj}_u(J\nabla)/R^2`; none for :math:`T`."""
        h = torch.cat([-g[..., :1], g[..., 1:3]], dim=-1) / self.scale(g).square()
        return self.proju(x, self._float_only(h, x))

    def projx(self, x):
        """Recompute :math:`u_0` and re-normalise into :math:`F` (the integer part is kept as it is)."""
        return self.renormalize(x)

    def expmap(self, x, v):
        r"""Exponential map, followed by re-normalisation.

        The geodesic :math:`\cosh(t)u + \sinh(t)\hat h` is followed in pieces of length at most 1, each ending
        with a re-normalisation that carries the velocity along, so a long step never leaves the region where
        float coordinates are accurate.
        """
        if x.shape[-1] != self.storage_dim:
            self.split(x)
        shape = torch.broadcast_shapes(x.shape[:-1], v.shape[:-1])
        flat = x.expand(*shape, self.storage_dim).reshape(-1, self.storage_dim)
        h = v[..., :3].to(x.dtype).expand(*shape, 3).reshape(-1, 3)
        length = safe_sqrt(lorentz_kernel.inner(h, h, keepdim=True))
        direction = torch.where(length > 0, h / torch.where(length > 0, length, 1.0), torch.zeros_like(h))
        longest = float(length.detach().max()) if length.numel() else 0.0
        if not math.isfinite(longest):
            check_finite(v, "tangent vector")
        pieces = min(max(1, math.ceil(longest)), 4096)
        if longest / pieces > 700:
            raise PrecisionError(f"expmap step of length {longest:.3g} is too long for float coordinates")
        piece = length / pieces
        c, s = torch.cosh(piece), torch.sinh(piece)
        point = flat[:, :3]
        for _ in range(pieces):
            moved = c * point + s * direction
            velocity = s * point + c * direction
            point, (direction,), rows, T_rows = self._reduce_rows(
                _lift(moved[:, 1:]), lambda r, f=flat: self._limbs_of(f[r]), [velocity]
            )
            flat = self._store(flat, point, rows, T_rows)
            direction = direction + lorentz_kernel.inner(point, direction, keepdim=True) * point
            # Back to unit length: the lift and the projection change it by O(eps), and each piece multiplies
            # that error by about cosh^2(1) (length 50: off by 1e3 in float64; float32 fails past length 20).
            norm = safe_sqrt(lorentz_kernel.inner(direction, direction, keepdim=True))
            direction = torch.where(norm > 0, direction / torch.where(norm > 0, norm, 1.0), torch.zeros_like(direction))
        return flat.reshape(*shape, self.storage_dim)

    def retr(self, x, v):
        return self.expmap(x, v)

    def _relative(self, x, y):
        """:math:`A = L T_y^{-1} T_x R` as float64 (mapping x's tile frame into y's), with ``log Q11``."""
        with torch.no_grad():
            log_q, q_hat, q_exact, small = self._form_matrix(self._limb_floats(y), self._limb_floats(x))
        return log_q, q_hat, q_exact, small

    def logmap(self, x, y):
        r""":math:`\log_x y` in the frame of ``x``: the direction of :math:`y' + \langle u, y'\rangle_L u`, with
        :math:`y' = L T_x^{-1} T_y R\, v` scaled by :math:`1/Q_{11}` (no overflow), of length :math:`d(x,y)`."""
        u, _ = self.split(x)
        v, _ = self.split(y)
        log_q, q_hat, _, _ = self._relative(y, x)
        dtype = u.dtype
        # L (M3^{-1} Q) R v / Q11 with Q = T_x^T M3 T_y: rows scaled by (sqrt3/3, -1, -1), columns by (1/sqrt3, 1, 1).
        row = torch.tensor([SQRT3 / 3, -1.0, -1.0], dtype=dtype, device=u.device).unsqueeze(-1)
        col = torch.tensor([1 / SQRT3, 1.0, 1.0], dtype=dtype, device=u.device)
        moved = ((row * q_hat.to(dtype) * col) * v.unsqueeze(-2)).sum(-1)
        direction = moved + lorentz_kernel.inner(u, moved, keepdim=True) * u
        norm = safe_sqrt(lorentz_kernel.inner(direction, direction, keepdim=True))
        d = self.dist(x, y, keepdim=True) / self.scale(u)
        unit = direction / torch.where(norm > 0, norm, 1.0)
        return self._float_only(torch.where(norm > 0, d * unit, torch.zeros_like(unit)), x)

    def transp(self, x, y, v):
        r"""Parallel transport from ``x`` to ``y``, in tile frames.

        With :math:`A = L T_y^{-1} T_x R` (integer relative element), :math:`x' = A u_x` and :math:`h' = A h` in
        the frame of ``y``, :math:`P h = h' + \frac{\langle u_y, h'\rangle_L}{1 - \langle x', u_y\rangle_L}(x' + u_y)`.
        """
        ux, _ = self.split(x)
        uy, _ = self.split(y)
        log_q, q_hat, _, _ = self._relative(x, y)
        dtype = ux.dtype
        if bool((log_q > 700).any()):
            raise PrecisionError("parallel transport between points more than about 700 apart overflows float64")
        row = torch.tensor([SQRT3 / 3, -1.0, -1.0], dtype=dtype, device=ux.device).unsqueeze(-1)
        col = torch.tensor([1 / SQRT3, 1.0, 1.0], dtype=dtype, device=ux.device)
        A = row * (q_hat * torch.exp(log_q)[..., None, None]).to(dtype) * col
        x_moved = (A * ux.unsqueeze(-2)).sum(-1)
        h = (A * v[..., :3].unsqueeze(-2)).sum(-1)
        factor = lorentz_kernel.inner(uy, h, keepdim=True) / (1 - lorentz_kernel.inner(x_moved, uy, keepdim=True))
        return self._float_only(h + factor * (x_moved + uy), y)

    # ------------------------------------------------------------------ charts
    def to_lorentz(self, x):
        r""":math:`L T R u` in floats (exact integers, one rounding each; inaccurate far out, where the Lorentz
        chart itself is). Raises :class:`~hyperbolic.manifold.PrecisionError` beyond the float range."""
        u, T = self.split(x)
        Tf = bigint.to_float(T, torch.float64).to(u.dtype)
        ut = u * torch.tensor([1 / SQRT3, 1.0, 1.0], dtype=u.dtype, device=u.device)
        y = (Tf * ut.unsqueeze(-2)).sum(-1)
        X = y * torch.tensor([SQRT3, 1.0, 1.0], dtype=u.dtype, device=u.device)
        if not bool(torch.isfinite(X.detach()).all()):
            row = tuple(int(i) for i in torch.nonzero(~torch.isfinite(X.detach()).all(-1))[0])
            raise PrecisionError(f"row {row} lies beyond the range of {u.dtype} Lorentz coordinates")
        return X * self.scale(X)

    def from_lorentz(self, X):
        """Points from Lorentz coordinates (curvature of the model): lift from the spatial part, reduce into F."""
        X = X / self.scale(X)
        check_finite(X, "Lorentz coordinates")
        shape = X.shape[:-1]
        flat = X.reshape(-1, 3)
        out = flat.new_empty(flat.shape[0], self.storage_dim)
        # Blocks of rows that stay in cache from the reduction to the limbs of the group element. Every row starts
        # from the identity, so the accumulated V is the group element itself.
        block = reduction.chunk_size()
        for start in range(0, flat.shape[0], block):
            stop = min(start + block, flat.shape[0])
            w, _, _, T = self._reduce_rows(_lift(flat[start:stop, 1:]), lambda r: None, every_row=True,
                                           first_row=start)
            out[start:stop, :3] = w
            out[start:stop, 3:] = T.reshape(stop - start, -1)
        return out.reshape(*shape, self.storage_dim)

    def to_reference(self, x: torch.Tensor) -> list[tuple]:
        """Exact mpmath points :math:`L T R u` with :math:`u_0` recomputed exactly from the stored
        :math:`(u_1, u_2)` (so the reference point lies exactly on the hyperboloid)."""
        u, T = self.split(x)
        rows = u.detach().reshape(-1, 3).to(torch.float64).cpu().tolist()
        mats = bigint.to_ints(T.reshape(-1, 3, 3, self.limbs))
        out = []
        for row, matrix in zip(rows, mats):
            with mp.workprec(mp.prec + 64):
                u1, u2 = mpmath.mpf(row[1]), mpmath.mpf(row[2])
                lifted = (mpmath.sqrt(1 + u1 * u1 + u2 * u2), u1, u2)
            out.append(group.point_from_parts(matrix, lifted))
        return out

    def from_reference(self, points: Sequence[Sequence], dtype=torch.float64, device=None):
        r"""Reduce each reference point into :math:`F` with exact integer decisions
        (:func:`tiling.group.reduce_exact`), then round :math:`u_1, u_2` to nearest and lift :math:`u_0`."""
        self._check_reference_radius(points, dtype)  # the declared ceiling (contract.max_radius)
        reductions, floats = [], []
        for row, p in enumerate(points):
            if len(p) != 3:
                raise ValueError(f"reference point {row} has {len(p)} coordinates; H^2 needs 3")
            x0 = mpmath.mpf(p[0])
            if not mpmath.isfinite(x0) or x0 < 1:
                raise OffManifoldError(f"reference point {row} has time coordinate {x0}, not >= 1")
            try:
                reduction = group.reduce_exact(p)
            except ValueError as error:
                raise OffManifoldError(f"reference point {row}: {error}") from None
            reductions.append(reduction.T)
            floats.append(reduction.u[1:])
        spatial = round_to_tensor(floats, dtype, None, "L-tiling float part")
        try:
            T = bigint.from_ints(reductions, self.limbs) if reductions else self._identity((0,), None)
        except bigint.IntegerOverflowError:
            for row, matrix in enumerate(reductions):
                bits = max(abs(v).bit_length() for r in matrix for v in r)
                if bits > bigint.LIMB_BITS * self.limbs:
                    raise PrecisionError(
                        f"reference point {row} needs {bits}-bit group entries, beyond the {self.limbs} limbs of "
                        f"LTiling(max_radius={self.max_radius:g}) (radius about {self.capacity_radius:.0f})"
                    ) from None
            raise
        x = self.pack(_lift(spatial), T)
        return x.to(device) if device is not None else x

    # ------------------------------------------------------------------ checks
    def _off_manifold_rows(self, x, atol, rtol):
        u = x[..., :3]
        digits = x[..., 3:].reshape(*x.shape[:-1], 9, self.limbs)
        integral = (digits == torch.round(digits)).all(-1).all(-1)
        in_range = (digits.abs() < bigint.LIMB_BASE).all(-1).all(-1)
        one_sign = ((digits >= 0).all(-1) | (digits <= 0).all(-1)).all(-1)
        defect = (lorentz_kernel.inner(u, u) + 1).abs()
        on_hyperboloid = (u[..., 0] > 0) & (defect <= atol + rtol * u[..., 0].square())
        slack = atol + rtol * u[..., 0]
        in_domain = (SQRT3 * u[..., 1].abs() <= u[..., 0] + slack) & (SQRT3 * u[..., 2].abs() <= u[..., 0] + slack)
        bad = ~(integral & in_range & one_sign & on_hyperboloid & in_domain)
        candidates = ~bad
        if bool(candidates.any()):
            T = digits[candidates].to(torch.int64).reshape(-1, 3, 3, self.limbs)
            bad[candidates] = self._not_in_group(T)
        return bad

    def _describe_row(self, x, row):
        u = x[row][:3].tolist()
        try:
            T = bigint.to_ints(x[row][3:].reshape(3, 3, self.limbs).to(torch.int64))
        except (RuntimeError, ValueError):
            T = "unreadable"
        return f"u = {u}, T = {T}"
