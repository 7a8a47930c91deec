"""The embedded adapter of the storage port, over Qdrant's own engine in-process (``qdrant-edge-py``): an
HNSW index that reopens at once, unlike qdrant-client's local mode (README "Which store at which size").

Qdrant Edge has shards, not collections or aliases: each collection is a shard folder
``<path>/collections/<name>/shard`` with ``collection.json`` (its metadata) beside it, and the aliases
live in ``<path>/aliases.json``, replaced atomically so that a switch is one step. One process holds the
folder at a time (an exclusive lock on ``<path>/.lock``), so names and aliases are kept in memory and the
query path never touches the file system. Qdrant Edge has no groups API: :meth:`EdgeEngine.query_groups`
keeps each group's best point over one nearest-neighbour query, widened 4x while its hits fill the limit
and hold too few groups.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import portalocker
import qdrant_edge as qe

from lookalike.atomic import write_atomic
from lookalike.index.storage.port import (
    QUERY_OVERSAMPLING,
    CollectionNotFoundError,
    CollectionSettings,
    EngineLockedError,
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

_DISTANCES = {"cosine": qe.Distance.Cosine, "dot": qe.Distance.Dot, "euclid": qe.Distance.Euclid}
_FIELD_TYPES = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer,
                "bool": qe.PayloadSchemaType.Bool}
_DEFAULT_FULL_SCAN_KB = 10_000


class EdgeEngine:
    """The storage port over ``qdrant_edge.EdgeShard`` folders under ``path``.

    Raises:
        EngineLockedError: another process holds the folder.
        OSError: the folder cannot be created or written.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        (self.path / "collections").mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.path / ".lock", "a+")
        try:
            portalocker.lock(self._lock_file, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
        except portalocker.exceptions.LockException:
            self._lock_file.close()
            raise EngineLockedError(f"Storage folder {self.path} is already accessed by another process.") from None
        self._shards: dict[str, qe.EdgeShard] = {}
        file = self.path / "aliases.json"
        self._aliases: dict[str, str] = json.loads(file.read_text()) if file.exists() else {}
        self._collections = {p.name for p in (self.path / "collections").iterdir()
                             if p.is_dir() and (p / "collection.json").exists()}
        self._metadata: dict[str, dict[str, Any]] = {}
        self.closed = False

    # -- collections and aliases -----------------------------------------------------------------

    def _resolve(self, name: str) -> str:
        if name in self._collections:
            return name
        target = self._aliases.get(name)
        if target is None or target not in self._collections:
            raise CollectionNotFoundError(f"Collection {name} not found")
        return target

    def _shard(self, name: str) -> qe.EdgeShard:
        real = self._resolve(name)
        if real not in self._shards:
            self._shards[real] = qe.EdgeShard.load(str(self.path / "collections" / real / "shard"))
        return self._shards[real]

    def create_collection(self, name: str, settings: CollectionSettings, metadata: Mapping[str, Any]) -> None:
        if name in self._collections or name in self._aliases:
            raise StorageError(f"Collection {name} already exists")
        folder = self.path / "collections" / name
        shutil.rmtree(folder, ignore_errors=True)  # a half-created folder of a crashed run
        quantization = None
        if settings.quantization == "int8":
            quantization = qe.ScalarQuantizationConfig(
                type=qe.ScalarType.Int8, quantile=settings.quantile,
                memory=qe.Memory.Cached if settings.quantized_always_ram else qe.Memory.Cold)
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=settings.size, distance=_DISTANCES[settings.distance],
                                        memory=qe.Memory.Cold if settings.vectors_on_disk else qe.Memory.Cached),
            hnsw_config=qe.HnswIndexConfig(
                m=settings.hnsw_m, ef_construct=settings.hnsw_ef_construct,
                full_scan_threshold=settings.full_scan_threshold_kb or _DEFAULT_FULL_SCAN_KB),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=settings.indexing_threshold_kb),
            quantization_config=quantization,
            payload_memory=qe.Memory.Cold if settings.payload_on_disk else qe.Memory.Cached,
        )
        shard = qe.EdgeShard.create(str(folder / "shard"), config)
        for path, kind in settings.payload_indexes.items():
            shard.update(qe.UpdateOperation.create_field_index(path, _FIELD_TYPES[kind]))
        self._shards[name] = shard
        _write_json(folder / "collection.json", {"metadata": dict(metadata)})
        self._collections.add(name)
        self._metadata[name] = dict(metadata)

    def delete_collection(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        shutil.rmtree(self.path / "collections" / name, ignore_errors=True)
        self._collections.discard(name)
        self._metadata.pop(name, None)
        if name in self._aliases.values():  # as on a server: a collection's aliases go with it
            aliases = {a: c for a, c in self._aliases.items() if c != name}
            _write_json(self.path / "aliases.json", aliases)
            self._aliases = aliases

    def collections(self) -> list[str]:
        return sorted(self._collections)

    def collection_metadata(self, name: str) -> dict[str, Any]:
        real = self._resolve(name)
        if real not in self._metadata:
            stored = json.loads((self.path / "collections" / real / "collection.json").read_text())
            self._metadata[real] = stored.get("metadata") or {}
        return dict(self._metadata[real])

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def switch_aliases(self, targets: Mapping[str, str | None]) -> None:
        aliases = dict(self._aliases)
        for alias, collection in targets.items():
            if alias in self._collections:
                raise StorageError(f"'{alias}' is the name of a collection; it cannot be an alias")
            if collection is None:
                aliases.pop(alias, None)
            elif collection not in self._collections:
                raise CollectionNotFoundError(f"Collection {collection} not found")
            else:
                aliases[alias] = collection
        _write_json(self.path / "aliases.json", aliases)
        self._aliases = aliases

    # -- points ----------------------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        if not points:
            return
        edge_points = [qe.Point(id=str(p.id), vector=[float(v) for v in p.vector], payload=dict(p.payload))
                       for p in points]
        self._shard(collection).update(qe.UpdateOperation.upsert_points(edge_points))

    def update_payloads(self, collection: str, updates: Sequence[PayloadUpdate]) -> None:
        shard = self._shard(collection)
        for update in updates:
            if update.where is not None:
                shard.update(qe.UpdateOperation.set_payload_by_filter(_filter(update.where), dict(update.payload),
                                                                      update.key))
            else:
                shard.update(qe.UpdateOperation.set_payload([str(i) for i in update.ids or ()], dict(update.payload),
                                                            update.key))

    def retrieve(self, collection: str, ids: Sequence[PointId], with_payload: WithPayload = True,
                 with_vectors: bool = False) -> list[Record]:
        if not ids:
            return []
        records = self._shard(collection).retrieve([str(i) for i in ids], _selector(with_payload), with_vectors)
        return [_record(r) for r in records]

    def count(self, collection: str) -> int:
        return int(self._shard(collection).count(qe.CountRequest(exact=True)))

    def scroll(self, collection: str, limit: int = 256, offset: PointId | None = None, with_payload: WithPayload = True,
               with_vectors: bool = False) -> ScrollPage:
        records, next_offset = self._shard(collection).scroll(qe.ScrollRequest(
            offset=offset, limit=limit, with_payload=_selector(with_payload), with_vector=with_vectors))
        return ScrollPage([_record(r) for r in records], None if next_offset is None else str(next_offset))

    def query(self, collection: str, vector: Sequence[float], limit: int, where: Where | None = None,
              with_payload: WithPayload = True, search: SearchOptions = SearchOptions()) -> list[Hit]:
        hits = self._shard(collection).query(qe.QueryRequest(
            limit=limit, query=qe.Query.Nearest([float(v) for v in vector]), with_payload=_selector(with_payload),
            filter=_filter(where) if where else None, params=_params(search, limit)))
        return [Hit(str(h.id), float(h.score), dict(h.payload or {})) for h in hits]

    def query_groups(self, collection: str, vector: Sequence[float], group_by: str, groups: int,
                     where: Where | None = None, with_payload: WithPayload = True,
                     search: SearchOptions = SearchOptions()) -> list[Hit]:
        limit = max(32, 8 * groups)
        while True:
            hits = self.query(collection, vector, limit, where, PayloadFields(include=(group_by,)), search)
            best: dict[Any, Hit] = {}
            for hit in hits:  # sorted by score: the first hit of each group is its best
                value = hit.payload.get(group_by)
                if value is not None:
                    best.setdefault(value, hit)
            if len(best) >= groups or len(hits) < limit:
                break
            limit *= 4
        chosen = list(best.values())[:groups]
        if with_payload is False:
            return [Hit(h.id, h.score) for h in chosen]
        payloads = {r.id: r.payload for r in self.retrieve(collection, [h.id for h in chosen], with_payload)}
        return [Hit(h.id, h.score, payloads.get(h.id, {})) for h in chosen]

    def facet(self, collection: str, key: str, limit: int) -> list[FacetCount]:
        shard = self._shard(collection)
        if key not in shard.info().payload_schema:
            raise UnsupportedError(f"'{key}' has no payload index in {collection}; facets need one")
        response = shard.facet(qe.FacetRequest(key=key, limit=limit, exact=True))
        return [FacetCount(hit.value, int(hit.count)) for hit in response.hits]

    def optimize(self, collection: str, timeout_s: float | None = None) -> None:
        """Build the HNSW index (and int8 copies) of segments past the indexing threshold; blocks until done
        (in this process: there is nothing to wait for, so ``timeout_s`` does not apply)."""
        self._shard(collection).optimize()

    def indexed_vectors(self, collection: str) -> int:
        """Vectors that an HNSW index (and quantization, when configured) covers; for tests and reports."""
        return int(self._shard(collection).info().indexed_vectors_count)

    def close(self) -> None:
        if self.closed:
            return
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()
        self._lock_file.close()
        self.closed = True


def _filter(where: Where) -> qe.Filter:
    """Every ``path == value`` of ``where`` in one ``must`` filter, every ``path: Not(value)`` in its
    ``must_not`` (a point without the field is not excluded, as on a server)."""
    must: list[Any] = []
    must_not: list[Any] = []
    for key, value in where.items():
        into, value = (must_not, value.value) if isinstance(value, Not) else (must, value)
        if isinstance(value, bool):  # qdrant-edge matches a bool as an integer, so it would never match
            raise UnsupportedError(f"filter on {key}: bool values cannot be matched here; store 0 or 1")
        if not isinstance(value, (str, int)):
            raise UnsupportedError(f"filter on {key}: only str and int values can be matched")
        into.append(qe.FieldCondition(key=key, match=qe.MatchValue(value)))
    return qe.Filter(must=must or None, must_not=must_not or None)


def _selector(with_payload: WithPayload) -> Any:
    if isinstance(with_payload, bool):
        return with_payload
    if isinstance(with_payload, PayloadFields):
        if with_payload.include is not None:
            return qe.PayloadSelector.Include(list(with_payload.include))
        return qe.PayloadSelector.Exclude(list(with_payload.exclude or ()))
    raise UnsupportedError(f"with_payload must be a bool or PayloadFields, not {type(with_payload).__name__}")


def _params(search: SearchOptions, limit: int) -> qe.SearchParams:
    return qe.SearchParams(hnsw_ef=max(search.hnsw_ef, limit),
                           quantization=qe.QuantizationSearchParams(rescore=search.rescore,
                                                                    oversampling=QUERY_OVERSAMPLING))


def _record(record: Any) -> Record:
    vector = record.vector
    if isinstance(vector, dict):  # the unnamed vector comes back as {"": [...]}
        vector = next(iter(vector.values()), None)
    return Record(str(record.id), dict(record.payload or {}), list(vector) if vector is not None else None)


def _write_json(path: Path, value: Any) -> None:
    """Write JSON whole (:func:`lookalike.atomic.write_atomic`)."""
    write_atomic(path, json.dumps(value).encode())
