"""Fixtures of the app's tests (``test_app.py``, ``test_browser.py``): a small embedded index built from
the committed test photos once per session, and the app launched on 127.0.0.1 over it.

The index: the first 4 photos of each of the 5 people of ``five_celebs/train`` (copied to a temporary
folder) plus the 31 one-photo people of ``datasets/celebrity_bios_mini`` (with biographies): 36 people,
more than any test asks matches for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import BIOS
from support import FIVE_TRAIN, copy_photos, free_port, image_files

PER_PERSON = 4


@dataclass
class AppIndex:
    """The test index: its store, and the indexed photo files of five_celebs by person id."""

    store: object
    photos: dict[str, list[Path]]


@dataclass
class RunningApp:
    url: str
    demo: object
    finder: object


def launch(finder, problem=None) -> RunningApp:
    """``build_app`` launched in this process on a free port of 127.0.0.1."""
    from lookalike.ui import build_app, launch_kwargs

    demo = build_app(finder, problem)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                **launch_kwargs())
    return RunningApp(f"http://127.0.0.1:{port}/", demo, finder)


@pytest.fixture(scope="session")
def app_index(base_settings, pipeline, tmp_path_factory) -> AppIndex:
    from indexing.indexer import Indexer
    from indexing.sources import open_sources
    from lookalike.people import person_id
    from lookalike.store import FaceStore

    folder = copy_photos(FIVE_TRAIN, tmp_path_factory.mktemp("app_faces"), PER_PERSON)
    photos = {person_id(person.name): image_files(person) for person in sorted(folder.iterdir())}
    settings = base_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("app_data")})
    store = FaceStore.open(settings)
    report = Indexer(pipeline, store).run(open_sources(str(folder)) + open_sources(str(BIOS)), progress=False)
    assert report.faces_indexed >= 30, report.summary()
    yield AppIndex(store, photos)
    store.close()


@pytest.fixture(scope="session")
def app_server(app_index, pipeline) -> RunningApp:
    """The app over the test index, on 127.0.0.1 (5 matches per face by default)."""
    from lookalike.search import LookalikeFinder

    running = launch(LookalikeFinder(pipeline, app_index.store, top_k=5))
    yield running
    running.demo.close()
