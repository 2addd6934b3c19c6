r"""Vectorised negative sampling for the ranking loss of Nickel & Kiela.

For a training pair ``(u, v)`` (``u`` the descendant, ``v`` the ancestor) the negatives are up to ``K``
**distinct** nodes ``n`` with ``n != u`` and ``(u, n)`` not a training pair of weight at least ``w(u, v)``
(for unweighted closures: ``n`` is not an ancestor of ``u``). Descendants and unrelated nodes are
allowed. Only the ancestor slot is corrupted.

Candidates are drawn in bulk with torch operations from one seeded :class:`torch.Generator`
(``1.25 K + 8`` per pair, then more for the pairs still short, up to ``10 K`` tries in all, as in the
reference implementation). Rejected, repeated and missing slots are returned as a mask rather than
padded with repeats, so every accepted negative counts exactly once in the loss. Weighted draws from a
small support (burn-in on small graphs) use an exponential race instead, which samples without
replacement exactly and never runs short.

Two distributions: uniform over all nodes (training) and :math:`\propto c(n)^\alpha`, ``c(n)`` the number
of training pairs with ``n`` as ancestor (burn-in; leaves are never drawn).

Hard negatives. Uniform negatives out of tens of thousands of nodes almost never hit the few nodes that
crowd a given ``u`` (for a leaf of the noun closure: the other leaves around it), so nothing pushes those
away and the pair's loss has no gradient while ``v`` is far closer than a random node. With a candidate
table (:meth:`NegativeSampler.hard_table`: each node's ``M`` nearest acceptable nodes under the current
points), ``sample(..., hard=table, num_hard=H)`` puts ``H`` of ``u``'s ``M`` candidates, a uniformly random
subset, first in the draw order; the rest of the ``K`` slots come from the ordinary draws. The rejection
rule and the distinctness of the ``K`` accepted negatives are the same for both kinds.
:meth:`NegativeSampler.hard_log_weights` gives each negative the weight that makes the softmax's sum
estimate the same partition sum as ``K`` uniform negatives (importance sampling: a candidate is drawn far
more often than ``K / N``, so it counts for less).
"""

from __future__ import annotations

import math

import torch

__all__ = ["NegativeSampler", "ancestor_counts"]

# Rows of the hard-negative candidate table computed per call of ``nearest`` when no chunk size is given.
_TABLE_CHUNK = 512

# Below this many node pairs a dense boolean relation matrix answers "is (u, n) a training pair?".
_DENSE_LIMIT = 1 << 26
# Weighted draws race over the whole support when (batch x support) stays below this many elements.
_RACE_LIMIT = 1 << 21
# Unweighted graphs keep each node's related nodes in a padded (N x max degree) table up to this size.
_PADDED_LIMIT = 1 << 25


def _padded_rows(keys: torch.Tensor, num_nodes: int) -> torch.Tensor | None:
    """``(N, max degree)`` int32 table of each node's ``v`` (ascending, padded with -1) from the sorted pair
    keys ``u N + v``; None when it would exceed ``_PADDED_LIMIT`` entries or ``N >= 2^31``."""
    u, v = keys // num_nodes, keys % num_nodes
    degree = torch.bincount(u, minlength=num_nodes)
    width = int(degree.max()) if keys.numel() else 0
    if width == 0 or num_nodes * width > _PADDED_LIMIT or num_nodes >= 1 << 31:
        return None
    start = torch.cumsum(degree, 0) - degree
    table = torch.full((num_nodes, width), -1, dtype=torch.int32)
    table[u, torch.arange(keys.numel()) - start[u]] = v.to(torch.int32)
    return table


