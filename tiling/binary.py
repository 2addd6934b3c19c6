r"""The binary half-space tiling of :math:`H^n` (``../shared/notes/tiling.md`` §8).

A point is :math:`p = 2^j (x + k)` in the upper half-space: horizontal coordinates :math:`2^j(x_i + k_i)`,
height :math:`2^j x_n`, with integers :math:`k \in \mathbb{Z}^{n-1}` (exact, multi-limb), :math:`j \in \mathbb{Z}`,
and floats in the bounded box :math:`x \in [0, 1)^{n-1}`, :math:`x_n \in [1, 2)`. Integer translations and
dilations by powers of 2 are isometries, so rounding the floats moves the point by :math:`O(\varepsilon)` at
any radius.

Storage: one float tensor ``(..., n + 1 + (n - 1) * limbs)``: ``x_1 .. x_{n-1}, x_n``, then ``j`` (an integer
held exactly in the float), then the limbs of :math:`k_1, \ldots, k_{n-1}` (:mod:`tiling.bigint`). Tangent vectors
have the same shape; their first ``n`` slots are a half-space tangent vector at :math:`(x, x_n)` in the local
chart (an isometric image of the true one), the others are zero. ``limbs`` is sized for ``max_radius``, but a point
at radius :math:`r` needs only about :math:`r\log_2 e` bits: the integer arithmetic reads and works on the limbs in
use (:meth:`BinaryTiling.limbs_in_use`, one pass over the stored limbs), and in plain ``int64`` where the values
fit, with results bit for bit those of the full width (``tests/tiling/test_binary_limbs.py``).

Distance (:math:`j_2 \ge j_1`, :math:`t = j_2 - j_1`, everything in units of :math:`2^{j_1}`): with
:math:`\Delta = (k^1 + x^1) - 2^t(k^2 + x^2)` over all :math:`n` coordinates (:math:`k_n = 0`), the heights
:math:`y_1 = x^1_n`, :math:`y_2 = 2^t x^2_n` and :math:`\rho = \lVert\Delta\rVert`,

.. math::

    \sinh\frac{d}{2} = \frac{\rho}{2\sqrt{y_1 y_2}} .

The integer part :math:`K = k^1 - 2^t k^2 - \lfloor 2^t x^2\rfloor` is formed exactly (multi-limb shift), the
rest :math:`x^1 - \{2^t x^2\}` is one rounding; :math:`\Delta` is scaled by :math:`2^{-\sigma}` (:math:`\sigma` from
the bit length of :math:`K`) before it is squared, so nothing overflows, and for
:math:`z = \rho/(2\sqrt{y_1y_2}) > e^{20}` the distance is :math:`2(\log z + \log 2)` from logarithms.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence

import mpmath
import torch
from mpmath import mp
from torch.func import jvp

from hyperbolic import reference
from hyperbolic.manifold import HyperbolicManifold, OffManifoldError, PrecisionContract, PrecisionError
from hyperbolic.math import halfspace as chart
from hyperbolic.math import lorentz as lorentz_kernel
from hyperbolic.numerics import check_finite, scaled_norm
from hyperbolic.rounding import round_to_tensor
from mcf.eft import two_sum

from . import bigint

__all__ = ["BinaryTiling"]

_LOG2E = math.log2(math.e)
_LN2 = math.log(2.0)


class BinaryTiling(HyperbolicManifold):
    r"""Binary half-space tiling of :math:`H^n`: exact integers :math:`(k, j)` plus floats in a bounded box.

    Parameters
    ----------
    dim : int
        Dimension ``n >= 2``.
    max_radius : float
        Radius up to which every point can be stored; fixes the limbs of each :math:`k_i`
        (:math:`\log_2|k_i| \lesssim r\log_2 e`). Beyond it conversions and updates raise
        :class:`~hyperbolic.manifold.PrecisionError`.
    curvature : float
        Negative curvature :math:`-c`; the storage holds the unit model, distances scale by :math:`c^{-1/2}`.
    learnable : bool
        Learn the curvature.
    """

    name = "binary-tiling"

    def __init__(self, dim: int, max_radius: float = 100.0, curvature: float = -1.0, learnable: bool = False):
        super().__init__(dim, curvature=curvature, learnable=learnable)
        if dim < 2:
            raise ValueError(f"the binary tiling needs dimension >= 2, got {dim}")
        max_radius = float(max_radius)
        if not math.isfinite(max_radius) or max_radius <= 0:
            raise ValueError(f"max_radius must be a positive finite number, got {max_radius}")
        self.max_radius = max_radius
        self.limbs = bigint.limbs_for_bits(int(math.ceil(max_radius * _LOG2E + 4)))
        #: limbs an integer may need before PrecisionError: ``limbs``, except in :meth:`take_rows`'s narrow rows
        self.capacity_limbs = self.limbs
        #: :meth:`take_rows`'s record of the last table it read: (weak reference, version counter, limbs in use)
        self._table_limbs: tuple | None = None

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_table_limbs": None}  # the record names a table of this process

    @classmethod
    def from_spec(cls, spec: dict) -> BinaryTiling:
        return cls(spec["dim"], max_radius=spec.get("max_radius", 100.0), curvature=spec["curvature"],
                   learnable=spec.get("learnable", False))

    def spec(self) -> dict:
        out = super().spec()
        out.update(max_radius=self.max_radius, limbs=self.limbs, limb_bits=bigint.LIMB_BITS)
        return out

    @property
    def storage_dim(self) -> int:
        return self.dim + 1 + (self.dim - 1) * self.limbs

    @property
    def capacity_radius(self) -> float:
        return (bigint.LIMB_BITS * self.limbs - 4) / _LOG2E

    def contract(self, dtype: torch.dtype = torch.float64) -> PrecisionContract:
        if dtype not in (torch.float64, torch.float32):
            raise TypeError(f"the binary tiling stores 24-bit limbs, exact only in float64 and float32, not {dtype}")
        return PrecisionContract(self.capacity_radius, self.capacity_radius, "eps (independent of r)")

    # ------------------------------------------------------------------ storage
    def _check_storage(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.storage_dim:
            raise OffManifoldError(
                f"binary-tiling points of H^{self.dim} need a last axis of {self.storage_dim}, got {tuple(x.shape)}"
            )

    def split(self, x: torch.Tensor, limbs: int | None = None):
        """``(x_h, x_n, j, k)``: floats ``(..., n-1)``, heights ``(..., 1)``, ``j`` as int64 ``(...)``,
        ``k`` as limbs ``(..., n-1, limbs)``.

        ``limbs`` (default ``self.limbs``) keeps only the lowest limbs of ``k``: pass :meth:`limbs_in_use` to
        skip the zero limbs above the integers (only the kept limbs are converted to ``int64``).
        """
        self._check_storage(x)
        n = self.dim
        limbs = self.limbs if limbs is None else limbs
        k = x[..., n + 1:].detach().reshape(*x.shape[:-1], n - 1, self.limbs)[..., :limbs].to(torch.int64)
        return x[..., : n - 1], x[..., n - 1: n], x[..., n].detach().to(torch.int64), k

    def limbs_in_use(self, *points: torch.Tensor) -> int:
        r"""Fewest limbs that hold every :math:`k_i` of ``points`` (at least 1).

        Points at hyperbolic radius :math:`r` need about :math:`r \log_2 e` bits, usually one or two limbs of
        the ``self.limbs`` stored, so the integer arithmetic runs on this many limbs only. One pass over the
        stored limbs (the largest magnitude at each limb position); on CPU in blocks of rows, because a temporary
        as large as the storage costs more than the pass itself.
        """
        largest = None
        for x in points:
            self._check_storage(x)
            digits = x.detach().reshape(-1, self.storage_dim)[:, self.dim + 1:]
            block = max(1, (1 << 18) // digits.shape[1]) if digits.device.type == "cpu" else max(1, digits.shape[0])
            for start in range(0, digits.shape[0], block):
                top = digits[start:start + block].abs().amax(0)
                largest = top if largest is None else torch.maximum(largest, top)
        if largest is None:
            return 1
        in_use = torch.nonzero(largest.reshape(self.dim - 1, self.limbs).amax(0))
        return int(in_use[-1]) + 1 if len(in_use) else 1

    def take_rows(self, table: torch.Tensor, ids: torch.Tensor) -> tuple[BinaryTiling, torch.Tensor]:
        """``(space, rows)``: the rows ``ids`` of ``table`` (points ``(N, storage_dim)``) with only their limbs in use.

        For a training step that reads and updates a few rows of a large table (``embed.train.Trainer``,
        ``row-sgd``): ``rows`` keeps the lowest :meth:`limbs_in_use` limbs of each :math:`k_i` of the table (the
        ones above are zero), and ``space`` is a tiling with that storage and this one's capacity. Its ``dist``,
        ``inner``, ``norm``, ``egrad2rgrad`` and ``expmap`` / ``retr`` give bit for bit what this tiling gives on
        the full rows, without reading or writing the zero limbs; ``expmap`` may return rows with more limbs (as
        many as the integers need), which ``space.put_rows(table, ids, new)`` writes back.

        The limbs in use are counted over the whole table (one pass, in blocks of rows on CPU) and remembered
        for this table object and its version counter, which every in-place write bumps: a training loop that
        takes and puts rows of the same table object reads only the limbs in use, with ``put_rows`` keeping
        the count up to date. Writes through ``table.data`` bypass the version counter and must not be mixed
        with this (the same rule as for tensors saved by autograd).
        """
        self._check_storage(table)
        limbs = self._table_limbs_in_use(table)
        space = _RowsInUse(self, limbs)
        return space, table.detach().reshape(-1).index_select(0, _narrow_entries(table, ids, self.dim, limbs)).view(
            ids.numel(), space.storage_dim)

    def _table_limbs_in_use(self, table: torch.Tensor) -> int:
        """:meth:`limbs_in_use` of ``table``, counted again only when ``table`` is another object or was written."""
        record = self._table_limbs
        if record is not None and record[0]() is table and record[1] == table._version:
            return record[2]
        limbs = self.limbs_in_use(table)
        self._table_limbs = (weakref.ref(table), table._version, limbs)
        return limbs

    def halfspace_components(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        r"""``(horizontal, height)``: the exact half-space coordinates :math:`2^j(x + k)` as non-overlapping
        two-float expansions (the Two-Sum of :math:`2^j k` and :math:`2^j x`) ``(..., n - 1, 2)`` and heights
        :math:`2^j x_n` ``(...)``, or None where float64 cannot hold every part exactly (``k`` beyond two limbs,
        :math:`2^j` scalings that under- or overflow, a float32 storage). For the certified distances of
        ``embed.pair_distances``."""
        if x.dtype != torch.float64:
            return None
        limbs = self.limbs_in_use(x)
        if limbs > 2:
            return None
        xh, xn, j, k = self.split(x, limbs)
        xh, xn = xh.detach(), xn.detach()
        if j.numel() and int(j.abs().max()) > 900:
            return None
        scale = torch.exp2(j.to(torch.float64)).unsqueeze(-1)
        whole = _small_to_float(k)
        fraction = xh * scale
        if not torch.equal(fraction / scale, xh):  # 2^j x underflowed
            return None
        # Two-Sum is exact and leaves a non-overlapping expansion, as the MCF half-space stores: near a tile
        # edge (2^j k, 2^j x) = (-0.5, 0.4999) would otherwise share no leading component with (0, 0.0001).
        return torch.stack(two_sum(whole * scale, fraction), -1), (xn * scale)[..., 0]

    def pack(self, xh, xn, j, k) -> torch.Tensor:
        """Storage of ``(x_h, x_n, j, k)``; ``k`` may have fewer limbs than ``self.limbs`` (zero limbs are added
        above them) or more (they must be zero: :class:`~tiling.bigint.IntegerOverflowError` otherwise)."""
        return self._pack(xh, xn, j, k, self.limbs)

    def _pack(self, xh, xn, j, k, limbs: int) -> torch.Tensor:
        """:meth:`pack` into a storage of ``limbs`` limbs per :math:`k_i`."""
        if k.shape[-1] > limbs:
            k = bigint.trim(k, limbs, "k")
        shape = torch.broadcast_shapes(xh.shape[:-1], xn.shape[:-1], j.shape, k.shape[:-2])
        dtype = xh.dtype
        digits = k.expand(*shape, self.dim - 1, k.shape[-1]).to(dtype)
        digits = torch.nn.functional.pad(digits, (0, limbs - k.shape[-1]))
        return torch.cat([
            xh.expand(*shape, self.dim - 1), xn.expand(*shape, 1), j.expand(shape).unsqueeze(-1).to(dtype),
            digits.reshape(*shape, -1),
        ], dim=-1)

    # ------------------------------------------------------------------ re-normalisation
    def renormalize(self, x: torch.Tensor) -> torch.Tensor:
        r"""Bring the floats back into the box :math:`[0,1)^{n-1}\times[1,2)`, exactly (tiling.md §8).

        Fold :math:`\lfloor x\rfloor` into :math:`k`; with :math:`a = \lfloor\log_2 x_n\rfloor`, set
        :math:`x_n \leftarrow 2^{-a}x_n`, :math:`j \leftarrow j + a`; if :math:`a \le 0`,
        :math:`X = 2^{-a}x`, :math:`k \leftarrow 2^{-a}k + \lfloor X\rfloor`, :math:`x \leftarrow X - \lfloor X\rfloor`
        (all exact); if :math:`a > 0`, :math:`k = 2^a k' + r`, :math:`x \leftarrow (r + x)/2^a` (one rounding; a
        result of 1 moves into :math:`k'`). Vectorised over all points.

        The integer arithmetic runs on the limbs the values need (:meth:`limbs_in_use` and the bound in
        :meth:`_renormalize`), at most the ``self.limbs + 1`` of the full width; the integers, hence the results,
        are the same, and a result that does not fit ``self.limbs`` raises
        :class:`~hyperbolic.manifold.PrecisionError` as before.
        """
        return self.pack(*self._renormalize(*self.split(x, self.limbs_in_use(x))))

    def _renormalize(self, xh, xn, j, k):
        """:meth:`renormalize` of the parts :meth:`split` returns; ``k`` may hold only the lowest limbs (those in
        use; ``self.limbs`` of them is the full-width computation). Returns ``(x_h, x_n, j, k)`` detached, with
        ``k`` in the fewest limbs that hold it."""
        xh, xn = xh.detach(), xn.detach()
        check_finite(torch.cat([xh, xn], -1), "binary-tiling float part")
        bad = xn[..., 0] <= 0
        if bool(bad.any()):
            row = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise OffManifoldError(f"row {row}: height x_n = {xn[row].item()} is not positive")
        whole = torch.floor(xh)
        exponent = torch.frexp(xn)[1].to(torch.int64) - 1
        up = (-exponent).clamp_min(0)  # a <= 0: multiply by 2^-a
        down = exponent.clamp_min(0)  # a > 0: divide by 2^a
        # Every integer below is under 2^(b + up + 2) in magnitude, b = max(bits of k, bits of floor(x)):
        # k + floor(x) is under 2^(b + 1), 2^up (k + floor(x)) + floor(2^up x) under 2^(b + up + 2), and the
        # floor division by 2^down (plus a carry of 1) does not grow it. So `width` limbs hold the same integers
        # as the full width, self.limbs + 1, which is kept when it is smaller (where overflow is detected).
        whole_bits = math.frexp(float(whole.abs().max()))[1] if whole.numel() else 0  # exact for integers
        up_bits = int(up.max()) if up.numel() else 0
        down_bits = int(down.max()) if down.numel() else 0
        bits = max(bigint.LIMB_BITS * k.shape[-1], whole_bits) + up_bits + 2
        width = min(bigint.limbs_for_bits(bits), self.capacity_limbs + 1)
        xh = xh - whole
        xn = xn * torch.exp2((-exponent).to(xn.dtype))
        j = j + exponent.squeeze(-1)
        scaled = xh * torch.exp2(up.to(xh.dtype))
        floor_scaled = torch.floor(scaled)
        x_up = scaled - floor_scaled
        in_int64 = bits <= 62 and down_bits <= 53
        use_up = exponent <= 0  # (..., 1), like x_n
        try:
            if in_int64:
                k_up, k_down, fraction = self._shifted_in_int64(k, whole, floor_scaled, up, down)
            else:
                k_up, k_down, fraction = self._shifted_in_limbs(k, whole, floor_scaled, up, down, width)
            x_down = fraction.to(xh.dtype) + xh * torch.exp2((-down).to(xh.dtype))
            carry = x_down >= 1
            x_down = torch.where(carry, torch.zeros_like(x_down), x_down)
            xh = torch.where(use_up, x_up, x_down)
            limbs = min(width, self.capacity_limbs)  # the full width has one limb more
            if in_int64:  # k_down + 1 stays below 2^62
                k = torch.where(use_up, k_up, k_down + carry.to(torch.int64))
                largest = int(k.abs().max()) if k.numel() else 0
                k = bigint.from_int64(k, min(bigint.limbs_for_bits(largest.bit_length()), limbs))
            else:
                k_down = bigint.add(k_down, carry.to(torch.int64).unsqueeze(-1), limbs=width, what="k")
                k = bigint.trim(torch.where(use_up.unsqueeze(-1), k_up, k_down), limbs, "k")
                k = k[..., :bigint.used_limbs(k)]
        except bigint.IntegerOverflowError as error:
            raise PrecisionError(
                f"binary tiling: {error}; the point left the capacity of BinaryTiling(max_radius={self.max_radius:g})"
            ) from None
        return xh, xn, j, k

    @staticmethod
    def _shifted_in_limbs(k, whole, floor_scaled, up, down, width):
        r"""The integers of :meth:`_renormalize` in ``width`` limbs: with :math:`K = k + \lfloor x\rfloor`,
        :math:`2^{up}K + \lfloor 2^{up}x\rfloor`, :math:`\lfloor K/2^{down}\rfloor` and the remainder over
        :math:`2^{down}` as a float (:func:`tiling.bigint.floor_shift_right`)."""
        k = bigint.add(k, bigint.from_float(whole, width), limbs=width, what="k")
        k_up = bigint.add(bigint.shift_left(k, up, width, "k"), bigint.from_float(floor_scaled, width),
                          limbs=width, what="k")
        k_down, fraction = bigint.floor_shift_right(k, down)
        return k_up, k_down, fraction

    @staticmethod
    def _shifted_in_int64(k, whole, floor_scaled, up, down):
        """:meth:`_shifted_in_limbs` in plain ``int64`` (the integers as ``int64``, not limbs), for integers below
        :math:`2^{62}` and shifts down of at most 53 bits: the same integers, and the same remainder fraction (exact
        in float64 in both)."""
        k = bigint.to_int64(k) + whole.to(torch.int64)
        k_up = (k << up) + floor_scaled.to(torch.int64)
        k_down = k >> down  # floor division by 2^down
        fraction = (k - (k_down << down)).to(torch.float64) * torch.exp2((-down).to(torch.float64))
        return k_up, k_down, fraction

    def projx(self, x):
        return self.renormalize(x)

    # ------------------------------------------------------------------ distance
    def _separation(self, p, q):
        r"""Exact separation of two points in the chart of the one with the smaller :math:`j`.

        Returns a dict with ``delta`` (:math:`\Delta \cdot 2^{-\sigma}`, ``(..., n)``, height difference last,
        carrying gradients to the float parts), ``sigma``, ``t`` (int64), ``swapped`` (whether ``q`` has the
        smaller :math:`j`) and the heights ``h1``, ``h2`` of the first and second point of the ordered pair.
        """
        used = self.limbs_in_use(p, q)
        xa, na, ja, ka = self.split(p, used)
        xb, nb, jb, kb = self.split(q, used)
        shape = torch.broadcast_shapes(ja.shape, jb.shape)
        swapped = (jb < ja).expand(shape)
        s1 = swapped.unsqueeze(-1)
        x1 = torch.where(s1, xb, xa)
        x2 = torch.where(s1, xa, xb)
        h1 = torch.where(s1, nb, na)
        h2 = torch.where(s1, na, nb)
        j1 = torch.where(swapped, jb, ja)
        t = (torch.where(swapped, ja, jb) - j1)
        with torch.no_grad():
            bits = None
            if used <= 2:  # every k exact in float64
                fa, fb = _small_to_float(ka), _small_to_float(kb)
                k1f, k2f = torch.where(s1, fb, fa), torch.where(s1, fa, fb)
                bits = self._integer_bits(k1f, k2f, t)
            if bits is not None and bits <= 53:
                value, sigma = self._separation_in_floats(x1, x2, k1f, k2f, t)
            else:
                k1 = torch.where(s1.unsqueeze(-1), kb, ka)
                k2 = torch.where(s1.unsqueeze(-1), ka, kb)
                value, sigma = self._separation_in_limbs(x1, x2, k1, k2, t, bits is not None and bits <= 62)
        dtype = x1.dtype
        down = torch.exp2(-sigma.to(dtype)).unsqueeze(-1)
        down_t = torch.exp2((t - sigma).to(dtype)).unsqueeze(-1)
        horizontal = value.to(dtype) + (x1 - x1.detach()) * down - (x2 - x2.detach()) * down_t
        height = h1 * down - h2 * down_t
        return {"delta": torch.cat([horizontal, height], -1), "sigma": sigma, "t": t, "swapped": swapped,
                "h1": h1, "h2": h2}

    @staticmethod
    def _integer_bits(k1, k2, t) -> int:
        r"""Bits that hold :math:`K = k^1 - 2^t k^2 - \lfloor 2^t x^2\rfloor` and its partial sums for every pair,
        from ``k1``, ``k2`` as exact floats (at most two limbs; a float's exponent is then the bit length): with
        :math:`b_1, b_2` the bit lengths of :math:`|k^1|, |k^2|` (largest coordinate), the three terms are below
        :math:`2^{b_1}`, :math:`2^{b_2 + t}` and :math:`2^{t}`, so every sum is below
        :math:`2^{\max(b_1, b_2 + t, t + 1) + 2}`."""
        if not t.numel():
            return 2
        b1 = torch.frexp(k1)[1].amax(-1).to(torch.int64)
        b2 = torch.frexp(k2)[1].amax(-1).to(torch.int64)
        return int(torch.maximum(torch.maximum(b1, b2 + t), t + 1).max()) + 2

    def _separation_in_limbs(self, x1, x2, k1, k2, t, in_int64: bool):
        """:math:`\\Delta 2^{-\\sigma}` (float64, no gradient) and :math:`\\sigma`, with exact multi-limb integers.

        ``k1``, ``k2`` may hold only the limbs in use: the integer :math:`K` then takes as many limbs as it needs
        (three, formed in ``int64`` when ``in_int64``: :meth:`_integer_bits` at most 62), the same integer as from
        the full width."""
        t_c = t.unsqueeze(-1)
        x2d = x2.detach().to(torch.float64)
        mantissa, exponent = torch.frexp(x2d)
        M = (mantissa * 2.0**53).to(torch.int64)
        shift = t_c + exponent.to(torch.int64) - 53  # 2^t x2 = M 2^shift
        right = (-shift).clamp(0, 62)
        integer_small = torch.where(shift < 0, M >> right, 0)
        fractional = torch.where(
            shift < 0,
            (M - (integer_small << right)).to(torch.float64) * torch.exp2(shift.to(torch.float64)),
            torch.zeros_like(x2d),
        )
        t_max = int(t.max()) if t.numel() else 0
        limbs = max(k1.shape[-1], k2.shape[-1])
        rest = x1.detach().to(torch.float64) - fractional
        if in_int64:  # K and its partial sums below 2^62 (_integer_bits): formed exactly in int64
            integer = torch.where(shift < 0, integer_small, M << shift.clamp(0, 62))
            K = bigint.to_int64(k1) - (bigint.to_int64(k2) << t_c) - integer
            bits = bigint.int64_bit_length(K).amax(-1)
            # The limb route takes K / B^top from its leading limbs with one rounding (K < 2^62: top <= 2), i.e.
            # the float64 nearest K, scaled. Here too: the high part (low 24 bits cleared, at most 38 significant
            # bits) and the low part convert exactly, and their sum is rounded once.
            high = (K >> bigint.LIMB_BITS) << bigint.LIMB_BITS
            K_float = high.to(torch.float64) + (K - high).to(torch.float64)
            K_leading, top_bits = K_float, torch.zeros_like(K)
        else:
            width = limbs + bigint.limbs_for_bits(t_max + 1) + 4
            integer = bigint.shift_left(bigint.from_int64(M, 3), shift.clamp_min(0), width, "2^t x")
            integer = torch.where((shift < 0).unsqueeze(-1),
                                  bigint.pad(bigint.from_int64(integer_small, 3), width), integer)
            K = bigint.sub(bigint.sub(bigint.pad(k1, width), bigint.shift_left(k2, t_c, width, "2^t k"), width),
                           integer, width, "K")
            bits = bigint.bit_length(K).amax(-1)
            top = torch.where(K != 0, torch.arange(width, device=K.device), 0).amax(-1)
            K_leading, top_bits = bigint.leading(K, top), top * bigint.LIMB_BITS  # K = K_leading 2^top_bits
            K_float = bigint.to_float(torch.where((bits <= 53)[..., None, None], K, 0))
        sigma = torch.maximum(bits, t + 2)
        exact = (bits <= 53).unsqueeze(-1)
        down = torch.exp2(-sigma.unsqueeze(-1).to(torch.float64))
        value = torch.where(
            exact,
            (K_float + rest) * down,
            K_leading * torch.exp2((top_bits - sigma.unsqueeze(-1)).to(torch.float64)) + rest * down,
        )
        return value, sigma

    def _separation_in_floats(self, x1, x2, k1f, k2f, t):
        r"""Fast path of :meth:`_separation_in_limbs` for ``k`` as exact floats (at most two limbs) and
        :meth:`_integer_bits` at most 53: :math:`K = k^1 - 2^t k^2 - \lfloor 2^t x^2\rfloor` and every partial sum are
        integers below :math:`2^{53}`, exact in float64, so ``K``, ``sigma`` and the result are those of the limbs."""
        scale = torch.exp2(t.to(torch.float64)).unsqueeze(-1)
        shifted = x2.detach().to(torch.float64) * scale
        whole = torch.floor(shifted)
        K = k1f - k2f * scale - whole
        rest = x1.detach().to(torch.float64) - (shifted - whole)
        bits = torch.where(K != 0, torch.frexp(K)[1].to(torch.int64), 0).amax(-1)
        sigma = torch.maximum(bits, t + 2)
        return (K + rest) * torch.exp2(-sigma.unsqueeze(-1).to(torch.float64)), sigma

    def dist(self, x, y, *, keepdim=False):
        r"""Distance from the exact separation (module docstring); gradients reach the float parts only."""
        sep = self._separation(x, y)
        rho = scaled_norm(sep["delta"], keepdim=True)
        h1, h2, sigma, t = sep["h1"], sep["h2"], sep["sigma"].unsqueeze(-1), sep["t"].unsqueeze(-1)
        dtype = rho.dtype
        half_t = torch.div(t, 2, rounding_mode="floor")
        log_z = (torch.log(torch.where(rho > 0, rho, torch.ones_like(rho))) + (sigma.to(dtype) - t.to(dtype) / 2) * _LN2
                 - _LN2 - 0.5 * (torch.log(h1) + torch.log(h2)))
        far = log_z > 20
        # z only for the near pairs: on far ones 2^exponent overflows (float32 past 2^127), and rho * inf would
        # send a NaN gradient through the where() below.
        exponent = torch.where(far, 0, (sigma - half_t).clamp(-1000, 1000)).to(dtype)
        z = rho * torch.exp2(exponent) / (2 * torch.sqrt(h1 * h2 * torch.exp2((t - 2 * half_t).to(dtype))))
        near_d = 2 * torch.asinh(torch.where(far, torch.zeros_like(z), z))
        far_d = 2 * (torch.where(far, log_z, torch.zeros_like(log_z)) + _LN2)
        d = torch.where(far, far_d, near_d) * self.scale(rho)
        return d if keepdim else d.squeeze(-1)

    # ------------------------------------------------------------------ tangent space
    def _float_only(self, h, like):
        shape = torch.broadcast_shapes(h.shape[:-1], like.shape[:-1])
        return torch.cat([h.expand(*shape, self.dim), h.new_zeros(*shape, self.storage_dim - self.dim)], -1)

    def inner(self, x, u, v=None, *, keepdim=False):
        v = u if v is None else v
        height = x[..., self.dim - 1: self.dim]
        result = (self.scale(u) / height).square() * (u[..., : self.dim] * v[..., : self.dim]).sum(-1, keepdim=True)
        return result if keepdim else result.squeeze(-1)

    def proju(self, x, u):
        return self._float_only(u[..., : self.dim], x)

    def egrad2rgrad(self, x, g):
        height = x[..., self.dim - 1: self.dim]
        return self._float_only((height / self.scale(g)).square() * g[..., : self.dim], x)

    def expmap(self, x, v):
        r"""Half-space exponential map of the float part in pieces of length at most 1, re-normalising after each;
        the velocity is carried in frame coordinates (invariant under the re-normalising similarity)."""
        return self.pack(*self._expmap_parts(x, v))

    def _expmap_parts(self, x, v):
        """:meth:`expmap` as the parts :meth:`_renormalize` returns (``k`` in the fewest limbs that hold it)."""
        shape = torch.broadcast_shapes(x.shape[:-1], v.shape[:-1])
        point = x.expand(*shape, self.storage_dim)
        n = self.dim
        frame = v[..., :n].expand(*shape, n) / point[..., n - 1: n]
        length = frame.norm(dim=-1)
        longest = float(length.detach().max()) if length.numel() else 0.0
        if not math.isfinite(longest):
            check_finite(v, "tangent vector")
        pieces = min(max(1, math.ceil(longest)), 4096)
        if longest / pieces > 30:
            raise PrecisionError(f"expmap step of length {longest:.3g} is too long for the float box")
        step = frame / pieces
        xh, xn, j, k = self.split(point, self.limbs_in_use(point))
        for piece in range(pieces):
            dx, height = chart.expmap_frame(xn, step)
            if piece + 1 < pieces:
                step = -chart.logmap_frame(torch.cat([xh + dx, height], -1), torch.cat([xh, xn], -1))
            xh, xn, j, k = self._renormalize(xh + dx, height, j, k)
        return xh, xn, j, k

    def retr(self, x, v):
        return self.expmap(x, v)

    def logmap(self, x, y):
        r""":math:`\log_x y` from the exact separation: the frame direction of
        :math:`(2\delta,\ \lVert\delta\rVert^2 + (h-1)(h+1))` (:math:`\delta, h` the horizontal offset and height
        ratio of ``y`` in the chart of ``x``, all scaled so nothing overflows), of length :math:`d(x, y)`."""
        sep = self._separation(x, y)
        delta, swapped = sep["delta"], sep["swapped"].unsqueeze(-1)
        dtype = delta.dtype
        sigma, t = sep["sigma"].unsqueeze(-1), sep["t"].unsqueeze(-1)
        h1, h2 = sep["h1"], sep["h2"]
        own = torch.where(swapped, h2, h1)
        sign = torch.where(swapped, 1.0, -1.0).to(dtype)
        sigma_x = torch.where(swapped, sigma - t, sigma).to(dtype)
        offset = sign * delta[..., :-1] / own
        height_minus = sign * delta[..., -1:] / own
        height_plus = (h1 * torch.exp2(-sigma.to(dtype)) + h2 * torch.exp2((t - sigma).to(dtype))) / own
        direction = torch.cat([2 * offset * torch.exp2(-sigma_x),
                               offset.square().sum(-1, keepdim=True) + height_minus * height_plus], -1)
        norm = scaled_norm(direction, keepdim=True)
        unit = torch.where(norm > 0, direction / torch.where(norm > 0, norm, 1.0), torch.zeros_like(direction))
        d = self.dist(x, y, keepdim=True) / self.scale(delta)
        height_x = x[..., self.dim - 1: self.dim]
        return self._float_only(height_x * d * unit, x)

    def transp(self, x, y, v):
        r"""Parallel transport: ``y`` is placed in the chart of ``x`` (float offset from the exact separation),
        both are mapped to the hyperboloid, the Lorentz transport is applied, and the result is pulled back and
        rescaled by :math:`2^{j_x - j_y}` into the chart of ``y``. Pairs a few hundred units apart overflow that
        chart: :class:`~hyperbolic.manifold.PrecisionError` names the first such row and its distance."""
        n = self.dim
        sep = self._separation(x, y)
        delta, swapped = sep["delta"], sep["swapped"].unsqueeze(-1)
        sigma, t = sep["sigma"].unsqueeze(-1), sep["t"].unsqueeze(-1)
        dtype = delta.dtype
        scale = torch.exp2(torch.where(swapped, sigma - t, sigma).to(dtype))
        sign = torch.where(swapped, 1.0, -1.0).to(dtype)
        here = x[..., :n]
        there = here + sign * delta * scale
        if not bool(torch.isfinite(there).all()):
            raise PrecisionError("parallel transport between points this far apart overflows the chart")
        X, V = jvp(chart.to_lorentz, (here,), (v[..., :n],))
        Y = chart.to_lorentz(there)
        W = lorentz_kernel.transp(X, Y, V)
        moved = jvp(chart.from_lorentz, (Y,), (W,))[1]
        _, _, jx, _ = self.split(x)
        _, _, jy, _ = self.split(y)
        moved = moved * torch.exp2((jx - jy).to(dtype)).unsqueeze(-1)
        finite = torch.isfinite(moved).all(-1)
        if not bool(finite.all()):
            check_finite(v[..., :n], "tangent vector")
            row = tuple(int(i) for i in torch.nonzero(~finite)[0])
            shape = (*moved.shape[:-1], self.storage_dim)
            distance = float(self.dist(x.expand(shape)[row], y.expand(shape)[row]).detach())
            raise PrecisionError(f"parallel transport of row {row} over a distance of {distance:.6g} overflows the "
                                 "float chart of its start point")
        return self._float_only(moved, y)

    # ------------------------------------------------------------------ charts
    def _halfspace(self, x):
        xh, xn, j, k = self.split(x)
        scale = torch.exp2(j.to(xh.dtype)).unsqueeze(-1)
        return torch.cat([(xh + bigint.to_float(k).to(xh.dtype)) * scale, xn * scale], -1)

    def to_lorentz(self, x):
        X = chart.to_lorentz(self._halfspace(x))
        if not bool(torch.isfinite(X.detach()).all()):
            row = tuple(int(i) for i in torch.nonzero(~torch.isfinite(X.detach()).all(-1))[0])
            raise PrecisionError(f"row {row} lies beyond the range of {X.dtype} Lorentz coordinates")
        return X * self.scale(X)

    def from_lorentz(self, X):
        p = chart.from_lorentz(X / self.scale(X))
        check_finite(p, "half-space coordinates of the Lorentz input")
        horizontal, height = p[..., :-1], p[..., -1:]
        j = torch.frexp(height)[1].to(torch.int64).squeeze(-1) - 1
        xn = height * torch.exp2(-j.unsqueeze(-1).to(height.dtype))
        scaled = horizontal * torch.exp2(-j.unsqueeze(-1).to(height.dtype))
        check_finite(scaled, "horizontal coordinates in units of the height")
        whole = torch.floor(scaled)
        try:
            k = bigint.from_float(whole, self.limbs, "k")
        except bigint.IntegerOverflowError as error:
            raise PrecisionError(f"binary tiling: {error}") from None
        return self.renormalize(self.pack(scaled - whole, xn, j, k))

    def to_reference(self, x: torch.Tensor) -> list[tuple]:
        xh, xn, j, k = self.split(x)
        n = self.dim
        floats = torch.cat([xh, xn], -1).detach().reshape(-1, n).to(torch.float64).cpu().tolist()
        js = j.reshape(-1).tolist()
        ks = bigint.to_ints(k.reshape(-1, n - 1, self.limbs))
        out = []
        for row, jj, kk in zip(floats, js, ks):
            bits = max([abs(v).bit_length() for v in kk] + [1])
            with mp.workprec(mp.prec + bits + 64):
                horizontal = [mpmath.ldexp(mpmath.mpf(a) + b, jj) for a, b in zip(row[:-1], kk)]
                height = mpmath.ldexp(mpmath.mpf(row[-1]), jj)
            out.append(reference.from_halfspace(horizontal, height))
        return out

    def from_reference(self, points: Sequence[Sequence], dtype=torch.float64, device=None):
        r"""Exact decomposition: :math:`j = \lfloor\log_2 y\rfloor`, :math:`x_n = y/2^j`,
        :math:`k_i = \lfloor X_i/2^j\rfloor`, :math:`x_i = X_i/2^j - k_i` in mpmath, then the floats rounded."""
        self._check_reference_radius(points, dtype)  # the declared ceiling (contract.max_radius)
        floats, js, ks = [], [], []
        for row, p in enumerate(points):
            if len(p) != self.dim + 1:
                raise ValueError(f"reference point {row} has {len(p)} coordinates; H^{self.dim} needs {self.dim + 1}")
            x0 = mpmath.mpf(p[0])
            if not mpmath.isfinite(x0) or x0 < 1:
                raise OffManifoldError(f"reference point {row} has time coordinate {x0}, not >= 1")
            magnitude = int(mpmath.log(x0, 2)) + 4
            with mp.workprec(mp.prec + 2 * magnitude + 64):
                horizontal, height = reference.to_halfspace(p)
                exponent = mpmath.frexp(height)[1] - 1
                xn = mpmath.ldexp(height, -exponent)
                scaled = [mpmath.ldexp(c, -exponent) for c in horizontal]
                whole = [int(mpmath.floor(c)) for c in scaled]
                floats.append([c - w for c, w in zip(scaled, whole)] + [xn])
            js.append(int(exponent))
            ks.append(whole)
        values = round_to_tensor(floats, dtype, None, "binary-tiling float part")
        try:
            k = bigint.from_ints(ks, self.limbs) if ks else torch.zeros(0, self.dim - 1, self.limbs, dtype=torch.int64)
        except bigint.IntegerOverflowError:
            raise PrecisionError(
                f"a reference point needs more than the {self.limbs} limbs of BinaryTiling(max_radius="
                f"{self.max_radius:g}) (radius about {self.capacity_radius:.0f})"
            ) from None
        j = torch.tensor(js, dtype=torch.int64)
        x = self.renormalize(self.pack(values[:, :-1], values[:, -1:], j, k))
        return x.to(device) if device is not None else x

    # ------------------------------------------------------------------ checks
    def _off_manifold_rows(self, x, atol, rtol):
        n = self.dim
        xh, xn, j = x[..., : n - 1], x[..., n - 1], x[..., n]
        digits = x[..., n + 1:]
        ok = (xh >= 0).all(-1) & (xh < 1).all(-1) & (xn >= 1) & (xn < 2) & (j == torch.round(j))
        ok = ok & (digits == torch.round(digits)).all(-1) & (digits.abs() < bigint.LIMB_BASE).all(-1)
        limbs = digits.reshape(*digits.shape[:-1], n - 1, self.limbs)
        ok = ok & ((limbs >= 0).all(-1) | (limbs <= 0).all(-1)).all(-1)
        return ~ok

    def _describe_row(self, x, row):
        n = self.dim
        return f"x = {x[row][:n - 1].tolist()}, x_n = {x[row][n - 1].item()}, j = {x[row][n].item()}"


class _RowsInUse(BinaryTiling):
    """The tiling of :meth:`BinaryTiling.take_rows`: the storage of ``parent`` cut to its lowest ``limbs`` limbs,
    with the capacity (and curvature) of ``parent``; :meth:`expmap` returns as many limbs as the results need."""

    def __init__(self, parent: BinaryTiling, limbs: int):
        super().__init__(parent.dim, max_radius=parent.max_radius)
        del self.log_c
        self.log_c = parent.log_c
        self.learnable = parent.learnable
        self.limbs = limbs
        self.capacity_limbs = parent.capacity_limbs
        self._parent = parent

    def expmap(self, x, v):
        xh, xn, j, k = self._expmap_parts(x, v)
        return self._pack(xh, xn, j, k, max(self.limbs, k.shape[-1]))

    def retr(self, x, v):
        return self.expmap(x, v)

    def put_rows(self, table: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor) -> None:
        """Write ``rows`` (from :meth:`expmap`, any number of limbs up to the capacity) into rows ``ids`` of the
        full ``table`` they were taken from, in place. Their limbs above those of ``rows`` stay as they are: zero,
        since ``rows`` holds at least the limbs in use in the table. When the parent's count of the table's limbs
        in use is current, it becomes that of the table written."""
        n = self.dim
        limbs = (rows.shape[-1] - n - 1) // (n - 1)
        record = self._parent._table_limbs
        current = record is not None and record[0]() is table and record[1] == table._version
        target = table.detach()
        if target.is_contiguous():
            target.view(-1).index_copy_(0, _narrow_entries(target, ids, n, limbs), rows.reshape(-1))
        else:
            target[:, :n + 1].index_copy_(0, ids, rows[:, :n + 1])
            target[:, n + 1:].view(-1, n - 1, self.capacity_limbs)[:, :, :limbs].index_copy_(
                0, ids, rows[:, n + 1:].reshape(ids.numel(), n - 1, limbs))
        if current:
            self._parent._table_limbs = (record[0], table._version, max(record[2], limbs))


def _small_to_float(k: torch.Tensor) -> torch.Tensor:
    """The integers of limbs ``k`` ``(..., limbs)``, at most two limbs (below 2^48), as exact float64."""
    value = k[..., 0].to(torch.float64)
    return value + k[..., 1].to(torch.float64) * float(bigint.LIMB_BASE) if k.shape[-1] == 2 else value


def _narrow_entries(table: torch.Tensor, ids: torch.Tensor, dim: int, kept: int) -> torch.Tensor:
    """Positions in ``table.reshape(-1)`` (points ``(N, storage)``, row-major) of rows ``ids`` cut to the lowest
    ``kept`` limbs of each :math:`k_i`, in the order of that narrow storage: one gather instead of a strided one."""
    stored = (table.shape[-1] - dim - 1) // (dim - 1)
    limbs = torch.arange(kept, device=ids.device) + (dim + 1) + stored * torch.arange(dim - 1, device=ids.device)[:, None]
    columns = torch.cat([torch.arange(dim + 1, device=ids.device), limbs.reshape(-1)])
    return (ids[:, None] * table.shape[-1] + columns).reshape(-1)
