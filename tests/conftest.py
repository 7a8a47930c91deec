"""Shared fixtures: stand-in FaceNet weights in a temporary TORCH_HOME, the real MTCNN, the photos
of ``../shared/faces`` and embedded Qdrant stores in temporary folders.

The stand-in weights (``../shared/tools/test_weights.py``) load through facenet-pytorch's real
``pretrained="vggface2"`` path. They prove mechanics, not accuracy: no figure made with them is one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FACES = SHARED / "faces"
FIVE_TRAIN = FACES / "five_celebs" / "train"
FIVE_VAL = FACES / "five_celebs" / "val"
LFW = FACES / "lfw_dev"
MULTIFACE = FACES / "multiface.jpg"


def image_files(folder: Path) -> list[Path]:
    """Every image file below ``folder``, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


@pytest.fixture(scope="session")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary TORCH_HOME holding stand-in vggface2 weights, set for the whole session."""
    home = tmp_path_factory.mktemp("torch_home")
    subprocess.run([sys.executable, str(SHARED / "tools" / "test_weights.py"), str(home)], check=True,
                   capture_output=True)
    os.environ["TORCH_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def base_settings(torch_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """Settings for an embedded store in a session-wide temporary folder, on the CPU."""
    from lookalike.settings import Settings

    return Settings(data_dir=tmp_path_factory.mktemp("data"), device="cpu", qdrant_url=None)


@pytest.fixture(scope="session")
def pipeline(base_settings):
    """One face pipeline (real MTCNN, stand-in FaceNet weights) for the whole session."""
    from lookalike.faces import FacePipeline

    return FacePipeline(base_settings)


@pytest.fixture
def settings(base_settings, tmp_path: Path):
    """Settings whose embedded store lives in this test's own temporary folder."""
    return base_settings.model_copy(update={"data_dir": tmp_path / "data"})


@pytest.fixture
def store(settings):
    """An empty embedded store of this test, closed afterwards."""
    from lookalike.store import FaceStore

    opened = FaceStore.open(settings)
    yield opened
    opened.close()


# -- the app's tests (tests/fixtures_app.py): one test index and one running app per session ----------
from fixtures_app import app_index, app_server  # noqa: E402,F401


# -- appended for the core's tests (test_images/faces/weights/store/search/settings) ---------------


@pytest.fixture(scope="session")
def torch_home_single_threaded(request: pytest.FixtureRequest) -> Path:
    """``torch_home``, created (if nobody has yet) with ``OMP_NUM_THREADS=1``.

    On a busy 2-core machine OpenMP's spinning threads make the calibration 5x slower (125 s
    against 23 s). List this fixture first in ``usefixtures`` so it runs before ``pipeline``.
    """
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        return request.getfixturevalue("torch_home")
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


@pytest.fixture(scope="module")
def one_torch_thread(torch_home_single_threaded):
    """torch on one thread for a module (restored after): 5-15x less CPU on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CORE_FIXTURES = ("torch_home_single_threaded", "one_torch_thread")
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
    monkeypatch.setattr(lookalike.faces, "FacePipeline", lambda settings=None: pipeline)
    return main