def ancestor_counts(edges: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Number of training pairs ``(u, v)`` with each node as ``v``: ``(num_nodes,)`` float64."""
    return torch.bincount(edges[:, 1], minlength=num_nodes).to(torch.float64)


class NegativeSampler:
    """Draw negatives for batches of training pairs.

    Parameters
    ----------
    edges : torch.Tensor
        ``(E, 2)`` int64 training pairs ``(u, v)`` (descendant, ancestor).
    num_nodes : int
        Number of nodes ``N``; negatives are drawn from ``0 .. N-1``.
    weights : torch.Tensor or None
        ``(E,)`` pair weights; ``None`` for an unweighted graph (every pair weight 1).

    Notes
    -----
    The relation test uses a dense ``N x N`` boolean matrix when ``N^2 <= 2^26`` and unweighted, else a
    sorted table of pair keys ``u N + v`` searched with :func:`torch.searchsorted`. Unweighted graphs with
    a ``N x max degree`` table of at most ``2^25`` entries (the noun closure: 82,115 x 34) also keep every
    node's related nodes in a padded table: each row's related nodes are then looked up in its sorted
    candidates (sorted anyway to find repeats), a search in 70 nearby values instead of 743,241 far ones.
    """

    def __init__(self, edges: torch.Tensor, num_nodes: int, weights: torch.Tensor | None = None):
        edges = torch.as_tensor(edges)
        if edges.dim() != 2 or edges.shape[1] != 2 or edges.dtype.is_floating_point:
            raise ValueError(f"edges must be an (E, 2) integer tensor, got {tuple(edges.shape)} {edges.dtype}")
        if num_nodes < 2:
            raise ValueError(f"negative sampling needs at least 2 nodes, got {num_nodes}")
        edges = edges.to(torch.int64).cpu()
        if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= num_nodes):
            raise ValueError(f"edge indices must lie in [0, {num_nodes})")
        self.num_nodes = int(num_nodes)
        self.weighted = weights is not None
        self._dense = None
        self._keys = None
        self._related = None
        self._key_weights = None
        if not self.weighted and num_nodes * num_nodes <= _DENSE_LIMIT:
            dense = torch.zeros(num_nodes * num_nodes, dtype=torch.bool)
            dense[edges[:, 0] * num_nodes + edges[:, 1]] = True
            self._dense = dense
        else:
            keys = edges[:, 0] * num_nodes + edges[:, 1]
            order = torch.argsort(keys)
            self._keys = keys[order].contiguous()
            self._related = None if self.weighted else _padded_rows(self._keys, num_nodes)
            if self.weighted:
                w = torch.as_tensor(weights, dtype=torch.float64).cpu()
                if w.shape != (edges.shape[0],):
                    raise ValueError(f"weights must have shape ({edges.shape[0]},), got {tuple(w.shape)}")
                self._key_weights = w[order].contiguous()
        self.counts = ancestor_counts(edges, num_nodes)
        self._max_rejectable = 1 + int(torch.bincount(edges[:, 0], minlength=num_nodes).max()) if edges.numel() else 1
        self._support = None

    # ------------------------------------------------------------------ relation test
    def _rejected(self, u: torch.Tensor, candidates: torch.Tensor, threshold: torch.Tensor | None) -> torch.Tensor:
        """``(B, M)`` mask of candidates ``n`` with ``n == u`` or ``(u, n)`` a training pair (of weight
        at least ``threshold`` for weighted graphs)."""
        u = u.unsqueeze(1)
        keys = u * self.num_nodes + candidates
        if self._dense is not None:
            related = self._dense[keys]
        else:
            position = torch.searchsorted(self._keys, keys).clamp_max(self._keys.numel() - 1)
            related = self._keys[position] == keys
            if self._key_weights is not None and threshold is not None:
                related &= self._key_weights[position] >= threshold.unsqueeze(1)
        return related | (candidates == u)

    def _draw(self, rows: int, count: int, probs: torch.Tensor | None, generator: torch.Generator):
        if probs is None:
            return torch.randint(self.num_nodes, (rows, count), generator=generator)
        return torch.multinomial(probs, rows * count, replacement=True, generator=generator).view(rows, count)

    @staticmethod
    def _first(candidates: torch.Tensor, bad: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``k`` candidates per row that are not ``bad``, in draw order, and the filled-slot mask."""
        good = ~bad
        rank = torch.cumsum(good, dim=1)
        slot = torch.where(good & (rank <= k), rank - 1, k)
        out = torch.zeros(candidates.shape[0], k + 1, dtype=candidates.dtype)
        out.scatter_(1, slot, candidates)
        valid = torch.arange(k) < rank[:, -1:]
        return out[:, :k], valid

    def _select(self, u, candidates, threshold, k):
        """First ``k`` acceptable, not yet seen candidates per row, in draw order, and their mask."""
        sorted_values, order = torch.sort(candidates, dim=1, stable=True)
        bad_sorted = torch.zeros_like(candidates, dtype=torch.bool)
        bad_sorted[:, 1:] = sorted_values[:, 1:] == sorted_values[:, :-1]  # repeats after the first draw
        if self._related is not None:
            related = self._related[u].to(torch.int64)  # (B, W), padded with -1
            width = candidates.shape[1]
            position = torch.searchsorted(sorted_values, related).clamp_max(width - 1)
            hit = sorted_values.gather(1, position) == related
            marks = torch.zeros(candidates.shape[0], width + 1, dtype=torch.bool)
            bad_sorted |= marks.scatter_(1, torch.where(hit, position, width), True)[:, :width]
            bad = torch.zeros_like(bad_sorted).scatter_(1, order, bad_sorted) | (candidates == u.unsqueeze(1))
        else:
            bad = self._rejected(u, candidates, threshold) | torch.zeros_like(bad_sorted).scatter_(1, order, bad_sorted)
        negatives, valid = self._first(candidates, bad, k)
        return negatives.masked_fill(~valid, 0), valid

    def _sample_small_support(self, u, k, probs, threshold, generator):
        # Successive sampling without replacement by an exponential race over the support: the order of
        # ``E_n / p_n`` (E_n ~ Exp(1)) is the order of weighted draws without replacement, so dropping the
        # rejected nodes leaves weighted draws without replacement from the acceptable ones, exactly what
        # rejection of repeats and relatives gives.
        support = self._support
        race = torch.empty(u.numel(), support.numel(), dtype=torch.float64).exponential_(generator=generator)
        race /= probs[support]
        m = min(support.numel(), k + self._max_rejectable)
        candidates = support[torch.topk(race, m, dim=1, largest=False, sorted=True).indices]
        negatives, valid = self._first(candidates, self._rejected(u, candidates, threshold), k)
        return negatives.masked_fill(~valid, 0), valid

    def _sample_with_hard(self, u, k, hard, num_hard, probs, threshold, generator):
        pool = hard[u].to(torch.int64)  # (B, M)
        pick = torch.rand(pool.shape, generator=generator).argsort(dim=1)[:, :num_hard]
        first = pool.gather(1, pick)
        rest = k - num_hard
        candidates = torch.cat([first, self._draw(u.numel(), rest + rest // 4 + 8, probs, generator)], dim=1)
        return self._complete(u, k, candidates, probs, threshold, generator)

    def _complete(self, u, k, candidates, probs, threshold, generator):
        """The first ``k`` acceptable distinct ``candidates`` per row, drawing more for the rows still short
        (up to ``10 k`` candidates in all)."""
        negatives, valid = self._select(u, candidates, threshold, k)
        short = ~valid.all(dim=1)
        if bool(short.any()):
            rows = torch.nonzero(short).squeeze(1)
            more = torch.cat([candidates[rows], self._draw(rows.numel(), 10 * k - candidates.shape[1], probs, generator)],
                             dim=1)
            row_threshold = None if threshold is None else threshold[rows]
            negatives[rows], valid[rows] = self._select(u[rows], more, row_threshold, k)
        return negatives, valid

    def hard_log_weights(self, u: torch.Tensor, negatives: torch.Tensor, hard: torch.Tensor, num_hard: int,
                         num_negatives: int) -> torch.Tensor:
        r"""Log importance weights of negatives drawn with ``hard=..., num_hard=H`` (``H < K``).

        A uniform draw of ``K`` negatives includes a node with probability about :math:`K/N`; the mixture
        includes one of ``u``'s ``M_u`` candidates (the table row's entries other than ``u``) with
        probability about :math:`\pi = \min(1, H/M_u) + (K - H)/N`, any other node with :math:`(K - H)/N`.
        Weights :math:`w = (K/N)/\pi` make :math:`\sum_n w_n e^{-d(u, n)}` estimate the same sum as ``K``
        uniform negatives (rejection and distinctness ignored in both) with less variance: the nodes crowding
        ``u`` are in the sum at every step, at their share of it, rather than at full weight in the rare
        step whose uniform draw hits one. (The loss, a logarithm of that sum, is then closer to the
        full-softmax loss than the average of the uniform one over draws is.)

        Returns ``(B, K)`` float64 :math:`\log w`.
        """
        k, n = int(num_negatives), self.num_nodes
        if not 0 < num_hard < k:
            raise ValueError(f"importance weights need 0 < num_hard < num_negatives={k}, got {num_hard}")
        pool = hard[u].to(torch.int64).sort(dim=1).values  # (B, M); padding slots hold u
        size = (pool != u.unsqueeze(1)).sum(1, keepdim=True).clamp_min(1)
        uniform = (k - num_hard) / n
        position = torch.searchsorted(pool, negatives).clamp_max(pool.shape[1] - 1)
        in_pool = (pool.gather(1, position) == negatives) & (negatives != u.unsqueeze(1))
        pi = torch.where(in_pool, (num_hard / size).clamp_max(1.0) + uniform, uniform)
        return math.log(k / n) - torch.log(pi.to(torch.float64))

    def hard_table(self, nearest, count: int, *, chunk: int | None = None) -> torch.Tensor:
        """Each node's ``count`` nearest acceptable negatives: the candidate table of :meth:`sample`.

        Parameters
        ----------
        nearest : callable
            ``nearest(rows, m)``: for a ``(R,)`` int64 tensor of node indices, the ``(R, m)`` indices of the
            ``m`` nodes nearest to each (any order, distinct per row, the node itself included), e.g. from
            the current points on the training device.
        count : int
            ``M``, candidates kept per node.
        chunk : int or None
            Rows per call of ``nearest`` (default 512).

        Returns
        -------
        torch.Tensor
            ``(N, M)`` int32 on the CPU: for node ``u`` the nearest nodes ``n != u`` with ``(u, n)`` no
            training pair (of any weight), nearest first when ``nearest`` sorts. Slots beyond the acceptable
            nodes of a small graph hold ``u`` itself, which :meth:`sample` rejects.

        Notes
        -----
        ``nearest`` is asked for ``count + 1 + max related nodes per node`` neighbours, so rejecting ``u``
        and its related nodes always leaves ``count`` acceptable ones where the graph has them.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        n = self.num_nodes
        if n >= 1 << 31:
            raise ValueError(f"a candidate table holds int32 node indices; {n} nodes are too many")
        chunk = chunk or _TABLE_CHUNK
        m = min(n, count + self._max_rejectable)
        table = torch.empty(n, count, dtype=torch.int32)
        for begin in range(0, n, chunk):
            rows = torch.arange(begin, min(begin + chunk, n))
            candidates = torch.as_tensor(nearest(rows, m)).to(device="cpu", dtype=torch.int64)
            if candidates.shape != (rows.numel(), m):
                raise ValueError(f"nearest(rows, {m}) returned shape {tuple(candidates.shape)}, "
                                 f"expected {(rows.numel(), m)}")
            found, valid = self._first(candidates, self._rejected(rows, candidates, None), count)
            table[begin:begin + rows.numel()] = torch.where(valid, found, rows.unsqueeze(1)).to(torch.int32)
        return table

    # ------------------------------------------------------------------ public
    def distribution(self, alpha: float | None) -> torch.Tensor | None:
        r"""``None`` (uniform) for ``alpha=None``; else probabilities :math:`\propto c(n)^\alpha`."""
        if alpha is None:
            return None
        weights = self.counts.pow(alpha) * (self.counts > 0)
        total = float(weights.sum())
        if total <= 0:
            raise ValueError("no node is an ancestor in a training pair: cannot draw unigram negatives")
        return weights / total

    def sample(
        self,
        u: torch.Tensor,
        num_negatives: int,
        generator: torch.Generator,
        *,
        probs: torch.Tensor | None = None,
        threshold: torch.Tensor | None = None,
        hard: torch.Tensor | None = None,
        num_hard: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Negatives for the pairs whose descendants are ``u``.

        Parameters
        ----------
        u : torch.Tensor
            ``(B,)`` int64 descendants of the batch's pairs (CPU).
        num_negatives : int
            ``K``, the number of negatives wanted per pair.
        generator : torch.Generator
            The CPU generator every draw comes from.
        probs : torch.Tensor or None
            ``(N,)`` probabilities from :meth:`distribution`; ``None`` draws uniformly.
        threshold : torch.Tensor or None
            ``(B,)`` weights ``w(u, v)`` of the pairs (weighted graphs only).
        hard : torch.Tensor or None
            ``(N, M)`` candidate table from :meth:`hard_table` (needed when ``num_hard > 0``).
        num_hard : int
            ``H <= K``: this many of ``u``'s ``M`` candidates (a uniformly random subset) come first in the
            draw order, so they take ``H`` of the ``K`` slots unless rejected (empty table slots are).

        Returns
        -------
        negatives : torch.Tensor
            ``(B, K)`` int64 node indices.
        valid : torch.Tensor
            ``(B, K)`` bool; False marks slots left empty after ``10 K`` tries (their index is
            meaningless and must be masked out of the loss).
        """
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be at least 1, got {num_negatives}")
        k = int(num_negatives)
        if not 0 <= num_hard <= k:
            raise ValueError(f"num_hard must lie in [0, num_negatives={k}], got {num_hard}")
        if num_hard:
            if hard is None or hard.dim() != 2 or hard.shape[0] != self.num_nodes or hard.shape[1] < num_hard:
                shape = None if hard is None else tuple(hard.shape)
                raise ValueError(f"num_hard={num_hard} needs a ({self.num_nodes}, >= {num_hard}) candidate table "
                                 f"from hard_table(), got {shape}")
            return self._sample_with_hard(u, k, hard, num_hard, probs, threshold, generator)
        if probs is not None:
            if self._support is None or self._support_probs is not probs:
                self._support = torch.nonzero(probs > 0).squeeze(1)
                self._support_probs = probs
            if u.numel() * self._support.numel() <= _RACE_LIMIT:
                return self._sample_small_support(u, k, probs, threshold, generator)
        candidates = self._draw(u.numel(), k + k // 4 + 8, probs, generator)
        return self._complete(u, k, candidates, probs, threshold, generator)
