"""The read side of the index (lookalike.index.query) on every engine: grouping by person in one query,
filters and their values, the centroids path, and an empty index as a typed error.

Engines: ``edge`` (the embedded store, as ``FaceStore.open`` makes it), ``local`` (qdrant-client's
in-process mode, standing in for a server: it runs the qdrant-client adapter) and ``server`` (the
Qdrant at ``QDRANT_URL``, marked ``qdrant_server``, skipped when none answers)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import CORE_FIXTURES
from indexing.centroids import build_centroids
from indexing.versions import ensure_collection
from lookalike.errors import EmptyIndexError
from lookalike.index.query import FaceIndex
from lookalike.index.storage.port import CollectionSettings
from support import FINGERPRINT, make_point, open_store, random_unit, unit

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


# -- grouping by person ---------------------------------------------------------------------------


def test_own_vector_comes_first_with_score_one(six_people):
    store, points = six_people
    index = FaceIndex(store)
    for point in points:
        matches = index.query_people(point.vector, top_k=3)
        assert matches[0].id == point.id
        assert matches[0].score == pytest.approx(1.0, abs=1e-4)
        assert matches[0].payload == point.payload  # the full typed payload, thumbnail included
        assert all(m.score < 0.5 for m in matches[1:])


def test_grouped_query_one_point_per_person_even_with_many_near_duplicates(any_store):
    store = any_store
    ensure_collection(store, FINGERPRINT)
    rng = np.random.default_rng(1)
    query = random_unit(rng)
    # One person with 120 near-duplicates of the query: they alone fill any plain top-40 or top-100.
    crowd = [make_point(query + 0.05 * random_unit(rng), "crowd", str(i)) for i in range(120)]
    # Six others, each a single point, increasingly far from the query.
    others = [make_point(query * (0.9 - 0.1 * i) + random_unit(rng) * (0.3 + 0.1 * i), f"other-{i}", "0")
              for i in range(6)]
    noise = [make_point(random_unit(rng), f"noise-{i}", "0") for i in range(20)]
    store.upsert(crowd + others + noise)

    plain = store.engine.query(store.alias, query.tolist(), 100)
    assert {hit.payload["person_id"] for hit in plain} == {"crowd"}  # a plain top-100 holds one person

    matches = FaceIndex(store).query_people(query, top_k=5)
    people = [m.payload.person_id for m in matches]
    assert len(matches) == 5
    assert len(set(people)) == 5
    assert people[0] == "crowd"
    assert set(people[1:]) <= {p.payload.person_id for p in others}
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    best_crowd = max(float(unit(p.vector) @ query) for p in crowd)
    assert matches[0].score == pytest.approx(best_crowd, abs=1e-4)
    # The single points are scored exactly, as their own cosine with the query.
    by_id = {p.id: p for p in others}
    for match in matches[1:]:
        assert match.score == pytest.approx(float(by_id[match.id].vector @ query), abs=1e-4)


def test_top_k_larger_than_people(six_people):
    store, points = six_people
    matches = FaceIndex(store).query_people(points[2].vector, top_k=20)
    assert len(matches) == 6
    assert len({m.payload.person_id for m in matches}) == 6


def test_missing_collection_is_empty_index(any_store):
    assert any_store.count() == 0
    assert any_store.current_collection() is None
    with pytest.raises(EmptyIndexError) as info:
        FaceIndex(any_store).query_people(unit(np.ones(512)), top_k=3)
    assert "python -m indexing" in info.value.detail and "python -m indexing" not in str(info.value)


def test_empty_collection_is_empty_index(any_store):
    ensure_collection(any_store, FINGERPRINT)
    assert any_store.count() == 0
    with pytest.raises(EmptyIndexError):
        FaceIndex(any_store).query_people(unit(np.ones(512)), top_k=3)


# -- one query per face, filters, thumbnails ------------------------------------------------------


@pytest.fixture
def people(any_store):
    """Eight people with three points each; gender 0/1 and department Acting/Sound in their metadata."""
    rng = np.random.default_rng(7)
    ensure_collection(any_store, FINGERPRINT)
    points = []
    for i in range(8):
        centre = random_unit(rng)
        for k in range(3):
            points.append(make_point(centre + 0.5 * random_unit(rng), f"person-{i}", str(k), gender=i % 2,
                                     known_for_department="Acting" if i % 3 else "Sound", biography=f"bio {i}"))
    any_store.upsert(points)
    return FaceIndex(any_store), points


class CallCounter:
    """The store's real engine, counting the calls that reach it."""

    def __init__(self, engine):
        self.engine = engine
        self.calls: list[str] = []

    def __getattr__(self, name):
        attribute = getattr(self.engine, name)
        if callable(attribute):
            def counted(*args, **kwargs):
                self.calls.append(name)
                return attribute(*args, **kwargs)
            return counted
        return attribute


