"""Settings (lookalike.settings, webapp.settings): defaults, the environment, the face pipeline's share,
and the API key that never shows."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from conftest import ROOT
from lookalike.errors import StoreUnavailableError
from lookalike.settings import Settings
from support import free_port

FAKE_KEY = "sk-FAKE-KEY-1234567890"
FAKE_PASSWORD = "pw-FAKE-PASS-0987"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No QDRANT_* or LOOKALIKE_* variables, and a working folder without a .env file."""
    for name in list(os.environ):
        if name.upper().startswith(("QDRANT_", "LOOKALIKE_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults(clean_env):
    settings = Settings()
    assert settings.qdrant_url is None and settings.qdrant_api_key is None
    assert settings.embedded
    assert settings.collection == "celebrities"
    assert settings.data_dir == Path("data")
    assert settings.embedded_path.parent == Path("data")
    assert settings.model_cache == Path("data") / "onnx"
    assert Settings(model_cache_dir=Path("/cache")).model_cache == Path("/cache")
    assert settings.device == "auto"
    assert settings.top_k == 5
    assert settings.weights is None
    assert settings.max_image_pixels == 50_000_000
    assert settings.detect_max_side == 1280
    assert settings.min_face_size == 40
    assert settings.embedder == "auto" and settings.detector_runtime == "auto"
    assert settings.qdrant_timeout_s > 0
    assert Settings(device="cpu").face_config().resolved_device() == "cpu"
    assert settings.face_config().resolved_device() in {"cpu", "cuda"}


def test_the_face_config_takes_the_face_settings_and_defaults_to_them(clean_env, tmp_path: Path):
    from lookalike.faces import FaceConfig

    assert Settings().face_config() == FaceConfig()  # one set of defaults, whichever way a pipeline is built
    clean_env.setenv("LOOKALIKE_MIN_FACE_SIZE", "60")
    clean_env.setenv("LOOKALIKE_DETECTOR", "facenet")
    clean_env.setenv("LOOKALIKE_EMBEDDER", "onnx")
    config = Settings(data_dir=tmp_path, weights=tmp_path / "w.pt", device="cpu").face_config()
    assert config == FaceConfig(weights=tmp_path / "w.pt", device="cpu", model_cache=tmp_path / "onnx",
                                detector="facenet", embedder="onnxruntime", min_face_size=60)


def test_the_app_settings_read_the_same_environment_and_the_core_settings_lack_the_apps_own(clean_env):
    from webapp.settings import AppSettings

    clean_env.delenv("GRADIO_SERVER_NAME", raising=False)
    clean_env.setenv("LOOKALIKE_TOP_K", "7")
    clean_env.setenv("LOOKALIKE_FILL_SAMPLE", "12")
    clean_env.setenv("GRADIO_SERVER_PORT", "7999")
    clean_env.setenv("LOOKALIKE_MAX_UPLOAD_MB", "2.5")
    app = AppSettings()
    assert (app.top_k, app.fill_sample, app.server_port, app.max_upload_mb) == (7, 12, 7999, 2.5)
    assert (app.server_name, app.mcp, app.torch_threads, app.api_calls_per_minute, app.proxy_hops) == (
        "0.0.0.0", True, 1, 60, 1)
    assert set(Settings.model_fields) < set(AppSettings.model_fields)
    assert not hasattr(Settings(), "fill_sample") and not hasattr(Settings(), "server_port")


def test_runtime_settings_take_one_word_each_and_the_old_onnx_means_onnxruntime(clean_env):
    clean_env.setenv("LOOKALIKE_EMBEDDER", "onnx")
    clean_env.setenv("LOOKALIKE_DETECTOR_RUNTIME", "openvino")
    settings = Settings()
    assert settings.embedder == "onnxruntime" and settings.detector_runtime == "openvino"
    for word in ("openvino", "onnxruntime", "torch", "auto"):
        assert Settings(embedder=word).embedder == word
    with pytest.raises(ValueError, match="'openvino', 'onnxruntime' or 'torch'"):
        Settings(detector_runtime="onnx")  # no old meaning to keep: OpenVINO or onnxruntime would be a guess


def test_qdrant_from_environment(clean_env):
    clean_env.setenv("QDRANT_URL", "https://example.cloud.qdrant.io:6333")
    clean_env.setenv("QDRANT_API_KEY", FAKE_KEY)
    settings = Settings()
    assert settings.qdrant_url == "https://example.cloud.qdrant.io:6333"
    assert settings.qdrant_api_key.get_secret_value() == FAKE_KEY
    assert not settings.embedded


def test_blank_url_means_embedded(clean_env):
    clean_env.setenv("QDRANT_URL", "  ")
    assert Settings().qdrant_url is None and Settings().embedded


def test_prefixed_settings_from_environment(clean_env, tmp_path: Path):
    clean_env.setenv("LOOKALIKE_TOP_K", "7")
    clean_env.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "store"))
    clean_env.setenv("LOOKALIKE_DEVICE", "cpu")
    clean_env.setenv("LOOKALIKE_COLLECTION", "faces")
    clean_env.setenv("LOOKALIKE_WEIGHTS", str(tmp_path / "w.pt"))
    settings = Settings()
    assert settings.top_k == 7
    assert settings.data_dir == tmp_path / "store"
    assert settings.embedded_path.parent == tmp_path / "store"
    assert settings.device == "cpu" and settings.face_config().device == "cpu"
    assert settings.collection == "faces"
    assert settings.weights == tmp_path / "w.pt"


