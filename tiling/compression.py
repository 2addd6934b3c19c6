r"""Compression of :math:`H^2` embeddings with the L-tiling (``../shared/notes/tiling.md`` §10).

A point :math:`x = L T R u` is stored as its float part :math:`u \in F` and the group element :math:`T` written as
a word in the generators. The exact reduction (:func:`tiling.group.reduce_exact`) applies letters
:math:`s_1, s_2, \ldots \in \{g_a^{\pm1}, g_b^{\pm1}\}` to the point, so :math:`T = s_1^{-1}s_2^{-1}\cdots`; merging
equal neighbours with exponents mod 6 gives alternating syllables :math:`g_{c_1}^{e_1}g_{c_2}^{e_2}\cdots`,
:math:`e_i \in \{1, \ldots, 5\}`.

**Word code (VBW).** One bit for the first generator (``0`` = :math:`g_a`, ``1`` = :math:`g_b`; the following
ones alternate and cost nothing), then each exponent as ``1 -> 10``, ``2 -> 001``, ``3 -> 010``, ``4 -> 011``,
``5 -> 11`` (prefix-free), then the unused pattern ``000`` as terminator so that words can be concatenated.

**Float part.** Either the two float64 numbers :math:`u_1, u_2` bit for bit (``float_bits=None``: decoding
is exact), or fixed point: :math:`u_i \in [-1, 1]` (true in :math:`F`) as an unsigned ``m``-bit integer
:math:`k = \mathrm{round}((u_i + 1)(2^m - 1)/2)`. The hyperbolic displacement of rounding is at most
:math:`\sqrt2\cdot 2^{-m}` (the Lorentz norm of :math:`(\delta_0, \delta_1, \delta_2)` with :math:`u_0`
recomputed is at most :math:`\lVert(\delta_1, \delta_2)\rVert`), so ``m`` follows from a distance tolerance.

The source files (BigFloat Poincaré-disk embeddings, ``../shared/data/HyperbolicTiling_Compression``) are read
exactly at a stated precision with mpmath and converted through the reference (:mod:`hyperbolic.reference`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mpmath
from mpmath import mp

from hyperbolic import reference

from . import group

__all__ = [
    "read_poincare_embedding",
    "word_of",
    "encode_word",
    "decode_word",
    "fixed_point_bits",
    "CompressedEmbedding",
    "compress",
    "decompress",
]

_CODES = {1: "10", 2: "001", 3: "010", 4: "011", 5: "11"}
_DECODE = {code: exponent for exponent, code in _CODES.items()}
_TERMINATOR = "000"


def read_poincare_embedding(path: str | Path, precision_bits: int) -> tuple[list[str], list[tuple]]:
    """Read a Poincaré-disk embedding written as decimal text (``idx,x,y[,extra...]`` after a header line).

    Each coordinate is parsed by mpmath at ``precision_bits`` (the precision the file was written for: 500 for
    ``grqc_500.emb``, 4,000 for ``bio-yeast.r2.emb``). Returns the node names and the exact Lorentz points
    (curvature -1) of the disk points, computed with :func:`hyperbolic.reference.from_poincare`.
    Raises ``ValueError`` naming the line for a malformed row or a point outside the unit disk.
    """
    names, points = [], []
    with open(path) as handle, mp.workprec(int(precision_bits)):
        header = handle.readline()
        if not header.startswith(","):
            raise ValueError(f"{path}: expected a header line starting with ',' (e.g. ',0,1'), got {header[:40]!r}")
        for line_number, line in enumerate(handle, start=2):
            fields = line.strip().split(",")
            if fields == [""]:
                continue
            if len(fields) < 3:
                raise ValueError(f"{path}:{line_number}: expected 'idx,x,y', got {line[:60]!r}")
            try:
                disk = (mpmath.mpf(fields[1]), mpmath.mpf(fields[2]))
            except ValueError:
                raise ValueError(f"{path}:{line_number}: coordinates are not numbers: {line[:60]!r}") from None
            try:
                points.append(reference.from_poincare(disk))
            except ValueError as error:
                raise ValueError(f"{path}:{line_number}: {error}") from None
            names.append(fields[0])
    return names, points


def word_of(letters: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Syllables of :math:`T = s_1^{-1} s_2^{-1} \\cdots` from the applied letters :math:`s_i` (freely reduced:
    equal neighbours merged, exponents mod 6, empty syllables removed)."""
    stack: list[list] = []
    for generator, exponent in letters:
        inverse = (-exponent) % 6
        if stack and stack[-1][0] == generator:
            stack[-1][1] = (stack[-1][1] + inverse) % 6
            if stack[-1][1] == 0:
                stack.pop()
        elif inverse:
            stack.append([generator, inverse])
    return [(g, e) for g, e in stack]


def encode_word(word: Sequence[tuple[str, int]]) -> str:
    """VBW bits of an alternating word (a string of ``0``/``1``), terminator included."""
    first = "1" if word and word[0][0] == "b" else "0"
    for (g, _), (h, _) in zip(word, word[1:]):
        if g == h:
            raise ValueError("VBW words must alternate between g_a and g_b; reduce the word first (word_of)")
    return first + "".join(_CODES[e] for _, e in word) + _TERMINATOR