def test_query_people_is_one_engine_call_with_the_typed_payload(people):
    index, points = people
    counter = CallCounter(index.store.engine)
    index.store.engine = counter
    matches = index.query_people(points[4].vector, 3)
    assert counter.calls == ["query_groups"]  # grouping and payloads in one call, no retrieve after it
    assert matches[0].id == points[4].id and matches[0].payload == points[4].payload
    counter.calls.clear()
    index.query_people(points[4].vector, 3, where={"metadata.gender": 1}, with_thumbnails=False)
    assert counter.calls == ["query_groups"]


def test_query_people_without_thumbnails_reads_everything_else(people):
    index, points = people
    (match,) = index.query_people(points[0].vector, 1, with_thumbnails=False)
    assert match.payload.thumbnail is None
    assert match.payload == dataclasses.replace(points[0].payload, thumbnail=None)
    assert index.query_people(points[0].vector, 1)[0].payload.thumbnail == "dGh1bWI="


@pytest.mark.parametrize("where", [{"metadata.gender": 1}, {"metadata.known_for_department": "Sound"},
                                   {"metadata.gender": 0, "metadata.known_for_department": "Acting"}])
def test_query_people_filters_on_metadata(people, where):
    index, points = people
    allowed = {p.payload.person_id for p in points
               if all(p.payload.metadata[k.split(".")[1]] == value for k, value in where.items())}
    matches = index.query_people(points[0].vector, 8, where=where)
    assert {m.payload.person_id for m in matches} == allowed
    for match in matches:
        assert all(match.payload.metadata[k.split(".")[1]] == value for k, value in where.items())
    unfiltered = [m.payload.person_id for m in index.query_people(points[0].vector, 8)]
    assert [m.payload.person_id for m in matches] == [p for p in unfiltered if p in allowed]  # same order


def test_filter_leaving_nobody_is_an_empty_answer_not_an_empty_index(people):
    index, points = people
    assert index.query_people(points[0].vector, 3, where={"metadata.known_for_department": "Writing"}) == []
    with pytest.raises(ValueError, match="cannot be filtered"):
        index.query_people(points[0].vector, 3, where={"metadata.biography": "bio 1"})
    with pytest.raises(ValueError, match="int"):
        index.query_people(points[0].vector, 3, where={"metadata.gender": "1"})


def test_filter_on_an_empty_collection_is_still_an_empty_index(any_store):
    ensure_collection(any_store, FINGERPRINT)
    with pytest.raises(EmptyIndexError):
        FaceIndex(any_store).query_people(unit(np.ones(512)), 3, where={"metadata.gender": 1})


def test_filter_values_lists_what_the_index_holds(people):
    index, _ = people
    assert index.filter_values("metadata.gender") == [0, 1]
    assert index.filter_values("metadata.known_for_department") == ["Acting", "Sound"]
    with pytest.raises(ValueError):
        index.filter_values("metadata.biography")


def test_filter_values_without_a_payload_index_scroll_the_field(settings):
    """An older edge collection without the metadata indexes: the values come from a scroll."""
    store = open_store("edge", settings)
    index = FaceIndex(store)
    try:
        assert index.filter_values("metadata.gender") == []  # no index yet
        older = CollectionSettings.for_edge(payload_indexes={"person_id": "keyword"})
        ensure_collection(store, FINGERPRINT, settings=older)
        rng = np.random.default_rng(0)
        store.upsert([make_point(random_unit(rng), f"p{i}", "0", gender=i % 3) for i in range(5)]
                     + [make_point(random_unit(rng), "nobody", "0")])
        assert index.filter_values("metadata.gender") == [0, 1, 2]
        assert index.filter_values("metadata.known_for_department") == []
    finally:
        store.close()


def test_same_people_in_the_same_order_on_every_engine(settings):
    """The edge engine groups over one widened query, qdrant-client asks Qdrant for groups: same answer."""
    stores = [open_store("edge", settings), open_store("local", settings)]
    try:
        rng = np.random.default_rng(11)
        centres = [random_unit(rng) for _ in range(12)]
        points = [make_point(centres[i % 12] + 0.7 * random_unit(rng), f"person-{i % 12}", str(i),
                             gender=(i % 12) % 2) for i in range(60)]
        for store in stores:
            ensure_collection(store, FINGERPRINT)
            store.upsert(points)
        for _ in range(5):
            query = random_unit(rng)
            for where in (None, {"metadata.gender": 0}):
                answers = [[(m.id, round(m.score, 5)) for m in FaceIndex(s).query_people(query, 5, where=where)]
                           for s in stores]
                assert answers[0] == answers[1]
    finally:
        for store in stores:
            store.close()


# -- centroids ------------------------------------------------------------------------------------


def test_centroids_of_an_index_built_before_the_centroids_alias_are_still_used(store):
    rng = np.random.default_rng(9)
    current = ensure_collection(store, FINGERPRINT)
    points = [make_point(random_unit(rng), f"p{i}", "0") for i in range(3)]
    store.upsert(points)
    build_centroids(store, current, FINGERPRINT)
    store.engine.switch_aliases({store.centroids_alias: None})  # as an older version of the indexer left it
    (best,) = FaceIndex(store).query_people(points[2].vector, 1, use_centroids=True)
    assert best.payload.photos == 1 and best.payload.person_id == "p2"  # a centroid point, not a face
