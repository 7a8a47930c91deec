"""The storage port: what the store (:mod:`lookalike.index.store`) and its read side (:mod:`lookalike.index.query`)
need from a vector engine, in our own terms.

Two adapters implement it: :class:`lookalike.index.storage.qdrant.QdrantEngine` (qdrant-client: a Qdrant
server or Cloud; its in-process mode stands in for a server in the tests) and
:class:`lookalike.index.storage.edge.EdgeEngine` (qdrant-edge-py, embedded). Both return the dataclasses
below and raise the errors below; both pass ``tests/test_storage_contract.py``.

An argument an adapter cannot honour raises :class:`UnsupportedError`; nothing is silently ignored.
Vectors are lists or arrays of float32; scores are the engine's similarity (cosine: -1..1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from lookalike.fingerprint import EMBEDDING_SIZE

Distance = Literal["cosine", "dot", "euclid"]
FieldType = Literal["keyword", "integer", "bool"]
PointId = str


@dataclass(frozen=True)
class Not:
    """A value of a :data:`Where` that the field must not hold: ``{"well_known": Not(0)}`` keeps the
    points whose ``well_known`` is anything but 0, those without the field included."""

    value: str | int | bool


Where = Mapping[str, str | int | bool | Not]
"""Filter: payload path (``"metadata.gender"``) -> required value, or :class:`Not` a value; every entry
must hold."""


class StorageError(Exception):
    """Base of the storage port's errors."""


class CollectionNotFoundError(StorageError):
    """The collection (or alias) does not exist."""


class UnsupportedError(StorageError, ValueError):
    """An argument this engine cannot honour (it is refused rather than ignored)."""


class EngineUnreachableError(StorageError):
    """The engine cannot be reached (server down, network, timeout)."""


class EngineLockedError(StorageError):
    """The embedded engine's folder is held by another process."""


@dataclass(frozen=True)
class PayloadFields:
    """A payload selector: only ``include`` keys, or every key but ``exclude`` (exactly one is given)."""

    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.include is None) == (self.exclude is None):
            raise UnsupportedError("PayloadFields takes exactly one of include= and exclude=")


WithPayload = bool | PayloadFields
"""True: the whole payload; False: none; :class:`PayloadFields`: some keys."""


QUERY_HNSW_EF = 384
"""The HNSW beam width of every query unless told otherwise: the default of :class:`SearchOptions`, which
both adapters pass to Qdrant (raised to the query's hit limit when smaller). The smallest of the values
tried (128, 256, 384, 512) that kept the people a visitor sees at recall@5 >= 0.99 with 1M faces in the edge
preset (``bench/RESULTS.md``, "Person-level recall@5 at scale")."""


QUERY_OVERSAMPLING = 2.0
"""With quantized vectors, every query fetches this many times its limit in candidates to rescore."""


@dataclass(frozen=True)
class SearchOptions:
    """Query-time search parameters; the product queries with the defaults.

    Attributes:
        hnsw_ef: HNSW beam width (raised to the query's limit when smaller); :data:`QUERY_HNSW_EF`.
            ``bench/search_scale.py`` sweeps it.
        rescore: with quantized vectors, re-rank the candidates by the float vectors (exact scores);
            off only to show that the quantized copies are searched.
    """

    hnsw_ef: int = QUERY_HNSW_EF
    rescore: bool = True


