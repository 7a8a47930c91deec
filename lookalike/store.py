"""The Qdrant store of face vectors, one interface for Qdrant Cloud, a server and the embedded store.

Layout: versioned collections ``<alias>_v1``, ``<alias>_v2``, ... with the app reading through the
alias (``celebrities`` by default). A rebuild fills a new version and moves the alias in one call,
so readers never see a half-built index. Each collection records the :class:`ModelFingerprint` of
the vectors in its metadata; a query with other weights is refused.

Grouping by person happens here, over a plain ``query_points`` (widened until enough people are
found), because qdrant-client's embedded mode runs ``query_points_groups`` in Python at ~13x the
cost of a plain query; the result is the same on a server.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from qdrant_client import QdrantClient, models

from lookalike.errors import EmptyIndexError, ModelMismatchError, StoreUnavailableError
from lookalike.fingerprint import EMBEDDING_SIZE, ModelFingerprint
from lookalike.settings import Settings

log = logging.getLogger(__name__)

POINT_NAMESPACE = uuid.UUID("6f1c3c52-6b3e-4b8e-9a53-2f7f1f6d9a10")
PERSON_FIELD = "person_id"


def person_filter(person: str) -> models.Filter:
    """The points of one person."""
    return models.Filter(must=[models.FieldCondition(key=PERSON_FIELD, match=models.MatchValue(value=person))])


# TEMP (web): replaced by the storage port at merge
def _where_filter(where: Mapping[str, Any] | None) -> models.Filter | None:
    """Equality conditions on payload fields (all must hold), or None without any."""
    if not where:
        return None
    return models.Filter(must=[models.FieldCondition(key=k, match=models.MatchValue(value=v))
                               for k, v in where.items()])


def centroids_collection(collection: str) -> str:
    """The per-person collection beside a face collection version."""
    return f"{collection}_centroids"


def point_id(content_sha256: str) -> str:
    """The point id of a photo: uuid5 of its content hash, so one photo is one point wherever it came from."""
    return str(uuid.uuid5(POINT_NAMESPACE, content_sha256))


@dataclass(frozen=True)
class FacePoint:
    """One indexed face: its vector and payload.

    The payload always holds ``name`` (display), ``person_id`` (grouping key) and
    ``content_sha256``; indexing adds ``thumbnail`` (base64 JPEG), ``sources`` and metadata.
    """

    id: str
    vector: np.ndarray
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredMatch:
    """One person's best point for a query: ``score`` is the cosine similarity (-1..1)."""

    id: str
    score: float
    payload: dict[str, Any] = field(repr=False)


