"""The face store (lookalike.index.store) on every engine: deterministic ids, grouping by person in one query,
filters, versioned collections behind the alias, fingerprints, and typed errors when the store cannot answer.

Engines: ``edge`` (the embedded store, as ``FaceStore.open`` makes it), ``local`` (qdrant-client's
in-process mode, standing in for a server: it runs the qdrant-client adapter) and ``server`` (the
Qdrant at ``QDRANT_URL``, marked ``qdrant_server``, skipped when none answers)."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from conftest import CORE_FIXTURES, ROOT
from support import free_port
from indexing.centroids import build_centroids
from indexing.versions import (
    create_version,
    drop_old_versions,
    ensure_collection,
    switch_alias,
    version_number,
    versions,
)
from lookalike.errors import EmptyIndexError, ModelMismatchError, StoreUnavailableError
from lookalike.fingerprint import ModelFingerprint
from lookalike.index.connection import StoreConfig
from lookalike.index.payload import METADATA_MAX_CHARS, POINT_NAMESPACE, FacePayload, point_id
from lookalike.index.storage.port import CollectionSettings, EngineLockedError
from lookalike.index.store import FacePoint, FaceStore, centroids_collection

FINGERPRINT = ModelFingerprint("InceptionResnetV1", "vggface2", "a" * 64, "1")
OTHER_WEIGHTS = ModelFingerprint("InceptionResnetV1", "vggface2", "b" * 64, "1")
OTHER_PIPELINE = ModelFingerprint("InceptionResnetV1", "vggface2", "a" * 64, "2")

ENGINES = ["edge", "local", pytest.param("server", marks=pytest.mark.qdrant_server)]

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector)


def random_unit(rng: np.random.Generator) -> np.ndarray:
    return unit(rng.standard_normal(512))


def make_point(vector, person: str, tag: str, **metadata) -> FacePoint:
    digest = hashlib.sha256(f"{person}/{tag}".encode()).hexdigest()
    payload = FacePayload(name=person.title(), person_id=person, content_sha256=digest, sources=[f"test:{tag}"],
                          thumbnail="dGh1bWI=", metadata=metadata)
    return FacePoint(point_id(digest), unit(vector), payload)


def open_store(kind: str, settings) -> FaceStore:
    """A store of ``kind`` on ``settings``' data folder (edge, local) or on the server (alias in settings)."""
    if kind == "edge":
        return FaceStore.open(StoreConfig.from_settings(settings))
    if kind == "local":
        from lookalike.index.storage.qdrant import QdrantEngine

        path = settings.data_dir / "local"
        path.mkdir(parents=True, exist_ok=True)
        return FaceStore(QdrantEngine.in_process(str(path)), settings.collection, where=f"local mode at {path}",
                         serialize=True, collection_defaults=CollectionSettings.for_server(quantization=None))
    return FaceStore.open(StoreConfig.from_settings(settings))


@pytest.fixture(params=ENGINES)
def engine_settings(request, settings):
    """(kind, settings): on a server, a collection alias of this test alone, removed afterwards."""
    if request.param == "server":
        return "server", request.getfixturevalue("server_settings")
    return request.param, settings


@pytest.fixture
def any_store(engine_settings):
    """An empty store of each engine, closed afterwards."""
    opened = open_store(*engine_settings)
    yield opened
    opened.close()


@pytest.fixture
def filled(any_store):
    """Six people, one random point each, in celebrities_v1 behind the alias."""
    rng = np.random.default_rng(0)
    ensure_collection(any_store, FINGERPRINT)
    points = [make_point(random_unit(rng), f"person-{i}", "0") for i in range(6)]
    any_store.upsert(points)
    return any_store, points


# -- ids and upserts ------------------------------------------------------------------------------


def test_point_id_is_uuid5_of_content_hash():
    digest = hashlib.sha256(b"photo bytes").hexdigest()
    pid = point_id(digest)
    assert pid == str(uuid.uuid5(POINT_NAMESPACE, digest))
    assert uuid.UUID(pid).version == 5
    assert point_id(digest) == pid
    assert point_id(hashlib.sha256(b"other photo").hexdigest()) != pid