@dataclass(frozen=True)
class CollectionSettings:
    """How a collection is created: vectors, HNSW, quantization, storage placement, payload indexes.

    The presets are the ones ``bench/`` measured (README "Which store at which size"):
    :meth:`for_edge` for the embedded engine, :meth:`for_server` for a Qdrant server or Cloud.

    Attributes:
        size / distance: the vectors (FaceNet: 512, cosine).
        hnsw_m / hnsw_ef_construct: HNSW graph degree and build beam.
        quantization: ``"int8"`` scalar quantization (vectors 4x smaller, queries rescored) or None.
        quantile / quantized_always_ram: int8 calibration quantile; keep the int8 copies in RAM.
        vectors_on_disk / payload_on_disk: float vectors / payloads memory-mapped from disk.
        indexing_threshold_kb: vectors (KB) a segment holds before it gets an HNSW index; None: engine default.
        full_scan_threshold_kb: below this many KB of vectors a search scans instead of walking the graph;
            None: engine default (10,000 KB, about 5,000 faces).
        payload_indexes: payload path -> index type, created with the collection.
    """

    size: int = EMBEDDING_SIZE
    distance: Distance = "cosine"
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    quantization: Literal["int8"] | None = None
    quantile: float = 0.99
    quantized_always_ram: bool = True
    vectors_on_disk: bool = False
    payload_on_disk: bool = True
    indexing_threshold_kb: int | None = None
    full_scan_threshold_kb: int | None = None
    payload_indexes: Mapping[str, FieldType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.quantization not in (None, "int8"):
            raise UnsupportedError(f"unknown quantization '{self.quantization}' (use int8 or none)")
        if self.distance not in ("cosine", "dot", "euclid"):
            raise UnsupportedError(f"unknown distance '{self.distance}'")
        for path, kind in self.payload_indexes.items():
            if kind not in ("keyword", "integer", "bool"):
                raise UnsupportedError(f"unknown payload index type '{kind}' for {path}")

    @classmethod
    def for_edge(cls, quantization: Literal["int8"] | None = None,
                 payload_indexes: Mapping[str, FieldType] | None = None) -> CollectionSettings:
        """The embedded engine: HNSW m=16/ef_construct=100, a segment is indexed from 1,000 KB (~500 faces)."""
        return cls(quantization=quantization, indexing_threshold_kb=1000, full_scan_threshold_kb=10_000,
                   payload_indexes=dict(payload_indexes or {}))

    @classmethod
    def for_server(cls, quantization: Literal["int8"] | None = "int8",
                   payload_indexes: Mapping[str, FieldType] | None = None) -> CollectionSettings:
        """Qdrant server or Cloud, for millions of faces (``bench/advice.md``): HNSW m=16, ef_construct=128,
        int8 kept in RAM (rescored), float vectors and payloads on disk."""
        return cls(hnsw_ef_construct=128, quantization=quantization, quantized_always_ram=True,
                   vectors_on_disk=True, payload_on_disk=True, payload_indexes=dict(payload_indexes or {}))


@dataclass(frozen=True)
class Point:
    """A point to write: id (uuid string), vector, JSON payload."""

    id: PointId
    vector: Sequence[float] = field(repr=False)
    payload: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Record:
    """A stored point as read back: payload as selected ({} when not asked), vector when asked (else None)."""

    id: PointId
    payload: dict[str, Any] = field(default_factory=dict, repr=False)
    vector: list[float] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Hit:
    """A point found by a query: its score (cosine: -1..1) and selected payload."""

    id: PointId
    score: float
    payload: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class FacetCount:
    """One distinct value of a payload field and how many points hold it."""

    value: str | int | bool
    count: int


@dataclass(frozen=True)
class PayloadUpdate:
    """Merge ``payload`` into the points with ``ids``, or into those matching ``where`` (exactly one).

    With ``key`` the payload is merged into that nested object (``"metadata"``), so the object's keys
    that ``payload`` lacks are kept; without it into the top level.
    """

    payload: dict[str, Any]
    ids: tuple[PointId, ...] | None = None
    where: Where | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if (self.ids is None) == (self.where is None):
            raise UnsupportedError("PayloadUpdate takes exactly one of ids= and where=")


class ScrollPage(NamedTuple):
    """One page of a scroll: records in id order and the offset of the next page (None at the end)."""

    records: list[Record]
    next_offset: PointId | None


@runtime_checkable
class StoragePort(Protocol):
    """The operations the store and its read side need. Collection arguments accept a collection name or an alias
    (reads and writes go to the aliased collection). Missing collections raise CollectionNotFoundError."""

    def create_collection(self, name: str, settings: CollectionSettings, metadata: Mapping[str, Any]) -> None:
        """A new empty collection; ``metadata`` (JSON) is kept with it. Raises StorageError if the name is taken."""

    def delete_collection(self, name: str) -> None:
        """Delete a collection and its points (nothing happens when it does not exist)."""

    def collections(self) -> list[str]:
        """Names of every collection (not aliases), sorted."""

    def collection_metadata(self, name: str) -> dict[str, Any]:
        """The metadata given at creation ({} when none)."""

    def aliases(self) -> dict[str, str]:
        """Alias -> collection."""

    def switch_aliases(self, targets: Mapping[str, str | None]) -> None:
        """Point each alias at its collection (None: remove the alias), all in one atomic step: readers see
        every old target or every new one.

        Raises CollectionNotFoundError when a target does not exist, StorageError when an alias is the name
        of a collection.
        """

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Insert or replace points by id; they are searchable when this returns."""

    def update_payloads(self, collection: str, updates: Sequence[PayloadUpdate]) -> None:
        """Apply payload merges in order (one request on a server)."""

    def retrieve(self, collection: str, ids: Sequence[PointId], with_payload: WithPayload = True,
                 with_vectors: bool = False) -> list[Record]:
        """The existing points among ``ids`` (missing ids are left out; order not guaranteed)."""

    def count(self, collection: str) -> int:
        """Exact number of points."""

    def scroll(self, collection: str, limit: int = 256, offset: PointId | None = None, with_payload: WithPayload = True,
               with_vectors: bool = False) -> ScrollPage:
        """A page of at most ``limit`` points in id order, starting at ``offset``."""

    def query(self, collection: str, vector: Sequence[float], limit: int, where: Where | None = None,
              with_payload: WithPayload = True, search: SearchOptions = SearchOptions()) -> list[Hit]:
        """The ``limit`` nearest points (best first) among those matching ``where``."""

    def query_groups(self, collection: str, vector: Sequence[float], group_by: str, groups: int,
                     where: Where | None = None, with_payload: WithPayload = True,
                     search: SearchOptions = SearchOptions()) -> list[Hit]:
        """The best point of each of the ``groups`` nearest distinct values of the keyword field ``group_by``,
        best first; points without the field are left out."""

    def facet(self, collection: str, key: str, limit: int) -> list[FacetCount]:
        """Distinct values of an indexed keyword/integer/bool field with their counts, most frequent first.

        Raises UnsupportedError when the field has no payload index.
        """

    def optimize(self, collection: str, timeout_s: float | None = None) -> None:
        """Finish indexing what was written (blocking) so that queries use the HNSW index and quantization;
        an engine that waits for a server gives up after ``timeout_s`` (None: its default)."""

    def close(self) -> None:
        """Release the engine (the embedded folder's lock); idempotent."""
