"""Fréchet-mean benchmark: our MM + IFT against geoopt Riemannian gradient descent and the Karcher flow.

For 1,000 sets of (t, n) = (10, 2), (10, 16), (100, 2), (100, 16) on the unit Poincaré ball, tight
(s = 0.5) and wide (s = 1.5) as in ``../shared/notes/frechet.md`` §4, in float64 and float32, it measures
single-threaded process CPU time of the forward pass and of forward + backward (ours), the iterations,
and the error of every method against mpmath: the certified bound ``‖Σ log_y x_l‖/t`` on the distance to
the true mean (50 digits), maximum over the first 10 sets. geoopt RGD uses ``lr = m/(2t)`` with m = 1;
RGD with m = 0.5 is run too (iterations and error); the Karcher flow is ``y ← exp_y(0.5 · mean log_y x_l)``; both stop when every set's step is below the
tolerance (1e-12 float64, 1e-6 float32) or at the cap (1,000 float64 tight, 300 otherwise).
The last columns repeat the published implementation's figures of the notes (same machine class,
2-core CPU, single thread) with our speed-up.

Run: ``python benchmarks/frechet.py`` (about 5–10 minutes); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geoopt
import mpmath
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hyperbolic.nn import frechet_mean  # noqa: E402
from tests.nn import mp_frechet as M  # noqa: E402

SHAPES = [(10, 2), (10, 16), (100, 2), (100, 16)]
# Published implementation (frechet.md §4): (dtype, s, t, n) -> (MM fwd s, MM fwd+bwd s)
REFERENCE = {
    ("f64", 0.5, 10, 2): (0.016, 0.023), ("f64", 0.5, 10, 16): (0.010, 0.111),
    ("f64", 0.5, 100, 2): (0.099, 0.123), ("f64", 0.5, 100, 16): (0.100, 1.33),
    ("f32", 0.5, 10, 2): (0.396, 0.41), ("f32", 0.5, 10, 16): (0.044, 0.102),
    ("f32", 0.5, 100, 2): (1.96, 1.85), ("f32", 0.5, 100, 16): (0.138, 0.768),
    ("f64", 1.5, 10, 2): (0.043, 0.050), ("f64", 1.5, 10, 16): (0.016, 0.132),
    ("f64", 1.5, 100, 2): (0.159, 0.188), ("f64", 1.5, 100, 16): (0.117, 1.30),
}


def cpu_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def rgd(x: torch.Tensor, tol: float, cap: int, m: float = 1.0):
    ball = geoopt.PoincareBall()
    y = geoopt.ManifoldParameter(x.mean(1).clone(), manifold=ball)
    opt = geoopt.optim.RiemannianSGD([y], lr=m / (2 * x.shape[1]))
    for it in range(1, cap + 1):
        before = y.detach().clone()
        opt.zero_grad()
        ball.dist(x, y.unsqueeze(1)).square().sum().backward()
        opt.step()
        if float(ball.dist(before, y.detach()).max()) <= tol:
            return y.detach(), it, True
    return y.detach(), cap, False


def karcher(x: torch.Tensor, tol: float, cap: int):
    ball = geoopt.PoincareBall()
    y = x.mean(1)
    for it in range(1, cap + 1):
        step = 0.5 * ball.logmap(y.unsqueeze(1), x).mean(1)
        y = ball.expmap(y, step)
        if float(ball.norm(y, step).max()) <= tol:
            return y, it, True
    return y, cap, False


def certified_error(x: torch.Tensor, y: torch.Tensor, sets: int) -> float:
    worst = 0.0
    for b in range(sets):
        points = [M.ball_to_ref(p) for p in x[b].tolist()]
        worst = max(worst, float(M.residual(M.ball_to_ref(y[b].tolist()), points, [1] * x.shape[1])))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--error-sets", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="100 sets, 1 repeat, 2 error sets")
    args = parser.parse_args()
    if args.quick:
        args.sets, args.repeats, args.error_sets = 100, 1, 2
    torch.set_num_threads(1)
    mpmath.mp.dps = 50
    command = "python benchmarks/frechet.py" + (" --quick" if args.quick else "")

    rows = []
    for dtype, dname in ((torch.float64, "f64"), (torch.float32, "f32")):
        for spread in (0.5, 1.5):
            for t, n in SHAPES:
                x = M.benchmark_sets(args.sets, t, n, spread, seed=0, dtype=dtype)
                tol = 1e-12 if dtype == torch.float64 else 1e-6
                cap = 1000 if (dtype == torch.float64 and spread == 0.5) else 300
                mu, info = frechet_mean(x, return_info=True)
                fwd = cpu_time(lambda x=x: frechet_mean(x), args.repeats)
                xg = x.clone().requires_grad_(True)

                def fwd_bwd(xg=xg):
                    frechet_mean(xg).sum().backward()

                both = cpu_time(fwd_bwd, args.repeats)
                start = time.process_time()
                y_rgd, it_rgd, ok_rgd = rgd(x, tol, cap)
                t_rgd = time.process_time() - start
                y_half, it_half, ok_half = rgd(x, tol, cap, m=0.5)
                start = time.process_time()
                y_k, it_k, ok_k = karcher(x, tol, cap)
                t_k = time.process_time() - start
                e = args.error_sets
                err = [certified_error(x, y, e) for y in (mu, y_rgd, y_half, y_k)]
                ref = REFERENCE.get((dname, spread, t, n)) if args.sets == 1000 else None
                rows.append((dname, spread, t, n, int(info.n_iter.max()), float(info.n_iter.float().mean()),
                             bool(info.converged.all()), fwd, both, it_rgd if ok_rgd else "cap", t_rgd,
                             it_half if ok_half else "cap", it_k if ok_k else "cap", t_k, *err, ref))
                print(f"done {dname} s={spread} ({t},{n})", file=sys.stderr, flush=True)

    print(f"### Fréchet mean: MM + IFT vs geoopt RGD and Karcher flow ({args.sets} sets, 1 thread)\n")
    print(f"Command: `{command}` (torch {torch.__version__}, geoopt {geoopt.__version__}); "
          "times are single-thread process CPU seconds for the whole batch (best of "
          f"{args.repeats} for ours); err = max over {args.error_sets} sets of the certified mpmath bound "
          "on the hyperbolic distance to the true mean (50 digits). Ref = the published implementation "
          "(frechet.md §4); ×fwd and ×f+b = its time over ours.\n")
    print("| dtype | s | t | n | MM its max/mean | conv | MM fwd | MM fwd+bwd | RGD m=1 its / s | RGD m=.5 its "
          "| Karcher its / s | err MM | err RGD m=1 | err RGD m=.5 | err Karcher | ref fwd / f+b | ×fwd | ×f+b |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (dname, s, t, n, it_max, it_mean, conv, fwd, both, it_rgd, t_rgd, it_half, it_k, t_k, e_mm, e_rgd, e_half,
         e_k, ref) in rows:
        ref_txt, rf, rb = ("–", "–", "–") if ref is None else (
            f"{ref[0]:.3g} / {ref[1]:.3g}", f"{ref[0] / fwd:.1f}", f"{ref[1] / both:.1f}")
        print(f"| {dname} | {s} | {t} | {n} | {it_max} / {it_mean:.1f} | {'yes' if conv else 'NO'} | {fwd:.4f} "
              f"| {both:.4f} | {it_rgd} / {t_rgd:.3f} | {it_half} | {it_k} / {t_k:.3f} | {e_mm:.1e} | {e_rgd:.1e} "
              f"| {e_half:.1e} | {e_k:.1e} "
              f"| {ref_txt} | {rf} | {rb} |")


if __name__ == "__main__":
    main()
