"""The face store (lookalike.index.store) on every engine: deterministic ids, upserts, versioned collections
behind the alias, fingerprints, the store's config, and typed errors when the store cannot answer. Its
queries are the read side's (tests/test_query.py).

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
from indexing.centroids import build_centroids
from indexing.versions import (
    create_version,
    drop_old_versions,
    ensure_collection,
    switch_alias,
    version_number,
    versions,
)
from lookalike.errors import ModelMismatchError, StoreUnavailableError
from lookalike.fingerprint import ModelFingerprint
from lookalike.index.connection import StoreConfig
from lookalike.index.payload import METADATA_MAX_CHARS, POINT_NAMESPACE, FacePayload, point_id
from lookalike.index.query import FaceIndex
from lookalike.index.storage.port import CollectionSettings, EngineLockedError
from lookalike.index.store import FaceStore, centroids_collection
from support import FINGERPRINT, free_port, make_point, open_store, random_unit, unit

OTHER_WEIGHTS = ModelFingerprint("InceptionResnetV1", "vggface2", "b" * 64, "1")
OTHER_PIPELINE = ModelFingerprint("InceptionResnetV1", "vggface2", "a" * 64, "2")

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


# -- ids and upserts ------------------------------------------------------------------------------


def test_point_id_is_uuid5_of_content_hash():
    digest = hashlib.sha256(b"photo bytes").hexdigest()
    pid = point_id(digest)
    assert pid == str(uuid.uuid5(POINT_NAMESPACE, digest))
    assert uuid.UUID(pid).version == 5
    assert point_id(digest) == pid
    assert point_id(hashlib.sha256(b"other photo").hexdigest()) != pid


def test_upsert_twice_keeps_count(six_people):
    store, points = six_people
    assert store.count() == 6
    assert store.ids() == {p.id for p in points}
    store.upsert(points)
    store.upsert(points[:3])
    assert store.count() == 6
    assert store.ids() == {p.id for p in points}
    payloads = store.payloads([points[0].id, point_id("0" * 64)])
    assert list(payloads) == [points[0].id]
    assert payloads[points[0].id]["person_id"] == "person-0"


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
    index = FaceIndex(store)
    assert index.query_people(new.vector, 1)[0].id == old.id

    switch_alias(store, second)
    assert store.current_collection() == v(store, 2)
    assert index.query_people(new.vector, 1)[0].id == new.id
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
    assert "--recreate" in info.value.detail and "--recreate" not in str(info.value)  # the operator's, not a visitor's
    assert versions(any_store) == [v(any_store, 1)]  # nothing created on the way


# -- the store cannot answer ----------------------------------------------------------------------


HOLDER = textwrap.dedent("""
    import sys
    from lookalike.settings import Settings
    from lookalike.index.storage.qdrant import QdrantEngine
    from lookalike.index.connection import StoreConfig
    from lookalike.index.store import FaceStore
    edge = FaceStore.open(Settings(data_dir=sys.argv[1]).store_config())
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
            FaceStore.open(settings.store_config())
        message = info.value.detail
        assert str(settings.embedded_path) in message and str(settings.embedded_path) not in str(info.value)
        assert "another process" in message
        with pytest.raises(EngineLockedError, match="another process"):
            QdrantEngine.in_process(str(local))
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert holder.returncode == 0, holder.stderr.read()
    FaceStore.open(settings.store_config()).close()  # free again once the holder is gone
    QdrantEngine.in_process(str(local)).close()


@pytest.mark.timeout(120)
def test_closed_port_is_store_unavailable(settings):
    url = f"http://127.0.0.1:{free_port()}"
    remote = settings.model_copy(update={"qdrant_url": url, "qdrant_timeout_s": 2.0})
    store = FaceStore.open(remote.store_config())
    assert not store.embedded
    for call in (store.count, lambda: FaceIndex(store).query_people(unit(np.ones(512)), 3),
                 store.current_collection, lambda: ensure_collection(store, FINGERPRINT)):
        with pytest.raises(StoreUnavailableError) as info:
            call()
        assert url in info.value.detail and "QDRANT_URL" in info.value.detail
        assert url not in str(info.value) and "QDRANT_URL" not in str(info.value)
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
    index = FaceIndex(store)
    best = index.query_people(points[1].vector, 2, use_centroids=True)
    assert best[0].payload.person_id == "p1" and best[0].payload.photos == 1

    second = create_version(store, FINGERPRINT)  # a rebuild without centroids
    newcomer = make_point(random_unit(rng), "newcomer", "0")
    store.upsert([newcomer], second)
    switch_alias(store, second)
    assert store.centroids_alias not in store.engine.aliases()  # no stale centroids of the old version
    assert index.query_people(newcomer.vector, 1, use_centroids=True)[0].payload.person_id == "newcomer"


# -- messages -------------------------------------------------------------------------------------


def test_urls_in_messages_lose_their_credentials():
    def where(url):
        return StoreConfig("faces", Path("data/edge"), url=url).where

    assert where("https://user:s3cret@xyz.cloud.qdrant.io:6333/p") == "Qdrant at https://xyz.cloud.qdrant.io:6333/p"
    assert where("http://localhost:6333") == "Qdrant at http://localhost:6333"
    assert where(None) == where("") == "the embedded store at data/edge"


def test_the_store_config_keeps_the_api_key_and_the_urls_password_secret(settings):
    remote = settings.model_copy(update={"qdrant_url": "https://me:pw-s3cret@xyz.cloud.qdrant.io",
                                         "collection": "faces", "qdrant_api_key": SecretStr("sk-s3cret"),
                                         "qdrant_timeout_s": 3.0})
    config = remote.store_config()
    assert (config.alias, config.url, config.timeout_s, config.embedded) == (
        "faces", "https://me:pw-s3cret@xyz.cloud.qdrant.io", 3.0, False)
    assert config.api_key.get_secret_value() == "sk-s3cret"
    assert config.where == "Qdrant at https://xyz.cloud.qdrant.io"
    shown = f"{config!r} {config} {config.where}"
    assert "sk-s3cret" not in shown and "pw-s3cret" not in shown
    local = settings.store_config()
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

