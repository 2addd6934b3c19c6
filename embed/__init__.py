"""Graphs in, embeddings out.

Graphs: :mod:`embed.graphs` (the graph type), :mod:`embed.edgelist` (files), :mod:`embed.bfs` (spanning trees),
:mod:`embed.wordnet`, :mod:`embed.gnn_data` and :mod:`embed.hyla_data` (datasets).
Embedding: :mod:`embed.combinatorial` (Sarkar's construction and its higher-dimensional form, with
:mod:`embed.construction` and :mod:`embed.codes`), :mod:`embed.hmds` (h-MDS), :mod:`embed.train`
(Riemannian optimisation, with :mod:`embed.losses`, :mod:`embed.sampling`, :mod:`embed.nearest`,
:mod:`embed.kernels` and :mod:`embed.checkpoint`).
Evaluation: :mod:`embed.metrics` (with :mod:`embed.pair_distances`), :mod:`embed.bench_wordnet`,
:mod:`embed.plot`. The ``hyperbolic`` command: :mod:`embed.cli` (with :mod:`embed.train_cli`).
"""
