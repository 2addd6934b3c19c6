r"""Vectorised reduction of float points of :math:`H^2` into the fundamental domain :math:`F` of the L-tiling.

One step (``../shared/notes/tiling.md`` §5), for a point :math:`w` outside :math:`F`: let ``p`` be the spatial
coordinate of larger magnitude (axis 1 on ties), ``q`` the other, and :math:`s = \operatorname{sign} p`
(this picks :math:`g_a, g_b, g_b^{-1}, g_a^{-1}` as in the note). The conjugated generator :math:`L g R` maps

.. math::

    w_0 \mapsto 2w_0 - \sqrt3\,s\,p, \qquad
    \text{slot of } p \mapsto -q, \qquad
    \text{slot of } q \mapsto s\,(2|p| - \sqrt3\,w_0),

and the accumulated group element absorbs :math:`g^{-1}` by column operations,
:math:`V_{:,0} \mapsto 2V_{:,0} + 3s\,V_{:,p}`, :math:`V_{:,p} \mapsto -V_{:,q}`,
:math:`V_{:,q} \mapsto s\,V_{:,0} + 2V_{:,p}`, so that :math:`L (T V) R\, w` stays the represented point.
A step is taken only if it lowers :math:`w_0` (recomputed as :math:`\sqrt{1 + w_1^2 + w_2^2}`); this guard stops the
ping-pong that rounding can cause near :math:`\partial F` and makes the loop terminate.

The loop is masked over all points at once (no Python loop over points); points are processed in chunks that
stay in cache, as separate contiguous coordinate arrays, and finished points are compacted away.

:math:`V` is not updated at every step. Each step appends a letter (0 for "no step", 1-4 for the four
generators) to a base-5 word of at most :data:`WORD_LETTERS` letters, and the word's matrix, looked up in a
table of all such products (:func:`word_table`), multiplies :math:`V` once per word. :math:`V` is kept exactly
in float64: every :math:`T \in G` satisfies :math:`\max_{ij}|T_{ij}| \le \sqrt3\,T_{00}` (from
:math:`T^\top M_3 T = M_3` and :math:`T M_3^{-1} T^\top = M_3^{-1}`), so with :math:`c(W)` the largest column sum
of :math:`|W|` every partial sum of :math:`V W` is below :math:`\sqrt3\,V_{00}\,c(W)`. Before a word takes its
:math:`d`-th letter, :math:`\sqrt3\,V_{00}\,c_d < 2^{53}` is checked with :math:`c_d` the largest :math:`c(W)` over words
of :math:`d` letters (per point only when the largest :math:`V_{00}` of the chunk could fail it; a word is multiplied
in early when that helps); a point that fails pauses, so that the caller can multiply :math:`V` into its
multi-limb :math:`T` and call again.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import torch

__all__ = ["outside_domain", "reduce_into_domain", "word_table", "chunk_size", "CHUNK", "WORD_LETTERS"]

SQRT3 = math.sqrt(3.0)
INV_SQRT3 = 1.0 / SQRT3
CHUNK = 1 << 15
WORD_LETTERS = 5
_EXACT = float(2**53)
# sqrt(3) V00 rounded up generously: the bound on max |V| used for the exactness test.
_ENTRY_BOUND = SQRT3 * (1 + 2.0**-40)


def chunk_size() -> int:
    """Points per chunk: :data:`CHUNK` for each torch thread, so every thread gets a cache-sized share."""
    return CHUNK * max(1, torch.get_num_threads())


def outside_domain(w: torch.Tensor) -> torch.Tensor:
    r""":math:`w \notin F`: :math:`|w_1| > w_0/\sqrt3` or :math:`|w_2| > w_0/\sqrt3` (rows of ``(..., 3)``)."""
    limit = w[..., 0] * INV_SQRT3
    return (w[..., 1].abs() > limit) | (w[..., 2].abs() > limit)


def _letter_matrix(letter: int) -> list[list[int]]:
    """:math:`g^{-1}` absorbed by :math:`V` for letter ``1 + [axis 1] + 2 [p > 0]`` (0: the identity)."""
    out = [[int(i == j) for j in range(3)] for i in range(3)]
    if letter == 0:
        return out
    axis1, s = (letter - 1) % 2 == 1, 1 if letter >= 3 else -1
    p, q = (1, 2) if axis1 else (2, 1)
    columns = {0: [2 * (i == 0) + 3 * s * (i == p) for i in range(3)],
               p: [-(i == q) for i in range(3)],
               q: [s * (i == 0) + 2 * (i == p) for i in range(3)]}
    return [[columns[j][i] for j in range(3)] for i in range(3)]


@functools.cache
def _word_table_cpu(letters: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows, bounds = [], []
    for word in itertools.product(range(5), repeat=letters):  # base-5 digits, most significant (first) first
        M = [[int(i == j) for j in range(3)] for i in range(3)]
        for letter in word:
            E = _letter_matrix(letter)
            M = [[sum(M[i][k] * E[k][j] for k in range(3)) for j in range(3)] for i in range(3)]
        rows.append([M[i][j] for i in range(3) for j in range(3)])
        bounds.append(max(sum(abs(M[i][j]) for i in range(3)) for j in range(3)))
    table = torch.tensor(rows, dtype=torch.float64).T.contiguous()  # (9, 5^letters): entry (i, j) in row 3 i + j
    return table, torch.tensor(bounds, dtype=torch.float64)


def word_table(letters: int = WORD_LETTERS, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Products of every word of ``letters`` letters and their exactness bounds.

    Returns
    -------
    table : torch.Tensor
        ``(9, 5**letters)`` float64: column ``c`` holds (row-major) :math:`E_{c_1} E_{c_2} \cdots` for the base-5
        digits :math:`c_1 c_2 \ldots` of ``c`` (first letter most significant), where :math:`E_0 = I` and
        :math:`E_1, \ldots, E_4` are the inverses of the generators that the letters apply to the point.
    column_sums : torch.Tensor
        ``(5**letters,)``: the largest column sum of :math:`|E_{c_1} E_{c_2} \cdots|`.
    """
    table, sums = _word_table_cpu(letters)
    return table.to(device), sums.to(device)


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
    table, column_sums = word_table(WORD_LETTERS, w.device)
    # most[d]: the largest column sum of |W| over words of at most d letters.
    most = [float(column_sums[: 5**d].max()) for d in range(WORD_LETTERS + 1)]
    chunk = chunk_size()
    for start in range(0, n, chunk):
        _reduce_chunk(out_w, out_c, V, paused, start, min(start + chunk, n), max_steps, table, most)
    return out_w, out_c, V, paused


