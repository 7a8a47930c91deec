"""The storage port over qdrant-client: a Qdrant server or Qdrant Cloud (``QDRANT_URL``).

:meth:`QdrantEngine.in_process` opens qdrant-client's local mode instead (``":memory:"`` or a folder): not a
product engine (an exact scan in Python, slow to query and to reopen: README "Which store at which size"),
but the stand-in that runs this adapter's code where no server answers. Local mode keeps no quantized
vectors and no payload indexes, so an int8 collection is refused there and payload indexes are created on
a server only. Grouping is Qdrant's ``query_points_groups``: one request per query, payloads included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from lookalike.errors import caused_by
from lookalike.index.storage.port import (
    QUERY_OVERSAMPLING,
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
    PointId,
    Record,
    ScrollPage,
    SearchOptions,
    StorageError,
    UnsupportedError,
    Where,
    WithPayload,
)

_DISTANCES = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT, "euclid": models.Distance.EUCLID}
_FIELD_TYPES = {"keyword": models.PayloadSchemaType.KEYWORD, "integer": models.PayloadSchemaType.INTEGER,
                "bool": models.PayloadSchemaType.BOOL}

log = logging.getLogger(__name__)

OPTIMIZE_WAIT_S = 600.0
"""How long :meth:`QdrantEngine.optimize` waits for a collection to read green by default (seconds)."""

OPTIMIZE_LOG_S = 30.0
"""How often that wait logs how far the server's optimizers are (seconds)."""


