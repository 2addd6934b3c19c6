r"""Well-spread unit vectors for the r-dimensional combinatorial construction.

* :func:`simplex_codewords` -- the published choice: codewords of the binary simplex code (generator
  column :math:`j` = the :math:`m`-bit expansion of :math:`j`, :math:`m = \lceil \log_2 K\rceil`), repeated
  to length :math:`r`, read as hypercube vertices :math:`((-1)^{b_1}, \dots, (-1)^{b_r})/\sqrt r`. Distinct
  codewords differ in exactly :math:`2^{m-1}` of every :math:`2^m - 1` places, so when
  :math:`2^m - 1` divides :math:`r` all angles are at least 90 degrees; otherwise the realised minimum is
  what :func:`min_angle` reports. ``K = 1`` and ``K = 2`` (where the published code crashes) give one
  vector and an antipodal pair.
* :func:`spread_directions` -- any ``K``: the cross-polytope :math:`\pm e_i` for :math:`K \le 2r`, else a
  deterministic Fibonacci-like start refined by repulsion.
* :func:`frame_directions` -- the ``K`` directions of one node in its own frame, slot 0 mapped exactly
  onto :math:`e_1` (the parent's direction) by a Householder reflection; all are computed in mpmath so
  that constant matrices can be rounded once from them.
"""

from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import torch

__all__ = ["simplex_codewords", "spread_directions", "min_angle", "frame_directions", "directions"]


def _bits(value: int, count: int) -> list[int]:
    return [(value >> i) & 1 for i in range(count)]


@lru_cache(maxsize=None)
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


def min_angle(Z: torch.Tensor) -> float:
    """Smallest angle (radians) between distinct rows of unit vectors ``Z``; pi for fewer than two."""
    if Z.shape[0] < 2:
        return math.pi
    G = (Z @ Z.T).clamp(-1, 1)
    G.fill_diagonal_(-1)
    return float(torch.arccos(G.max()))


@lru_cache(maxsize=None)
def _spread(K: int, r: int) -> torch.Tensor:
    if K <= 2 * r:
        eye = torch.eye(r, dtype=torch.float64)
        return torch.cat([eye, -eye])[torch.tensor([(i // 2) + (r if i % 2 else 0) for i in range(K)])]
    # Deterministic start: a Halton-like sequence pushed through the normal inverse CDF, then repulsion.
    primes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97]
    while len(primes) < r:
        candidate = primes[-1] + 2
        while any(candidate % p == 0 for p in primes):
            candidate += 2
        primes.append(candidate)

    def radical_inverse(i: int, base: int) -> float:
        f, result = 1.0, 0.0
        while i:
            f /= base
            result += f * (i % base)
            i //= base
        return result

    normal = torch.distributions.Normal(0.0, 1.0)
    U = torch.tensor([[radical_inverse(i + 1, primes[j]) for j in range(r)] for i in range(K)], dtype=torch.float64)
    Z = normal.icdf(U.clamp(1e-9, 1 - 1e-9))
    Z = Z / Z.norm(dim=1, keepdim=True)
    for _ in range(200):
        diff = Z[:, None, :] - Z[None, :, :]
        dist = diff.norm(dim=-1) + torch.eye(K, dtype=torch.float64)
        force = (diff / dist[..., None] ** (r + 1)).sum(1)
        force = force - (force * Z).sum(1, keepdim=True) * Z
        step = 0.5 * force / force.norm(dim=1, keepdim=True).clamp_min(1e-300) * min_angle(Z) / 4
        Z = Z + step
        Z = Z / Z.norm(dim=1, keepdim=True)
    return Z


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


@lru_cache(maxsize=None)
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