def decode_word(bits: str, start: int = 0) -> tuple[list[tuple[str, int]], int]:
    """Decode one VBW word from ``bits`` at ``start``; returns the word and the position after its terminator."""
    generator = "b" if bits[start] == "1" else "a"
    position = start + 1
    word = []
    while True:
        if bits.startswith(_TERMINATOR, position):
            return word, position + 3
        for length in (2, 3):
            code = bits[position:position + length]
            if code in _DECODE:
                word.append((generator, _DECODE[code]))
                generator = "a" if generator == "b" else "b"
                position += length
                break
        else:
            raise ValueError(f"invalid VBW code at bit {position}")


def fixed_point_bits(tolerance: float) -> int:
    r"""Bits per coordinate so that fixed-point rounding moves a point by at most ``tolerance``
    (:math:`\sqrt2\cdot 2^{-m} \le` tolerance)."""
    return max(8, math.ceil(math.log2(math.sqrt(2.0) / tolerance)))


@dataclass
class CompressedEmbedding:
    """An encoded embedding.

    Attributes
    ----------
    words : str
        Concatenated VBW words (``0``/``1`` characters; :meth:`to_bytes` packs them).
    floats : list of int
        Float parts: two 64-bit patterns (``float_bits=None``) or two ``float_bits``-bit integers per node.
    float_bits : int or None
        Fixed-point bits per coordinate, or ``None`` for exact float64.
    word_bits : list of int
        Bits of each node's word (terminator included).
    """

    words: str
    floats: list[int]
    float_bits: int | None
    word_bits: list[int] = field(default_factory=list)

    @property
    def nodes(self) -> int:
        return len(self.word_bits)

    def bits_per_coordinate(self) -> int:
        return 64 if self.float_bits is None else self.float_bits

    def total_bits(self) -> int:
        return len(self.words) + 2 * self.bits_per_coordinate() * self.nodes

    def bits_per_node(self) -> float:
        return self.total_bits() / self.nodes

    def word_bits_without_terminator(self) -> list[int]:
        """The word cost as counted in the published table (start bit and syllables, no terminator)."""
        return [b - len(_TERMINATOR) for b in self.word_bits]

    def to_bytes(self) -> bytes:
        """Pack words then floats into bytes (the size on disk, up to the final partial byte)."""
        width = self.bits_per_coordinate()
        bits = self.words + "".join(format(value, f"0{width}b") for value in self.floats)
        bits += "0" * (-len(bits) % 8)
        return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def _float_pattern(value: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", value))[0]


def _pattern_float(pattern: int) -> float:
    return struct.unpack(">d", struct.pack(">Q", pattern))[0]


def compress(points: Sequence[Sequence], float_bits: int | None = None) -> CompressedEmbedding:
    """Encode exact reference points of :math:`H^2` (mpmath Lorentz tuples at curvature -1).

    Each point is reduced into :math:`F` with exact integer decisions; ``u`` is rounded to float64 (or to
    ``float_bits``-bit fixed point) and the group element coded as a VBW word.
    """
    words, floats, word_bits = [], [], []
    for point in points:
        reduction = group.reduce_exact(point, record_letters=True)
        bits = encode_word(word_of(reduction.letters))
        words.append(bits)
        word_bits.append(len(bits))
        for c in reduction.u[1:]:
            if float_bits is None:
                floats.append(_float_pattern(float(c)))
            else:
                top = (1 << float_bits) - 1
                with mp.workprec(float_bits + 64):
                    floats.append(min(max(int(mpmath.nint((c + 1) * top / 2)), 0), top))
    return CompressedEmbedding("".join(words), floats, float_bits, word_bits)


def decompress(encoded: CompressedEmbedding) -> tuple[list, list[tuple[float, float]]]:
    """The group elements (3x3 Python integers) and float parts :math:`(u_1, u_2)` of an encoding, exactly."""
    elements, parts = [], []
    position = 0
    top = None if encoded.float_bits is None else (1 << encoded.float_bits) - 1
    for node in range(encoded.nodes):
        word, position = decode_word(encoded.words, position)
        elements.append(group.word_to_matrix(word))
        a, b = encoded.floats[2 * node], encoded.floats[2 * node + 1]
        if top is None:
            parts.append((_pattern_float(a), _pattern_float(b)))
        else:
            parts.append((mpmath.mpf(2 * a - top) / top, mpmath.mpf(2 * b - top) / top))
    return elements, parts


def decoded_points(encoded: CompressedEmbedding) -> list[tuple]:
    """Reference points :math:`L T R u` of an encoding (mpmath, exact up to ``mp.prec``)."""
    points = []
    for T, (u1, u2) in zip(*decompress(encoded)):
        with mp.workprec(mp.prec + 64):
            u1, u2 = mpmath.mpf(u1), mpmath.mpf(u2)
            u = (mpmath.sqrt(1 + u1 * u1 + u2 * u2), u1, u2)
        points.append(group.point_from_parts(T, u))
    return points
