"""The storage port's contract (lookalike.index.storage.port): every adapter passes the same tests.

Adapters: ``edge`` (qdrant-edge-py, embedded), ``local`` (qdrant-client's in-process mode: the
qdrant-client adapter's code without a server) and ``server`` (qdrant-client against the Qdrant at
``QDRANT_URL``; marked ``qdrant_server``, skipped when no server answers there).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from conftest import NO_SERVER, server_url
from lookalike.index.storage.port import (
    CollectionNotFoundError,
    CollectionSettings,
    FieldType,
    Not,
    PayloadFields,
    PayloadUpdate,
    Point,
    SearchOptions,
    StorageError,
    StoragePort,
    UnsupportedError,
)
from support import recording_server

INDEXES: dict[str, FieldType] = {"person_id": "keyword", "metadata.gender": "integer",
                                 "metadata.known_for_department": "keyword"}
SETTINGS = CollectionSettings.for_edge(payload_indexes=INDEXES)


ENGINES = ["edge", "local", pytest.param("server", marks=pytest.mark.qdrant_server)]


@dataclasses.dataclass
class Engine:
    """An adapter under test and the prefix its collections get (unique on a shared server)."""

    kind: str
    port: StoragePort
    prefix: str

    def name(self, short: str) -> str:
        return f"{self.prefix}{short}"


@pytest.fixture(params=ENGINES)
def engine(request, tmp_path) -> Iterator[Engine]:
    port: StoragePort
    if request.param == "edge":
        from lookalike.index.storage.edge import EdgeEngine

        port = EdgeEngine(tmp_path / "edge")
        prefix = ""
    elif request.param == "local":
        from lookalike.index.storage.qdrant import QdrantEngine

        port = QdrantEngine.in_process(str(tmp_path / "local"))
        prefix = ""
    else:
        url = server_url()
        if url is None:
            pytest.skip(NO_SERVER)
        from lookalike.index.storage.qdrant import QdrantEngine

        port = QdrantEngine.server(url, os.environ.get("QDRANT_API_KEY"), 30.0)
        prefix = f"contract_{uuid.uuid4().hex[:8]}_"
    yield Engine(request.param, port, prefix)
    if prefix:
        mine = {a: None for a in port.aliases() if a.startswith(prefix)}
        if mine:
            port.switch_aliases(mine)
        for name in port.collections():
            if name.startswith(prefix):
                port.delete_collection(name)
    port.close()


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector)


def pid(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def people_points(n_people: int = 8, per_person: int = 5, seed: int = 0) -> list[Point]:
    """``n_people`` people with ``per_person`` points each, gender and department in their metadata."""
    rng = np.random.default_rng(seed)
    points = []
    for person in range(n_people):
        centre = unit(rng.standard_normal(512))
        for k in range(per_person):
            i = person * per_person + k
            payload = {"person_id": f"p{person}", "name": f"P {person}", "thumbnail": "jpeg" * 10,
                       "metadata": {"gender": person % 2, "known_for_department": "Acting" if person % 3 else "Sound",
                                    "biography": f"bio {person}"}}
            points.append(Point(pid(i), unit(centre + 0.6 * unit(rng.standard_normal(512))).tolist(), payload))
    return points


@pytest.fixture
def filled(engine) -> tuple[Engine, str, list[Point]]:
    name = engine.name("faces")
    engine.port.create_collection(name, SETTINGS, {"fingerprint": {"weights": "w"}})
    points = people_points()
    engine.port.upsert(name, points)
    return engine, name, points


def best_per_person(points: list[Point], query: np.ndarray, where: dict | None = None) -> list[tuple[str, str]]:
    """(person, point id) of each person's best point, best person first: the exact answer."""
    best: dict[str, tuple[float, str]] = {}
    for p in points:
        meta = p.payload["metadata"]
        if where and any(meta[k.split(".", 1)[1]] != v for k, v in where.items()):
            continue
        score = float(np.dot(p.vector, query))
        person = p.payload["person_id"]
        if person not in best or score > best[person][0]:
            best[person] = (score, p.id)
    return [(person, point) for person, (_, point) in sorted(best.items(), key=lambda kv: -kv[1][0])]


