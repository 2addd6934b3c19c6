r"""Measured accuracy of ``dist`` against the mpmath reference (``../shared/notes/precision.md``).

For each radius ``r`` two kinds of pairs, drawn in mpmath with a fixed seed:

* ``near``: the first point at radius ``r``, the second one unit away in a uniform direction (siblings
  deep in a tree: the hard, cancelling case);
* ``far``: both points at radius ``r`` in independent directions (distance about ``2r``: catches
  overflow and underflow).

Each representation rounds the exact points by its own rule (``from_reference``) and evaluates its own
``dist`` in floats; the relative error against the reference distance is summarised by its median and
maximum. Two references are offered:

* ``against="exact"`` (the table's default): the exact distance of the exact points, so a cell includes the
  rounding of the points into the representation — what a user holding those points gets;
* ``against="stored"``: the exact distance of the points *as stored* (``to_reference`` of the rounded
  storage), so a cell measures the arithmetic of ``dist`` alone. The gap between the two is the
  representation's rounding error, about ``u^m·e^r`` for ``m`` components of unit roundoff ``u``
  (precision.md §5). A NaN or infinite distance is counted (``nonfinite``) and makes the maximum infinite; a pair the
representation refuses to hold (beyond its ceiling) marks the row ``beyond ceiling``. Nothing is skipped.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import geoopt
import mpmath
import torch

from . import reference, registry
from .manifold import PrecisionError
from .rounding import round_to_tensor

__all__ = [
    "RADII",
    "PairSet",
    "Row",
    "make_pairs",
    "measure",
    "run",
    "accurate_radius",
    "format_table",
    "peers",
    "breakdown",
]

RADII = (1, 5, 10, 20, 30, 40, 50, 75, 100, 200, 500, 1000)
DTYPE_NAMES = {torch.float64: "float64", torch.float32: "float32"}


@dataclass
class PairSet:
    """Exact pairs at one radius, with their reference distances."""

    radius: float
    kind: str
    first: list
    second: list
    truth: list


@dataclass
class Row:
    """One line of the precision table."""

    manifold: str
    dtype: str
    radius: float
    pairs: str
    median_rel_err: float | None
    max_rel_err: float | None
    nonfinite: int
    n: int
    status: str = "ok"
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d.update(self.extra)
        return d


def make_pairs(radius: float, kind: str, n_pairs: int = 20, dim: int = 2, seed: int = 0) -> PairSet:
    """Draw ``n_pairs`` exact pairs of ``kind`` (``"near"`` or ``"far"``) at ``radius`` in mpmath."""
    if kind not in ("near", "far"):
        raise ValueError(f"pair kind must be 'near' or 'far', got {kind!r}")
    rng = random.Random(f"{seed}-{kind}-{radius}-{dim}")
    with mpmath.mp.workprec(reference.working_precision(radius + 2)):
        pairs = [
            reference.near_pair(radius, 1, dim, rng) if kind == "near" else reference.far_pair(radius, dim, rng)
            for _ in range(n_pairs)
        ]
        truth = [reference.dist(a, b) for a, b in pairs]
    return PairSet(radius, kind, [a for a, _ in pairs], [b for _, b in pairs], truth)


def _relative_errors(distances: torch.Tensor, truth: Sequence) -> tuple[list[float], int]:
    errors, nonfinite = [], 0
    for value, true in zip(distances.to(torch.float64).tolist(), truth):
        if not math.isfinite(value):
            nonfinite += 1
            errors.append(math.inf)
        else:
            errors.append(float(abs(mpmath.mpf(value) - true) / true))
    return errors, nonfinite


def _stored_truth(model, first: torch.Tensor, second: torch.Tensor, radius: float) -> list:
    with mpmath.mp.workprec(reference.working_precision(radius + 2)):
        return [reference.dist(a, b) for a, b in zip(model.to_reference(first), model.to_reference(second))]


def measure(label: str, model, dtype: torch.dtype, pairs: PairSet, against: str = "exact") -> Row:
    """Round ``pairs`` into ``model`` and compare its ``dist`` with the reference distance of the exact
    points (``against="exact"``) or of the stored points (``against="stored"``)."""
    if against not in ("exact", "stored"):
        raise ValueError(f"against must be 'exact' or 'stored', got {against!r}")
    name = DTYPE_NAMES.get(dtype, str(dtype))
    try:
        first = model.from_reference(pairs.first, dtype=dtype)
        second = model.from_reference(pairs.second, dtype=dtype)
    except PrecisionError as error:
        return Row(label, name, pairs.radius, pairs.kind, None, None, 0, len(pairs.truth),
                   status=f"beyond ceiling: {error}")
    with torch.no_grad():
        distances = model.dist(first, second)
    truth = pairs.truth if against == "exact" else _stored_truth(model, first, second, pairs.radius)
    errors, nonfinite = _relative_errors(distances, truth)
    return Row(label, name, pairs.radius, pairs.kind, statistics.median(errors), max(errors),
               nonfinite, len(errors), extra={"against": against})


class _GeooptPeer:
    """geoopt's model behind the two methods the benchmark calls, with the same rounding as ours."""

    def __init__(self, label: str, manifold, chart: str):
        self.label, self.manifold, self.chart = label, manifold, chart

    def from_reference(self, points, dtype=torch.float64):
        if self.chart == "poincare":
            rows = (reference.to_poincare(p) for p in points)
        else:
            rows = points
        return round_to_tensor(rows, dtype, what=f"{self.label} point")

    def to_reference(self, x: torch.Tensor) -> list[tuple]:
        rows = [[mpmath.mpf(v) for v in row] for row in x.to(torch.float64).tolist()]
        if self.chart == "poincare":
            return [reference.from_poincare(row) for row in rows]
        return [tuple(row) for row in rows]

    def dist(self, x, y):
        return self.manifold.dist(x, y)