class QdrantEngine:
    """The storage port over one ``QdrantClient``; build it with :meth:`server` or :meth:`in_process`."""

    def __init__(self, client: QdrantClient, local: bool):
        self.client = client
        self.local = local

    @classmethod
    def server(cls, url: str, api_key: str | None, timeout_s: float) -> QdrantEngine:
        """A Qdrant server or Cloud at ``url`` (nothing is sent until the first call)."""
        # qdrant-client hands the timeout to httpx and gRPC, which take seconds as a float
        client = QdrantClient(url=url, api_key=api_key, timeout=timeout_s,  # type: ignore[arg-type]
                              check_compatibility=False)
        return cls(client, local=False)

    @classmethod
    def in_process(cls, path: str = ":memory:") -> QdrantEngine:
        """qdrant-client's local mode in memory or in a folder (for the tests and benchmarks, not the product).

        Raises:
            EngineLockedError: another process holds the folder.
        """
        try:
            client = QdrantClient(location=":memory:") if path == ":memory:" else QdrantClient(path=path)
        except RuntimeError as exc:
            raise EngineLockedError(f"Storage folder {path} is already accessed by another process.") from exc
        return cls(client, local=True)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """qdrant-client's exceptions as the port's."""
        try:
            yield
        except StorageError:
            raise
        except UnexpectedResponse as exc:
            if exc.status_code == 404:
                raise CollectionNotFoundError(str(exc)) from None
            raise StorageError(f"Qdrant answered {exc.status_code}: {exc.reason_phrase}") from exc
        except ValueError as exc:  # local mode: "Collection x not found"
            if "not found" in str(exc):
                raise CollectionNotFoundError(str(exc)) from None
            raise
        except Exception as exc:
            if _is_connection_error(exc):
                raise EngineUnreachableError(type(exc).__name__) from None
            raise

    # -- collections and aliases -----------------------------------------------------------------

    def create_collection(self, name: str, settings: CollectionSettings, metadata: Mapping[str, Any]) -> None:
        if settings.quantization is not None and self.local:
            raise UnsupportedError("qdrant-client's local mode keeps no quantized vectors; use the edge engine "
                                   "or a server for int8")
        quantization = None
        if settings.quantization == "int8":
            quantization = models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8, quantile=settings.quantile, always_ram=settings.quantized_always_ram))
        optimizers = None
        if settings.indexing_threshold_kb is not None:
            optimizers = models.OptimizersConfigDiff(indexing_threshold=settings.indexing_threshold_kb)
        with self._errors():
            if self.client.collection_exists(name) or name in self.aliases():
                raise StorageError(f"Collection {name} already exists")
            self.client.create_collection(
                name,
                vectors_config=models.VectorParams(size=settings.size, distance=_DISTANCES[settings.distance],
                                                   on_disk=settings.vectors_on_disk),
                hnsw_config=models.HnswConfigDiff(m=settings.hnsw_m, ef_construct=settings.hnsw_ef_construct,
                                                  full_scan_threshold=settings.full_scan_threshold_kb),
                optimizers_config=optimizers,
                quantization_config=quantization,
                on_disk_payload=settings.payload_on_disk,
                metadata=dict(metadata),
            )
            if not self.local:  # local mode records no payload index (and warns that they have no effect)
                for path, kind in settings.payload_indexes.items():
                    self.client.create_payload_index(name, path, _FIELD_TYPES[kind], wait=True)

    def delete_collection(self, name: str) -> None:
        with self._errors():
            self.client.delete_collection(name)

    def collections(self) -> list[str]:
        with self._errors():
            return sorted(c.name for c in self.client.get_collections().collections)

    def collection_metadata(self, name: str) -> dict[str, Any]:
        with self._errors():
            return dict(self.client.get_collection(name).config.metadata or {})

    def aliases(self) -> dict[str, str]:
        with self._errors():
            return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def switch_aliases(self, targets: Mapping[str, str | None]) -> None:
        with self._errors():
            collections = set(self.collections())
            current = self.aliases()
            operations: list[models.DeleteAliasOperation | models.CreateAliasOperation] = []
            for alias, collection in targets.items():
                if alias in collections:
                    raise StorageError(f"'{alias}' is the name of a collection; it cannot be an alias")
                if collection is not None and collection not in collections:
                    raise CollectionNotFoundError(f"Collection {collection} not found")
                if alias in current:
                    operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
                if collection is not None:
                    operations.append(models.CreateAliasOperation(
                        create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)))
            if operations:
                self.client.update_collection_aliases(change_aliases_operations=operations)  # one atomic request

    # -- points ----------------------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        if not points:
            return
        structs = [models.PointStruct(id=str(p.id), vector=[float(v) for v in p.vector], payload=dict(p.payload))
                   for p in points]
        with self._errors():
            self.client.upsert(collection, points=structs, wait=True)

    def update_payloads(self, collection: str, updates: Sequence[PayloadUpdate]) -> None:
        if not updates:
            return
        operations = [models.SetPayloadOperation(set_payload=models.SetPayload(
            payload=dict(u.payload), key=u.key,
            points=[str(i) for i in u.ids] if u.ids is not None else None,
            filter=_filter(u.where) if u.where is not None else None)) for u in updates]
        with self._errors():
            self.client.batch_update_points(collection, operations, wait=True)

    def retrieve(self, collection: str, ids: Sequence[PointId], with_payload: WithPayload = True,
                 with_vectors: bool = False) -> list[Record]:
        if not ids:
            return []
        with self._errors():
            records = self.client.retrieve(collection, ids=[str(i) for i in ids], with_payload=_selector(with_payload),
                                           with_vectors=with_vectors)
        return [_record(r) for r in records]

    def count(self, collection: str) -> int:
        with self._errors():
            return int(self.client.count(collection, exact=True).count)

    def scroll(self, collection: str, limit: int = 256, offset: PointId | None = None, with_payload: WithPayload = True,
               with_vectors: bool = False) -> ScrollPage:
        with self._errors():
            records, next_offset = self.client.scroll(collection, limit=limit, offset=offset,
                                                      with_payload=_selector(with_payload), with_vectors=with_vectors)
        return ScrollPage([_record(r) for r in records], None if next_offset is None else str(next_offset))

    def query(self, collection: str, vector: Sequence[float], limit: int, where: Where | None = None,
              with_payload: WithPayload = True, search: SearchOptions = SearchOptions()) -> list[Hit]:
        with self._errors():
            points = self.client.query_points(
                collection, query=[float(v) for v in vector], limit=limit,
                query_filter=_filter(where) if where else None, with_payload=_selector(with_payload),
                search_params=self._params(search, limit)).points
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

    def query_groups(self, collection: str, vector: Sequence[float], group_by: str, groups: int,
                     where: Where | None = None, with_payload: WithPayload = True,
                     search: SearchOptions = SearchOptions()) -> list[Hit]:
        with self._errors():
            result = self.client.query_points_groups(
                collection, group_by=group_by, query=[float(v) for v in vector], limit=groups, group_size=1,
                query_filter=_filter(where) if where else None, with_payload=_selector(with_payload),
                search_params=self._params(search, groups))
        return [Hit(str(g.hits[0].id), float(g.hits[0].score), dict(g.hits[0].payload or {}))
                for g in result.groups if g.hits]

    def facet(self, collection: str, key: str, limit: int) -> list[FacetCount]:
        with self._errors():
            if not self.local and key not in (self.client.get_collection(collection).payload_schema or {}):
                raise UnsupportedError(f"'{key}' has no payload index in {collection}; facets need one")
            response = self.client.facet(collection, key, limit=limit, exact=True)
        return [FacetCount(hit.value, int(hit.count)) for hit in response.hits]

    def optimize(self, collection: str, timeout_s: float | None = None) -> None:
        """Wait until the server's optimizers have indexed what was written, up to ``timeout_s`` (default
        :data:`OPTIMIZE_WAIT_S`), logging how far they are every :data:`OPTIMIZE_LOG_S`.

        The optimizers start a moment after a write, so the collection must read green twice, 0.5 s apart.
        """
        timeout_s = OPTIMIZE_WAIT_S if timeout_s is None else timeout_s
        started = time.monotonic()
        next_log = started + OPTIMIZE_LOG_S
        green = 0
        with self._errors():
            while green < 2:
                info = self.client.get_collection(collection)
                if info.status == models.CollectionStatus.GREEN:
                    green += 1
                else:
                    green = 0
                    now = time.monotonic()
                    if now - started > timeout_s:
                        raise StorageError(f"{collection} is still being indexed after {timeout_s:.0f} s")
                    if now >= next_log:
                        log.info("waiting for %s to be indexed: %s, %s of %s vectors indexed, %.0f of %.0f s",
                                 collection, info.status.value, info.indexed_vectors_count, info.points_count,
                                 now - started, timeout_s)
                        next_log = now + OPTIMIZE_LOG_S
                if green < 2 and not self.local:
                    time.sleep(0.5)

    def close(self) -> None:
        self.client.close()

    def _params(self, search: SearchOptions, limit: int) -> models.SearchParams | None:
        if self.local:  # an exact scan: honours every option, and warns when given any
            return None
        return models.SearchParams(hnsw_ef=max(search.hnsw_ef, limit),
                                   quantization=models.QuantizationSearchParams(rescore=search.rescore,
                                                                                oversampling=QUERY_OVERSAMPLING))