# -- collections and aliases ----------------------------------------------------------------------


def test_create_list_delete_and_metadata(engine):
    port = engine.port
    assert isinstance(port, StoragePort)
    a, b = engine.name("a"), engine.name("b")
    port.create_collection(a, SETTINGS, {"fingerprint": {"weights": "w1"}})
    port.create_collection(b, SETTINGS, {})
    assert {a, b} <= set(port.collections())
    assert port.collection_metadata(a) == {"fingerprint": {"weights": "w1"}}
    assert port.collection_metadata(b) == {}
    assert port.count(a) == 0
    with pytest.raises(StorageError):
        port.create_collection(a, SETTINGS, {})
    port.delete_collection(a)
    assert a not in port.collections() and b in port.collections()
    for call in (lambda: port.count(a), lambda: port.collection_metadata(a),
                 lambda: port.query(a, [1.0] * 512, 3), lambda: port.scroll(a)):
        with pytest.raises(CollectionNotFoundError):
            call()


def test_alias_switch_is_atomic_and_refuses_a_collection_name(engine):
    port = engine.port
    v1, v2, c1 = engine.name("v1"), engine.name("v2"), engine.name("v1_centroids")
    alias, calias = engine.name("faces"), engine.name("faces_centroids")
    for name in (v1, v2, c1):
        port.create_collection(name, SETTINGS, {})
    port.upsert(v2, people_points(1, 1))

    port.switch_aliases({alias: v1, calias: c1})
    assert {k: v for k, v in port.aliases().items() if k.startswith(engine.prefix)} == {alias: v1, calias: c1}
    assert port.count(alias) == 0  # reads go through the alias
    port.switch_aliases({alias: v2, calias: None})
    assert port.aliases().get(alias) == v2 and calias not in port.aliases()
    assert port.count(alias) == 1

    # a switch with one bad target changes nothing at all
    with pytest.raises(CollectionNotFoundError):
        port.switch_aliases({alias: v1, calias: engine.name("missing")})
    assert port.aliases().get(alias) == v2 and calias not in port.aliases()
    with pytest.raises(StorageError, match="name of a collection"):
        port.switch_aliases({alias: v1, v1: v2})
    assert port.aliases().get(alias) == v2 and v1 in port.collections()


# -- points ---------------------------------------------------------------------------------------


def test_upsert_retrieve_count_scroll(filled):
    engine, name, points = filled
    port = engine.port
    assert port.count(name) == 40
    port.upsert(name, points[:10])  # same ids: replaced, not added
    assert port.count(name) == 40

    records = port.retrieve(name, [points[0].id, points[7].id, pid(999)], with_vectors=True)
    assert sorted(r.id for r in records) == sorted([points[0].id, points[7].id])
    by_id = {r.id: r for r in records}
    assert by_id[points[0].id].payload == points[0].payload
    assert np.allclose(by_id[points[0].id].vector, points[0].vector, atol=1e-6)
    (bare,) = port.retrieve(name, [points[1].id], with_payload=False)
    assert bare.payload == {} and bare.vector is None
    (some,) = port.retrieve(name, [points[1].id], with_payload=PayloadFields(include=("person_id", "name")))
    assert some.payload == {"person_id": "p0", "name": "P 0"}

    seen, offset, pages = [], None, 0
    while True:
        page = port.scroll(name, limit=7, offset=offset, with_payload=PayloadFields(exclude=("thumbnail",)))
        assert len(page.records) <= 7
        seen += [r.id for r in page.records]
        assert all("thumbnail" not in r.payload and r.payload["person_id"] for r in page.records)
        pages += 1
        offset = page.next_offset
        if offset is None:
            break
    assert sorted(seen) == sorted(p.id for p in points) and pages == 6


