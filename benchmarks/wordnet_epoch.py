"""Cost of one WordNet noun epoch and of one sampled reconstruction evaluation, in process CPU seconds.

Trains ``--steps`` optimizer steps of the nouns recipe (after-burn-in settings: uniform negatives) from a
seeded start (or from the points of ``--start``, a training checkpoint of the same representation; with
``--relocate``, after relocating the trapped leaves and with ``--hard-negatives`` as the recipe's epoch-60 stage
does), times them with ``time.process_time`` and extrapolates to a full epoch of
ceil(743,241 / batch) steps; the negative sampler is also timed alone on the same batches. Then evaluates
``--eval-rows`` sampled rows (mean rank and MAP) on the points of ``--points`` (a training checkpoint) or
on the trained points.

    python benchmarks/wordnet_epoch.py --threads 1
    python benchmarks/wordnet_epoch.py --threads 1 --points runs/nouns-poincare-10.ckpt --dtype float32
    python benchmarks/wordnet_epoch.py --manifold binary-tiling --start CKPT --relocate --steps 20 --eval-rows 0
"""

import argparse
import json
import math
import os
import sys
import time

import torch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifold", default="poincare")
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--steps", type=int, default=200, help="timed optimizer steps (default 200)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--negatives", type=int, default=None)
    parser.add_argument("--optimizer", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--eval-rows", type=int, default=1000, help="sampled evaluation rows (0: skip)")
    parser.add_argument("--points", default=None, help="checkpoint whose points are evaluated")
    parser.add_argument("--start", default=None, help="checkpoint whose points training starts from")
    parser.add_argument("--relocate", action="store_true",
                        help="relocate the trapped leaves first; hard negatives and max_step 1 (the epoch-60 stage)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from embed.bench_wordnet import load, recipe
    from embed.cli import load_representations
    from embed.train import Trainer, evaluate_embedding, make_manifold

    load_representations()
    graph = load("nouns")
    stage = {"hard_negatives": 10, "max_step": 1.0, "relocate_leaves": True} if args.relocate else {}
    config = recipe("nouns", burnin_epochs=0, eval_every=0, checkpoint_every=0, checkpoint_seconds=None,
                    batch_size=args.batch_size, negatives=args.negatives, optimizer=args.optimizer,
                    dtype=args.dtype, device=args.device, **stage)
    manifold = make_manifold(args.manifold, args.dim)
    init = None
    if args.start:
        from embed.checkpoint import load_checkpoint

        init = load_checkpoint(args.start)["points"]
    trainer = Trainer(graph, manifold, config, init=init, progress=False)
    relocated = trainer.relocate_leaves() if args.relocate else None
    trainer.fit(max_steps=args.warmup)
    synchronize = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    started, wall = time.process_time(), time.perf_counter()
    trainer.fit(max_steps=args.steps)
    synchronize()
    step_cpu = (time.process_time() - started) / args.steps
    step_wall = (time.perf_counter() - wall) / args.steps

    task, generator = trainer.task, torch.Generator().manual_seed(1)
    order = torch.randperm(task.size, generator=generator)
    started = time.process_time()
    for b in range(args.steps):
        u = task.edges[order[b * config.batch_size:(b + 1) * config.batch_size], 0]
        task.sampler.sample(u, config.negatives, generator)
    sample_cpu = (time.process_time() - started) / args.steps

    steps_per_epoch = math.ceil(task.size / config.batch_size)
    row = {"manifold": args.manifold, "dim": args.dim, "dtype": config.dtype, "device": config.device,
           "optimizer": config.optimizer, "batch_size": config.batch_size, "negatives": config.negatives,
           "threads": torch.get_num_threads(), "steps": args.steps, "step_cpu_ms": 1000 * step_cpu,
           "step_wall_ms": 1000 * step_wall, "sampler_cpu_ms": 1000 * sample_cpu,
           "epoch_cpu_s": step_cpu * steps_per_epoch, "epoch_wall_s": step_wall * steps_per_epoch,
           "start": args.start, "relocated": relocated, "load": os.getloadavg()[0]}
    if args.eval_rows:
        points = trainer.points
        if args.points:
            from embed.checkpoint import load_checkpoint

            points = load_checkpoint(args.points)["points"].to(device=trainer.device, dtype=trainer.dtype)
        started, wall = time.process_time(), time.perf_counter()
        metrics = evaluate_embedding(points, manifold, graph, rows=args.eval_rows, seed=0)
        synchronize()
        row.update(eval_rows=args.eval_rows, eval_cpu_s=time.process_time() - started,
                   eval_wall_s=time.perf_counter() - wall, eval_map=metrics["map"], eval_mean_rank=metrics["mean_rank"])
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
