"""The offline phase: ``python -m indexing`` turns celebrity photos into a Qdrant collection."""