def test_payload_merge_by_person_filter_and_by_ids(filled):
    engine, name, points = filled
    port = engine.port
    port.update_payloads(name, [
        PayloadUpdate({"biography": "new", "born": 1950}, where={"person_id": "p1"}, key="metadata"),
        PayloadUpdate({"name": "Person One"}, where={"person_id": "p1"}),
        PayloadUpdate({"sources": ["a", "b"]}, ids=(points[0].id,)),
    ])
    for record in port.scroll(name, limit=100).records:
        meta = record.payload["metadata"]
        if record.payload["person_id"] == "p1":
            assert meta == {"gender": 1, "known_for_department": "Acting", "biography": "new", "born": 1950}
            assert record.payload["name"] == "Person One" and record.payload["thumbnail"]
        else:
            assert meta["biography"] != "new" and "born" not in meta
    (first,) = port.retrieve(name, [points[0].id])
    assert first.payload["sources"] == ["a", "b"] and first.payload["person_id"] == "p0"
    with pytest.raises(UnsupportedError):
        PayloadUpdate({"x": 1}, ids=("a",), where={"person_id": "p1"})


# -- queries --------------------------------------------------------------------------------------


def test_query_nearest_with_equality_filters_and_payload_selector(filled):
    engine, name, points = filled
    port = engine.port
    query = unit(points[12].vector)
    hits = port.query(name, query, 5, with_payload=PayloadFields(exclude=("thumbnail",)))
    assert hits[0].id == points[12].id and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all("thumbnail" not in h.payload and h.payload["metadata"] for h in hits)
    exact = sorted((float(np.dot(p.vector, query)), p.id) for p in points)[::-1][:5]
    assert [h.id for h in hits] == [i for _, i in exact]

    for where in ({"metadata.gender": 1}, {"metadata.known_for_department": "Sound"},
                  {"metadata.gender": 0, "metadata.known_for_department": "Acting"}, {"person_id": "p3"}):
        hits = port.query(name, query, 40, where=where)
        expected = [p for p in points if all(
            (p.payload["person_id"] if k == "person_id" else p.payload["metadata"][k.split(".")[1]]) == v
            for k, v in where.items())]
        assert sorted(h.id for h in hits) == sorted(p.id for p in expected), where
        assert all(h.payload["thumbnail"] for h in hits)  # the whole payload by default
    assert port.query(name, query, 5, where={"metadata.known_for_department": "Nobody"}) == []


def test_groups_are_each_persons_best_point_in_exact_order(filled):
    """One point per person, people in the order of their best point: what an exact scan gives."""
    engine, name, points = filled
    port = engine.port
    rng = np.random.default_rng(5)
    for _ in range(5):
        query = unit(points[int(rng.integers(len(points)))].vector + 0.5 * unit(rng.standard_normal(512)))
        for where in (None, {"metadata.gender": 1}):
            expected = best_per_person(points, query, where)
            hits = port.query_groups(name, query, "person_id", 4, where=where,
                                     with_payload=PayloadFields(exclude=("thumbnail",)))
            assert [(h.payload["person_id"], h.id) for h in hits] == expected[:4]
            assert all("thumbnail" not in h.payload and "metadata" in h.payload for h in hits)
    everyone = port.query_groups(name, query, "person_id", 50)
    assert len(everyone) == 8 and all(h.payload["thumbnail"] for h in everyone)


def test_a_not_filter_leaves_out_only_the_points_holding_that_value(engine):
    """``{"well_known": Not(0)}``: the points marked 0 are left out; those marked 1 and those without the
    field (an older index) are kept, by ``query`` and ``query_groups``, with the integer payload index
    new collections have (the qdrant-client adapter records it on a server only)."""
    port, name = engine.port, engine.name("famous")
    port.create_collection(name, CollectionSettings.for_edge(payload_indexes={**INDEXES, "well_known": "integer"}), {})
    points = people_points(n_people=6, per_person=2)
    marks = {"p0": 1, "p1": 0, "p2": 1, "p3": 0}  # p4 and p5 unmarked
    for point in points:
        if point.payload["person_id"] in marks:
            point.payload["well_known"] = marks[point.payload["person_id"]]
    port.upsert(name, points)
    query = unit(points[3].vector)  # a point of p1, who is left out
    kept = {"p0", "p2", "p4", "p5"}
    hits = port.query(name, query, 40, where={"well_known": Not(0)})
    assert {h.payload["person_id"] for h in hits} == kept and len(hits) == 8
    groups = port.query_groups(name, query, "person_id", 6, where={"well_known": Not(0)})
    assert [h.payload["person_id"] for h in groups] == [p for p, _ in best_per_person(points, query) if p in kept]
    both = port.query(name, query, 40, where={"well_known": Not(0), "metadata.gender": 0})
    assert {h.payload["person_id"] for h in both} == {"p0", "p2", "p4"}
    assert {h.payload["person_id"] for h in port.query(name, query, 40, where={"well_known": 0})} == {"p1", "p3"}
    with pytest.raises(UnsupportedError):
        port.query(name, query, 3, where={"well_known": Not(0.5)})


