"""The index: face points and their payload, people's identities, where the store lives (its config), the
store that writes the faces, the read side that queries them by person, and the storage port with its two
engines (qdrant-edge-py in-process, qdrant-client for a server)."""
