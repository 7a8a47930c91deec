"""``python -m evaluation``: how well the embeddings tell people apart, on your own photo folders.

A tool beside the product, not part of it: it reads photo folders as the indexer does and embeds them
through the core's one face pipeline, then writes a report; neither the app nor the indexer imports it.
"""