def test_upsert_twice_keeps_count(filled):
    store, points = filled
    assert store.count() == 6
    assert store.ids() == {p.id for p in points}
    store.upsert(points)
    store.upsert(points[:3])
    assert store.count() == 6
    assert store.ids() == {p.id for p in points}
    payloads = store.payloads([points[0].id, point_id("0" * 64)])
    assert list(payloads) == [points[0].id]
    assert payloads[points[0].id]["person_id"] == "person-0"


# -- queries --------------------------------------------------------------------------------------


def test_own_vector_comes_first_with_score_one(filled):
    store, points = filled
    for point in points:
        matches = store.query_people(point.vector, top_k=3)
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

    matches = store.query_people(query, top_k=5)
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


def test_top_k_larger_than_people(filled):
    store, points = filled
    matches = store.query_people(points[2].vector, top_k=20)
    assert len(matches) == 6
    assert len({m.payload.person_id for m in matches}) == 6


def test_missing_collection_is_empty_index(any_store):
    assert any_store.count() == 0
    assert any_store.current_collection() is None
    with pytest.raises(EmptyIndexError) as info:
        any_store.query_people(unit(np.ones(512)), top_k=3)
    assert "python -m indexing" in str(info.value)


def test_empty_collection_is_empty_index(any_store):
    ensure_collection(any_store, FINGERPRINT)
    assert any_store.count() == 0
    with pytest.raises(EmptyIndexError):
        any_store.query_people(unit(np.ones(512)), top_k=3)


# -- versions behind the alias --------------------------------------------------------------------


def v(store: FaceStore, number: int) -> str:
    return f"{store.alias}_v{number}"


def test_alias_versioning(any_store):
    store = any_store
    rng = np.random.default_rng(2)
    first = ensure_collection(store, FINGERPRINT)
    assert first == v(store, 1)
    assert store.current_collection() == v(store, 1)
    assert versions(store) == [v(store, 1)]
    assert ensure_collection(store, FINGERPRINT) == v(store, 1)  # idempotent
    old = make_point(random_unit(rng), "old-person", "0")
    store.upsert([old])

    second = create_version(store, FINGERPRINT)
    assert second == v(store, 2)
    assert store.current_collection() == v(store, 1)  # readers still see v1 while v2 fills
    new = make_point(random_unit(rng), "new-person", "0")
    store.upsert([new], collection=second)
    assert store.count() == 1 and store.count(second) == 1
    assert store.query_people(new.vector, 1)[0].id == old.id

    switch_alias(store, second)
    assert store.current_collection() == v(store, 2)
    assert store.query_people(new.vector, 1)[0].id == new.id
    assert versions(store) == [v(store, 1), v(store, 2)]

    assert drop_old_versions(store, keep=1) == [v(store, 1)]
    assert versions(store) == [v(store, 2)]
    assert store.count() == 1
    assert create_version(store, FINGERPRINT) == v(store, 3)


def test_versions_are_only_the_aliases_numbered_collections_in_number_order(store):
    for number in (10, 2):
        create_version(store, FINGERPRINT, number=number)
    for other in ("celebrities_v2_centroids", "celebrities_extra_v1", "others_v3"):
        store.create_collection(other, FINGERPRINT, store.collection_settings())
    assert versions(store) == ["celebrities_v2", "celebrities_v10"]  # by number, not by name
    assert version_number(store, "celebrities_v10") == 10 and version_number(store, "others_v3") is None
    assert create_version(store, FINGERPRINT) == "celebrities_v11"


def test_drop_old_versions_never_drops_the_current_one(any_store):
    store = any_store
    ensure_collection(store, FINGERPRINT)
    create_version(store, FINGERPRINT)
    create_version(store, FINGERPRINT)
    assert store.current_collection() == v(store, 1)
    assert drop_old_versions(store, keep=1) == [v(store, 2)]
    assert versions(store) == [v(store, 1), v(store, 3)]
    assert store.current_collection() == v(store, 1)


def test_alias_survives_reopening(engine_settings):
    store = open_store(*engine_settings)
    ensure_collection(store, FINGERPRINT)
    second = create_version(store, FINGERPRINT)
    point = make_point(np.ones(512), "someone", "0")
    store.upsert([point], collection=second)
    switch_alias(store, second)
    store.close()
    reopened = open_store(*engine_settings)
    try:
        assert reopened.current_collection() == second
        assert reopened.count() == 1
        assert reopened.stored_fingerprint() == FINGERPRINT.as_dict()
    finally:
        reopened.close()