class FaceStore:
    """Versioned face collections behind an alias, over one ``QdrantClient``."""

    def __init__(self, client: QdrantClient | Any, alias: str = "celebrities", embedded: bool = False,
                 where: str = "Qdrant"):
        self.client = client
        self.alias = alias
        self.embedded = embedded
        self.where = where
        # qdrant-client's local mode scans exactly and warns on every query that gets search params.
        self._search_params = None if embedded and isinstance(client, QdrantClient) else _SEARCH
        # qdrant-client's embedded mode is not safe for concurrent calls from several threads.
        self._lock = threading.RLock() if embedded else None

    @classmethod
    def open(cls, settings: Settings) -> "FaceStore":
        """Connect as the settings say: ``QDRANT_URL`` (+ key) or the embedded store under ``data_dir``.

        Raises:
            StoreUnavailableError: the embedded folder is locked by another process or unusable.
        """
        if settings.embedded:
            path = settings.embedded_path
            try:
                path.mkdir(parents=True, exist_ok=True)
                if settings.embedded_engine == "edge":
                    from lookalike.edge_client import EdgeClient

                    client = EdgeClient(path)
                else:
                    client = QdrantClient(path=str(path))
            except RuntimeError as exc:
                raise StoreUnavailableError(
                    f"The embedded Qdrant store at {path} is in use by another process (stop the app "
                    "before indexing, or set QDRANT_URL to use a Qdrant server)."
                ) from exc
            except OSError as exc:
                raise StoreUnavailableError(
                    f"The embedded Qdrant store at {path} cannot be opened ({exc.strerror or 'not writable'}); "
                    "set LOOKALIKE_DATA_DIR to a writable folder."
                ) from None
            return cls(client, settings.collection, embedded=True, where=f"the embedded store at {path}")
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        client = QdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=settings.qdrant_timeout_s,
                              check_compatibility=False)
        return cls(client, settings.collection, embedded=False, where=f"Qdrant at {_safe_url(settings.qdrant_url)}")

    def close(self) -> None:
        with self._guard():
            self.client.close()

    # -- calls -----------------------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise embedded calls and turn connection failures into StoreUnavailableError."""
        lock = self._lock or _NULL_LOCK
        with lock:
            try:
                yield
            except (EmptyIndexError, ModelMismatchError, StoreUnavailableError):
                raise
            except Exception as exc:
                if _is_connection_error(exc):
                    raise StoreUnavailableError(
                        f"{self.where} cannot be reached; check QDRANT_URL and that Qdrant is running."
                    ) from None
                raise

    # -- collections -----------------------------------------------------------------------------

    def current_collection(self) -> str | None:
        """The versioned collection the alias points at, or None before the first index."""
        with self._guard():
            for alias in self.client.get_aliases().aliases:
                if alias.alias_name == self.alias:
                    return alias.collection_name
            return None

    def versions(self) -> list[str]:
        """Names of this alias's versioned collections, oldest first."""
        pattern = re.compile(rf"^{re.escape(self.alias)}_v(\d+)$")
        with self._guard():
            names = [c.name for c in self.client.get_collections().collections]
        found = sorted((int(m.group(1)), n) for n in names if (m := pattern.match(n)))
        return [name for _, name in found]

    def create_version(self, fingerprint: ModelFingerprint, quantization: str | None = None) -> str:
        """A new empty collection ``<alias>_v<n+1>`` (512-d cosine, person index, fingerprint metadata).

        ``quantization="int8"`` adds Qdrant scalar quantization (int8 copies of the vectors kept in
        RAM, 4x smaller; queries rescore with the float vectors, so scores stay exact).
        """
        existing = self.versions()
        number = int(existing[-1].rsplit("_v", 1)[1]) + 1 if existing else 1
        name = f"{self.alias}_v{number}"
        self._create(name, fingerprint, quantization)
        return name

    def _create(self, name: str, fingerprint: ModelFingerprint, quantization: str | None) -> None:
        if quantization not in (None, "none", "int8"):
            raise ValueError(f"unknown quantization '{quantization}' (use int8 or none)")
        config = None
        if quantization == "int8":
            config = models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8, quantile=0.99, always_ram=True))
        with self._guard():
            self.client.create_collection(
                name,
                vectors_config=models.VectorParams(size=EMBEDDING_SIZE, distance=models.Distance.COSINE),
                quantization_config=config,
                metadata={"fingerprint": fingerprint.as_dict()},
            )
            if not self.embedded:  # the embedded store ignores payload indexes
                self.client.create_payload_index(name, PERSON_FIELD, models.PayloadSchemaType.KEYWORD)

    def point_alias_to(self, collection: str) -> None:
        """Move the alias to ``collection`` in one atomic call."""
        operations: list[Any] = []
        if self.current_collection() is not None:
            operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias)))
        operations.append(models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=collection, alias_name=self.alias)))
        with self._guard():
            self.client.update_collection_aliases(change_aliases_operations=operations)

    def ensure_collection(self, fingerprint: ModelFingerprint, quantization: str | None = None) -> str:
        """The collection behind the alias, created as ``_v1`` (with the alias) when there is none.

        A version left without the alias by a first run killed between creating it and pointing
        the alias at it is adopted, so the next run resumes it instead of starting ``_v2``.

        Raises:
            ModelMismatchError: the existing collection was built with other weights.
        """
        current = self.current_collection()
        if current is None:
            existing = self.versions()
            current = existing[-1] if existing else self.create_version(fingerprint, quantization)
            self.point_alias_to(current)
        self.check_fingerprint(fingerprint, current)
        return current

    def drop_old_versions(self, keep: int = 1) -> list[str]:
        """Delete all but the newest ``keep`` versions that the alias does not point at."""
        current = self.current_collection()
        stale = [n for n in self.versions()[:-keep] if n != current] if keep else []
        with self._guard():
            for name in stale:
                self.client.delete_collection(name)
                if self.client.collection_exists(centroids_collection(name)):
                    self.client.delete_collection(centroids_collection(name))
        return stale

    def build_centroids(self, collection: str, fingerprint: ModelFingerprint) -> int:
        """(Re)build ``<collection>_centroids``: one point per person, the normalised mean of their faces.

        Each person's point carries the payload of their most central photo plus ``photos`` (their
        count). Cost: one pass over every vector and a collection of one point per person; gain: a
        query scans people instead of faces and needs no grouping (scores are to the mean face).
        Returns the number of people.
        """
        sums: dict[str, np.ndarray] = {}
        members: dict[str, list[tuple[str, np.ndarray]]] = {}
        offset = None
        while True:
            with self._guard():
                records, offset = self.client.scroll(collection, limit=1024, offset=offset,
                                                     with_payload=[PERSON_FIELD], with_vectors=True)
            for record in records:
                person = (record.payload or {}).get(PERSON_FIELD)
                vector = np.asarray(record.vector, np.float32)
                if person:
                    sums[person] = sums.get(person, 0) + vector
                    members.setdefault(person, []).append((str(record.id), vector))
            if offset is None:
                break
        name = centroids_collection(collection)
        with self._guard():
            if self.client.collection_exists(name):
                self.client.delete_collection(name)
        self._create(name, fingerprint, None)
        for start in range(0, len(sums), 256):
            chunk = list(sums)[start:start + 256]
            centres = {p: sums[p] / max(float(np.linalg.norm(sums[p])), 1e-12) for p in chunk}
            central = {p: max(members[p], key=lambda m: float(m[1] @ centres[p]))[0] for p in chunk}
            payloads = self.payloads(list(central.values()), collection)
            self.upsert([FacePoint(str(uuid.uuid5(POINT_NAMESPACE, "person:" + p)), centres[p],
                                   {**payloads.get(central[p], {}), "photos": len(members[p])}) for p in chunk], name)
        self.optimize(name)
        return len(sums)

    def stored_fingerprint(self, collection: str | None = None) -> dict[str, str] | None:
        """The fingerprint a collection records, or None when it records none."""
        with self._guard():
            info = self.client.get_collection(collection or self.alias)
        metadata = info.config.metadata or {}
        return metadata.get("fingerprint")

    def check_fingerprint(self, fingerprint: ModelFingerprint, collection: str | None = None) -> None:
        """Raise ModelMismatchError unless the collection was built by ``fingerprint``."""
        stored = self.stored_fingerprint(collection)
        if stored is not None and stored != fingerprint.as_dict():
            raise ModelMismatchError(
                f"The index was built with other FaceNet weights or pipeline ({stored.get('weights_sha256', '?')[:12]}, "
                f"pipeline v{stored.get('pipeline', '?')}) than the running ones ({fingerprint.describe()}); "
                "rebuild it with `python -m indexing --recreate`."
            )

    # -- points ----------------------------------------------------------------------------------

    def upsert(self, points: Sequence[FacePoint], collection: str | None = None) -> None:
        """Write points (insert or replace by id) and wait until they are searchable."""
        if not points:
            return
        structs = [models.PointStruct(id=p.id, vector=np.asarray(p.vector, np.float32).tolist(), payload=p.payload)
                   for p in points]
        with self._guard():
            self.client.upsert(collection or self.alias, points=structs, wait=True)

    def payloads(self, ids: Sequence[str], collection: str | None = None) -> dict[str, dict[str, Any]]:
        """The payloads of those of ``ids`` that exist, by id."""
        if not ids:
            return {}
        with self._guard():
            records = self.client.retrieve(collection or self.alias, ids=list(ids), with_payload=True,
                                           with_vectors=False)
        return {str(r.id): r.payload or {} for r in records}

    def optimize(self, collection: str | None = None) -> None:
        """Index new points now where the engine does not do it by itself (the edge engine)."""
        optimize = getattr(self.client, "optimize", None)
        if optimize is not None:
            with self._guard():
                optimize(collection or self.alias)

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any], collection: str | None = None) -> None:
        """Merge ``payload`` keys into existing points (their vectors stay)."""
        if not ids:
            return
        with self._guard():
            self.client.set_payload(collection or self.alias, payload=payload, points=list(ids), wait=True)

    def set_person_payloads(self, people: dict[str, dict[str, Any]], key: str | None = None,
                            collection: str | None = None, chunk: int = 256) -> None:
        """Merge each person's payload into every point of that person (matched by ``person_id``).

        With ``key`` the payload is merged into that nested object (``metadata``) instead of the top
        level, so fields the points already have and the payload lacks are kept.
        """
        operations = [
            models.SetPayloadOperation(set_payload=models.SetPayload(payload=payload, filter=person_filter(pid), key=key))
            for pid, payload in people.items() if payload
        ]
        for start in range(0, len(operations), chunk):
            with self._guard():
                self.client.batch_update_points(collection or self.alias, operations[start:start + chunk], wait=True)

    def count(self, collection: str | None = None) -> int:
        """Points in the collection (0 when it does not exist)."""
        name = collection or self.alias
        with self._guard():
            if not self.client.collection_exists(name):
                return 0
            return self.client.count(name, exact=True).count

    def ids(self, collection: str | None = None) -> set[str]:
        """Every point id of the collection (for tests and reports)."""
        out: set[str] = set()
        offset = None
        with self._guard():
            while True:
                records, offset = self.client.scroll(collection or self.alias, limit=1024, offset=offset,
                                                     with_payload=False, with_vectors=False)
                out.update(str(r.id) for r in records)
                if offset is None:
                    return out

    # TEMP (web): replaced by the storage port at merge
    def query_people(self, vector: np.ndarray, top_k: int, use_centroids: bool = False, *,
                     where: Mapping[str, str | int | bool] | None = None,
                     with_thumbnails: bool = True) -> list[StoredMatch]:
        """The ``top_k`` most similar people, each once with their best point, best first (one round trip
        per widening, payloads included; the first query is enough unless a few people own most hits).

        ``where`` keeps only points whose payload field (dotted path, e.g. ``"metadata.gender"``) equals
        the value; ``with_thumbnails=False`` leaves the ``thumbnail`` out of the payloads. With
        ``use_centroids`` the query runs on the per-person mean faces (:meth:`build_centroids`) when the
        current version has them: scores are then to a person's mean face.

        Raises:
            EmptyIndexError: no collection behind the alias, or it is empty.
        """
        vector = np.asarray(vector, np.float32).tolist()
        exclude = None if with_thumbnails else ["thumbnail"]
        if use_centroids:
            current = self.current_collection()
            centroids = centroids_collection(current) if current else None
            with self._guard():
                has_centroids = centroids is not None and self.client.collection_exists(centroids)
            if has_centroids:
                hits = self._query(centroids, vector, top_k, where, exclude)
                if hits:
                    return [StoredMatch(str(h.id), min(1.0, max(-1.0, float(h.score))), h.payload or {}) for h in hits]
        limit = max(32, 8 * top_k)
        while True:
            try:
                hits = self._query(self.alias, vector, limit, where, exclude)
            except ValueError as exc:  # the embedded stores: "Collection ... not found"
                if "not found" not in str(exc):
                    raise
                raise self._empty_error() from exc
            except Exception as exc:
                if getattr(exc, "status_code", None) == 404:
                    raise self._empty_error() from None
                raise
            if not hits:
                if where and self.count():
                    return []  # the filter leaves nobody
                raise self._empty_error()
            best: dict[str, Any] = {}
            for hit in hits:  # hits are sorted by score: the first of each person is their best
                best.setdefault((hit.payload or {}).get(PERSON_FIELD, str(hit.id)), hit)
            if len(best) >= top_k or len(hits) < limit:
                break
            limit *= 4
        # A unit vector against itself can score 1.0000001 in float32: keep the cosine in -1..1.
        return [StoredMatch(str(h.id), min(1.0, max(-1.0, float(h.score))), h.payload or {})
                for h in list(best.values())[:top_k]]

    # TEMP (web): replaced by the storage port at merge
    def _query(self, collection: str, vector: list[float], limit: int, where: Mapping[str, Any] | None,
               exclude: list[str] | None) -> list[Any]:
        """One nearest-neighbour query with payloads (less ``exclude``) and an optional equality filter."""
        flt = _where_filter(where)
        with self._guard():
            shard_of = getattr(self.client, "_shard", None)
            if shard_of is not None:  # the edge engine: its query_points takes no filter or payload exclusion
                from qdrant_edge import PayloadSelector, QuantizationSearchParams, Query, QueryRequest, SearchParams

                from lookalike.edge_client import _SEARCH_EF, _edge_filter

                shard = shard_of(collection)
                hits = shard.query(QueryRequest(
                    limit=limit, query=Query.Nearest(vector),
                    with_payload=PayloadSelector.Exclude(exclude) if exclude else True,
                    filter=_edge_filter(flt) if flt is not None else None,
                    params=SearchParams(hnsw_ef=max(_SEARCH_EF, limit), quantization=QuantizationSearchParams(
                        rescore=True, oversampling=2.0))))
                return [models.ScoredPoint(id=str(h.id), version=h.version, score=h.score, payload=h.payload)
                        for h in hits]
            with_payload: Any = models.PayloadSelectorExclude(exclude=exclude) if exclude else True
            return self.client.query_points(collection, query=vector, limit=limit, with_payload=with_payload,
                                            query_filter=flt, search_params=self._search_params).points

    # TEMP (web): replaced by the storage port at merge
    def filter_values(self, field: str) -> list[Any]:
        """The distinct values of a payload field (dotted path, e.g. ``"metadata.gender"``), sorted; [] when
        the index is empty or no point has it. Reads every point's field once (cache the answer)."""
        if not self.count():
            return []
        values: set[Any] = set()
        offset = None
        selector: Any = [field.split(".")[0]]  # never the thumbnails
        if getattr(self.client, "_shard", None) is not None:
            from qdrant_edge import PayloadSelector

            selector = PayloadSelector.Include(selector)
        while True:
            with self._guard():
                records, offset = self.client.scroll(self.alias, limit=2048, offset=offset, with_payload=selector,
                                                     with_vectors=False)
            for record in records:
                value: Any = record.payload or {}
                for part in field.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                if isinstance(value, (str, int, bool)) and value != "":
                    values.add(value)
            if offset is None:
                return sorted(values, key=lambda v: (str(type(v)), v))

    def _empty_error(self) -> EmptyIndexError:
        return EmptyIndexError(
            f"The index '{self.alias}' in {self.where} is empty: build it with `python -m indexing` "
            "(stop the app first when it uses the embedded store)."
        )


_SEARCH = models.SearchParams(quantization=models.QuantizationSearchParams(rescore=True, oversampling=2.0))
"""With int8 quantization: rescore candidates with the float vectors (exact cosines); else ignored."""


class _NullLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NULL_LOCK = _NullLock()


def _is_connection_error(exc: BaseException) -> bool:
    """True for the exceptions qdrant-client raises when the server is down or unreachable."""
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException

    seen = exc
    while seen is not None:
        if isinstance(seen, (httpx.TransportError, ResponseHandlingException, ConnectionError, TimeoutError)):
            return True
        if type(seen).__name__ in {"RpcError", "_InactiveRpcError"}:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _safe_url(url: str | None) -> str:
    """The URL without any user:password part, for messages."""
    return re.sub(r"//[^/@]*@", "//", url or "")
