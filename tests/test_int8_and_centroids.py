"""Indexing's scale options: int8 scalar quantization and per-person mean faces (centroids)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import CORE_FIXTURES, FIVE_TRAIN, image_files
from indexing.versions import create_version, ensure_collection, versions
from lookalike.index.query import FaceIndex
from lookalike.index.storage.port import PayloadFields
from lookalike.index.store import FaceStore, centroids_collection
from lookalike.search import LookalikeFinder
from support import copy_photos

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four photos of each five_celebs person."""
    return copy_photos(FIVE_TRAIN, tmp_path_factory.mktemp("scale_photos"), per_person=4)


def test_int8_collection_answers_with_exact_scores(pipeline, settings, photo_folder):
    """The indexing run end to end with ``quantization="int8"`` on the embedded store. 20 faces stay below
    the indexing threshold, so this proves the plumbing; that int8 search really runs (and that rescoring
    keeps exact cosines) is proven at 1,500 faces in tests/test_storage_contract.py."""
    from indexing.indexer import Indexer
    from indexing.sources import open_sources

    store = FaceStore.open(settings.store_config())
    try:
        Indexer(pipeline, store).run(open_sources(str(photo_folder)), progress=False, quantization="int8")
        photo = image_files(photo_folder / "madonna")[0]
        face = pipeline.faces(photo)[0]
        best = FaceIndex(store).query_people(face.vector, 3)[0]
        assert best.payload.person_id == "madonna"
        # rescoring with the float vectors: the photo's own point scores its exact cosine, 1
        assert best.score == pytest.approx(1.0, abs=1e-4)
    finally:
        store.close()


def test_unknown_quantization_is_refused(store, pipeline):
    with pytest.raises(ValueError, match="quantization"):
        create_version(store, pipeline.fingerprint, "int3")


def test_centroids_hold_one_normalised_mean_face_per_person(pipeline, settings, photo_folder):
    from indexing.indexer import Indexer
    from indexing.sources import open_sources

    store = FaceStore.open(settings.store_config())
    try:
        report = Indexer(pipeline, store).run(open_sources(str(photo_folder)), progress=False, centroids=True)
        assert report.centroids == 5
        collection = store.current_collection()
        records = list(store.points(collection, PayloadFields(include=("person_id",)), with_vectors=True))
        centroid_points = list(store.points(centroids_collection(collection), with_vectors=True))
        assert len(centroid_points) == 5
        for point in centroid_points:
            person = point.payload["person_id"]
            vectors = np.array([r.vector for r in records if r.payload["person_id"] == person], np.float32)
            mean = vectors.mean(axis=0)
            assert point.payload["photos"] == len(vectors) == 4
            assert float(np.dot(np.asarray(point.vector), mean / np.linalg.norm(mean))) > 0.999
            assert point.payload["thumbnail"]  # the most central photo's payload comes along
        finder = LookalikeFinder(pipeline, store, top_k=5, use_centroids=True)
        result = finder.find(image_files(photo_folder / "elton_john")[1])
        people = [m.person_id for m in result.faces[0].matches]
        assert sorted(people) == sorted({"ben-afflek", "elton-john", "jerry-seinfeld", "madonna", "mindy-kaling"})
        scores = [m.score for m in result.faces[0].matches]
        assert scores == sorted(scores, reverse=True)
        json.dumps(result.as_json())
    finally:
        store.close()


def test_recreate_drops_the_old_versions_centroids(pipeline, settings, photo_folder):
    from indexing.indexer import Indexer
    from indexing.sources import open_sources

    store = FaceStore.open(settings.store_config())
    try:
        Indexer(pipeline, store).run(open_sources(str(photo_folder)), progress=False, centroids=True)
        Indexer(pipeline, store).run(open_sources(str(photo_folder)), progress=False, centroids=True, recreate=True)
        names = set(store.collections())
        assert names == {"celebrities_v2", "celebrities_v2_centroids"}
    finally:
        store.close()


def test_ensure_collection_adopts_a_version_left_without_alias(store, pipeline):
    """A first run killed between creating _v1 and pointing the alias resumes _v1, not a new _v2."""
    orphan = create_version(store, pipeline.fingerprint)
    assert store.current_collection() is None
    assert ensure_collection(store, pipeline.fingerprint) == orphan
    assert versions(store) == [orphan]