def test_a_bool_filter_value_matches_its_points_or_is_refused(engine):
    """A bool in a filter either finds the points that hold it or raises: never a silently empty answer."""
    port, name = engine.port, engine.name("flags")
    port.create_collection(name, SETTINGS, {})
    vector = unit(np.ones(512)).tolist()
    port.upsert(name, [Point(pid(i), vector, {"flag": i % 2 == 0}) for i in range(4)])
    for value in (True, False):
        try:
            hits = port.query(name, vector, 10, where={"flag": value})
        except UnsupportedError:
            continue
        assert len(hits) == 2 and all(h.payload["flag"] is value for h in hits)


def test_groups_find_people_behind_a_crowd_of_one_person(engine):
    """120 near-duplicates of one person fill any plain top-100; grouping still finds the others."""
    port, name = engine.port, engine.name("crowd")
    port.create_collection(name, SETTINGS, {})
    rng = np.random.default_rng(1)
    query = unit(rng.standard_normal(512))
    points = [Point(pid(i), unit(query + 0.05 * unit(rng.standard_normal(512))).tolist(),
                    {"person_id": "crowd", "metadata": {"gender": 1}}) for i in range(120)]
    for i in range(6):
        vector = unit(query * (0.9 - 0.1 * i) + unit(rng.standard_normal(512)) * (0.3 + 0.1 * i))
        points.append(Point(pid(200 + i), vector.tolist(), {"person_id": f"other-{i}", "metadata": {"gender": i % 2}}))
    port.upsert(name, points)
    assert {h.payload["person_id"] for h in port.query(name, query, 100)} == {"crowd"}
    hits = port.query_groups(name, query, "person_id", 5)
    assert [h.payload["person_id"] for h in hits] == [p for p, _ in best_per_person(points, query)][:5]


def test_facet_counts_indexed_fields(filled):
    engine, name, _ = filled
    port = engine.port
    assert sorted((f.value, f.count) for f in port.facet(name, "metadata.gender", 10)) == [(0, 20), (1, 20)]
    assert sorted((f.value, f.count) for f in port.facet(name, "metadata.known_for_department", 10)) == [
        ("Acting", 25), ("Sound", 15)]
    if engine.kind != "local":  # local mode keeps no payload index and scans instead
        with pytest.raises(UnsupportedError):
            port.facet(name, "name", 10)


def test_arguments_an_adapter_cannot_honour_are_refused(filled):
    engine, name, points = filled
    port = engine.port
    with pytest.raises(UnsupportedError):
        port.query(name, points[0].vector, 3, where={"metadata.gender": 1.5})
    with pytest.raises(UnsupportedError):
        port.query(name, points[0].vector, 3, with_payload=["name"])
    with pytest.raises(UnsupportedError):
        PayloadFields(include=("a",), exclude=("b",))
    with pytest.raises(UnsupportedError):
        CollectionSettings(quantization="int4")
    with pytest.raises(TypeError):  # explicit signatures: an unknown argument is an error, never swallowed
        port.query(name, points[0].vector, 3, score_threshold=0.5)
    with pytest.raises(TypeError):
        port.upsert(name, points[:1], wait=False)


# -- int8 quantization ----------------------------------------------------------------------------


