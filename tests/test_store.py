"""The face store (lookalike.store) on the embedded engines: deterministic ids, grouping by person,
versioned collections behind the alias, fingerprints, and typed errors when the store cannot answer."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest

from conftest import CORE_FIXTURES, ROOT
from lookalike.errors import EmptyIndexError, ModelMismatchError, StoreUnavailableError
from lookalike.fingerprint import ModelFingerprint
from lookalike.store import POINT_NAMESPACE, FacePoint, FaceStore, point_id

FINGERPRINT = ModelFingerprint("InceptionResnetV1", "vggface2", "a" * 64, "1")
OTHER_WEIGHTS = ModelFingerprint("InceptionResnetV1", "vggface2", "b" * 64, "1")
OTHER_PIPELINE = ModelFingerprint("InceptionResnetV1", "vggface2", "a" * 64, "2")

ENGINES = ["edge", "local"]

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector)


def random_unit(rng: np.random.Generator) -> np.ndarray:
    return unit(rng.standard_normal(512))


def make_point(vector, person: str, tag: str) -> FacePoint:
    digest = hashlib.sha256(f"{person}/{tag}".encode()).hexdigest()
    payload = {"name": person.title(), "person_id": person, "content_sha256": digest, "sources": [f"test:{tag}"]}
    return FacePoint(point_id(digest), unit(vector), payload)


@pytest.fixture(params=ENGINES)
def engine_settings(request, settings):
    return settings.model_copy(update={"embedded_engine": request.param})


@pytest.fixture
def any_store(engine_settings):
    """An empty embedded store of each engine, closed afterwards."""
    opened = FaceStore.open(engine_settings)
    yield opened
    opened.close()


@pytest.fixture
def filled(any_store):
    """Six people, one random point each, in celebrities_v1 behind the alias."""
    rng = np.random.default_rng(0)
    any_store.ensure_collection(FINGERPRINT)
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
        assert matches[0].payload["person_id"] == point.payload["person_id"]
        assert matches[0].payload["sources"] == point.payload["sources"]  # the full payload comes back
        assert all(m.score < 0.5 for m in matches[1:])


def test_grouped_query_one_point_per_person_even_with_many_near_duplicates(any_store):
    store = any_store
    store.ensure_collection(FINGERPRINT)
    rng = np.random.default_rng(1)
    query = random_unit(rng)
    # One person with 120 near-duplicates of the query: they alone fill any plain top-40 or top-100.
    crowd = [make_point(query + 0.05 * random_unit(rng), "crowd", str(i)) for i in range(120)]
    # Six others, each a single point, increasingly far from the query.
    others = [make_point(query * (0.9 - 0.1 * i) + random_unit(rng) * (0.3 + 0.1 * i), f"other-{i}", "0")
              for i in range(6)]
    noise = [make_point(random_unit(rng), f"noise-{i}", "0") for i in range(20)]
    store.upsert(crowd + others + noise)

    plain = store.client.query_points(store.alias, query=query.tolist(), limit=100, with_payload=True).points
    assert {hit.payload["person_id"] for hit in plain} == {"crowd"}  # the widening loop is needed

    matches = store.query_people(query, top_k=5)
    people = [m.payload["person_id"] for m in matches]
    assert len(matches) == 5
    assert len(set(people)) == 5
    assert people[0] == "crowd"
    assert set(people[1:]) <= {p.payload["person_id"] for p in others}
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
    assert len({m.payload["person_id"] for m in matches}) == 6


def test_missing_collection_is_empty_index(any_store):
    assert any_store.count() == 0
    assert any_store.current_collection() is None
    with pytest.raises(EmptyIndexError) as info:
        any_store.query_people(unit(np.ones(512)), top_k=3)
    assert "python -m indexing" in str(info.value)


def test_empty_collection_is_empty_index(any_store):
    any_store.ensure_collection(FINGERPRINT)
    assert any_store.count() == 0
    with pytest.raises(EmptyIndexError):
        any_store.query_people(unit(np.ones(512)), top_k=3)


# -- versions behind the alias --------------------------------------------------------------------


def test_alias_versioning(any_store):
    store = any_store
    rng = np.random.default_rng(2)
    first = store.ensure_collection(FINGERPRINT)
    assert first == "celebrities_v1"
    assert store.current_collection() == "celebrities_v1"
    assert store.versions() == ["celebrities_v1"]
    assert store.ensure_collection(FINGERPRINT) == "celebrities_v1"  # idempotent
    old = make_point(random_unit(rng), "old-person", "0")
    store.upsert([old])

    second = store.create_version(FINGERPRINT)
    assert second == "celebrities_v2"
    assert store.current_collection() == "celebrities_v1"  # readers still see v1 while v2 fills
    new = make_point(random_unit(rng), "new-person", "0")
    store.upsert([new], collection=second)
    assert store.count() == 1 and store.count(second) == 1
    assert store.query_people(new.vector, 1)[0].id == old.id

    store.point_alias_to(second)
    assert store.current_collection() == "celebrities_v2"
    assert store.query_people(new.vector, 1)[0].id == new.id
    assert store.versions() == ["celebrities_v1", "celebrities_v2"]

    assert store.drop_old_versions(keep=1) == ["celebrities_v1"]
    assert store.versions() == ["celebrities_v2"]
    assert store.count() == 1
    assert store.create_version(FINGERPRINT) == "celebrities_v3"


def test_drop_old_versions_never_drops_the_current_one(any_store):
    store = any_store
    store.ensure_collection(FINGERPRINT)
    store.create_version(FINGERPRINT)
    store.create_version(FINGERPRINT)
    assert store.current_collection() == "celebrities_v1"
    assert store.drop_old_versions(keep=1) == ["celebrities_v2"]
    assert store.versions() == ["celebrities_v1", "celebrities_v3"]
    assert store.current_collection() == "celebrities_v1"


def test_alias_survives_reopening(engine_settings):
    store = FaceStore.open(engine_settings)
    store.ensure_collection(FINGERPRINT)
    second = store.create_version(FINGERPRINT)
    point = make_point(np.ones(512), "someone", "0")
    store.upsert([point], collection=second)
    store.point_alias_to(second)
    store.close()
    reopened = FaceStore.open(engine_settings)
    try:
        assert reopened.current_collection() == second
        assert reopened.count() == 1
        assert reopened.stored_fingerprint() == FINGERPRINT.as_dict()
    finally:
        reopened.close()


@pytest.mark.parametrize("other", [OTHER_WEIGHTS, OTHER_PIPELINE], ids=["weights", "pipeline"])
def test_fingerprint_mismatch(any_store, other):
    any_store.ensure_collection(FINGERPRINT)
    assert any_store.stored_fingerprint() == FINGERPRINT.as_dict()
    any_store.check_fingerprint(FINGERPRINT)
    with pytest.raises(ModelMismatchError) as info:
        any_store.ensure_collection(other)
    with pytest.raises(ModelMismatchError):
        any_store.check_fingerprint(other)
    assert "--recreate" in str(info.value)
    assert any_store.versions() == ["celebrities_v1"]  # nothing created on the way


# -- the store cannot answer ----------------------------------------------------------------------


HOLDER = textwrap.dedent("""
    import sys
    from lookalike.settings import Settings
    from lookalike.store import FaceStore
    stores = [FaceStore.open(Settings(data_dir=folder, embedded_engine=engine))
              for folder, engine in zip(sys.argv[1::2], sys.argv[2::2])]
    print("holding", flush=True)
    sys.stdin.readline()
    for store in stores:
        store.close()
