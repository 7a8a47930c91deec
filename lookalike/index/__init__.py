"""The index: face points and their payload, people's identities, the store that queries them by person,
and the storage port with its two engines (qdrant-edge-py in-process, qdrant-client for a server)."""