class _Chunk:
    """The points of one chunk still being reduced, as 1-D arrays per coordinate (gathers on 1-D arrays are the
    fast ones), compacted as points finish; finished points go to chunk-sized result arrays."""

    def __init__(self, out_w, out_c, index, table):
        self.index = index
        self.table = table
        self.position = torch.arange(index.numel(), device=index.device)  # of each live point in the results
        self.w = [out_w[index, i].contiguous() for i in range(3)]
        self.c = [[c[index, i].contiguous() for i in range(3)] for c in out_c]
        k = index.numel()
        one = torch.ones(k, dtype=torch.float64, device=index.device)
        zero = torch.zeros(k, dtype=torch.float64, device=index.device)
        self.V = [one if i == j else zero for i in range(3) for j in range(3)]  # row-major entries of V
        self.word = zero
        self.letters = 0  # letters in the pending words (the same for every point: "no step" is a letter)
        self.frozen = None  # points that stopped only because V W could pass 2^53 (None: no such point)
        self.entry_bound = one * _ENTRY_BOUND
        self.largest_bound = _ENTRY_BOUND
        self.result_w = [x.clone() for x in self.w]
        self.result_c = [[x.clone() for x in c] for c in self.c]
        self.result_V = [x.clone() for x in self.V]
        self.result_paused = torch.zeros(k, dtype=torch.bool, device=index.device)

    def _times_words(self, rows=None):
        """Entries of :math:`V W` for the pending words (all points, or ``rows``)."""
        if rows is None:
            word, V = self.word, self.V
        else:
            word, V = self.word.index_select(0, rows), [x.index_select(0, rows) for x in self.V]
        word = word.to(torch.int64)
        M = [entry.index_select(0, word) for entry in self.table]
        return [torch.addcmul(torch.addcmul(V[3 * i] * M[j], V[3 * i + 1], M[3 + j]), V[3 * i + 2], M[6 + j])
                for i in range(3) for j in range(3)]

    def flush(self):
        r""":math:`V \leftarrow V\,W` (exact: the letters were taken only while the bound allowed it)."""
        if self.letters:
            self.V = self._times_words()
            self.word = torch.zeros_like(self.word)
            self.letters = 0
            self.entry_bound = self.V[0] * _ENTRY_BOUND
            self.largest_bound = float(self.entry_bound.max())

    def keep(self, rows):
        def take(x):
            return x.index_select(0, rows)

        self.index, self.position, self.word, self.entry_bound = map(take, (self.index, self.position, self.word,
                                                                           self.entry_bound))
        self.w = [take(x) for x in self.w]
        self.c = [[take(x) for x in c] for c in self.c]
        self.V = [take(x) for x in self.V]
        if self.frozen is not None:
            self.frozen = take(self.frozen)

    def finish(self, rows):
        """Move the final state of ``rows`` into the result arrays."""
        at = self.position.index_select(0, rows)
        for result, x in zip(self.result_w, self.w):
            result.index_copy_(0, at, x.index_select(0, rows))
        for result_c, c in zip(self.result_c, self.c):
            for result, x in zip(result_c, c):
                result.index_copy_(0, at, x.index_select(0, rows))
        for result, x in zip(self.result_V, self._times_words(rows)):
            result.index_copy_(0, at, x)
        if self.frozen is not None:
            self.result_paused.index_copy_(0, at, self.frozen.index_select(0, rows))

    def write_back(self, out_w, out_c, out_V, paused, index):
        w = torch.stack(self.result_w, dim=-1)
        out_w[index] = w
        for c_out, result in zip(out_c, self.result_c):
            c_out[index] = torch.stack(result, dim=-1)
        out_V[index] = torch.stack(self.result_V, dim=-1).view(-1, 3, 3)
        paused[index] = self.result_paused & outside_domain(w)


