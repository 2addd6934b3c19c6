r"""Maximum-likelihood training of a :class:`~hyperbolic.nn.flows.ManifoldCNF` on fresh samples.

The published schedule: each step is one Adam step on a fresh batch (200 samples), weight decay
:math:`10^{-5}`, and the learning rate multiplied by 0.1 at :math:`\lfloor E/3\rfloor` and
:math:`\lfloor 2E/3\rfloor` of :math:`E` steps. The loss is the plain mean negative log-likelihood in nats
per sample (the published printout divides it once more by the batch size).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .cnf import ManifoldCNF

__all__ = ["TrainingLog", "fit", "negative_log_likelihood"]


@dataclass
class TrainingLog:
    """What :func:`fit` measured: per-step losses, wall-clock and process CPU seconds."""

    losses: list[float] = field(default_factory=list)
    wall_seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    def mean_step_seconds(self, skip: int = 1) -> tuple[float, float]:
        """Mean (wall, CPU) seconds per step, skipping the first ``skip`` (warm-up) steps."""
        wall = self.wall_seconds[skip:] or self.wall_seconds
        cpu = self.cpu_seconds[skip:] or self.cpu_seconds
        return sum(wall) / len(wall), sum(cpu) / len(cpu)


def negative_log_likelihood(cnf: ManifoldCNF, x: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """Mean negative log-likelihood (nats per sample) of points ``(m, storage)`` in eval mode, no gradients."""
    was_training = cnf.training
    cnf.eval()
    try:
        with torch.no_grad():
            return -torch.cat([cnf.log_prob(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]).mean()
    finally:
        cnf.train(was_training)


def fit(
    cnf: ManifoldCNF,
    sample: Callable[[int], torch.Tensor],
    steps: int,
    *,
    batch_size: int = 200,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    decay: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    start: int = 0,
    callback: Callable[[int, float], None] | None = None,
    log: TrainingLog | None = None,
) -> TrainingLog:
    """Train ``cnf`` by maximum likelihood on ``steps`` fresh batches ``sample(batch_size)``.

    Parameters
    ----------
    cnf : ManifoldCNF
        The model (put in training mode).
    sample : callable
        ``sample(n) -> (n, storage)`` training points.
    steps : int
        Total number of Adam steps ``E`` (the schedule is laid out over it).
    batch_size, lr, weight_decay : int, float, float
        Published: 200, 1e-3 (README demo 1e-2), 1e-5.
    decay : bool
        Multiply the learning rate by 0.1 at ``E // 3`` and ``2 * E // 3``.
    optimizer, scheduler : optional
        Resume with these (e.g. from a checkpoint); created when omitted.
    start : int
        First step index (when resuming).
    callback : callable, optional
        ``callback(step, loss)`` after every step (logging, checkpointing).
    log : TrainingLog, optional
        Appended to; a new one is created when omitted.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps}, {batch_size}")
    log = TrainingLog() if log is None else log
    if optimizer is None:
        optimizer = torch.optim.Adam(cnf.parameters(), lr=lr, weight_decay=weight_decay)
    if scheduler is None and decay:
        milestones = sorted({max(steps // 3, 1), max(2 * steps // 3, 1)})
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    cnf.train()
    for step in range(start, steps):
        wall, cpu = time.perf_counter(), time.process_time()
        x = sample(batch_size)
        loss = -cnf.log_prob(x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        log.losses.append(float(loss.detach()))
        log.wall_seconds.append(time.perf_counter() - wall)
        log.cpu_seconds.append(time.process_time() - cpu)
        if callback is not None:
            callback(step, log.losses[-1])
    return log