@pytest.mark.parametrize("other", [OTHER_WEIGHTS, OTHER_PIPELINE], ids=["weights", "pipeline"])
def test_fingerprint_mismatch(any_store, other):
    ensure_collection(any_store, FINGERPRINT)
    assert any_store.stored_fingerprint() == FINGERPRINT.as_dict()
    any_store.check_fingerprint(FINGERPRINT)
    with pytest.raises(ModelMismatchError) as info:
        ensure_collection(any_store, other)
    with pytest.raises(ModelMismatchError):
        any_store.check_fingerprint(other)
    assert "--recreate" in str(info.value)
    assert versions(any_store) == [v(any_store, 1)]  # nothing created on the way


# -- the store cannot answer ----------------------------------------------------------------------


HOLDER = textwrap.dedent("""
    import sys
    from lookalike.settings import Settings
    from lookalike.index.storage.qdrant import QdrantEngine
    from lookalike.index.connection import StoreConfig
    from lookalike.index.store import FaceStore
    edge = FaceStore.open(StoreConfig.from_settings(Settings(data_dir=sys.argv[1])))
    local = QdrantEngine.in_process(sys.argv[2])
    print("holding", flush=True)
    sys.stdin.readline()
    edge.close()
    local.close()
""")


def test_second_process_gets_store_unavailable(settings, tmp_path):
    """A subprocess holds the embedded store (and a local-mode folder); opening either here is refused."""
    from lookalike.index.storage.qdrant import QdrantEngine

    local = tmp_path / "local"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(settings.data_dir), str(local)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = holder.stdout.readline()
        assert line.strip() == "holding", holder.stderr.read()
        with pytest.raises(StoreUnavailableError) as info:
            FaceStore.open(StoreConfig.from_settings(settings))
        message = str(info.value)
        assert str(settings.embedded_path) in message
        assert "another process" in message
        with pytest.raises(EngineLockedError, match="another process"):
            QdrantEngine.in_process(str(local))
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert holder.returncode == 0, holder.stderr.read()
    FaceStore.open(StoreConfig.from_settings(settings)).close()  # free again once the holder is gone
    QdrantEngine.in_process(str(local)).close()


@pytest.mark.timeout(120)
def test_closed_port_is_store_unavailable(settings):
    url = f"http://127.0.0.1:{free_port()}"
    remote = settings.model_copy(update={"qdrant_url": url, "qdrant_timeout_s": 2.0})
    store = FaceStore.open(StoreConfig.from_settings(remote))
    assert not store.embedded
    for call in (store.count, lambda: store.query_people(unit(np.ones(512)), 3),
                 store.current_collection, lambda: ensure_collection(store, FINGERPRINT)):
        with pytest.raises(StoreUnavailableError) as info:
            call()
        assert url in str(info.value) and "QDRANT_URL" in str(info.value)
    store.close()


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
    return any_store, points


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
    store, points = people
    counter = CallCounter(store.engine)
    store.engine = counter
    matches = store.query_people(points[4].vector, 3)
    assert counter.calls == ["query_groups"]  # grouping and payloads in one call, no retrieve after it
    assert matches[0].id == points[4].id and matches[0].payload == points[4].payload
    counter.calls.clear()
    store.query_people(points[4].vector, 3, where={"metadata.gender": 1}, with_thumbnails=False)
    assert counter.calls == ["query_groups"]


def test_query_people_without_thumbnails_reads_everything_else(people):
    store, points = people
    (match,) = store.query_people(points[0].vector, 1, with_thumbnails=False)
    assert match.payload.thumbnail is None
    assert match.payload == dataclasses.replace(points[0].payload, thumbnail=None)
    assert store.query_people(points[0].vector, 1)[0].payload.thumbnail == "dGh1bWI="


@pytest.mark.parametrize("where", [{"metadata.gender": 1}, {"metadata.known_for_department": "Sound"},
                                   {"metadata.gender": 0, "metadata.known_for_department": "Acting"}])
