"""Vector storage behind one port (:mod:`lookalike.index.storage.port`) with two adapters:
:mod:`lookalike.index.storage.edge` (qdrant-edge-py, embedded) and :mod:`lookalike.index.storage.qdrant`
(qdrant-client: a Qdrant server or Cloud). The adapters are imported where they are chosen
(:func:`lookalike.index.connection.open_engine`), so importing this package loads neither engine."""

from lookalike.index.storage.port import (
    CollectionNotFoundError,
    CollectionSettings,
    EngineLockedError,
    EngineUnreachableError,
    FacetCount,
    Hit,
    Not,
    PayloadFields,
    PayloadUpdate,
    Point,
    Record,
    ScrollPage,
    SearchOptions,
    StorageError,
    StoragePort,
    UnsupportedError,
    Where,
    WithPayload,
)

__all__ = [
    "CollectionNotFoundError", "CollectionSettings", "EngineLockedError", "EngineUnreachableError", "FacetCount",
    "Hit", "Not", "PayloadFields", "PayloadUpdate", "Point", "Record", "ScrollPage", "SearchOptions", "StorageError",
    "StoragePort", "UnsupportedError", "Where", "WithPayload",
]