""")


def test_second_process_gets_store_unavailable(settings):
    """A subprocess holds one store of each engine; opening either here is refused with a clear message."""
    held = [settings.model_copy(update={"embedded_engine": e, "data_dir": settings.data_dir / e}) for e in ENGINES]
    args = [str(a) for s in held for a in (s.data_dir, s.embedded_engine)]
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, *args], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = holder.stdout.readline()
        assert line.strip() == "holding", holder.stderr.read()
        for engine_settings in held:
            with pytest.raises(StoreUnavailableError) as info:
                FaceStore.open(engine_settings)
            message = str(info.value)
            assert str(engine_settings.embedded_path) in message
            assert "another process" in message
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert holder.returncode == 0, holder.stderr.read()
    for engine_settings in held:
        FaceStore.open(engine_settings).close()  # free again once the holder is gone


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(120)
def test_closed_port_is_store_unavailable(settings):
    url = f"http://127.0.0.1:{closed_port()}"
    remote = settings.model_copy(update={"qdrant_url": url, "qdrant_timeout_s": 2.0})
    store = FaceStore.open(remote)
    assert not store.embedded
    for call in (store.count, lambda: store.query_people(unit(np.ones(512)), 3),
                 store.current_collection, lambda: store.ensure_collection(FINGERPRINT)):
        with pytest.raises(StoreUnavailableError) as info:
            call()
        assert url in str(info.value) and "QDRANT_URL" in str(info.value)
    store.close()
