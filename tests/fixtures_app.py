"""Fixtures of the app's tests (``test_app.py``, ``test_browser.py``, ``test_load.py``): a small embedded
index built once per session, and the app launched on 127.0.0.1 over it.

The index: the first 4 photos of each of the 5 people of ``five_celebs/train`` (copied to a temporary
folder; no metadata) plus the 31 people of ``tests/data/bios.json``, one LFW photo each, with their
TMDB-style metadata (biography, gender, known_for_department): 36 people, more than any test asks
matches for.
"""

from __future__ import annotations

import json
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import FIVE_TRAIN

TEST_DATA = Path(__file__).resolve().parent / "data"
BIOS_JSON = TEST_DATA / "bios.json"
PER_PERSON = 4


def bios_rows() -> list[dict]:
    """The records of ``tests/data/bios.json`` (``photo`` is relative to ``tests/data``)."""
    return json.loads(BIOS_JSON.read_text())


def bios_dataset(folder: Path) -> Path:
    """``bios.json`` with each person's photo as a dataset in the layout of ``ashraq/tmdb-celeb-10k``
    (``image``, ``name`` and the metadata columns), saved under ``folder``."""
    import datasets

    rows = bios_rows()
    columns = {key: [row.get(key) for row in rows] for key in rows[0] if key != "photo"}
    columns["image"] = [{"bytes": (TEST_DATA / row["photo"]).read_bytes(), "path": None} for row in rows]
    features = datasets.Features({key: (datasets.Image() if key == "image" else datasets.Value(_kind(columns[key])))
                                  for key in columns})
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(folder))
    return folder


def _kind(values: list) -> str:
    present = [v for v in values if v is not None]
    if all(isinstance(v, bool) for v in present):
        return "bool"
    if all(isinstance(v, int) for v in present) and present:
        return "int64"
    if all(isinstance(v, (int, float)) for v in present) and present:
        return "float64"
    return "string"


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(finder, problem=None, mcp: bool = False) -> RunningApp:
    """``build_app`` launched in this process on a free port of 127.0.0.1 (with ``launch_kwargs``)."""
    from webapp.page import build_app
    from webapp.wiring import FinderHolder, launch_kwargs

    demo = build_app(FinderHolder(finder, problem))
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                mcp_server=mcp, **launch_kwargs())
    return RunningApp(f"http://127.0.0.1:{port}/", demo, finder)


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
def app_index(base_settings, pipeline, tmp_path_factory) -> AppIndex:
    from indexing.indexer import Indexer
    from indexing.sources import open_sources
    from lookalike.people import person_id
    from lookalike.store import FaceStore

    folder = tmp_path_factory.mktemp("app_faces")
    photos: dict[str, list[Path]] = {}
    for person in sorted(p for p in FIVE_TRAIN.iterdir() if p.is_dir()):
        chosen = sorted(person.glob("*.jpg"))[:PER_PERSON]
        (folder / person.name).mkdir()
        for src in chosen:
            shutil.copy(src, folder / person.name / src.name)
        photos[person_id(person.name)] = [folder / person.name / src.name for src in chosen]
    bios = bios_dataset(tmp_path_factory.mktemp("app_bios") / "bios")
    settings = base_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("app_data")})
    store = FaceStore.open(settings)
    report = Indexer(pipeline, store).run(open_sources(str(folder)) + open_sources(str(bios)), progress=False)
    assert report.faces_indexed >= 30, report.summary()
    yield AppIndex(store, photos)
    store.close()


@pytest.fixture(scope="session")
def app_server(app_index, pipeline) -> RunningApp:
    """The app over the test index, on 127.0.0.1 (5 matches per face by default)."""
    running = launch(app_finder(pipeline, app_index.store), mcp=True)
    yield running
    running.demo.close()
