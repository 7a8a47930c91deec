"""The background fill (``indexing.fill.BackgroundFill``): an app on an empty embedded store fills its
own index in a thread of its process, on its open store, and says how far it got.

Real parts: the real MTCNN, stand-in FaceNet weights, photos of the test sets as the fill's source
(``LOOKALIKE_FILL_SOURCES`` pointed at a local folder), an embedded Qdrant store in a temporary folder.
"""

from __future__ import annotations


import pytest

from conftest import CORE_FIXTURES, FIVE_TRAIN, image_files
from support import copy_photos

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


def test_fill_of_an_empty_store_reports_filling_then_answers(pipeline, store, settings, tmp_path, monkeypatch):
    import indexing.fill
    from lookalike.errors import EmptyIndexError

    folder = copy_photos(FIVE_TRAIN, tmp_path / "people", per_person=3)
    fill_settings = settings.model_copy(update={"fill_sources": (str(folder),), "fill_sample": 4})
    fill = indexing.fill.BackgroundFill(store, pipeline, fill_settings)
    assert fill.progress().state == "idle"
    assert fill.needed()

    seen_before_alias = []
    finalize = indexing.fill.Indexer.finalize

    def watched(self, *args, **kwargs):  # the last moment before the alias exists
        seen_before_alias.append((fill.progress(), store.current_collection()))
        with pytest.raises(EmptyIndexError):
            store.query_people(pipeline.faces(image_files(folder)[0])[0].vector, 3)
        return finalize(self, *args, **kwargs)

    monkeypatch.setattr(indexing.fill.Indexer, "finalize", watched)
    assert fill.start() is True
    assert fill.progress().state == "filling" and "Filling the index" in fill.progress().message
    assert fill.start() is False  # one fill per app
    done = fill.wait(300)

    (during, alias), = seen_before_alias
    assert during.state == "filling" and alias is None  # until the fill completes, nothing answers
    assert 0 < during.done == during.total == 4 and during.faces == 4
    assert done.state == "done", done.message
    assert (done.done, done.total, done.faces) == (4, 4, 4) and done.fraction == 1.0
    assert "holds 4 faces of 4 people" in done.message
    assert store.count() == 4 and not fill.needed()
    vector = pipeline.faces(image_files(folder / "madonna")[0])[0].vector
    people = {m.payload.person_id for m in store.query_people(vector, 5)}
    assert len(people) == 4  # one photo each of four of the five people (sample 4, one per person)


def test_fill_that_cannot_read_its_source_fails_with_one_sentence(pipeline, store, settings, tmp_path):
    from indexing.fill import BackgroundFill

    fill = BackgroundFill(store, pipeline, settings.model_copy(
        update={"fill_sources": (str(tmp_path / "no_such_folder"),)}))
    assert fill.start()
    failed = fill.wait(120)
    assert failed.state == "failed"
    assert failed.message.startswith("Filling the index failed: ") and "no such folder" in failed.message
    assert "\n" not in failed.message and store.count() == 0


def test_fill_is_not_needed_with_a_server_a_zero_sample_or_faces_in_place(pipeline, store, settings, tmp_path):
    from indexing.fill import BackgroundFill
    from indexing.indexer import Indexer
    from indexing.sources import open_sources

    assert not BackgroundFill(store, pipeline, settings.model_copy(update={"fill_sample": 0})).needed()
    server = settings.model_copy(update={"qdrant_url": "http://127.0.0.1:9"})
    assert not BackgroundFill(store, pipeline, server).needed()  # decided without asking any store
    Indexer(pipeline, store).run(open_sources(str(copy_photos(FIVE_TRAIN, tmp_path / "one", 1))), sample=1, progress=False)
    assert not BackgroundFill(store, pipeline, settings).needed()
