"""Layers: Fréchet means, Fréchet aggregation, hyperbolic batch norm, HGCN blocks, random Laplacian features
(HyLa), manifold ODEs and continuous normalizing flows."""

from ..poisson import log_poisson
from .aggregation import FrechetAggregation, segment_frechet_mean
from .batchnorm import HyperbolicBatchNorm
from .flows import ManifoldCNF, ManifoldODE, WrappedNormal
from .frechet import FrechetInfo, frechet_mean, frechet_variance
from .hgcn import FermiDiracDecoder, HGCNConv, HypAct, HypLinear
from .hyla import RandomFourierFeatures, RandomLaplacianFeatures
from .hyla_model import HyLaSGC, train_node_classifier

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
    "RandomLaplacianFeatures",
    "RandomFourierFeatures",
    "log_poisson",
    "HyLaSGC",
    "train_node_classifier",
    "ManifoldODE",
    "ManifoldCNF",
    "WrappedNormal",
]