def test_int8_quantized_search_runs_and_rescoring_keeps_exact_cosines(engine):
    """1,500 faces (3 MB of vectors: past the 1,000 KB indexing threshold): the optimized segment has
    int8 copies, which a search without rescoring reads (scores off by ~1e-3); with rescoring the
    scores are the exact cosines again. Local mode keeps no int8 vectors, so it refuses int8."""
    port = engine.port
    # edge: the product's threshold; a server splits the points over several segments, each must be indexed
    threshold = SETTINGS.indexing_threshold_kb if engine.kind == "edge" else 100
    settings = dataclasses.replace(SETTINGS, quantization="int8", indexing_threshold_kb=threshold)
    name = engine.name("int8")
    if engine.kind == "local":
        with pytest.raises(UnsupportedError, match="int8"):
            port.create_collection(name, settings, {})
        return
    plain = engine.name("float")
    port.create_collection(name, settings, {})
    port.create_collection(plain, dataclasses.replace(settings, quantization=None), {})
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((1500, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    points = [Point(pid(i), vectors[i].tolist(), {"person_id": f"p{i}"}) for i in range(1500)]
    for start in range(0, 1500, 500):
        port.upsert(name, points[start:start + 500])
        port.upsert(plain, points[start:start + 500])
    port.optimize(name)
    port.optimize(plain)
    if engine.kind == "edge":
        assert port.indexed_vectors(name) == 1500  # HNSW (and int8) built, not a plain appendable segment

    def worst_error(collection: str, rescore: bool) -> float:
        worst = 0.0
        for i in (5, 500, 1400):
            query = unit(vectors[i] + 0.3 * rng.standard_normal(512).astype(np.float32))
            hits = port.query(collection, query, 10, search=SearchOptions(rescore=rescore))
            assert len(hits) == 10
            worst = max(worst, max(abs(h.score - float(vectors[uuid.UUID(h.id).int - 1] @ query)) for h in hits))
        return worst

    assert worst_error(plain, rescore=False) < 1e-5  # float vectors: exact either way
    assert worst_error(name, rescore=False) > 1e-4  # int8 copies were searched
    assert worst_error(name, rescore=True) < 1e-5  # rescored by the float vectors: exact cosines


# -- the HNSW beam ---------------------------------------------------------------------------------
# An HNSW search keeps a beam of hnsw_ef candidates, so every query asks for one at least as wide as the
# hits it wants. Qdrant itself widens a narrower beam as well, so no answer shows the adapters' part:
# these tests check what they send.

BEAM_CASES = [(50, SearchOptions(hnsw_ef=8), 50), (10, SearchOptions(hnsw_ef=8), 10), (10, SearchOptions(), 384)]
"""(limit, search options, the hnsw_ef a query must send): raised to the limit, never lowered below the option."""


class RecordingShard:
    """An edge shard that keeps the query requests it is sent."""

    def __init__(self, shard):
        self.shard, self.requests = shard, []

    def query(self, request):
        self.requests.append(request)
        return self.shard.query(request)

    def __getattr__(self, name):
        return getattr(self.shard, name)


def test_edge_queries_ask_for_a_beam_at_least_as_wide_as_their_limit(tmp_path):
    from lookalike.index.storage.edge import EdgeEngine

    port = EdgeEngine(tmp_path / "edge")
    try:
        port.create_collection("faces", SETTINGS, {})
        port.upsert("faces", people_points(n_people=12))
        port._shards["faces"] = shard = RecordingShard(port._shards["faces"])
        query = unit(np.ones(512)).tolist()
        for limit, search, beam in BEAM_CASES:
            assert len(port.query("faces", query, limit, search=search)) == limit
            assert (shard.requests[-1].limit, shard.requests[-1].params.hnsw_ef) == (limit, beam)
        shard.requests.clear()
        port.query_groups("faces", query, "person_id", 10, search=SearchOptions(hnsw_ef=8))
        assert shard.requests and all(r.params.hnsw_ef == max(8, r.limit) for r in shard.requests)
    finally:
        port.close()


def test_server_queries_ask_for_a_beam_at_least_as_wide_as_their_limit():
    """The qdrant-client adapter's requests, as a server receives them (a recording stand-in answers)."""
    import json

    from lookalike.index.storage.qdrant import QdrantEngine

    def answer(request, base):
        result = {"groups": []} if request.path.endswith("/groups") else {"points": []}
        return {"result": result, "status": "ok", "time": 0.0}

    with recording_server(answer) as (url, requests):
        port = QdrantEngine.server(url, None, 5.0)
        query = unit(np.ones(512)).tolist()
        for limit, search, _ in BEAM_CASES:
            port.query("faces", query, limit, search=search)
            port.query_groups("faces", query, "person_id", limit, search=search)
        port.close()
    sent = [(r.path, json.loads(r.body)) for r in requests if r.method == "POST"]
    assert [path for path, _ in sent] == ["/collections/faces/points/query",
                                          "/collections/faces/points/query/groups"] * len(BEAM_CASES)
    for (limit, _, beam), (_, body) in zip([case for case in BEAM_CASES for _ in range(2)], sent, strict=True):
        assert (body["limit"], body["params"]["hnsw_ef"]) == (limit, beam)


# -- the adapters' shape --------------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ["lookalike.index.storage.edge:EdgeEngine",
                                     "lookalike.index.storage.qdrant:QdrantEngine"])
