"""Layers for hyperbolic GNNs: Fréchet means, Fréchet aggregation, hyperbolic batch norm, HGCN blocks."""

from .aggregation import FrechetAggregation, segment_frechet_mean
from .batchnorm import HyperbolicBatchNorm
from .frechet import FrechetInfo, frechet_mean, frechet_variance
from .hgcn import FermiDiracDecoder, HGCNConv, HypAct, HypLinear

__all__ = [
    "frechet_mean",
    "frechet_variance",
    "FrechetInfo",
    "FrechetAggregation",
    "segment_frechet_mean",
    "HyperbolicBatchNorm",
    "HGCNConv",
    "HypLinear",
    "HypAct",
    "FermiDiracDecoder",
]
