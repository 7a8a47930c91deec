"""The background fill (``webapp.fill.BackgroundFill``): an app on an empty embedded store fills its
own index in a thread of its process, on its open store, and says how far it got.

Real parts: the real MTCNN, stand-in FaceNet weights, photos of the test sets as the fill's source
(``LOOKALIKE_FILL_SOURCES`` pointed at a local folder), an embedded Qdrant store in a temporary folder.
"""

from __future__ import annotations

import pytest

from conftest import CORE_FIXTURES, FIVE_TRAIN, image_files
from support import app_settings, copy_photos

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


def test_fill_of_an_empty_store_reports_filling_then_answers(pipeline, store, settings, tmp_path, monkeypatch):
    import indexing.indexer
    import webapp.fill
    from lookalike.errors import EmptyIndexError
    from lookalike.index.query import FaceIndex

    folder = copy_photos(FIVE_TRAIN, tmp_path / "people", per_person=3)
    fill_settings = app_settings(settings, fill_sources=(str(folder),), fill_sample=4)
    fill = webapp.fill.BackgroundFill(store, pipeline, fill_settings)
    assert fill.progress().state == "idle"
    assert fill.needed()

    seen_before_alias = []
    finalize = indexing.indexer.Indexer.finalize

    def watched(self, *args, **kwargs):  # the last moment before the alias exists
        seen_before_alias.append((fill.progress(), store.current_collection()))
        with pytest.raises(EmptyIndexError):
            FaceIndex(store).query_people(pipeline.faces(image_files(folder)[0])[0].vector, 3)
        return finalize(self, *args, **kwargs)

    monkeypatch.setattr(indexing.indexer.Indexer, "finalize", watched)
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
    people = {m.payload.person_id for m in FaceIndex(store).query_people(vector, 5)}
    assert len(people) == 4  # one photo each of four of the five people (sample 4, one per person)


def test_fill_that_cannot_read_its_source_fails_with_one_sentence(pipeline, store, settings, tmp_path, caplog):
    from webapp.fill import BackgroundFill

    fill = BackgroundFill(store, pipeline, app_settings(settings, fill_sources=(str(tmp_path / "no_such_folder"),)))
    assert fill.start()
    failed = fill.wait(120)
    assert failed.state == "failed"
    assert failed.message.startswith("Filling the index failed") and "\n" not in failed.message
    assert str(tmp_path) not in failed.message  # the page's sentence; the folder and why are in the log
    assert "no such folder" in caplog.text and store.count() == 0


def test_fill_is_not_needed_with_a_server_a_zero_sample_or_faces_in_place(pipeline, store, settings, tmp_path):
    from indexing.indexer import Indexer
    from indexing.sources import open_sources
    from webapp.fill import BackgroundFill

    assert not BackgroundFill(store, pipeline, app_settings(settings, fill_sample=0)).needed()
    server = app_settings(settings, qdrant_url="http://127.0.0.1:9")
    assert not BackgroundFill(store, pipeline, server).needed()  # decided without asking any store
    photos = copy_photos(FIVE_TRAIN, tmp_path / "one", 1)
    Indexer(pipeline, store).run(open_sources(str(photos)), sample=1, progress=False)
    assert not BackgroundFill(store, pipeline, app_settings(settings)).needed()


def test_app_on_an_empty_store_says_it_is_filling_then_answers(base_settings, pipeline, tmp_path, monkeypatch):
    """``python app.py``'s wiring on an empty embedded store, its fill pointed at local photos: until the
    fill is done the page's banner and the API say that the index is being filled; then the API answers
    with matches. (The fill is held at its start by an event so that the 'filling' state can be seen.)"""
    import json
    import threading
    import urllib.request

    from gradio_client import Client

    import indexing.indexer
    import webapp.wiring
    from support import predict, predict_once_past, serve
    from webapp.wiring import create_app, launch_kwargs

    gate = threading.Event()
    write = indexing.indexer.Indexer.write

    def held(self, *args, **kwargs):
        gate.wait(120)
        return write(self, *args, **kwargs)

    monkeypatch.setattr(indexing.indexer.Indexer, "write", held)
    monkeypatch.setattr(webapp.wiring, "FacePipeline", lambda config, wait_for_onnx=False: pipeline)
    folder = copy_photos(FIVE_TRAIN, tmp_path / "people", per_person=1)  # the fill takes each person's one photo
    settings = app_settings(base_settings, data_dir=tmp_path / "data", fill_sources=(str(folder),), fill_sample=5)
    demo = create_app(settings)
    url = serve(demo, **launch_kwargs())
    try:
        config = json.loads(urllib.request.urlopen(url + "config", timeout=30).read())
        banner = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "banner")
        assert "Filling the index" in banner["props"]["value"]
        client = Client(url, verbose=False)
        photo = image_files(folder / "madonna")[0]
        out = predict(client, photo)
        assert out["reason"] == "index_filling" and "Filling the index" in out["error"], out
        gate.set()
        out = predict_once_past(client, photo, "index_filling", timeout_s=120)
        assert "error" not in out, out
        best = max(out["faces"], key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
        assert best["matches"][0]["person_id"] == "madonna" and best["matches"][0]["score"] > 0.999
    finally:
        gate.set()
        demo.close()


def test_the_fill_never_goes_through_the_gpu_step(pipeline, base_settings, monkeypatch):
    """On ZeroGPU with LOOKALIKE_DEVICE=cuda every query's face step asks a visitor's GPU quota; the fill,
    which has no visitor, runs a CPU pipeline of the same model instead."""
    import webapp.zerogpu as zerogpu

    config = base_settings.face_config()
    assert zerogpu.background_pipeline(pipeline, config) is pipeline  # elsewhere: the app's own pipeline
    monkeypatch.setattr(zerogpu, "ON_ZERO_GPU", True)

    class OnTheGpu:  # the app's pipeline there: its face step scheduled on ZeroGPU's GPU
        device = "cuda"

    own = zerogpu.background_pipeline(OnTheGpu(), config)
    assert own.device == "cpu" and own.fingerprint == pipeline.fingerprint
