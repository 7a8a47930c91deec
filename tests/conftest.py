"""Shared fixtures: stand-in FaceNet weights in a temporary TORCH_HOME, the real MTCNN, the committed test
photos (``tests/data``, see ``tests/support.py``), datasets built from them in the hub layouts, and
embedded Qdrant stores in temporary folders. Nothing outside the repository is read.

The stand-in weights load through facenet-pytorch's real ``pretrained="vggface2"`` path. They prove
mechanics, not accuracy: no figure made with them is one. Tests marked ``real_weights`` use the real
vggface2 file where it exists (the weekly quality job downloads it) and are skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from support import (  # noqa: F401  (re-exported: the test modules import these names from conftest)
    DATA,
    FINGERPRINT,
    FIVE_TRAIN,
    FIVE_VAL,
    LFW,
    MULTIFACE,
    ROOT,
    WEIGHTS_FILE_NAME,
    build_bios_dataset,
    build_multifile_dataset,
    build_simple_facenet_dataset,
    build_tmdb_people_dataset,
    image_files,
    make_point,
    open_browser,
    open_store,
    random_unit,
    write_standin_weights,
)

# Gradio's upload folder of this session alone, set before anything imports gradio: other Gradio processes
# on the machine (another test run, a benchmark) share the default /tmp/gradio, and tests count what is
# left in it.
GRADIO_TEMP = Path(tempfile.mkdtemp(prefix="lookalike-test-gradio-"))
os.environ["GRADIO_TEMP_DIR"] = str(GRADIO_TEMP)

# datasets' cache of this session alone: it keys a local folder with a README card by the card, not by
# the files' content, so a fixture rebuilt with other rows (another session, another checkout) would read
# the rows cached before.
os.environ["HF_DATASETS_CACHE"] = str(Path(tempfile.mkdtemp(prefix="lookalike-test-hf-datasets-")))

# One cache of ONNX exports and timed runtime choices for the session (its processes too): they depend on
# the weights and the machine, not on a test's data folder, so each test need not export and time again.
MODEL_CACHE = Path(tempfile.mkdtemp(prefix="lookalike-test-models-"))
os.environ["LOOKALIKE_MODEL_CACHE_DIR"] = str(MODEL_CACHE)

# Where a real vggface2 file would be, read before the session points TORCH_HOME at the stand-ins.
REAL_WEIGHTS = Path(os.environ.get("LOOKALIKE_REAL_WEIGHTS") or Path(
    os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "torch"
) / "checkpoints" / WEIGHTS_FILE_NAME)

# Datasets in the layouts of the default hub datasets, built from the committed photos once per session
# (``pytest_sessionstart``) into a temporary folder removed at the end. Their folder names are the
# sources' labels in the payloads (``celebrity_bios_mini:train:3``).
BUILT = Path(tempfile.mkdtemp(prefix="lookalike-test-datasets-"))
BIOS = BUILT / "celebrity_bios_mini"
"""``ashraq/tmdb-celeb-10k`` layout: the 31 LFW people, one photo each, ``name`` + TMDB metadata columns."""
CELEBRITY_MINI = BUILT / "celebrity_mini"
"""``lansinuote/simple_facenet`` layout: five_celebs, 92 train + 24 test rows, ``image`` + ``label``."""
LFW_FILES = BUILT / "lfw_files"
"""The hub's multi-file layout: 5 parquet files of 63 rows in all (2 LFW photos of each of 31 people, and
one photo again under another name in the last file), ``image`` + ``name`` + ``caption``, and the README
card ``push_to_hub`` writes (configs, split row count)."""
TMDB_PEOPLE = BUILT / "tmdb_people_mini"
"""``ashraq/tmdb-people-image`` layout: 3 parquet files of 4, 5 and 3 rows, TMDB columns, some people of
BIOS under the same TMDB id (``tests/support.py``, ``TMDB_PEOPLE_FILES``)."""


def pytest_sessionstart(session: pytest.Session) -> None:
    build_bios_dataset(BIOS)
    build_simple_facenet_dataset(CELEBRITY_MINI)
    build_multifile_dataset(LFW_FILES)
    build_tmdb_people_dataset(TMDB_PEOPLE)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(BUILT, ignore_errors=True)
    shutil.rmtree(GRADIO_TEMP, ignore_errors=True)
    shutil.rmtree(os.environ["HF_DATASETS_CACHE"], ignore_errors=True)
    shutil.rmtree(MODEL_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def torch_home(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """A temporary TORCH_HOME holding stand-in vggface2 weights, set for the whole session.

    The weights are calibrated on one torch thread (OpenMP's spinning threads make it 5x slower on a
    busy 2-core machine) and kept in pytest's cache, keyed by the code and photos that make them.
    """
    import torch

    home = tmp_path_factory.mktemp("torch_home")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cache = getattr(pytestconfig, "cache", None)  # None with -p no:cacheprovider
        write_standin_weights(home, cache.mkdir("standin-weights") if cache else None)
    finally:
        torch.set_num_threads(threads)
    os.environ["TORCH_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def real_weights() -> Path:
    """The real vggface2 weights file, or a skip where it is absent (it cannot be downloaded here)."""
    if not REAL_WEIGHTS.is_file():
        pytest.skip(f"the real vggface2 weights are not at {REAL_WEIGHTS} (the weekly quality job downloads them)")
    return REAL_WEIGHTS


def server_url() -> str | None:
    """``QDRANT_URL`` when a Qdrant server answers there (the qdrant-server CI job starts one), else None."""
    url = os.environ.get("QDRANT_URL")
    if not url:
        return None
    import httpx

    try:
        httpx.get(url.rstrip("/") + "/healthz", timeout=2.0).raise_for_status()
    except httpx.HTTPError:
        return None
    return url


NO_SERVER = "no Qdrant server answers at QDRANT_URL (the qdrant-server CI job starts one)"


@pytest.fixture
def server_settings(base_settings, tmp_path: Path):
    """Settings for the Qdrant server at ``QDRANT_URL`` with a collection alias of this test alone (its
    collections are deleted afterwards); skipped where no server answers."""
    import uuid

    from lookalike.index.store import FaceStore

    url = server_url()
    if url is None:
        pytest.skip(NO_SERVER)
    alias = f"test_{uuid.uuid4().hex[:10]}"
    settings = base_settings.model_copy(update={"qdrant_url": url, "collection": alias, "data_dir": tmp_path / "data"})
    yield settings
    cleanup = FaceStore.open(settings.store_config())
    cleanup.engine.switch_aliases({a: None for a in cleanup.engine.aliases() if a.startswith(alias)})
    for name in cleanup.collections():
        if name.startswith(alias):
            cleanup.engine.delete_collection(name)
    cleanup.close()


@pytest.fixture(scope="session")
def base_settings(torch_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """Settings for an embedded store in a session-wide temporary folder, on the CPU."""
    from lookalike.settings import Settings

    return Settings(data_dir=tmp_path_factory.mktemp("data"), device="cpu", qdrant_url=None, weights=None)


@pytest.fixture(scope="session")
def pipeline(base_settings):
    """One face pipeline (real MTCNN, stand-in FaceNet weights) for the whole session."""
    from lookalike.faces import FacePipeline

    return FacePipeline(base_settings.face_config())


@pytest.fixture
def settings(base_settings, tmp_path: Path):
    """Settings whose embedded store lives in this test's own temporary folder."""
    return base_settings.model_copy(update={"data_dir": tmp_path / "data"})


