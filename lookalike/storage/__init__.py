"""Vector storage behind one port (:mod:`lookalike.storage.port`) with two adapters:
:mod:`lookalike.storage.edge` (qdrant-edge-py, embedded) and :mod:`lookalike.storage.qdrant`
(qdrant-client: a Qdrant server or Cloud). The adapters are imported where they are chosen
(:meth:`lookalike.store.FaceStore.open`), so importing this package loads neither engine."""

from lookalike.storage.port import (
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