def test_query_people_filters_on_metadata(people, where):
    store, points = people
    allowed = {p.payload.person_id for p in points
               if all(p.payload.metadata[k.split(".")[1]] == value for k, value in where.items())}
    matches = store.query_people(points[0].vector, 8, where=where)
    assert {m.payload.person_id for m in matches} == allowed
    for match in matches:
        assert all(match.payload.metadata[k.split(".")[1]] == value for k, value in where.items())
    unfiltered = [m.payload.person_id for m in store.query_people(points[0].vector, 8)]
    assert [m.payload.person_id for m in matches] == [p for p in unfiltered if p in allowed]  # same order


def test_filter_leaving_nobody_is_an_empty_answer_not_an_empty_index(people):
    store, points = people
    assert store.query_people(points[0].vector, 3, where={"metadata.known_for_department": "Writing"}) == []
    with pytest.raises(ValueError, match="cannot be filtered"):
        store.query_people(points[0].vector, 3, where={"metadata.biography": "bio 1"})
    with pytest.raises(ValueError, match="int"):
        store.query_people(points[0].vector, 3, where={"metadata.gender": "1"})


def test_filter_on_an_empty_collection_is_still_an_empty_index(any_store):
    ensure_collection(any_store, FINGERPRINT)
    with pytest.raises(EmptyIndexError):
        any_store.query_people(unit(np.ones(512)), 3, where={"metadata.gender": 1})


def test_filter_values_lists_what_the_index_holds(people):
    store, _ = people
    assert store.filter_values("metadata.gender") == [0, 1]
    assert store.filter_values("metadata.known_for_department") == ["Acting", "Sound"]
    with pytest.raises(ValueError):
        store.filter_values("metadata.biography")


def test_filter_values_without_a_payload_index_scroll_the_field(settings):
    """An older edge collection without the metadata indexes: the values come from a scroll."""
    store = FaceStore.open(StoreConfig.from_settings(settings))
    try:
        assert store.filter_values("metadata.gender") == []  # no index yet
        older = CollectionSettings.for_edge(payload_indexes={"person_id": "keyword"})
        ensure_collection(store, FINGERPRINT, settings=older)
        rng = np.random.default_rng(0)
        store.upsert([make_point(random_unit(rng), f"p{i}", "0", gender=i % 3) for i in range(5)]
                     + [make_point(random_unit(rng), "nobody", "0")])
        assert store.filter_values("metadata.gender") == [0, 1, 2]
        assert store.filter_values("metadata.known_for_department") == []
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
                answers = [[(m.id, round(m.score, 5)) for m in s.query_people(query, 5, where=where)] for s in stores]
                assert answers[0] == answers[1]
    finally:
        for store in stores:
            store.close()


# -- payload schema -------------------------------------------------------------------------------


def test_long_biography_is_cut_to_the_schema_limit_on_every_write_path(any_store):
    store = any_store
    ensure_collection(store, FINGERPRINT)
    long_bio = "A very long biography. " * 500  # 11,500 characters
    point = make_point(np.ones(512), "writer", "0", biography=long_bio)
    assert point.payload.metadata["biography"] == long_bio.strip()[:METADATA_MAX_CHARS]
    store.upsert([point])
    stored = store.payloads([point.id])[point.id]["metadata"]["biography"]
    assert len(stored) == METADATA_MAX_CHARS == 2000 and long_bio.startswith(stored)

    store.set_person_payloads({"writer": {"biography": "Another " + long_bio, "born": 1950}}, key="metadata")
    stored = store.payloads([point.id])[point.id]["metadata"]
    assert len(stored["biography"]) == 2000 and stored["biography"].startswith("Another A very")
    assert stored["born"] == 1950


def test_payload_round_trips_through_json():
    payload = FacePayload(name="Tony Blair", person_id="tony-blair", content_sha256="ab" * 32, sources=["s:1"],
                          thumbnail="abc", metadata={"biography": "  PM  ", "gender": 2, "empty": "", "list": [1]},
                          box=[1.0, 2.0, 30.5, 40.0], probability=0.99)
    data = payload.as_dict()
    assert data["metadata"] == {"biography": "PM", "gender": 2}
    assert FacePayload.from_dict(data) == payload
    assert "photos" not in data and FacePayload.from_dict({**data, "photos": 3}).photos == 3
    assert "thumbnail" not in dataclasses.replace(payload, thumbnail=None).as_dict()


# -- collection settings and centroids ------------------------------------------------------------


