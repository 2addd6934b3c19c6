"""Distance and update throughput of the MCF half-space against the float64 half-space and geoopt's
Poincaré ball, measured in the same run and reported as ratios.

    python benchmarks/mcf_speed.py [--pairs 1000000] [--dim 2] [--repeats 7] [--threads 1] [--device cpu]

Each timing is the median of ``--repeats`` runs of one batched call over ``--pairs`` points (after one
warm-up call). "Update" is one exponential-map step (the RSGD update, including the exact addition of
the increment to the expansion for MCF).
"""

import argparse
import os
import platform
import statistics
import time

import geoopt
import torch

from hyperbolic import HalfSpace, HalfSpaceMCF


def _median_seconds(function, repeats: int, device: str) -> float:
    function()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        function()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    n, dim, device = args.pairs, args.dim, args.device

    float_model = HalfSpace(dim)
    x = float_model.random(n, std=3.0, generator=generator).to(device)
    y = float_model.random(n, std=3.0, generator=generator).to(device)
    # a step of Riemannian length ~0.01: frame coordinates v, tangent vector y * v
    u = x[..., -1:] * 0.01 * torch.randn(x.shape, dtype=x.dtype, generator=generator).to(device)

    rows = []
    with torch.no_grad():
        base_dist = _median_seconds(lambda: float_model.dist(x, y), args.repeats, device)
        base_step = _median_seconds(lambda: float_model.expmap(x, u), args.repeats, device)
        rows.append(("half-space float64", base_dist, base_step))

        ball = geoopt.PoincareBall()
        px, py = float_model.to_poincare(x), float_model.to_poincare(y)
        pu = 0.01 * torch.randn(px.shape, dtype=px.dtype, generator=generator).to(device)
        rows.append(("geoopt PoincareBall float64",
                     _median_seconds(lambda: ball.dist(px, py), args.repeats, device),
                     _median_seconds(lambda: ball.expmap(px, pu), args.repeats, device)))

        for m in (2, 3, 4):
            model = HalfSpaceMCF(dim, components=m)
            mx, my = model.from_lorentz(float_model.to_lorentz(x)), model.from_lorentz(float_model.to_lorentz(y))
            mu = model.proju(mx, model._tangent(u))
            rows.append((f"MCF half-space m={m}",
                         _median_seconds(lambda model=model, mx=mx, my=my: model.dist(mx, my), args.repeats, device),
                         _median_seconds(lambda model=model, mx=mx, mu=mu: model.expmap(mx, mu), args.repeats, device)))

    print(f"Command: `python benchmarks/mcf_speed.py --pairs {n} --dim {dim} --repeats {args.repeats} "
          f"--threads {args.threads} --device {device}`  ")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores ({args.threads} thread(s) used), "
          f"torch {torch.__version__}, device {device}; median of {args.repeats} runs, {n:,} points, H^{dim}.\n")
    print("| model | dist (ms) | dist / float64 half-space | update (ms) | update / float64 half-space |")
    print("|---|---|---|---|---|")
    for name, dist_seconds, step_seconds in rows:
        print(f"| {name} | {1e3 * dist_seconds:.1f} | {dist_seconds / base_dist:.2f}× | "
              f"{1e3 * step_seconds:.1f} | {step_seconds / base_step:.2f}× |")


if __name__ == "__main__":
    main()