def test_invalid_values_are_refused(clean_env):
    clean_env.setenv("LOOKALIKE_TOP_K", "0")
    with pytest.raises(ValueError):
        Settings()


def test_api_key_never_shows_in_settings(clean_env):
    clean_env.setenv("QDRANT_URL", "https://example.cloud.qdrant.io")
    clean_env.setenv("QDRANT_API_KEY", FAKE_KEY)
    settings = Settings()
    assert FAKE_KEY not in repr(settings)
    assert FAKE_KEY not in str(settings)
    assert FAKE_KEY not in settings.model_dump_json()
    assert FAKE_KEY not in repr(settings.model_dump())
    assert FAKE_KEY not in f"{settings!r} {settings} {settings.qdrant_api_key}"
    assert FAKE_KEY not in repr(settings.model_copy(update={"top_k": 3}))


def test_the_urls_password_never_shows_in_the_settings_repr(clean_env):
    from webapp.settings import AppSettings

    clean_env.setenv("QDRANT_URL", f"https://me:{FAKE_PASSWORD}@example.cloud.qdrant.io:6333/base")
    settings = Settings()
    assert settings.qdrant_url == f"https://me:{FAKE_PASSWORD}@example.cloud.qdrant.io:6333/base"  # used to connect
    assert settings.store_config().url == settings.qdrant_url
    for shown in (repr(settings), str(settings), repr(settings.model_copy(update={"top_k": 3})), repr(AppSettings())):
        assert "qdrant_url='https://example.cloud.qdrant.io:6333/base'" in shown
        assert FAKE_PASSWORD not in shown and "me:" not in shown


def test_messages_lose_url_credentials_and_the_qdrant_password():
    from lookalike.redaction import redact

    environ = {"QDRANT_URL": f"https://me:{FAKE_PASSWORD}@example.cloud.qdrant.io"}
    message = (f"Qdrant at https://me:{FAKE_PASSWORD}@example.cloud.qdrant.io:6333/x failed (password "
               f"{FAKE_PASSWORD}); see http://token@host/a and mail me@example.com")
    assert redact(message, environ) == ("Qdrant at https://example.cloud.qdrant.io:6333/x failed (password ***); "
                                        "see http://host/a and mail me@example.com")
    assert redact(f"user pw{'%40'}x", {"QDRANT_URL": "http://u:pw%40x@h"}) == "user ***"  # decoded too
    assert redact("a word", {"QDRANT_URL": "http://u:a@h"}) == "a word"  # too short to blank out of free text


def test_the_indexers_one_line_errors_lose_the_urls_password(clean_env):
    from indexing.messages import one_line

    clean_env.setenv("QDRANT_URL", f"https://me:{FAKE_PASSWORD}@example.cloud.qdrant.io")
    text = one_line(ConnectionError(f"cannot reach https://me:{FAKE_PASSWORD}@example.cloud.qdrant.io/collections"))
    assert FAKE_PASSWORD not in text and "https://example.cloud.qdrant.io/collections" in text


@pytest.mark.timeout(120)
def test_api_key_never_shows_in_logs_or_errors(clean_env, caplog: pytest.LogCaptureFixture,
                                               capfd: pytest.CaptureFixture, tmp_path: Path):
    from lookalike.index.query import FaceIndex
    from lookalike.index.store import FaceStore

    settings = Settings(qdrant_url=f"http://me:{FAKE_PASSWORD}@127.0.0.1:{free_port()}",
                        qdrant_api_key=SecretStr(FAKE_KEY), qdrant_timeout_s=2.0, data_dir=tmp_path)
    assert settings.qdrant_api_key is not None and settings.qdrant_api_key.get_secret_value() == FAKE_KEY
    caplog.set_level(logging.DEBUG)  # every logger, every level: httpx, httpcore, qdrant_client, ours
    messages = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = settings.store_config()
        store = FaceStore.open(config)
        for call in (store.count, lambda: FaceIndex(store).query_people(np.ones(512, np.float32), 3)):
            with pytest.raises(StoreUnavailableError) as info:
                call()
            messages.append(info.value.detail)  # the operator's message, which names the store
            messages.append(str(info.value))
            messages.append(repr(info.value))
        messages += [repr(config), str(config), config.where]  # the store's own config, as a log line would show it
        messages += [repr(settings), str(settings)]
        logging.getLogger("lookalike").error("store failed: %s", info.value.detail)
        logging.getLogger("lookalike").info("settings: %s", settings)
        store.close()
    out, err = capfd.readouterr()
    assert caplog.records  # something was logged, so the check below looks at real output
    assert "127.0.0.1" in messages[0]
    for text in [*messages, caplog.text, out, err, *(str(w.message) for w in caught)]:
        assert FAKE_KEY not in text
        assert "FAKE-KEY" not in text
        assert "FAKE-PASS" not in text


def test_core_imports_without_gradio_and_import_lookalike_alone_stays_light():
    code = ("import sys, lookalike; assert 'torch' not in sys.modules, 'import lookalike loaded torch'; "
            "from lookalike import FaceMatches, LookalikeFinder, Match, NoFaceError, SearchResult; "
            "import lookalike.search as search, lookalike.index.store, lookalike.faces; "
            "assert (LookalikeFinder, Match, FaceMatches, SearchResult) == (search.LookalikeFinder, search.Match, "
            "search.FaceMatches, search.SearchResult); assert set(lookalike.__all__) <= set(dir(lookalike)); "
            "assert 'gradio' not in sys.modules, 'the core loaded gradio'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
