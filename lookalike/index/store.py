"""The face store: the write and admin side of the face collections behind an alias, over the storage port.

The app reads through the alias (``celebrities`` by default), which points at one version
``<alias>_v<n>``; the offline phase makes, switches and drops the versions (:mod:`indexing.versions`).
Each collection records the :class:`ModelFingerprint` of its vectors in its metadata; a query with
other weights is refused. A version's per-person mean faces live in ``<version>_centroids``, read
through the alias ``<alias>_centroids`` that moves with the main one.

The engine is a :class:`~lookalike.index.storage.port.StoragePort`: the embedded edge engine
(``qdrant-edge-py``) or a Qdrant server or Cloud (qdrant-client), as a
:class:`~lookalike.index.connection.StoreConfig` says. The queries by person and the filters' values are
the read side, :class:`lookalike.index.query.FaceIndex`, which reads through this store's engine and its
:meth:`FaceStore.guard`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lookalike.batching import batched
from lookalike.errors import ModelMismatchError, StoreUnavailableError
from lookalike.fingerprint import ModelFingerprint
from lookalike.index.connection import StoreConfig, open_engine
from lookalike.index.payload import METADATA, PERSON_ID, FacePayload, clean_metadata, payload_indexes
from lookalike.index.storage.port import (
    CollectionNotFoundError,
    CollectionSettings,
    EngineUnreachableError,
    FieldType,
    PayloadUpdate,
    Point,
    Record,
    StoragePort,
    WithPayload,
)

_INDEX_TYPES: dict[type, FieldType] = {str: "keyword", int: "integer", bool: "bool"}


def centroids_collection(collection: str) -> str:
    """The per-person collection beside a face collection version (and the alias beside the main alias)."""
    return f"{collection}_centroids"


@dataclass(frozen=True)
class FacePoint:
    """One indexed face to write: its point id (:func:`lookalike.index.payload.point_id`), unit vector (512
    float32) and payload."""

    id: str
    vector: np.ndarray = field(repr=False)
    payload: FacePayload


class FaceStore:
    """Versioned face collections behind an alias, over one storage engine.

    Args:
        engine: the storage port (:meth:`open` opens the one a :class:`StoreConfig` names).
        alias: the alias readers use (``Settings.collection``).
        where: the store in words, for messages (never with a secret).
        serialize: run engine calls one at a time (embedded engines are not safe across threads).
        collection_defaults: how new collections are created (:meth:`collection_settings`).

    Attributes:
        engine: the storage port. alias: as above. where: as above.
        embedded: True when the engine runs in this process (its calls are serialised).
    """

    def __init__(self, engine: StoragePort, alias: str = "celebrities", *, where: str = "Qdrant",
                 serialize: bool = False, collection_defaults: CollectionSettings | None = None):
        self.engine = engine
        self.alias = alias
        self.where = where
        self.embedded = serialize
        self.collection_defaults = collection_defaults or CollectionSettings.for_edge()
        self._lock: AbstractContextManager[Any] = threading.RLock() if serialize else nullcontext()

    @classmethod
    def open(cls, config: StoreConfig) -> FaceStore:
        """The store ``config`` names: the embedded edge store (calls serialised) or a Qdrant server.

        Raises:
            StoreUnavailableError: the embedded folder is locked by another process or unusable.
        """
        defaults = CollectionSettings.for_edge() if config.embedded else CollectionSettings.for_server()
        return cls(open_engine(config), config.alias, where=config.where, serialize=config.embedded,
                   collection_defaults=defaults)

    def close(self) -> None:
        with self.guard():
            self.engine.close()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Wrap every engine call, here and in :class:`~lookalike.index.query.FaceIndex`: embedded calls run one
        at a time, and an unreachable engine becomes StoreUnavailableError."""
        with self._lock:
            try:
                yield
            except EngineUnreachableError:
                raise StoreUnavailableError(
                    "The index cannot be reached right now; please try again in a few minutes.",
                    detail=f"{self.where} cannot be reached; check QDRANT_URL and that Qdrant is running.",
                ) from None

    # -- collections -----------------------------------------------------------------------------

    @property
    def centroids_alias(self) -> str:
        """The alias of the current version's per-person collection."""
        return centroids_collection(self.alias)

    def current_collection(self) -> str | None:
        """The versioned collection the alias points at, or None before the first index."""
        with self.guard():
            return self.engine.aliases().get(self.alias)

    def collections(self) -> list[str]:
        """Every collection of the engine (versions, centroids and others), sorted."""
        with self.guard():
            return self.engine.collections()

    def collection_settings(self, quantization: str | None = None) -> CollectionSettings:
        """This store's settings for a new face collection, with the payload indexes of the schema.

        ``quantization``: None keeps the store's default (none on the edge engine, int8 on a server, as
        ``bench/`` recommends), ``"int8"`` or ``"none"`` choose.

        Raises:
            ValueError: an unknown quantization.
        """
        if quantization not in (None, "none", "int8"):
            raise ValueError(f"unknown quantization '{quantization}' (use int8 or none)")
        chosen = self.collection_defaults.quantization if quantization is None else (
            None if quantization == "none" else "int8")
        indexes = {path: _INDEX_TYPES[kind] for path, kind in payload_indexes().items()}
        return dataclasses.replace(self.collection_defaults, quantization=chosen,
                                   payload_indexes={**indexes, **self.collection_defaults.payload_indexes})

    def create_collection(self, name: str, fingerprint: ModelFingerprint, settings: CollectionSettings) -> None:
        """A new empty collection ``name`` that records ``fingerprint`` (versions: :mod:`indexing.versions`)."""
        with self.guard():
            self.engine.create_collection(name, settings, {"fingerprint": fingerprint.as_dict()})

    def delete_collection(self, name: str) -> None:
        """Delete a collection and its points (nothing happens when it does not exist)."""
        with self.guard():
            self.engine.delete_collection(name)

    def set_aliases(self, targets: Mapping[str, str | None]) -> None:
        """Point each alias at its collection (None: remove it), all in one atomic step."""
        with self.guard():
            self.engine.switch_aliases(targets)

    def stored_fingerprint(self, collection: str | None = None) -> dict[str, str] | None:
        """The fingerprint a collection records, or None when it records none."""
        with self.guard():
            return self.engine.collection_metadata(collection or self.alias).get("fingerprint")

    def check_fingerprint(self, fingerprint: ModelFingerprint, collection: str | None = None) -> None:
        """Raise ModelMismatchError unless the collection was built by ``fingerprint``."""
        stored = self.stored_fingerprint(collection)
        if stored is not None and stored != fingerprint.as_dict():
            raise ModelMismatchError(
                "The index is being rebuilt for the app's face model; please come back later.",
                detail="The index was built with other FaceNet weights or pipeline "
                f"({stored.get('weights_sha256', '?')[:12]}, "
                f"pipeline v{stored.get('pipeline', '?')}) than the running ones ({fingerprint.describe()}); "
                "rebuild it with `python -m indexing --recreate`."
            )

    # -- points ----------------------------------------------------------------------------------

    def upsert(self, points: Sequence[FacePoint], collection: str | None = None) -> None:
        """Write points (insert or replace by id); they are searchable when this returns."""
        if not points:
            return
        rows = [Point(p.id, np.asarray(p.vector, np.float32).tolist(), p.payload.as_dict()) for p in points]
        with self.guard():
            self.engine.upsert(collection or self.alias, rows)

    def payloads(self, ids: Sequence[str], collection: str | None = None) -> dict[str, dict[str, Any]]:
        """The stored JSON payloads (:class:`FacePayload` ``.as_dict()`` shape) of those of ``ids`` that exist."""
        if not ids:
            return {}
        with self.guard():
            records = self.engine.retrieve(collection or self.alias, list(ids))
        return {r.id: r.payload for r in records}

    def existing(self, ids: Sequence[str], collection: str | None = None) -> set[str]:
        """Those of ``ids`` that are points of the collection (ids only: no payload is read)."""
        if not ids:
            return set()
        with self.guard():
            return {r.id for r in self.engine.retrieve(collection or self.alias, list(ids), with_payload=False)}

    def records(self, ids: Sequence[str], collection: str | None = None) -> dict[str, Record]:
        """The stored points among ``ids``, with their payloads and vectors (a version copying another's)."""
        if not ids:
            return {}
        with self.guard():
            return {r.id: r for r in self.engine.retrieve(collection or self.alias, list(ids), with_vectors=True)}

    def points(self, collection: str | None = None, with_payload: WithPayload = True,
               with_vectors: bool = False, page: int = 1024) -> Iterator[Record]:
        """Every point of the collection, page by page (one engine call per ``page`` points)."""
        offset = None
        while True:
            with self.guard():
                records, offset = self.engine.scroll(collection or self.alias, limit=page, offset=offset,
                                                     with_payload=with_payload, with_vectors=with_vectors)
            yield from records
            if offset is None:
                return

    def ids(self, collection: str | None = None) -> set[str]:
        """Every point id of the collection (for tests and reports)."""
        return {r.id for r in self.points(collection, with_payload=False)}

    def optimize(self, collection: str | None = None, timeout_s: float | None = None) -> None:
        """Finish indexing what was written: the edge engine builds its HNSW index (and int8 copies) now;
        a server is waited for while it indexes, up to ``timeout_s`` (None: the engine's default)."""
        with self.guard():
            self.engine.optimize(collection or self.alias, timeout_s)

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any], collection: str | None = None) -> None:
        """Merge ``payload`` keys into existing points (their vectors stay)."""
        if not ids:
            return
        with self.guard():
            self.engine.update_payloads(collection or self.alias, [PayloadUpdate(dict(payload), ids=tuple(ids))])

    def set_person_payloads(self, people: Mapping[str, Mapping[str, Any]], key: str | None = None,
                            collection: str | None = None, chunk: int = 256) -> None:
        """Merge each person's payload into every point of that person (matched by ``person_id``).

        With ``key`` the payload is merged into that nested object (``metadata``) instead of the top
        level, so fields the points already have and the payload lacks are kept. Metadata is cleaned
        as every stored metadata is (:func:`lookalike.index.payload.clean_metadata`: strings cut to 2,000).
        """
        updates = []
        for person, payload in people.items():
            values = clean_metadata(payload) if key == METADATA else dict(payload)
            if values:
                updates.append(PayloadUpdate(values, where={PERSON_ID: person}, key=key))
        for part in batched(updates, chunk):
            with self.guard():
                self.engine.update_payloads(collection or self.alias, part)

    def count(self, collection: str | None = None) -> int:
        """Points in the collection (0 when it does not exist)."""
        try:
            with self.guard():
                return self.engine.count(collection or self.alias)
        except CollectionNotFoundError:
            return 0