def test_adapters_have_the_ports_exact_signatures(adapter):
    """Every port operation, with the port's parameters, defaults and no catch-all ``*args``/``**kwargs``."""
    import importlib
    import inspect

    module, name = adapter.split(":")
    cls = getattr(importlib.import_module(module), name)
    operations = [n for n, f in vars(StoragePort).items() if callable(f) and not n.startswith("_")]
    assert len(operations) == 16
    for operation in operations:
        expected = inspect.signature(getattr(StoragePort, operation))
        actual = inspect.signature(getattr(cls, operation))
        kinds = {p.kind for p in actual.parameters.values()}
        assert not kinds & {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}, operation
        shared = [(p.name, p.default) for p in expected.parameters.values()]
        assert [(p.name, p.default) for p in actual.parameters.values()][:len(shared)] == shared, operation
        extra = list(actual.parameters.values())[len(shared):]
        assert all(p.default is not inspect.Parameter.empty for p in extra), operation  # only optional extras


def test_a_server_collection_is_created_with_the_free_tier_settings():
    """What the qdrant-client adapter asks a server for, for a new face collection of FaceStore on a server
    (README "Qdrant Cloud's free tier"): float vectors and payloads on disk, int8 copies kept in RAM,
    HNSW m=16 / ef_construct=128, and the payload indexes of the schema. Recorded from the client call
    (qdrant-client's in-process mode accepts these objects but keeps none of them)."""
    from qdrant_client import models

    from lookalike.fingerprint import ModelFingerprint
    from lookalike.index.storage.qdrant import QdrantEngine
    from lookalike.index.store import FaceStore

    class Recorder:
        def __init__(self):
            self.created, self.indexes = {}, {}

        def collection_exists(self, name):
            return False

        def get_aliases(self):
            return models.CollectionsAliasesResponse(aliases=[])

        def create_collection(self, name, **kwargs):
            self.created = kwargs

        def create_payload_index(self, name, path, kind, wait):
            self.indexes[path] = kind

    client = Recorder()
    store = FaceStore(QdrantEngine(client, local=False), collection_defaults=CollectionSettings.for_server())
    fingerprint = ModelFingerprint("facenet", "vggface2", "w" * 64, "1")
    store.create_collection("faces_v1", fingerprint, store.collection_settings())
    created = client.created
    assert created["vectors_config"] == models.VectorParams(size=512, distance=models.Distance.COSINE, on_disk=True)
    assert created["on_disk_payload"] is True
    assert created["quantization_config"] == models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
        type=models.ScalarType.INT8, quantile=0.99, always_ram=True))
    assert (created["hnsw_config"].m, created["hnsw_config"].ef_construct) == (16, 128)
    assert client.indexes == {"person_id": models.PayloadSchemaType.KEYWORD,
                              "metadata.gender": models.PayloadSchemaType.INTEGER,
                              "metadata.known_for_department": models.PayloadSchemaType.KEYWORD,
                              "well_known": models.PayloadSchemaType.INTEGER}
