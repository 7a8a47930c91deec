"""Fixtures of the app's tests (``test_app.py``, ``test_browser.py``, ``test_load.py``): a small embedded
index built once per session, the app launched on 127.0.0.1 over it, and a gradio_client client of it.

The index: the first 4 photos of each of the 5 people of ``five_celebs/train`` (copied to a temporary
folder; no metadata) plus the 31 people of ``tests/data/bios.json`` (the ``celebrity_bios_mini`` dataset of
conftest), one LFW photo each, with their
TMDB-style metadata (biography, gender, known_for_department): 36 people, more than any test asks
matches for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import BIOS
from support import DATA as TEST_DATA  # noqa: F401  (re-exported for the app's tests)
from support import FIVE_TRAIN, copy_photos, image_files, serve
from support import bios_records as bios_rows  # noqa: F401  (re-exported for the app's tests)

PER_PERSON = 4


@dataclass
class AppIndex:
    """The test index: its store, and the indexed photo files of five_celebs by person id."""

    store: Any
    photos: dict[str, list[Path]]


@dataclass
class RunningApp:
    url: str
    demo: Any
    finder: Any


def launch(finder, problem=None, mcp: bool = False, traffic=None) -> RunningApp:
    """``build_app`` launched in this process on a free port of 127.0.0.1 (with ``launch_kwargs``);
    ``traffic``: app settings (``webapp.settings.AppSettings``) whose upload limit, rate limit and proxy
    hops the app takes (default: the default upload limit and no rate limit)."""
    from webapp.finders import FinderHolder
    from webapp.page import build_app
    from webapp.traffic import launch_options
    from webapp.wiring import launch_kwargs

    demo = build_app(FinderHolder(finder, problem))
    kwargs = launch_kwargs() | (launch_options(traffic) if traffic is not None else {})
    return RunningApp(serve(demo, mcp_server=mcp, **kwargs), demo, finder)


def bio_row(name: str) -> dict:
    """The bios.json row of ``name``: TMDB-style metadata (biography, gender, department) and ``photo``."""
    return next(r for r in bios_rows() if r["name"] == name)


def bio_photo(folder: Path, name: str) -> Path:
    """A copy in ``folder`` of the indexed photo of ``name``, a person of bios.json (with metadata)."""
    photo = folder / f"{name.replace(' ', '_')}.jpg"
    photo.write_bytes((TEST_DATA / bio_row(name)["photo"]).read_bytes())
    return photo


def cartoon_face(path: Path) -> Path:
    """A face drawn with circles and an arc: MTCNN finds it (p about 0.81), but it is nobody."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), (235, 235, 245))
    draw = ImageDraw.Draw(image)
    cx, cy, r = 320, 240, 140
    draw.ellipse((cx - r, cy - r * 1.2, cx + r, cy + r * 1.2), fill=(240, 200, 160), outline=(90, 60, 40), width=4)
    for ex in (cx - 55, cx + 55):
        draw.ellipse((ex - 29, cy - 68, ex + 29, cy - 32), fill="white", outline="black", width=3)
        draw.ellipse((ex - 11, cy - 61, ex + 11, cy - 39), fill=(40, 30, 20))
    draw.ellipse((cx - 14, cy - 5, cx + 14, cy + 30), fill=(215, 160, 120))
    draw.arc((cx - 60, cy + 30, cx + 60, cy + 100), 20, 160, fill=(150, 40, 40), width=8)
    image.save(path)
    return path


def app_finder(pipeline, store, **options):
    """The finder the app's tests use: 5 matches per face, the app's default face probability and
    likeness thresholds unless ``options`` say otherwise."""
    from lookalike.search import LookalikeFinder
    from lookalike.settings import Settings

    defaults = Settings.model_fields
    return LookalikeFinder(pipeline, store, top_k=options.pop("top_k", 5),
                           min_face_probability=options.pop("min_face_probability",
                                                            defaults["min_face_probability"].default),
                           min_likeness=options.pop("min_likeness", defaults["min_likeness"].default), **options)


@pytest.fixture(scope="session")
def app_index(base_settings, pipeline, tmp_path_factory) -> Iterator[AppIndex]:
    from indexing.indexer import Indexer
    from indexing.sources import open_sources
    from lookalike.index.people import person_id
    from lookalike.index.store import FaceStore

    folder = copy_photos(FIVE_TRAIN, tmp_path_factory.mktemp("app_faces"), PER_PERSON)
    photos = {person_id(person.name): image_files(person) for person in sorted(folder.iterdir())}
    settings = base_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("app_data")})
    store = FaceStore.open(settings.store_config())
    report = Indexer(pipeline, store).run(open_sources(str(folder)) + open_sources(str(BIOS)), progress=False)
    assert report.faces_indexed >= 30, report.summary()
    yield AppIndex(store, photos)
    store.close()


@pytest.fixture(scope="session")
def app_server(app_index, pipeline) -> Iterator[RunningApp]:
    """The app over the test index, on 127.0.0.1 (5 matches per face by default)."""
    running = launch(app_finder(pipeline, app_index.store), mcp=True)
    yield running
    running.demo.close()


@pytest.fixture(scope="session")
def private_app(app_server) -> RunningApp:
    """:func:`app_server` once its private-mode models are made (in the background, from its pipeline)."""
    from webapp.private import assets_of

    assets = assets_of(app_server.demo)
    assert assets is not None and assets.wait(600), assets and assets.state
    return app_server


@pytest.fixture(scope="session")
def client(app_server):
    """A gradio_client client of :func:`app_server` (call it with ``support.predict``)."""
    from gradio_client import Client

    return Client(app_server.url, verbose=False)
