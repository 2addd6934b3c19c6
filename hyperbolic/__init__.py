"""Hyperbolic geometry: the manifold protocol, float models, MCF half-space, reference, io, layers."""