@pytest.fixture
def store(settings):
    """An empty embedded store of this test, closed afterwards."""
    from lookalike.index.store import FaceStore

    opened = FaceStore.open(settings.store_config())
    yield opened
    opened.close()


@pytest.fixture(params=["edge", "local", pytest.param("server", marks=pytest.mark.qdrant_server)])
def engine_settings(request, settings):
    """(kind, settings) of each engine (``support.open_store``): on a server, a collection alias of this
    test alone, removed afterwards."""
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
def six_people(any_store):
    """Six people, one random point each, in celebrities_v1 behind the alias of each engine's store."""
    import numpy as np

    from indexing.versions import ensure_collection

    rng = np.random.default_rng(0)
    ensure_collection(any_store, FINGERPRINT)
    points = [make_point(random_unit(rng), f"person-{i}", "0") for i in range(6)]
    any_store.upsert(points)
    return any_store, points


# -- the app's tests (tests/fixtures_app.py): one test index and one running app per session ----------
from fixtures_app import app_index, app_server, client, private_app  # noqa: E402,F401


@pytest.fixture(scope="module")
def one_torch_thread(torch_home):
    """torch on one thread for a module (restored after): 5-15x less CPU on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CORE_FIXTURES = ("torch_home", "one_torch_thread")
"""``pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)`` in a module that runs the models."""


@pytest.fixture
def cli(monkeypatch, pipeline, tmp_path):
    """``indexing.cli.main`` in this process, on an embedded store under ``tmp_path/cli``, with the
    session's (real) face pipeline instead of loading the models again for every call."""
    import lookalike.faces
    from indexing.cli import main

    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("LOOKALIKE_DEVICE", "cpu")
    for name in ("QDRANT_URL", "QDRANT_API_KEY", "LOOKALIKE_QDRANT_URL", "LOOKALIKE_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(lookalike.faces, "FacePipeline", lambda config=None: pipeline)
    return main


# -- the browser tests (tests/test_browser.py, tests/test_private_mode.py) ----------------------------------


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright):
    """One Chromium for the module; each test's page is in a context of its own (no shared storage or
    cookies). Tests with a fake camera open their own Chromium."""
    browser = open_browser(playwright)
    yield browser
    browser.close()
