r"""Well-spread unit vectors for the r-dimensional combinatorial construction.

* :func:`simplex_codewords` -- the published choice: codewords of the binary simplex code (generator
  column :math:`j` = the :math:`m`-bit expansion of :math:`j`, :math:`m = \lceil \log_2 K\rceil`), repeated
  to length :math:`r`, read as hypercube vertices :math:`((-1)^{b_1}, \dots, (-1)^{b_r})/\sqrt r`. Distinct
  codewords differ in exactly :math:`2^{m-1}` of every :math:`2^m - 1` places, so when
  :math:`2^m - 1` divides :math:`r` all angles are at least 90 degrees; otherwise the realised minimum is
  what :func:`min_angle` reports. ``K = 1`` and ``K = 2`` (where the published code crashes) give one
  vector and an antipodal pair.
* :func:`spread_directions` -- any ``K``: the cross-polytope :math:`\pm e_i` for :math:`K \le 2r`, else a
  Halton start refined by repulsion (:func:`repel`), with every reduction in a fixed order
  (:func:`ordered_sum`) so the directions -- and the embeddings built on them -- are bit-for-bit the same
  for any thread count.
* :func:`frame_directions` -- the ``K`` directions of one node in its own frame, slot 0 mapped exactly
  onto :math:`e_1` (the parent's direction) by a Householder reflection; all are computed in mpmath so
  that constant matrices can be rounded once from them.
"""

from __future__ import annotations

import math
from functools import cache
from statistics import NormalDist

import mpmath
import torch

__all__ = ["simplex_codewords", "spread_directions", "repel", "ordered_sum", "min_angle", "frame_directions", "directions"]


def _bits(value: int, count: int) -> list[int]:
    return [(value >> i) & 1 for i in range(count)]


