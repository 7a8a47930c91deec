"""FaceNet weights (lookalike.faces.facenet): the real ``pretrained="vggface2"`` path, fingerprints, and a clear
WeightsMissingError instead of a traceback when the file is missing and cannot be downloaded."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import CORE_FIXTURES, ROOT
from lookalike.errors import WeightsMissingError
from lookalike.faces.facenet import WEIGHTS_FILE_NAME, default_weights_path, file_sha256, load_facenet
from lookalike.fingerprint import PIPELINE_VERSION
from lookalike.settings import Settings

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def weights_file(torch_home: Path) -> Path:
    path = torch_home / "checkpoints" / WEIGHTS_FILE_NAME
    assert path.is_file()
    return path


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """facenet-pytorch's download fails at once, as with no network; the URLs it tried are recorded."""
    import facenet_pytorch.models.inception_resnet_v1 as resnet_module

    tried: list[str] = []

    def fail(url, dst, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(resnet_module, "download_url_to_file", fail)
    return tried


def _first_weight(model: Any) -> torch.Tensor:
    return model.conv2d_1a.conv.weight.detach()


def test_stand_in_weights_load_through_pretrained_path(weights_file: Path, torch_home: Path, offline):
    assert os.environ["TORCH_HOME"] == str(torch_home)
    assert default_weights_path() == weights_file
    model: Any
    model, fingerprint = load_facenet()
    assert not offline  # read from $TORCH_HOME/checkpoints, nothing downloaded
    assert not model.training
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    assert torch.equal(_first_weight(model), state["conv2d_1a.conv.weight"])
    assert torch.equal(model.last_bn.running_mean, state["last_bn.running_mean"])
    out = model(torch.zeros(2, 3, 160, 160))
    assert out.shape == (2, 512)


def test_fingerprint_names_the_file_hash(weights_file: Path, pipeline):
    _, fingerprint = load_facenet()
    assert fingerprint.weights_sha256 == sha256(weights_file)
    assert fingerprint.model == "InceptionResnetV1" and fingerprint.weights == "vggface2"
    assert fingerprint.pipeline == PIPELINE_VERSION
    assert fingerprint.as_dict() == {"model": "InceptionResnetV1", "weights": "vggface2",
                                     "weights_sha256": sha256(weights_file), "pipeline": PIPELINE_VERSION}
    # The pipeline's fingerprint is the weights' plus the detection settings that change the vectors.
    assert pipeline.fingerprint == dataclasses.replace(fingerprint, detection=pipeline.fingerprint.detection)
    assert pipeline.fingerprint.detection == "min face 40 px, max side 1280 px"
    assert sha256(weights_file)[:12] in fingerprint.describe()


def test_file_hash_follows_content(tmp_path: Path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"one")
    first = file_sha256(path)
    assert first == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"other content")
    assert file_sha256(path) == hashlib.sha256(b"other content").hexdigest()


def test_missing_weights_offline_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline):
    empty = tmp_path / "empty_torch_home"
    empty.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(empty))
    expected = empty / "checkpoints" / WEIGHTS_FILE_NAME
    with pytest.raises(WeightsMissingError) as info:
        load_facenet()
    assert offline and offline[0].endswith(WEIGHTS_FILE_NAME)  # it did try the real download
    message = info.value.detail  # the operator's account; a visitor reads neither path nor variable
    assert str(expected) not in str(info.value) and "LOOKALIKE_WEIGHTS" not in str(info.value)
    assert str(expected) in message
    assert "LOOKALIKE_WEIGHTS" in message
    assert "\n" not in message and "Traceback" not in message
    assert info.value.reason == "weights_missing"
    assert not expected.exists()


def test_missing_weights_offline_subprocess(tmp_path: Path):
    """A fresh process with an empty TORCH_HOME and no way out (proxy on a closed port): one sentence."""
    empty = tmp_path / "empty_torch_home"
    empty.mkdir()
    code = textwrap.dedent("""
        from lookalike.errors import LookalikeError
        from lookalike.faces import FacePipeline
        from lookalike.settings import Settings
        try:
            FacePipeline(Settings(device="cpu", data_dir="unused").face_config())
        except LookalikeError as exc:
            print(type(exc).__name__)
            print(exc.detail)
        else:
            print("loaded")
    """)
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"NO_PROXY", "LOOKALIKE_WEIGHTS"}}
    env.update(TORCH_HOME=str(empty), OMP_NUM_THREADS="1", https_proxy="http://127.0.0.1:9",
               HTTPS_PROXY="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "WeightsMissingError", done.stdout
    assert str(empty / "checkpoints" / WEIGHTS_FILE_NAME) in lines[1]


def test_weights_setting_points_at_the_file(weights_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            offline):
    elsewhere = tmp_path / "my weights" / "facenet.pt"
    elsewhere.parent.mkdir()
    shutil.copy(weights_file, elsewhere)
    empty = tmp_path / "empty_torch_home"
    empty.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(empty))  # the default place holds nothing
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", str(elsewhere))
    settings = Settings()
    assert settings.weights == elsewhere
    model, fingerprint = load_facenet(settings.weights)
    assert not offline
    assert fingerprint.weights_sha256 == sha256(weights_file)
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    assert torch.equal(_first_weight(model), state["conv2d_1a.conv.weight"])
    assert not model.training


def test_weights_setting_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline):
    missing = tmp_path / "nowhere" / WEIGHTS_FILE_NAME
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", str(missing))
    with pytest.raises(WeightsMissingError) as info:
        load_facenet(Settings().weights)
    assert str(missing) in info.value.detail
    assert not offline  # an explicit file is never downloaded


@pytest.mark.parametrize("where", ["setting", "torch_home"])
def test_unreadable_weights_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline,
                                                  where: str):
    """A corrupt or truncated weights file gives WeightsMissingError naming it, not a torch traceback."""
    home = tmp_path / "home"
    bad = home / "checkpoints" / WEIGHTS_FILE_NAME
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not a torch checkpoint")
    monkeypatch.setenv("TORCH_HOME", str(home))
    with pytest.raises(WeightsMissingError) as info:
        load_facenet(bad if where == "setting" else None)
    assert str(bad) in info.value.detail
    assert not offline