def peers() -> list[_GeooptPeer]:
    """geoopt's ``PoincareBall`` and ``Lorentz`` at curvature -1, measured in the same run."""
    return [
        _GeooptPeer("geoopt-poincare", geoopt.PoincareBall(c=1.0), "poincare"),
        _GeooptPeer("geoopt-lorentz", geoopt.Lorentz(k=1.0), "lorentz"),
    ]


def run(
    labels: Iterable[str] | None = None,
    radii: Sequence[float] = RADII,
    n_pairs: int = 20,
    dtypes: Sequence[torch.dtype] = (torch.float64, torch.float32),
    include_peers: bool = True,
    dim: int = 2,
    seed: int = 0,
    progress=None,
    against: str = "exact",
) -> list[Row]:
    """Measure every registered manifold (or those in ``labels``) and the geoopt peers against the exact
    distance of the exact points or of the stored points (``against``, see :func:`measure`).

    ``progress`` is an optional callable taking the number of finished radii (for a progress bar).
    """
    chosen = registry.entries() if labels is None else [registry.get(label) for label in labels]
    rows: list[Row] = []
    for done, radius in enumerate(radii, 1):
        for kind in ("near", "far"):
            pairs = make_pairs(radius, kind, n_pairs, dim, seed)
            for entry in chosen:
                model = entry.create(dim)
                for dtype in entry.dtypes:
                    if dtype in dtypes:
                        rows.append(measure(entry.label, model, dtype, pairs, against))
            if include_peers:
                for peer in peers():
                    for dtype in dtypes:
                        rows.append(measure(peer.label, peer, dtype, pairs, against))
        if progress is not None:
            progress(done)
    return rows


def accurate_radius(rows: Sequence[Row], manifold: str, dtype: str, threshold: float = 1e-12) -> float | None:
    """Largest tabulated radius up to which every pair (near and far) has relative error ``<= threshold``."""
    by_radius: dict[float, bool] = {}
    for row in rows:
        if row.manifold == manifold and row.dtype == dtype:
            ok = row.status == "ok" and row.max_rel_err is not None and row.max_rel_err <= threshold
            by_radius[row.radius] = by_radius.get(row.radius, True) and ok
    best = None
    for radius in sorted(by_radius):
        if not by_radius[radius]:
            break
        best = radius
    return best


def _cell(row: Row) -> str:
    if row.status != "ok":
        return "beyond ceiling"
    text = f"{row.median_rel_err:.1e} / {row.max_rel_err:.1e}"
    if row.nonfinite:
        text += f" (NaN/inf {row.nonfinite}/{row.n})"
    return text


def format_table(rows: Sequence[Row], kind: str) -> str:
    """Markdown table for one pair kind: a row per (manifold, dtype), a column per radius,
    cells ``median / max`` relative error, and the radius up to which every error is below 1e-12."""
    keys = list(dict.fromkeys((r.manifold, r.dtype) for r in rows))
    radii = sorted({r.radius for r in rows})
    lines = [
        "| manifold | dtype | " + " | ".join(f"r={r:g}" for r in radii) + " | accurate to r (≤1e-12) |",
        "|---|---|" + "---|" * len(radii) + "---|",
    ]
    for manifold, dtype in keys:
        cells = {r.radius: _cell(r) for r in rows if (r.manifold, r.dtype, r.pairs) == (manifold, dtype, kind)}
        best = accurate_radius(rows, manifold, dtype)
        lines.append(
            f"| {manifold} | {dtype} | "
            + " | ".join(cells.get(r, "") for r in radii)
            + f" | {'<' + str(radii[0]) if best is None else f'{best:g}'} |"
        )
    return "\n".join(lines)


def breakdown(rows: Sequence[Row], manifold: str, dtype: str) -> tuple[float | None, float | None]:
    """Break-down radii from the near-pair rows (precision.md §3): the largest tabulated radius whose
    median error is below 1e-6 ("usable"), and the first radius where some pair is off by half its distance
    or more (max error >= 1/2), returns NaN/inf, or is refused by the representation ("useless")."""
    near = sorted((r for r in rows if (r.manifold, r.dtype, r.pairs) == (manifold, dtype, "near")),
                  key=lambda r: r.radius)
    usable = useless = None
    for row in near:
        if row.status == "ok" and not row.nonfinite and row.median_rel_err < 1e-6 and useless is None:
            usable = row.radius
        elif useless is None and (row.status != "ok" or row.nonfinite or row.max_rel_err >= 0.5):
            useless = row.radius
    return usable, useless
