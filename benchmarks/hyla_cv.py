"""Choose one HyLa-SGC hyperparameter by K-fold cross-validation on the training nodes alone.

    python benchmarks/hyla_cv.py --dataset airport --airport-split hgcn --method hyla-mean-feature
                                 --grid weight_decay=0,1e-4,1e-3,1e-2 [--set lr_classifier=0.01 order=1]
                                 [--warmup 10] [--folds 5] [--seed 0] [--rng published] [--threads 1]

The validation set of a split holds a few hundred nodes, so one node is ~0.2 points of accuracy and settings
that differ by less tie or flip with the seed. Here the training nodes are shuffled (generator seeded with
``--seed``) and cut into K folds; for each value of the grid and each fold, a model is trained on the other
folds and scored on the held-out one (validation and test nodes are never used). The pooled held-out
accuracy over all training nodes decides: the highest wins, ties go to the value listed first. Prints one
markdown row per value.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

import torch  # noqa: E402
from hyla import DEFAULT_DATA, config_value  # noqa: E402  (benchmarks/hyla.py, beside this script)

from embed.hyla_data import load_node_dataset  # noqa: E402
from hyperbolic import PoincareBall  # noqa: E402
from hyperbolic.nn.hyla import RandomLaplacianFeatures  # noqa: E402
from hyperbolic.nn.hyla_model import (  # noqa: E402
    HyLaSGC,
    normalized_adjacency,
    preset,
    sgc_propagate,
    train_node_classifier,
)

METHODS = ("hyla", "hyla-centred", "hyla-mean-feature")


def held_out_accuracy(data, propagated, config, method, seed, rng, warmup, folds):
    """Pooled accuracy over the training nodes, each predicted by the model trained without its fold, and
    the unstable runs (training loss above the first epoch's after epoch 10)."""
    correct = unstable = 0
    for fold in folds:
        keep = ~torch.isin(data.train_idx, fold)
        features = RandomLaplacianFeatures(PoincareBall(config.he_dim), config.he_dim, config.hyla_dim,
                                           lambda_scale=config.lambda_scale, seed=seed)
        model = HyLaSGC(propagated.shape[1], data.num_classes, features, seed=seed, rng=rng,
                        center=method == "hyla-centred", mean_feature=method == "hyla-mean-feature")
        result = train_node_classifier(
            model, propagated, data.labels, data.train_idx[keep], fold, fold, epochs=config.epochs,
            lr_embedding=config.lr_embedding, lr_classifier=config.lr_classifier,
            weight_decay=config.weight_decay, classifier_optimizer=config.classifier_optimizer, warmup_epochs=warmup,
        )
        correct += round(result.test_acc * len(fold))
        unstable += bool(result.unstable_epochs)
    return correct, unstable


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="airport")
    parser.add_argument("--airport-split", default="hgcn", choices=["disjoint", "hgcn"])
    parser.add_argument("--method", default="hyla-mean-feature", choices=METHODS)
    parser.add_argument("--grid", required=True, metavar="FIELD=V1,V2,...")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE", dest="overrides")
    parser.add_argument("--warmup", type=int, default=0, metavar="W")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rng", choices=["separate", "published"], default="published")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        base = {name: config_value(name, value) for name, _, value in (item.partition("=") for item in args.overrides)}
        field, _, values = args.grid.partition("=")
        grid = [config_value(field, value) for value in values.split(",")]
    except ValueError as error:
        parser.error(str(error))
    if args.folds < 2:
        parser.error(f"--folds must be at least 2, got {args.folds}")

    options = {"split": args.airport_split} if args.dataset == "airport" else {}
    data = load_node_dataset(args.dataset, args.data, **options)
    if args.folds > len(data.train_idx):
        parser.error(f"--folds {args.folds}: {args.dataset} has only {len(data.train_idx)} training nodes")
    shuffled = data.train_idx[torch.randperm(len(data.train_idx), generator=torch.Generator().manual_seed(args.seed))]
    folds = list(torch.tensor_split(shuffled, args.folds))
    print(f"Command: `python benchmarks/hyla_cv.py {' '.join(sys.argv[1:])}`\n")
    print(f"| {field} | held-out accuracy % ({len(shuffled)} training nodes, {args.folds} folds) | unstable runs "
          "| CPU s |")
    print("|---|---|---|---|")
    best = None
    for value in grid:
        config = preset(args.dataset, 16, **{**base, field: value})
        propagated = sgc_propagate(normalized_adjacency(data.edge_index, data.num_nodes),
                                   data.features if config.use_features else None, config.order)
        started = time.process_time()
        correct, unstable = held_out_accuracy(data, propagated, config, args.method, args.seed, args.rng,
                                              args.warmup, folds)
        print(f"| {value:g} | {100 * correct / len(shuffled):.2f} ({correct}) | {unstable}/{args.folds} | "
              f"{time.process_time() - started:.0f} |", flush=True)
        if best is None or correct > best[1]:
            best = (value, correct)
    print(f"\nChosen: {field}={best[0]:g}")


if __name__ == "__main__":
    main()