def _filter(where: Where) -> models.Filter:
    """Every ``path == value`` of ``where`` in one ``must`` filter, every ``path: Not(value)`` in its
    ``must_not`` (Qdrant's own semantics: a point without the field is not excluded)."""
    must: list[models.Condition] = []
    must_not: list[models.Condition] = []
    for key, value in where.items():
        into, value = (must_not, value.value) if isinstance(value, Not) else (must, value)
        if not isinstance(value, (str, int, bool)):
            raise UnsupportedError(f"filter on {key}: only str, int and bool values can be matched")
        into.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
    return models.Filter(must=must or None, must_not=must_not or None)


def _selector(with_payload: WithPayload) -> bool | models.PayloadSelectorInclude | models.PayloadSelectorExclude:
    if isinstance(with_payload, bool):
        return with_payload
    if isinstance(with_payload, PayloadFields):
        if with_payload.include is not None:
            return models.PayloadSelectorInclude(include=list(with_payload.include))
        return models.PayloadSelectorExclude(exclude=list(with_payload.exclude or ()))
    raise UnsupportedError(f"with_payload must be a bool or PayloadFields, not {type(with_payload).__name__}")


def _record(record: models.Record) -> Record:
    vector = record.vector
    if isinstance(vector, dict):
        raise UnsupportedError("named vectors are not part of this schema")
    # one unnamed vector is a list of floats (the schema has no multivectors)
    floats = [float(v) for v in vector] if vector is not None else None  # type: ignore[arg-type]
    return Record(str(record.id), dict(record.payload or {}), floats)


def _is_connection_error(exc: BaseException) -> bool:
    """True for what qdrant-client raises when the server is down or unreachable (REST or gRPC)."""
    import grpc
    import httpx

    return caused_by(exc, (httpx.TransportError, ResponseHandlingException, ConnectionError, TimeoutError,
                           grpc.RpcError))

