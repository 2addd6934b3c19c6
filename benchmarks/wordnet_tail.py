"""Where the mean rank of a closure embedding comes from: per-edge filtered ranks of sampled query rows,
split by the kind of edge and of query node, with the worst rows.

    python benchmarks/wordnet_tail.py CHECKPOINT [--rows 3000] [--seed 1] [--worst 10] [--threads 1]

CHECKPOINT is a training checkpoint of the noun closure (``hyperbolic bench wordnet --checkpoint-dir``).
Each sampled query ``u`` (a node with at least one ancestor) is compared with all nodes by the checkpoint
manifold's ``dist``; the filtered rank of an ancestor ``a`` is ``1 + #{v not an ancestor, v != u :
d(u, v) <= d(u, a)}``, as in the evaluation (ties count as closer). Categories: *direct* edges (``a`` a
parent of ``u``: an ancestor of ``u`` that is no ancestor of another ancestor of ``u``), queries with more
than one parent, and leaves (nodes that are nobody's ancestor). The mean rank over the sampled edges is a
sample estimate of the all-edge figure; the shares say which edges carry it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

import torch  # noqa: E402

from embed.checkpoint import load_checkpoint  # noqa: E402
from embed.cli import load_representations  # noqa: E402
from embed.train import manifold_from_spec  # noqa: E402
from embed.wordnet import noun_closure  # noqa: E402


def edge_ranks(points, manifold, edges, num_nodes, rows, chunk=100):
    """``(u, a, rank, direct)`` for every closure edge of the query rows ``rows``; ``direct``: ``a`` is no
    ancestor of another ancestor of ``u`` (a parent of ``u``)."""
    u_all, a_all = edges[:, 0], edges[:, 1]
    keys = torch.sort(u_all * num_nodes + a_all).values
    order = torch.argsort(u_all)
    u_sorted, a_sorted = u_all[order], a_all[order]
    out = []
    for start in range(0, rows.numel(), chunk):
        block = rows[start:start + chunk]
        d = manifold.dist(points[block].unsqueeze(1), points.unsqueeze(0))
        for j, u in enumerate(block.tolist()):
            lo, hi = torch.searchsorted(u_sorted, torch.tensor([u, u + 1])).tolist()
            ancestors = a_sorted[lo:hi]
            excluded = torch.zeros(num_nodes, dtype=torch.bool)
            excluded[ancestors] = True
            excluded[u] = True
            others = torch.sort(d[j][~excluded]).values
            ranks = 1 + torch.searchsorted(others, d[j][ancestors], right=True)
            probe = ancestors.unsqueeze(1) * num_nodes + ancestors.unsqueeze(0)  # (b, a): a above b?
            above = keys[torch.searchsorted(keys, probe).clamp_max(keys.numel() - 1)] == probe
            direct = ~above.any(dim=0)
            out.append(torch.stack([torch.full_like(ancestors, u), ancestors, ranks, direct.long()], dim=1))
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worst", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_representations()
    state = load_checkpoint(args.checkpoint)
    manifold = manifold_from_spec(state["spec"])
    graph = noun_closure()
    n, edges = graph.num_nodes, graph.edges
    points = state["points"]

    depth = torch.bincount(edges[:, 0], minlength=n)  # number of ancestors
    leaf = torch.bincount(edges[:, 1], minlength=n) == 0

    queries = torch.nonzero(depth > 0).squeeze(1)
    generator = torch.Generator().manual_seed(args.seed)
    rows = queries[torch.randperm(queries.numel(), generator=generator)[:args.rows]]
    records = edge_ranks(points, manifold, edges, n, rows)
    u, a, rank, direct = records.unbind(1)
    direct = direct.bool()
    parents_of = torch.zeros(n, dtype=torch.int64).index_add_(0, u[direct], torch.ones_like(u[direct]))
    multi = parents_of[u] > 1
    is_leaf = leaf[u]

    total = rank.sum().item()
    print(f"checkpoint {args.checkpoint}: epoch {state['epoch']}, {rows.numel()} query rows (seed {args.seed}), "
          f"{len(records)} edges, mean rank {rank.double().mean():.3f}")
    print("| edges | share of edges | share of the rank sum | contribution to the mean rank | mean rank |")
    print("|---|---|---|---|---|")
    for name, mask in (("direct (u -> parent)", direct), ("query with several parents", multi),
                       ("query a leaf", is_leaf), ("several parents, direct", multi & direct),
                       ("single-parent leaf", ~multi & is_leaf), ("single-parent inner node", ~multi & ~is_leaf)):
        part = rank[mask]
        print(f"| {name} | {100 * mask.double().mean():.1f} % | {100 * part.sum().item() / total:.1f} % | "
              f"{part.sum().item() / len(rank):.3f} | {part.double().mean():.1f} |")
    excess = torch.zeros(n, dtype=torch.int64).index_add_(0, u, rank - 1)
    worst = torch.argsort(excess, descending=True)[:args.worst]
    print("worst rows (excess rank sum, parents, leaf, ancestors):")
    for w in worst.tolist():
        parents = [graph.names[p] for p in a[(u == w) & direct].tolist()]
        print(f"  {graph.names[w]}: {excess[w].item()}, parents {', '.join(parents)}, "
              f"{'leaf' if leaf[w] else 'inner'}, {depth[w].item()}")


if __name__ == "__main__":
    main()
