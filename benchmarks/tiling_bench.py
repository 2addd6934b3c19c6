"""Tiling models: re-normalisation throughput, distance throughput against the float64 Lorentz model (same
run, as a ratio), and compression of the two shared BigFloat Poincaré embeddings.

    python benchmarks/tiling_bench.py [--points 1000000] [--radius 30] [--repeats 3] [--threads 2]
                                [--compression-nodes 0] [--skip-compression]

Re-normalisation, two cases, ``--points`` points with radii uniform in ``[0, --radius]``:

* "after an update": stored L-tiling points whose float part took one tangent step of length uniform in
  ``[0, 1]`` without re-normalisation (what ``retr`` re-normalises after every optimiser step);
* "from the origin frame": float Lorentz points with the identity group element, reduced all the way
  (``from_lorentz``; about 0.8 steps per unit of radius).

Distances: ``--points`` pairs one unit apart with the first point at radius uniform in ``[0, --radius]``, L-tiling
(exact integer Q) and binary tiling against ``hyperbolic.Lorentz`` on the same points in float64.

Limbs in use (``--limb-points`` points, 0: skip): a 10-D ``BinaryTiling(10, max_radius=1100)`` (67 limbs per
integer, the registry's) at radii uniform in ``[0, 12]`` (one limb in use), ``expmap`` of a step of length U[0, 1]
and ``dist`` of pairs one unit apart, against the same model reading every stored limb (``limbs_in_use``
answering ``limbs``: the arithmetic before limbs in use were tracked); both give the same results bit for bit.

Compression (``../shared/data/HyperbolicTiling_Compression/dataset``): bits per node against the BigFloat
Poincaré size (2 P bits per node), for the float part as two float64 and as fixed point with a 1e-13
distance tolerance, and the largest hyperbolic distance between a decoded point and the original (mpmath).
``--compression-nodes N`` uses the first N nodes of each file (0: all).

Prints a markdown block for benchmarks/RESULTS.md, with the command line and the machine.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import mpmath
import torch

from hyperbolic import Lorentz, reference
from tiling import BinaryTiling, LTiling, compression

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "HyperbolicTiling_Compression" / "dataset"
DATASETS = (("grqc_500.emb", 500, 0.142), ("bio-yeast.r2.emb", 4000, 0.229))


def _median_seconds(function, repeats: int) -> float:
    """Median wall-clock seconds of ``repeats`` calls after a warm-up; the process CPU seconds of the same calls
    go to ``CPU_SECONDS`` (on a shared machine CPU time is the steadier figure)."""
    function()
    times, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        function()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    CPU_SECONDS.append(statistics.median(cpu))
    return statistics.median(times)


CPU_SECONDS: list[float] = []
STARTING_LOAD = float("nan")


def _lorentz_points(n: int, radius: float, generator: torch.Generator) -> torch.Tensor:
    r = radius * torch.rand(n, dtype=torch.float64, generator=generator)
    theta = 2 * math.pi * torch.rand(n, dtype=torch.float64, generator=generator)
    return torch.stack([torch.cosh(r), torch.sinh(r) * torch.cos(theta), torch.sinh(r) * torch.sin(theta)], -1)


def _unit_steps(model, x, lengths, generator):
    v = model.proju(x, torch.randn(x.shape, dtype=x.dtype, generator=generator))
    return v * (lengths / model.norm(x, v)).unsqueeze(-1)


def renormalisation(n: int, radius: float, repeats: int) -> list[tuple[str, float, float]]:
    generator = torch.Generator().manual_seed(0)
    model = LTiling(max_radius=radius)
    X = _lorentz_points(n, radius, generator)
    with torch.no_grad():
        x = model.from_lorentz(X)
        step = _unit_steps(model, x, torch.rand(n, dtype=torch.float64, generator=generator), generator)
        u, _ = model.split(x)
        h = step[:, :3]
        length = torch.sqrt((-h[:, :1] ** 2 + (h[:, 1:] ** 2).sum(-1, keepdim=True)).clamp_min(0))
        moved = torch.cosh(length) * u + torch.sinh(length) * h / length.clamp_min(1e-300)
        displaced = torch.cat([moved, x[:, 3:]], -1)
        outside = float((model._off_manifold_rows(displaced, 1e-9, 1e-9)).double().mean())
        after_update = _median_seconds(lambda: model.renormalize(displaced), repeats)
        after_update_cpu = CPU_SECONDS[-1]
        from_origin = _median_seconds(lambda: model.from_lorentz(X), repeats)
        from_origin_cpu = CPU_SECONDS[-1]
    return [
        (f"after an update (step length U[0,1]; {100 * outside:.0f} % of points leave F)", after_update,
         after_update_cpu, n / after_update),
        ("from the origin frame (from_lorentz)", from_origin, from_origin_cpu, n / from_origin),
    ]


def distances(n: int, radius: float, repeats: int) -> list[tuple[str, float, float]]:
    generator = torch.Generator().manual_seed(1)
    lorentz = Lorentz(2)
    rows = []
    with torch.no_grad():
        X = _lorentz_points(n, radius, generator)
        for label, model in (("L-tiling", LTiling(max_radius=radius + 2)), ("binary tiling", BinaryTiling(2, max_radius=radius + 2))):
            x = model.from_lorentz(X)
            y = model.expmap(x, _unit_steps(model, x, torch.ones(n, dtype=torch.float64), generator))
            Xl, Yl = model.to_lorentz(x), model.to_lorentz(y)
            base = _median_seconds(lambda Xl=Xl, Yl=Yl: lorentz.dist(Xl, Yl), repeats)
            seconds = _median_seconds(lambda x=x, y=y, model=model: model.dist(x, y), repeats)
            rows.append((label, seconds, base, CPU_SECONDS[-1], CPU_SECONDS[-2]))
    return rows


class _FullWidth(BinaryTiling):
    """The binary tiling computing on every stored limb."""

    def limbs_in_use(self, *points):
        return self.limbs


def limbs_in_use_rows(n: int, repeats: int) -> tuple[list[tuple], bool]:
    generator = torch.Generator().manual_seed(2)
    dim, radius = 10, 12.0
    rows = []
    with torch.no_grad():
        v = torch.randn(n, dim, dtype=torch.float64, generator=generator)
        v = v * (radius * torch.rand(n, 1, dtype=torch.float64, generator=generator) / v.norm(dim=-1, keepdim=True))
        r = v.norm(dim=-1, keepdim=True)
        X = torch.cat([torch.cosh(r), torch.sinh(r) * v / r], -1)
        timed = {}
        for label, model in (("limbs in use", BinaryTiling(dim, max_radius=1100)),
                             ("full width", _FullWidth(dim, max_radius=1100))):
            x = model.from_lorentz(X)
            step = _unit_steps(model, x, torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(3)),
                               torch.Generator().manual_seed(4))
            y = model.expmap(x, _unit_steps(model, x, torch.ones(n, dtype=torch.float64), torch.Generator().manual_seed(5)))
            expmap = _median_seconds(lambda x=x, step=step, model=model: model.expmap(x, step), repeats)
            expmap_cpu = CPU_SECONDS[-1]
            dist = _median_seconds(lambda x=x, y=y, model=model: model.dist(x, y), repeats)
            timed[label] = (model.expmap(x, step), model.dist(x, y))
            rows.append((label, model.limbs_in_use(x), expmap, expmap_cpu, dist, CPU_SECONDS[-1]))
        same = all(torch.equal(a, b) for a, b in zip(timed["limbs in use"], timed["full width"]))
    return rows, same


def compression_rows(nodes: int) -> list[tuple]:
    if not DATA.is_dir():
        print(f"compression data not found at {DATA}; skipping", file=sys.stderr)
        return []
    rows = []
    for name, bits, published in DATASETS:
        _, points = compression.read_poincare_embedding(DATA / name, bits)
        if nodes:
            points = points[:nodes]
        started = time.perf_counter()
        with mpmath.mp.workprec(bits):
            for float_bits in (None, compression.fixed_point_bits(1e-13)):
                encoded = compression.compress(points, float_bits=float_bits)
                decoded = compression.decoded_points(encoded)
                error = max(float(reference.dist(a, b)) for a, b in zip(points, decoded))
                word = encoded.word_bits_without_terminator()
                rows.append((name, len(points), bits, "2 x float64" if float_bits is None else f"2 x {float_bits}-bit fixed",
                             sum(word) / len(word), max(word), encoded.bits_per_node(),
                             encoded.bits_per_node() / (2 * bits), published, error))
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--radius", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compression-nodes", type=int, default=0)
    parser.add_argument("--skip-compression", action="store_true")
    parser.add_argument("--limb-points", type=int, default=3000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global STARTING_LOAD
    STARTING_LOAD = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    reference_vectors = torch.randn(2, args.points, dtype=torch.float64)
    multiply = _median_seconds(lambda: reference_vectors[0] * reference_vectors[1], args.repeats)
    renorm = renormalisation(args.points, args.radius, args.repeats)
    dist_rows = distances(args.points, args.radius, args.repeats)
    limb_rows, same = limbs_in_use_rows(args.limb_points, args.repeats) if args.limb_points else ([], True)
    comp = [] if args.skip_compression else compression_rows(args.compression_nodes)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start_load = STARTING_LOAD
    print(f"### Tiling models (`python {' '.join(sys.argv)}`)\n")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
          f"{torch.__version__}, {args.threads} threads, load average {start_load:.1f} at the start and "
          f"{load:.1f} at the end of the run; "
          f"float64; median of {args.repeats} runs after a warm-up. Machine speed in this run: one elementwise "
          f"float64 multiply of {args.points:,} numbers took {1e3 * multiply:.2f} ms "
          f"({1e9 * multiply / args.points:.2f} ns per element).\n")
    print(f"Re-normalisation of {args.points:,} L-tiling points, radii uniform in [0, {args.radius:g}]:\n")
    print("| case | seconds (wall) | process CPU seconds | points / s |\n|---|---|---|---|")
    for label, seconds, cpu, rate in renorm:
        print(f"| {label} | {seconds:.2f} | {cpu:.2f} | {rate:,.0f} |")
    print(f"\nDistance of {args.points:,} pairs one unit apart (first point at radius U[0, {args.radius:g}]), "
          "against `hyperbolic.Lorentz` (float64) on the same points in the same run:\n")
    print("| model | seconds | Lorentz seconds | time ratio (model / Lorentz) | CPU-time ratio |\n|---|---|---|---|---|")
    for label, seconds, base, cpu, cpu_base in dist_rows:
        print(f"| {label} | {seconds:.3f} | {base:.3f} | {seconds / base:.1f} | {cpu / cpu_base:.1f} |")
    if limb_rows:
        print(f"\nLimbs in use: 10-D binary tiling, `max_radius` 1,100 (67 limbs stored per integer), "
              f"{args.limb_points:,} points at radius U[0, 12]; `expmap` of a step of length U[0, 1], `dist` to a "
              f"point one unit away; results of the two rows {'identical bit for bit' if same else 'DIFFERENT'}:\n")
        print("| arithmetic | limbs read | expmap ms (CPU ms) | dist ms (CPU ms) |\n|---|---|---|---|")
        for label, limbs, expmap, expmap_cpu, dist, dist_cpu in limb_rows:
            print(f"| {label} | {limbs} | {1e3 * expmap:.1f} ({1e3 * expmap_cpu:.1f}) | {1e3 * dist:.1f} "
                  f"({1e3 * dist_cpu:.1f}) |")
    if comp:
        print("\nCompression (VBW word incl. 3-bit terminator + float part) against the BigFloat Poincaré file "
              "(2 P bits per node); decode error = max hyperbolic distance to the original (mpmath):\n")
        print("| dataset | nodes | P | float part | word bits mean (max), no terminator | bits / node | "
              "ratio | published ratio | max decode error |\n|---|---|---|---|---|---|---|---|---|")
        for name, nodes, bits, part, mean, worst, per_node, ratio, published, error in comp:
            print(f"| {name} | {nodes:,} | {bits} | {part} | {mean:.1f} ({worst}) | {per_node:.1f} | "
                  f"{100 * ratio:.1f} % | {100 * published:.1f} % | {error:.1e} |")


if __name__ == "__main__":
    main()