def _reduce_chunk(out_w, out_c, out_V, paused, start, stop, max_steps, table, most):
    index = torch.arange(start, stop, device=out_w.device)
    index = index[outside_domain(out_w[start:stop])]
    if index.numel() == 0:
        return
    state = _Chunk(out_w, out_c, index, table)
    k = index.numel()
    for step in range(max_steps + 1):
        # V W stays exact while sqrt3 V00 c(W) < 2^53 (c: largest column sum of |W|); check per point only
        # when the largest V of the chunk could pass it.
        if state.letters == WORD_LETTERS or state.largest_bound * most[state.letters + 1] >= _EXACT:
            state.flush()
        guarded = state.largest_bound * most[state.letters + 1] >= _EXACT
        w0, w1, w2 = state.w
        a1, a2 = w1.abs(), w2.abs()
        on_axis1 = a1 >= a2
        larger = torch.maximum(a1, a2)
        outside = larger > w0 * INV_SQRT3
        minus_q = torch.where(on_axis1, w2, w1).neg_()
        s = torch.sign(torch.where(on_axis1, w1, w2))
        other = torch.add(larger, w0, alpha=-SQRT3 / 2).mul_(2 * s)
        new1 = torch.where(on_axis1, minus_q, other)
        new2 = torch.where(on_axis1, other, minus_q)
        # The new w0 is recomputed from (w1, w2) rather than as 2 w0 - sqrt3 s p: it keeps the point on the hyperboloid.
        lifted = torch.addcmul(torch.addcmul(torch.ones_like(new1), new1, new1), new2, new2).sqrt_()
        accept = outside & (lifted < w0)
        if guarded:
            state.frozen = accept & (state.entry_bound * most[state.letters + 1] >= _EXACT)
            accept = accept & ~state.frozen
        if step == max_steps:
            if bool(accept.any()):
                row = int(state.index[torch.nonzero(accept)[0, 0]])
                raise RuntimeError(f"re-normalisation of row {row} did not reach the fundamental domain in "
                                   f"{max_steps} steps")
            break
        moved = int(accept.sum())
        if moved == 0:
            break
        state.w = [torch.where(accept, lifted, w0), torch.where(accept, new1, w1), torch.where(accept, new2, w2)]
        # The letter 1 + [axis 1] + 2 [p > 0] for a step, 0 for none.
        letter = (s.to(torch.float64) + 2).add_(on_axis1.to(torch.float64))
        state.word = torch.addcmul(state.word * 5, letter, accept.to(torch.float64))
        state.letters += 1
        for c in state.c:
            cp = torch.where(on_axis1, c[1], c[2])
            minus_cq = torch.where(on_axis1, c[2], c[1]).neg_()
            sc = s.to(c[0].dtype) * -SQRT3
            c0 = torch.addcmul(2 * c[0], sc, cp)
            c_other = torch.addcmul(2 * cp, sc, c[0])
            c[0] = torch.where(accept, c0, c[0])
            c[1] = torch.where(accept, torch.where(on_axis1, minus_cq, c_other), c[1])
            c[2] = torch.where(accept, torch.where(on_axis1, c_other, minus_cq), c[2])
        if 4 * (k - moved) >= k:
            state.finish(torch.nonzero(~accept).squeeze(-1))
            state.keep(torch.nonzero(accept).squeeze(-1))
            k = moved
    state.finish(torch.arange(k, device=out_w.device))
    state.write_back(out_w, out_c, out_V, paused, index)
