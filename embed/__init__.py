"""Embedding workflows: graph input (``embed.graphs``), WordNet datasets (``embed.wordnet``)."""
