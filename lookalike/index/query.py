"""The read side of the index: the people most like a face, and the values each filter can take.

:class:`FaceIndex` reads what a :class:`~lookalike.index.store.FaceStore` wrote, through the store's
engine and its guard (embedded calls one at a time, an unreachable engine as StoreUnavailableError), and
always through the alias, so it sees the version the offline phase last switched to.

Grouping by person is one port call per query: ``query_points_groups`` on a server, one widened
nearest-neighbour query on the edge engine; both give the same people in the same order. With
``use_centroids`` the per-person mean faces (``<alias>_centroids``) are queried instead, when the current
version has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lookalike.errors import EmptyIndexError
from lookalike.index.payload import PERSON_ID, THUMBNAIL, FacePayload, filter_fields
from lookalike.index.storage.port import (
    CollectionNotFoundError,
    Hit,
    Not,
    PayloadFields,
    SearchOptions,
    UnsupportedError,
    Where,
    WithPayload,
)
from lookalike.index.store import FaceStore, centroids_collection

FILTER_VALUE_LIMIT = 1000
"""Most distinct values :meth:`FaceIndex.filter_values` returns for one field."""


@dataclass(frozen=True)
class StoredMatch:
    """One person's best point for a query: ``score`` is the cosine similarity (-1..1).

    ``payload.thumbnail`` is None when the query did not ask for thumbnails.
    """

    id: str
    score: float
    payload: FacePayload = field(repr=False)


class FaceIndex:
    """Queries by person and filter facets over a :class:`FaceStore`'s current version.

    Args:
        store: the store whose current version is read; its engine and guard serve every call.

    Attributes:
        store: as above.
    """

    def __init__(self, store: FaceStore):
        self.store = store

    def query_people(self, vector: np.ndarray, top_k: int, *, use_centroids: bool = False,
                     where: Mapping[str, str | int | bool | Not] | None = None,
                     with_thumbnails: bool = True) -> list[StoredMatch]:
        """The ``top_k`` most similar people, each once with their best point, best first: one engine call.

        Args:
            vector: the query face, 512 float32 (a unit vector).
            use_centroids: query the per-person mean faces (``indexing.centroids.build_centroids``) when
                the current version has them; scores are then to a person's mean face.
            where: payload path -> required value (or :class:`~lookalike.index.storage.port.Not` a value), each of
                :func:`lookalike.index.payload.filter_fields` (``{"metadata.gender": 1}``,
                ``{"well_known": Not(0)}``); every entry must hold.
            with_thumbnails: read the thumbnails (base64 JPEG) too; without, ``payload.thumbnail`` is None.

        Returns:
            At most ``top_k`` matches; ``[]`` when ``where`` leaves nobody.

        Raises:
            EmptyIndexError: no collection behind the alias, or it is empty.
            ValueError: ``where`` names a field that cannot be filtered, or a value of the wrong type.
        """
        query = np.asarray(vector, np.float32).tolist()
        conditions = _checked_where(where)
        selected: WithPayload = True if with_thumbnails else PayloadFields(exclude=(THUMBNAIL,))
        hits = self._centroid_hits(query, top_k, conditions, selected) if use_centroids else None
        if hits is None:  # every face, grouped by person
            try:
                with self.store.guard():
                    hits = self.store.engine.query_groups(self.store.alias, query, PERSON_ID, top_k, conditions,
                                                          selected, SearchOptions())
            except CollectionNotFoundError:
                raise self._empty_error() from None
        if not hits:
            if conditions and self.store.count() > 0:
                return []
            raise self._empty_error()
        # A unit vector against itself can score 1.0000001 in float32: keep the cosine in -1..1.
        return [StoredMatch(h.id, min(1.0, max(-1.0, h.score)), FacePayload.from_dict(h.payload)) for h in hits]

    def _centroid_hits(self, query: list[float], top_k: int, conditions: Where | None,
                       selected: WithPayload) -> list[Hit] | None:
        """The nearest per-person mean faces, or None when the current version has none (yet)."""
        hits: list[Hit] | None
        try:
            with self.store.guard():
                hits = self.store.engine.query(self.store.centroids_alias, query, top_k, conditions, selected,
                                               SearchOptions())
        except CollectionNotFoundError:  # no centroids alias: an index built before it existed, or none
            hits = self._query_unaliased_centroids(query, top_k, conditions, selected)
        return hits or None

    def _query_unaliased_centroids(self, query: list[float], top_k: int, conditions: Where | None,
                                   selected: WithPayload) -> list[Hit] | None:
        """The centroids beside the current version when no alias names them (built before the alias existed)."""
        current = self.store.current_collection()
        if current is None:
            return None
        try:
            with self.store.guard():
                return self.store.engine.query(centroids_collection(current), query, top_k, conditions, selected,
                                               SearchOptions())
        except CollectionNotFoundError:
            return None

    def filter_values(self, field: str) -> list[str | int | bool]:
        """The distinct values of a filterable field (``"metadata.gender"``) in the current collection, sorted;
        ``[]`` when no face has it or there is no index yet.

        Cost: with the payload index every new collection has, Qdrant's facet (server and edge) reads the
        index: about the number of distinct values, not of points. A collection without the index falls
        back to scrolling that one field of every point (1,024 points per call).

        Raises:
            ValueError: ``field`` is not one of :func:`lookalike.index.payload.filter_fields`.
        """
        fields = filter_fields()
        if field not in fields:
            raise ValueError(f"'{field}' cannot be filtered on (use one of {', '.join(fields)})")
        try:
            with self.store.guard():
                values = {hit.value for hit in self.store.engine.facet(self.store.alias, field, FILTER_VALUE_LIMIT)}
        except CollectionNotFoundError:
            return []
        except UnsupportedError:  # an older collection without the payload index
            values = set()
            for record in self.store.points(with_payload=PayloadFields(include=(field,))):
                value = _at_path(record.payload, field)
                if isinstance(value, (str, int, bool)):
                    values.add(value)
        return sorted(values, key=lambda v: (type(v).__name__, v))

    def _empty_error(self) -> EmptyIndexError:
        return EmptyIndexError(
            "The index is being built: there is nobody to compare with yet. Please come back later.",
            detail=f"The index '{self.store.alias}' in {self.store.where} is empty: build it with `python -m indexing` "
            "(stop the app first when it uses the embedded store)."
        )


def _checked_where(where: Mapping[str, str | int | bool | Not] | None) -> dict[str, str | int | bool | Not] | None:
    """``where`` checked against the filterable fields of the schema and their value types."""
    if not where:
        return None
    out: dict[str, str | int | bool | Not] = {}
    fields = filter_fields()
    for path, value in where.items():
        kind = fields.get(path)
        if kind is None:
            raise ValueError(f"'{path}' cannot be filtered on (use one of {', '.join(fields)})")
        plain = value.value if isinstance(value, Not) else value
        if not isinstance(plain, kind) or (kind is int and isinstance(plain, bool)):
            raise ValueError(f"{path} takes a {kind.__name__} value, not {plain!r}")
        out[path] = value
    return out


def _at_path(payload: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted payload path, or None."""
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
