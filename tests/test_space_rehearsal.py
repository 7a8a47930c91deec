"""A rehearsal of the Space: exactly the files the sync uploads (``.github/space_upload.py``'s ``stage``),
started as ``python app.py`` in a folder of their own with nothing else on the import path, as the Space
starts it. The first start of a deployment without Qdrant fills its embedded store in the background
(here from a local folder of committed photos), then ``/config`` and the API answer.

Also under ZeroGPU's own start-up: the real ``spaces`` package with ``SPACES_ZERO_GPU=true`` patches
torch's CUDA and reports the decorated functions to the device API at launch; a stand-in of that API on
127.0.0.1 records what the app asks of it. A query must then run on the CPU, asking for no GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import FIVE_TRAIN, image_files
from support import copy_photos, free_port, predict_once_past, recording_server, space_upload

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 240
"""Import, model load, the background fill of a few photos and the first answer, on a busy 2-core machine."""


@pytest.fixture(scope="module")
def fill_folder(tmp_path_factory) -> Path:
    """One photo of each of the five people: what the rehearsal app indexes on its first start."""
    return copy_photos(FIVE_TRAIN, tmp_path_factory.mktemp("fill"), per_person=1)


def stage_space(folder: Path) -> Path:
    space_upload().stage(folder)
    return folder


def app_env(torch_home: Path, data_dir: Path, fill: Path, port: int, **extra: str) -> dict[str, str]:
    """The Space's environment: no Qdrant (the embedded store under ``data_dir``), stand-in weights, the
    fill pointed at ``fill``, no Hub, and nothing of the test session's import path; the session's cache of
    model exports (data, like the weights, not code the upload must carry)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QDRANT", "LOOKALIKE_", "PYTHON", "SPACES_"))}
    env.update(TORCH_HOME=str(torch_home), LOOKALIKE_DATA_DIR=str(data_dir), LOOKALIKE_DEVICE="auto",
               LOOKALIKE_MODEL_CACHE_DIR=os.environ["LOOKALIKE_MODEL_CACHE_DIR"],
               LOOKALIKE_FILL_SOURCES=json.dumps([str(fill)]), LOOKALIKE_FILL_SAMPLE="10",
               GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False", **extra)
    return env


def start_app(folder: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``python app.py`` in ``folder``; ``-E -s``: no PYTHONPATH and no user site, so only the staged
    files (and the installed packages) can be imported."""
    return subprocess.Popen([sys.executable, "-E", "-s", "app.py"], cwd=folder, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_for_config(url: str, process: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "config", timeout=5) as response:
                return json.load(response)
        except OSError:
            time.sleep(1)
    pytest.fail(f"/config did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def rehearse(folder: Path, env: dict[str, str], fill: Path, log: Path) -> dict:
    """Start the staged app, wait for ``/config``, and return the API's answer for a filled photo."""
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    process = start_app(folder, env, log)
    try:
        config = wait_for_config(url, process, log)
        assert config.get("mode") == "blocks" and config.get("components")
        # the API's answer once the background fill is done (until then it says so)
        out = predict_once_past(url, image_files(fill / "madonna")[0], "index_filling", timeout_s=START_TIMEOUT_S,
                                pause_s=2)
    finally:
        stop(process)
    assert "faces" in out, (out, log.read_text()[-3000:])
    assert out["faces"][0]["matches"][0]["person_id"] == "madonna", out
    return out


def test_the_space_starts_from_the_uploaded_files_alone_and_answers(torch_home, fill_folder, tmp_path):
    folder = stage_space(tmp_path / "space")
    assert (folder / "app.py").is_file() and not (folder / "tests").exists() and not (folder / ".github").exists()
    env = app_env(torch_home, tmp_path / "data", fill_folder, free_port())
    rehearse(folder, env, fill_folder, tmp_path / "app.log")


def test_the_rehearsal_fails_when_the_upload_leaves_out_a_file_the_app_needs(torch_home, fill_folder, tmp_path):
    folder = stage_space(tmp_path / "space")
    (folder / "webapp" / "rendering.py").unlink()
    log = tmp_path / "app.log"
    process = start_app(folder, app_env(torch_home, tmp_path / "data", fill_folder, free_port()), log)
    try:
        code = process.wait(START_TIMEOUT_S)
    finally:
        stop(process)
    assert code != 0 and "No module named 'webapp.rendering'" in log.read_text()


def test_on_zerogpu_the_decorated_step_is_reported_and_queries_run_on_the_cpu(torch_home, fill_folder, tmp_path):
    folder = stage_space(tmp_path / "space")
    log = tmp_path / "app.log"
    with recording_server(lambda request, base: {}) as (device_api, calls):  # ZeroGPU's device API
        env = app_env(torch_home, tmp_path / "data", fill_folder, free_port(), SPACES_ZERO_GPU="true",
                      SPACES_ZERO_DEVICE_API_URL=device_api)
        rehearse(folder, env, fill_folder, log)
    paths = [call.path for call in calls]
    assert "/startup-report" in paths  # spaces found a decorated function at launch
    assert not [p for p in paths if p.startswith("/schedule")]  # no query asked for a GPU
    assert "ZeroGPU: queries run on the CPU" in log.read_text()


def test_on_zerogpu_weights_that_cannot_load_still_register_the_step_and_show_the_error_page(torch_home, tmp_path):
    """ZeroGPU stops a Space without a decorated function: the step is registered before any model loads."""
    folder = stage_space(tmp_path / "space")
    log = tmp_path / "app.log"
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch checkpoint")
    port = free_port()
    with recording_server(lambda request, base: {}) as (device_api, calls):
        env = app_env(torch_home, tmp_path / "data", tmp_path, port, SPACES_ZERO_GPU="true",
                      SPACES_ZERO_DEVICE_API_URL=device_api, LOOKALIKE_WEIGHTS=str(broken))
        process = start_app(folder, env, log)
        try:
            config = wait_for_config(f"http://127.0.0.1:{port}/", process, log)
            deadline = time.monotonic() + 30
            while "/startup-report" not in [call.path for call in calls] and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            stop(process)
    assert "/startup-report" in [call.path for call in calls]  # a non-empty registry at launch
    (banner,) = [c["props"]["value"] for c in config["components"] if c.get("props", {}).get("elem_id") == "banner"]
    assert "cannot search right now" in banner and str(broken) not in banner  # the error page, for visitors
    assert str(broken) in log.read_text()  # the operator's details, in the log
