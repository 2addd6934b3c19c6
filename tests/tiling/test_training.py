"""A short RSGD run on the WordNet mammal closure: the L-tiling trains like the float64 Lorentz model.

Ranking loss with negatives (Nickel & Kiela): for an edge (u, v) and sampled nodes w,
``-log(exp(-d(u, v)) / sum over {v} + negatives of exp(-d(u, w)))``. Both models start from the same points
and see the same batches; the points stay within a radius where float64 Lorentz is exact, so the results
must agree within the spread between seeds.
"""

import geoopt
import torch

from embed.wordnet import load_mammals
from hyperbolic import Lorentz
from tiling import LTiling


def _closure():
    """The built-in WordNet 3.0 mammal closure (shipped with the package): (nodes, (child, ancestor) edges)."""
    graph = load_mammals()
    return graph.num_nodes, graph.edges


def _train(model, start, edges, n_nodes, seed, epochs=6, batch=64, negatives=10, lr=0.5):
    generator = torch.Generator().manual_seed(seed)
    table = geoopt.ManifoldParameter(start.clone(), manifold=model)
    optimiser = geoopt.optim.RiemannianSGD([table], lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(edges), generator=generator)
        for chunk in order.split(batch):
            pairs = edges[chunk]
            others = torch.randint(0, n_nodes, (len(chunk), negatives), generator=generator)
            candidates = torch.cat([pairs[:, 1:], others], dim=1)
            d = model.dist(table[pairs[:, :1]], table[candidates])
            loss = torch.nn.functional.cross_entropy(-d, torch.zeros(len(chunk), dtype=torch.long))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return table.detach()


def _mean_rank(model, points, edges, n_nodes):
    """Mean rank of each true ancestor among all non-neighbours of its node (reconstruction)."""
    with torch.no_grad():
        d = model.dist(points.unsqueeze(1), points.unsqueeze(0))
    adjacency = torch.zeros(n_nodes, n_nodes, dtype=torch.bool)
    adjacency[edges[:, 0], edges[:, 1]] = True
    ranks = []
    for u, v in edges.tolist():
        closer = (d[u] < d[u, v]) & ~adjacency[u]
        closer[u] = False
        ranks.append(1 + int(closer.sum()))
    return sum(ranks) / len(ranks), float(points.norm())


def test_rsgd_on_mammals_matches_lorentz():
    n_nodes, edges = _closure()
    assert n_nodes == 1180 and len(edges) == 6540
    lorentz, tiling = Lorentz(2), LTiling(max_radius=30)
    results = {}
    for seed in (0, 1):
        start = lorentz.random(n_nodes, std=1e-3, generator=torch.Generator().manual_seed(100 + seed))
        trained_lorentz = _train(lorentz, start, edges, n_nodes, seed)
        trained_tiling = _train(tiling, tiling.from_lorentz(start), edges, n_nodes, seed)
        results[seed] = (_mean_rank(lorentz, trained_lorentz, edges, n_nodes)[0],
                         _mean_rank(tiling, trained_tiling, edges, n_nodes)[0])
    untrained = _mean_rank(lorentz, lorentz.random(n_nodes, std=1e-3, generator=torch.Generator().manual_seed(7)),
                           edges, n_nodes)[0]
    print(f"mean rank (Lorentz, L-tiling) per seed: {results}; untrained: {untrained:.1f}")
    lorentz_ranks = [results[seed][0] for seed in results]
    tiling_ranks = [results[seed][1] for seed in results]
    # Both models learn (far better than untrained points) ...
    assert max(lorentz_ranks + tiling_ranks) < 0.6 * untrained
    # ... and the L-tiling matches Lorentz on average within the spread that the seed alone causes.
    seed_noise = max(max(lorentz_ranks) - min(lorentz_ranks), max(tiling_ranks) - min(tiling_ranks))
    gap = abs(sum(tiling_ranks) - sum(lorentz_ranks)) / len(results)
    assert gap <= seed_noise, f"L-tiling and Lorentz differ by {gap:.1f} in mean rank, seeds by {seed_noise:.1f}"
    seed_noise = abs(results[0][0] - results[1][0])
    for lorentz_rank, tiling_rank in results.values():
        assert lorentz_rank < 0.5 * untrained and tiling_rank < 0.5 * untrained
        assert abs(tiling_rank - lorentz_rank) <= max(2 * seed_noise, 0.05 * lorentz_rank), results