@cache
def _codeword_bits(K: int, r: int) -> tuple[tuple[int, ...], ...]:
    m = max(1, math.ceil(math.log2(K))) if K > 1 else 0
    if m == 0:
        return ((0,) * r,)
    length = 2**m - 1
    columns = [_bits(j, m) for j in range(1, length + 1)]
    words = []
    for i in range(K):
        row = _bits(i, m)
        word = [sum(a * b for a, b in zip(row, col)) % 2 for col in columns]
        repeated = (word * (r // length + 1))[:r]
        words.append(tuple(repeated))
    return tuple(words)


def simplex_codewords(K: int, r: int) -> torch.Tensor:
    """``(K, r)`` float64 unit vectors from the simplex code (see the module notes)."""
    if K < 1 or r < 1:
        raise ValueError(f"need K >= 1 points in r >= 1 dimensions, got K={K}, r={r}")
    bits = torch.tensor(_codeword_bits(K, r), dtype=torch.float64)
    return (1 - 2 * bits) / math.sqrt(r)


def ordered_sum(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Sum along ``dim`` in a fixed pairwise order, built from elementwise additions only.

    The ``n`` terms are halved, :math:`x_i \leftarrow x_i + x_{i + \lceil n/2 \rceil}` for
    :math:`i < \lfloor n/2 \rfloor` (the middle term of an odd count is added to :math:`x_0`), until one
    is left. Every addition is a correctly rounded IEEE operation whose operands depend only on ``n``,
    so the result is bit-for-bit the same for any number of threads and on any device -- unlike
    ``Tensor.sum`` or a BLAS product, whose blocking (and so rounding) follows the thread count.
    """
    x = x.movedim(dim, 0)
    if x.shape[0] <= 1:
        return x[0].clone() if len(x) else x.new_zeros(x.shape[1:])
    while x.shape[0] > 1:
        half = x.shape[0] // 2
        odd = x.shape[0] % 2
        head = x[:half] + x[half + odd:]
        if odd:
            head[:1] = head[:1] + x[half:half + 1]
        x = head
    return x[0]


def _gram(Z: torch.Tensor) -> torch.Tensor:
    """``Z @ Z.T`` with every dot product in the fixed order of :func:`ordered_sum`."""
    return ordered_sum(Z[:, None, :] * Z[None, :, :])


def _normalised(Z: torch.Tensor) -> torch.Tensor:
    return Z / ordered_sum(Z * Z).sqrt()[:, None]


def min_angle(Z: torch.Tensor) -> float:
    """Smallest angle (radians) between distinct rows of unit vectors ``Z``; pi for fewer than two.

    Deterministic: the Gram matrix is summed in a fixed order (:func:`ordered_sum`), so the angle, and
    the tau chosen from it, does not depend on the thread count.
    """
    if Z.shape[0] < 2:
        return math.pi
    G = _gram(Z).clamp(-1, 1)
    G.fill_diagonal_(-1)
    return math.acos(float(G.max()))


def _primes(count: int) -> list[int]:
    primes = [2]
    candidate = 3
    while len(primes) < count:
        if all(candidate % p for p in primes if p * p <= candidate):
            primes.append(candidate)
        candidate += 2
    return primes[:count]


def _radical_inverse(i: int, base: int) -> float:
    f, result = 1.0, 0.0
    while i:
        f /= base
        result += f * (i % base)
        i //= base
    return result


def _halton_normal_start(K: int, r: int) -> torch.Tensor:
    r"""``(K, r)`` unit vectors: point :math:`i` of the Halton sequence (one prime base per coordinate)
    pushed through the normal inverse CDF and normalised; in Python floats, so reproducible."""
    inverse_cdf = NormalDist().inv_cdf
    primes = _primes(r)
    U = [[min(max(_radical_inverse(i + 1, p), 1e-9), 1 - 1e-9) for p in primes] for i in range(K)]
    Z = torch.tensor([[inverse_cdf(u) for u in row] for row in U], dtype=torch.float64)
    return _normalised(Z)


def repel(Z: torch.Tensor, steps: int = 200) -> torch.Tensor:
    r"""Spread unit vectors ``Z`` (``(K, r)``) apart on the sphere by ``steps`` repulsion steps.

    Each point moves along the tangent part of the Riesz force
    :math:`F_i = \sum_{j \ne i} (z_i - z_j) / \lVert z_i - z_j \rVert^{r+1}` by :math:`\theta / 8`, with
    :math:`\theta = 2 \arcsin(\min_{i \ne j} \lVert z_i - z_j \rVert / 2)` the current minimum angle,
    and is projected back onto the sphere. With this fixed step the iteration oscillates rather than
    converges, so the iterate (the start included) with the widest minimum angle is returned, the first
    one on a tie. The iteration amplifies rounding differences (one ulp in one dot product of a BLAS
    product moved bio-yeast's 10-D embedding), so every reduction is done in the fixed order of
    :func:`ordered_sum` and the power by repeated multiplication: the result is bit-for-bit independent
    of the thread count, and the arithmetic is the same on any device (float64 advised).
    """
    K, r = Z.shape
    eye = torch.eye(K, dtype=Z.dtype, device=Z.device)
    best, widest = Z, -1.0
    for step in range(steps + 1):
        diff = Z[:, None, :] - Z[None, :, :]
        dist = ordered_sum(diff * diff).sqrt()
        angle = 2 * math.asin(min(float((dist + 4 * eye).min()) / 2, 1.0))
        if angle > widest:
            best, widest = Z, angle
        if step == steps:
            break
        dist = dist + eye
        power = dist
        for _ in range(r):
            power = power * dist
        force = ordered_sum(diff / power[..., None], 1)
        force = force - ordered_sum(force * Z)[:, None] * Z
        length = ordered_sum(force * force).sqrt().clamp_min(1e-300)
        Z = _normalised(Z + 0.5 * force / length[:, None] * angle / 4)
    return best


@cache
def _spread(K: int, r: int) -> torch.Tensor:
    if K <= 2 * r:
        eye = torch.eye(r, dtype=torch.float64)
        return torch.cat([eye, -eye])[torch.tensor([(i // 2) + (r if i % 2 else 0) for i in range(K)])]
    return repel(_halton_normal_start(K, r))


def spread_directions(K: int, r: int) -> torch.Tensor:
    """``(K, r)`` deterministic well-spread unit vectors (cross-polytope for ``K <= 2r``)."""
    if K < 1 or r < 1:
        raise ValueError(f"need K >= 1 points in r >= 1 dimensions, got K={K}, r={r}")
    if r == 1 and K > 2:
        raise ValueError(f"{K} directions do not fit in one dimension")
    return _spread(K, r).clone()


def directions(K: int, r: int, method: str = "codes") -> torch.Tensor:
    """``K`` unit vectors in ``R^r``: simplex codes when ``method == "codes"`` and ``K <= r`` (and the
    codewords are distinct), else :func:`spread_directions`."""
    if method not in ("codes", "spread"):
        raise ValueError(f"method must be 'codes' or 'spread', got {method!r}")
    if method == "codes" and K <= max(r, 2):
        Z = simplex_codewords(K, r)
        if K <= 2 or min_angle(Z) > 1e-9:
            return Z
    return spread_directions(K, r)


@cache
def frame_directions(K: int, r: int, method: str, root: bool, digits: int) -> tuple[tuple, ...]:
    """Directions of one node in its frame, as mpmath vectors at ``digits`` decimal digits.

    Non-root nodes: ``K`` = children + 1 directions, row 0 mapped exactly onto :math:`e_1` (the parent
    lies in direction :math:`e_1` of every frame) by the Householder reflection :math:`q = z_0 - e_1`;
    rows 1.. are the children's directions. Root: the ``K`` children's directions as they are.
    The float64 directions are first re-normalised in mpmath so every row is a unit vector to full
    precision (the construction's guarantee needs only distinct, well-spread directions).
    """
    with mpmath.workdps(digits):
        Z = directions(K, r, method).tolist()
        rows = []
        for z in Z:
            v = [mpmath.mpf(c) for c in z]
            norm = mpmath.sqrt(mpmath.fsum(c * c for c in v))
            rows.append([c / norm for c in v])
        if not root:
            q = list(rows[0])
            q[0] -= 1
            qq = mpmath.fsum(c * c for c in q)
            if qq != 0:
                mapped = []
                for v in rows:
                    dot = mpmath.fsum(a * b for a, b in zip(q, v))
                    mapped.append([c - 2 * dot / qq * qc for c, qc in zip(v, q)])
                rows = mapped
            rows[0] = [mpmath.mpf(1)] + [mpmath.mpf(0)] * (r - 1)
        return tuple(tuple(row) for row in rows)
