"""``python -m evaluation``: how well the embeddings tell people apart, on your own photo folders.

A tool beside the product, not part of it: it reads photos through the core's one face pipeline
(:mod:`lookalike`) and writes a report; neither the app nor the indexer imports it.
"""