def test_collection_settings_follow_the_bench_advice(store):
    edge = store.collection_settings()
    assert edge.quantization is None and store.collection_settings("int8").quantization == "int8"
    assert edge.payload_indexes == {"person_id": "keyword", "metadata.gender": "integer",
                                    "metadata.known_for_department": "keyword", "well_known": "integer"}
    server = FaceStore(store.engine, collection_defaults=CollectionSettings.for_server()).collection_settings()
    assert (server.hnsw_m, server.hnsw_ef_construct, server.quantization, server.quantized_always_ram) == (
        16, 128, "int8", True)
    assert server.vectors_on_disk and server.payload_on_disk and server.payload_indexes["person_id"] == "keyword"
    assert FaceStore(store.engine, collection_defaults=CollectionSettings.for_server()).collection_settings(
        "none").quantization is None
    with pytest.raises(ValueError, match="quantization"):
        store.collection_settings("int3")


def test_centroids_alias_moves_with_the_version(any_store):
    store = any_store
    rng = np.random.default_rng(4)
    first = ensure_collection(store, FINGERPRINT)
    points = [make_point(random_unit(rng), f"p{i}", "0") for i in range(4)]
    store.upsert(points)
    assert build_centroids(store, first, FINGERPRINT) == 4
    assert store.engine.aliases()[store.centroids_alias] == centroids_collection(first)
    best = store.query_people(points[1].vector, 2, use_centroids=True)
    assert best[0].payload.person_id == "p1" and best[0].payload.photos == 1

    second = create_version(store, FINGERPRINT)  # a rebuild without centroids
    newcomer = make_point(random_unit(rng), "newcomer", "0")
    store.upsert([newcomer], second)
    switch_alias(store, second)
    assert store.centroids_alias not in store.engine.aliases()  # no stale centroids of the old version
    assert store.query_people(newcomer.vector, 1, use_centroids=True)[0].payload.person_id == "newcomer"


# -- messages -------------------------------------------------------------------------------------


def test_urls_in_messages_lose_their_credentials():
    def where(url):
        return StoreConfig("faces", Path("data/edge"), url=url).where

    assert where("https://user:s3cret@xyz.cloud.qdrant.io:6333/p") == "Qdrant at https://xyz.cloud.qdrant.io:6333/p"
    assert where("http://localhost:6333") == "Qdrant at http://localhost:6333"
    assert where(None) == where("") == "the embedded store at data/edge"


def test_store_config_from_settings_keeps_the_api_key_secret(settings):
    remote = settings.model_copy(update={"qdrant_url": "https://xyz.cloud.qdrant.io", "collection": "faces",
                                         "qdrant_api_key": SecretStr("sk-s3cret"), "qdrant_timeout_s": 3.0})
    config = StoreConfig.from_settings(remote)
    assert (config.alias, config.url, config.timeout_s, config.embedded) == (
        "faces", "https://xyz.cloud.qdrant.io", 3.0, False)
    assert config.api_key.get_secret_value() == "sk-s3cret"
    assert "sk-s3cret" not in f"{config!r} {config} {config.where}"
    local = StoreConfig.from_settings(settings)
    assert local.embedded and local.embedded_path == settings.embedded_path


def test_grpc_errors_count_as_unreachable():
    import grpc

    from lookalike.index.storage.qdrant import _is_connection_error

    class Unavailable(grpc.RpcError):
        pass

    assert _is_connection_error(Unavailable())
    wrapped = RuntimeError("call failed")
    wrapped.__cause__ = Unavailable()
    assert _is_connection_error(wrapped)
    assert not _is_connection_error(ValueError("bad argument"))


def test_centroids_of_an_index_built_before_the_centroids_alias_are_still_used(store):
    rng = np.random.default_rng(9)
    current = ensure_collection(store, FINGERPRINT)
    points = [make_point(random_unit(rng), f"p{i}", "0") for i in range(3)]
    store.upsert(points)
    build_centroids(store, current, FINGERPRINT)
    store.engine.switch_aliases({store.centroids_alias: None})  # as an older version of the indexer left it
    (best,) = store.query_people(points[2].vector, 1, use_centroids=True)
    assert best.payload.photos == 1 and best.payload.person_id == "p2"  # a centroid point, not a face
