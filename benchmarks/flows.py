"""Train a manifold CNF on a synthetic density of H^2 or S^2 and measure it (issue 9).

Measures, in one run:

* held-out NLL (nats/sample, exact trace, tight solver tolerance) of the trained model, next to the
  true-density oracle and the base distribution on the same held-out samples;
* the model's normalisation, by grid quadrature with the volume factor, at initialisation and after
  training (H^2: 161 x 161 grid of T_oH^2 on [-8, 8]^2; S^2: 200 x 100 (phi, theta) midpoint grid);
* wall-clock and process-CPU seconds per training step, printed next to the published code's figure
  (about 3 CPU-s per step at batch 200 on a 2-core CPU, from ../shared/notes/flows.md; the published
  code is not available here to rerun, so that figure is quoted, not re-measured). Use ``--threads 0``
  for torch's default thread count (what the published figure was measured with, presumably).

Prints a markdown block for benchmarks/RESULTS.md headed by the command that produced it. With
``--plot DIR`` writes density pictures (Poincaré disk / equirectangular map) as PNG into DIR.

Example::

    python benchmarks/flows.py --dataset 5gaussians --steps 500 --lr 1e-2 --plot /tmp/flows
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from hyperbolic import Lorentz
from hyperbolic.nn.flows import FieldMLP, ManifoldCNF, ManifoldODE, Sphere, VonMisesFisher, WrappedNormal
from hyperbolic.nn.flows.datasets import HYPERBOLIC, SPHERE, synthetic
from hyperbolic.nn.flows.quadrature import integrate_hyperbolic, integrate_sphere
from hyperbolic.nn.flows.training import TrainingLog, fit, negative_log_likelihood

PUBLISHED_CPU_SECONDS_PER_STEP = 3.0  # notes §8: ~1.5-3 s per step, batch 200, 2-core CPU


def build(space: str, args) -> ManifoldCNF:
    if space == "hyperbolic":
        manifold = Lorentz(2)
        field = FieldMLP(2, hidden=args.hidden)
        ode = ManifoldODE(manifold, field, atol=args.atol, rtol=args.rtol, adjoint=args.adjoint)
        base = WrappedNormal(manifold, manifold.origin(), 1.0)
    else:
        manifold = Sphere(2)
        field = FieldMLP(3, hidden=args.hidden)
        ode = ManifoldODE(manifold, field, segments=4, method="rk4", step_size=1 / 16, adjoint=args.adjoint)
        base = VonMisesFisher(manifold.origin(), 1.0)
    return ManifoldCNF(ode, base, trace=args.trace).double()


def normalisation(cnf: ManifoldCNF, space: str, tol: float) -> float:
    ode = cnf.ode
    saved = ode.atol, ode.rtol
    ode.atol = ode.rtol = tol
    cnf.eval()
    try:
        if space == "hyperbolic":
            return integrate_hyperbolic(cnf.log_prob, points=161, extent=8.0)
        return integrate_sphere(cnf.log_prob, 200, 100)
    finally:
        ode.atol, ode.rtol = saved
        cnf.train()


def held_out_nll(cnf: ManifoldCNF, x: torch.Tensor, tol: float) -> float:
    ode = cnf.ode
    saved = ode.atol, ode.rtol
    ode.atol = ode.rtol = tol
    try:
        return float(negative_log_likelihood(cnf, x))
    finally:
        ode.atol, ode.rtol = saved


def plots(cnf: ManifoldCNF, density, space: str, directory: Path, tag: str) -> list[Path]:
    from hyperbolic.nn.flows.plot import poincare_density, save_density_panels, sphere_density

    directory.mkdir(parents=True, exist_ok=True)
    cnf.eval()
    if space == "hyperbolic":
        model = poincare_density(cnf.log_prob, resolution=160)
        truth = poincare_density(density.log_prob, resolution=160)
        kind = "poincare"
    else:
        model = sphere_density(cnf.log_prob, 160, 80)
        truth = sphere_density(density.log_prob, 160, 80)
        kind = "sphere"
    cnf.train()
    path = directory / f"flows_{space}_{density.name}_{tag}.png"
    save_density_panels([("true density", truth), (f"model ({tag})", model)], path, kind=kind)
    return [path]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", choices=["hyperbolic", "sphere"], default="hyperbolic")
    parser.add_argument("--dataset", default="5gaussians")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--no-decay", action="store_true", help="no MultiStepLR decay at E/3 and 2E/3")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--trace", choices=["exact", "hutchinson"], default="exact")
    parser.add_argument("--atol", type=float, default=1e-3, help="training solver tolerance (H^2, dopri5)")
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument(
        "--eval-tol", type=float, default=1e-6, help="solver tolerance for NLL and quadrature"
    )
    parser.add_argument("--adjoint", action="store_true", help="backpropagate with the adjoint method")
    parser.add_argument("--holdout", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1; 0 keeps torch's default). The field is tiny: on a loaded "
        "2-core machine two threads made a step 20-30x slower in wall time",
    )
    parser.add_argument("--skip-quadrature", action="store_true")
    parser.add_argument("--plot", type=Path, default=None, help="directory for PNG density plots")
    parser.add_argument("--checkpoint", type=Path, default=None, help="save/resume training state here")
    parser.add_argument("--log-every", type=int, default=25)
    args = parser.parse_args(argv)

    names = HYPERBOLIC if args.space == "hyperbolic" else SPHERE
    if args.dataset not in names:
        parser.error(f"--dataset must be one of {names} for --space {args.space}")
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python benchmarks/flows.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )

    torch.manual_seed(args.seed)
    density = synthetic(args.dataset, args.space)
    generator = torch.Generator().manual_seed(args.seed + 1)
    holdout = density.sample(args.holdout, generator=torch.Generator().manual_seed(10_000 + args.seed))
    cnf = build(args.space, args)
    optimizer = torch.optim.Adam(cnf.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = None
    if not args.no_decay:
        milestones = sorted({max(args.steps // 3, 1), max(2 * args.steps // 3, 1)})
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    log, start, init_norm = TrainingLog(), 0, None
    if args.checkpoint and args.checkpoint.exists():
        state = torch.load(args.checkpoint, weights_only=True)
        cnf.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        log = TrainingLog(**state["log"])
        start, init_norm = state["step"], state["init_norm"]
        print(f"resumed from {args.checkpoint} at step {start}", file=sys.stderr)

    tol = args.eval_tol
    if init_norm is None and not args.skip_quadrature:
        t = time.perf_counter()
        init_norm = normalisation(cnf, args.space, tol)
        print(
            f"normalisation at initialisation: {init_norm:.6f} ({time.perf_counter() - t:.0f} s)",
            file=sys.stderr,
        )
    if args.plot and start == 0:
        plots(cnf, density, args.space, args.plot, "init")

    def callback(step: int, loss: float) -> None:
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            wall, cpu = log.mean_step_seconds()
            print(
                f"step {step + 1:5d}  loss {loss:.4f}  {wall:.3f} wall-s/step  {cpu:.3f} CPU-s/step",
                file=sys.stderr,
            )
            if args.checkpoint:
                args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
                torch.save(
                    {
                        "model": cnf.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler is not None else None,
                        "generator": generator.get_state(),
                        "log": vars(log),
                        "step": step + 1,
                        "init_norm": init_norm,
                    },
                    args.checkpoint,
                )

    if start < args.steps:
        fit(
            cnf,
            lambda n: density.sample(n, generator=generator),
            args.steps,
            batch_size=args.batch_size,
            optimizer=optimizer,
            scheduler=scheduler,
            decay=not args.no_decay,
            start=start,
            callback=callback,
            log=log,
        )

    t = time.perf_counter()
    model_nll = held_out_nll(cnf, holdout, tol)
    eval_seconds = time.perf_counter() - t
    oracle_nll = float(-density.log_prob(holdout).mean())
    base_nll = float(-cnf.base.log_prob(holdout).mean())
    oracle_se = float(density.log_prob(holdout).std()) / math.sqrt(args.holdout)
    final_norm = None if args.skip_quadrature else normalisation(cnf, args.space, tol)
    pictures = plots(cnf, density, args.space, args.plot, f"{args.steps}steps") if args.plot else []
    wall, cpu = log.mean_step_seconds()
    parameters = sum(p.numel() for p in cnf.parameters())
    threads = torch.get_num_threads()

    def fmt(value, digits=4):
        return "n/a" if value is None else f"{value:.{digits}f}"

    solver = (f"dopri5 atol=rtol={args.atol:g}" if args.space == "hyperbolic" else "rk4 h=1/16, 4 charts") + (
        ", adjoint" if args.adjoint else ", backprop through solver"
    )
    print(f"\n### Manifold CNF, {args.space} `{args.dataset}` ({args.steps} steps)\n")
    print("```")
    print(command)
    print("```\n")
    print(
        f"Model: FieldMLP hidden {args.hidden} ({parameters} parameters), {args.trace} trace, {solver}; "
        f"batch {args.batch_size}, Adam lr {args.lr:g}, weight decay {args.weight_decay:g}, "
        f"{'no decay' if args.no_decay else 'x0.1 at E/3, 2E/3'}; {threads} torch threads on "
        f"{os.cpu_count()} CPUs. Held-out: {args.holdout} samples; evaluation "
        + (f"tolerance {tol:g}" if args.space == "hyperbolic" else "with the training solver")
        + ", exact trace.\n"
    )
    print("| quantity | value |")
    print("|---|---|")
    print(f"| held-out NLL, trained model (nats/sample) | **{fmt(model_nll)}** |")
    print(
        f"| held-out NLL, true-density oracle (same samples) | {fmt(oracle_nll)} (± {oracle_se:.3f} sampling s.e.) |"
    )
    print(f"| held-out NLL, base distribution alone | {fmt(base_nll)} |")
    print(f"| model − oracle (KL estimate) | {fmt(model_nll - oracle_nll)} |")
    print(f"| ∫ p dVol at initialisation (quadrature) | {fmt(init_norm, 5)} |")
    print(f"| ∫ p dVol after training (quadrature) | {fmt(final_norm, 5)} |")
    print(f"| training loss, first / last step | {log.losses[0]:.3f} / {log.losses[-1]:.3f} |")
    print(f"| time per training step, ours (wall-s / CPU-s) | {wall:.3f} / {cpu:.3f} |")
    print(
        f"| time per training step, published code (quoted, notes §8) | ≈ {PUBLISHED_CPU_SECONDS_PER_STEP:g} CPU-s |"
    )
    print(f"| evaluating {args.holdout} held-out samples (wall-s) | {eval_seconds:.1f} |")
    if pictures:
        print(f"\nPlots: {', '.join(str(p) for p in pictures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
