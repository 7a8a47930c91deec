"""Bad input through the public API, a property test of the core, faults, secrets
and privacy. The load test is in ``test_load.py``.

Real parts: the app on 127.0.0.1 driven by gradio_client (the session app of ``fixtures_app.py``, or
``python app.py`` subprocesses), real ``python -m indexing`` subprocesses, the real MTCNN, stand-in
FaceNet weights, embedded Qdrant stores in temporary folders. The read-only data folder is a real
read-only bind mount in a private mount namespace (``unshare -m``; root ignores ``chmod``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CORE_FIXTURES, FIVE_TRAIN, LFW, ROOT, image_files
from support import (
    INDEXING_IMPORTS,
    CommandServer,
    app_settings,
    copy_photos,
    free_port,
    predict,
    predict_once_past,
    serve,
)

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)

FAKE_QDRANT_KEY = "sk-FAKE-hardening-123456"
FAKE_HF_TOKEN = "hf_FAKE_hardening_654321"
SECRETS = (FAKE_QDRANT_KEY, FAKE_HF_TOKEN)
REASONS = {"no_face", "not_an_image", "image_too_large", "empty_index", "store_unavailable", "model_mismatch"}


# -- helpers ------------------------------------------------------------------------------------------


OPERATOR_WORDS = ("QDRANT_", "LOOKALIKE_", "HF_TOKEN", "TORCH_HOME", "http://", "https://", "python -m")


def assert_for_visitors(text: str, *places) -> None:
    """``text`` (what the page or the API shows) names no setting, store address, command or server path."""
    for word in (*OPERATOR_WORDS, *(str(p) for p in places)):
        assert word not in text, (word, text)


def _banner(config: str) -> str:
    """The banner's text in the page's ``/config`` (the rest of the page is not a message)."""
    return " ".join(str(c["props"].get("value")) for c in json.loads(config)["components"]
                    if c.get("props", {}).get("elem_id") == "banner")


def assert_faces(out: dict, count: int | None = None) -> None:
    assert "error" not in out, out
    if count is not None:
        assert len(out["faces"]) == count, [f["box"] for f in out["faces"]]
    for face in out["faces"]:
        assert len(face["box"]) == 4 and face["matches"]


def assert_message(out: dict, reason: str, words: str = "") -> None:
    assert set(out) == {"error", "reason"}, out
    assert out["reason"] == reason, out
    assert words in out["error"] and "Traceback" not in out["error"] and len(out["error"]) < 400


def face_image(app_index, person: str = "madonna") -> Image.Image:
    return Image.open(app_index.photos[person][0]).convert("RGB")


def vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def write_big_png(path: Path, side: int) -> Path:
    """A ``side`` x ``side`` black RGB PNG, written row by row (never held in memory): ~400 KB at 12000."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (3 * side)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def tiled(app_index, columns: int, rows: int) -> Image.Image:
    """The face of one lfw photo (its centre 150x150) repeated ``columns`` x ``rows`` times, 30 px apart
    (touching tiles would join half faces across their edges into extra faces)."""
    tile = Image.open(image_files(LFW / "Tony_Blair")[0]).convert("RGB").crop((50, 50, 200, 200))
    step = tile.width + 30
    sheet = Image.new("RGB", (step * columns + 30, step * rows + 30), (128, 128, 128))
    for r in range(rows):
        for c in range(columns):
            sheet.paste(tile, (30 + c * step, 30 + r * step))
    return sheet


# -- bad input through the public API ------------------------------------------------------------------
# Each reason once through the app: it turns the core's typed errors (tests/test_images.py, test_faces.py)
# into a message and keeps serving.


def _make(kind: str, app_index, folder: Path) -> tuple[Path, tuple]:
    """The upload for ``kind`` and what must come back: ("error", reason, words) or ("faces", n)."""
    face = face_image(app_index)
    path = folder / f"{kind}-{uuid.uuid4().hex[:8]}"
    if kind == "empty":
        path = path.with_suffix(".png")
        path.write_bytes(b"")
        return path, ("error", "not_an_image", "empty")
    if kind == "text":
        path = path.with_suffix(".txt")
        path.write_text("This is not a photo.\n" * 50)
        return path, ("error", "not_an_image", "not an image")
    if kind == "truncated_jpeg":
        buffer = io.BytesIO()
        face.save(buffer, "JPEG", quality=90)
        path = path.with_suffix(".jpg")
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        return path, ("error", "not_an_image", "truncated")
    if kind == "one_pixel":
        path = path.with_suffix(".png")
        Image.new("RGB", (1, 1), (200, 150, 120)).save(path)
        return path, ("error", "no_face", "No face")
    if kind == "strip_3000x20":  # MTCNN used to raise "torch.cat(): expected a non-empty list"
        path = path.with_suffix(".png")
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 3000, 3), np.uint8)).save(path)
        return path, ("error", "no_face", "No face")
    if kind == "sixteen_bit":
        path = path.with_suffix(".png")
        gray = np.asarray(face.convert("L"), np.uint16) * 257
        Image.fromarray(gray).save(path)  # mode I;16
        assert Image.open(path).mode.startswith("I")
        return path, ("faces", 1)
    if kind == "palette":
        path = path.with_suffix(".png")
        face.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(path)
        return path, ("faces", 1)
    if kind == "cmyk":
        path = path.with_suffix(".jpg")
        face.convert("CMYK").save(path, quality=92)
        return path, ("faces", 1)
    if kind == "rgba":
        path = path.with_suffix(".png")
        rgba = face.convert("RGBA")
        rgba.putalpha(Image.linear_gradient("L").resize(face.size).point(lambda v: 255 if v > 40 else 0))
        rgba.save(path)
        return path, ("faces", 1)
    if kind == "animated_gif":  # first frame a face, the others plain grey
        path = path.with_suffix(".gif")
        greys = [Image.new("RGB", face.size, (v, v, v)) for v in (100, 160)]
        face.save(path, save_all=True, append_images=greys, duration=100, loop=0)
        assert Image.open(path).n_frames == 3  # type: ignore[attr-defined]
        return path, ("faces", 1)
    if kind == "thirty_faces":
        path = path.with_suffix(".jpg")
        tiled(app_index, 6, 5).save(path, quality=92)
        return path, ("faces", 30)
    if kind == "tiny_face":  # the face ~20 px wide on a 640x480 canvas: below min_face_size (40)
        path = path.with_suffix(".jpg")
        tile = Image.open(image_files(LFW / "Tony_Blair")[0]).convert("RGB").resize((50, 50), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (640, 480), (120, 130, 140))
        canvas.paste(tile, (300, 200))
        canvas.save(path, quality=95)
        return path, ("faces", 1)  # MTCNN still finds it (P-Net's 12 px window at scale 0.3 and up)
    raise AssertionError(kind)


KINDS = ["empty", "text", "truncated_jpeg", "one_pixel", "strip_3000x20", "sixteen_bit", "palette", "cmyk", "rgba",
         "animated_gif", "thirty_faces", "tiny_face"]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_gets_a_message_or_an_answer_and_the_app_keeps_serving(client, app_index, tmp_path, kind):
    path, expected = _make(kind, app_index, tmp_path)
    out = predict(client, path)
    if expected[0] == "error":
        assert_message(out, expected[1], expected[2])
    else:
        assert_faces(out, expected[1])
    if kind == "tiny_face":  # the one face is the small one, where it was pasted
        x1, y1, x2, y2 = out["faces"][0]["box"]
        assert 300 <= x1 < x2 <= 350 and 200 <= y1 < y2 <= 250 and x2 - x1 < 30
    if kind == "thirty_faces":  # one face per tile, each inside its tile
        assert sorted((round(f["box"][1] // 180), round(f["box"][0] // 180)) for f in out["faces"]) == [
            (r, c) for r in range(5) for c in range(6)]
    assert_faces(predict(client, app_index.photos["elton-john"][0]), 1)  # a normal request right after


def test_twelve_thousand_square_png_is_refused_without_decoding(client, app_index, tmp_path):
    path = write_big_png(tmp_path / "bomb.png", 12000)
    assert path.stat().st_size < 2_000_000
    rss_before = vm_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
    out = predict(client, path)
    peak = vm_kib("VmHWM")
    assert_message(out, "image_too_large", "megapixels")
    assert "12000x12000" in out["error"]
    assert (peak - rss_before) / 1024 < 500, f"peak RSS rose by {(peak - rss_before) / 1024:.0f} MB"
    assert_faces(predict(client, app_index.photos["elton-john"][0]), 1)


def test_detector_gives_no_face_for_images_mtcnn_cannot_scan(pipeline):
    """Any side shorter than min_face_size (40) after the shrink to 1280 px left MTCNN without a pyramid level."""
    for size in [(3000, 20), (30, 30), (39, 200), (2000, 45), (12, 12), (1, 1)]:
        assert len(pipeline.detector.detect(Image.new("RGB", size, (90, 90, 90)))) == 0, size
    assert len(pipeline.detector.detect(Image.new("RGB", (40, 40)))) == 0  # scannable, just empty
    many = pipeline.detector.detect_many([Image.new("RGB", (30, 30)), Image.open(image_files(LFW / "Tony_Blair")[0])])
    assert len(many[0]) == 0 and len(many[1]) == 1


# -- property: the core raises only its own typed errors ------------------------------------------------


@pytest.fixture(scope="module")
def core_finder(pipeline, app_index):
    from lookalike.search import LookalikeFinder

    return LookalikeFinder(pipeline, app_index.store, top_k=3)


MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "LA", "I;16", "I", "F", "YCbCr"]
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "WEBP"]


def _small_image_bytes(mode: str, width: int, height: int, fmt: str, seed: int, cut: float) -> bytes | None:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (height, width), np.uint16))
    elif mode in ("I", "F"):
        image = Image.fromarray(rng.integers(0, 2**20, (height, width), np.int32)).convert(mode)
    else:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)).convert(mode)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # this format cannot hold this mode
    data = buffer.getvalue()
    return data if cut >= 1.0 else data[: max(0, int(len(data) * cut))]


def test_core_find_raises_only_typed_errors(core_finder):
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st

    from lookalike.errors import LookalikeError

    images = st.builds(_small_image_bytes, st.sampled_from(MODES), st.integers(1, 64), st.integers(1, 64),
                       st.sampled_from(FORMATS), st.integers(0, 2**32 - 1),
                       st.one_of(st.just(1.0), st.floats(0.0, 1.0)))
    seen: dict[str, int] = {}

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(st.one_of(st.binary(max_size=4096), images, images))
    def check(data):
        assume(data is not None)
        try:
            result = core_finder.find(data)
        except LookalikeError as exc:
            assert exc.reason in REASONS and str(exc)
            seen[exc.reason] = seen.get(exc.reason, 0) + 1
            return
        seen["result"] = seen.get("result", 0) + 1
        assert result.faces  # find() never returns an empty result: no face is a NoFaceError

    check()
    assert seen.get("no_face") and seen.get("not_an_image"), seen  # both kinds of input were exercised


# -- faults -------------------------------------------------------------------------------------------


def _env(torch_home: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"QDRANT_URL", "QDRANT_API_KEY", "HF_TOKEN", "LOOKALIKE_QDRANT_URL", "GRADIO_TEMP_DIR"}}
    env.update(TORCH_HOME=str(torch_home), LOOKALIKE_DATA_DIR=str(data_dir), LOOKALIKE_DEVICE="cpu",
               LOOKALIKE_EMBEDDER="torch", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               GRADIO_ANALYTICS_ENABLED="False", **extra)
    return env


def _read_only(folder: Path, command: list[str]) -> list[str]:
    """``command`` in a private mount namespace where ``folder`` is a read-only bind mount."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available")
    quoted = " ".join(f"'{c}'" for c in command)
    script = f"mount --bind '{folder}' '{folder}' && mount -o remount,ro,bind '{folder}' '{folder}' && exec {quoted}"
    return ["unshare", "-m", "sh", "-c", script]


def test_locked_store_at_start_up_says_busy_and_recovers_when_released(pipeline, base_settings, torch_home,
                                                                          tmp_path, monkeypatch):
    import gradio as gr
    from gradio_client import Client

    import webapp.finders
    import webapp.wiring
    from indexing.indexer import Indexer
    from indexing.sources import open_sources
    from lookalike.index.store import FaceStore

    settings = app_settings(base_settings, data_dir=tmp_path / "data", embedder="torch")
    store = FaceStore.open(settings.store_config())
    try:
        photos = copy_photos(FIVE_TRAIN, tmp_path / "photos", 1)
        Indexer(pipeline, store, 4).run(open_sources(str(photos)), progress=False)
    finally:
        store.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom lookalike.settings import Settings\n"
         "from lookalike.index.store import FaceStore\n"
         "s = FaceStore.open(Settings().store_config())\nprint('held', flush=True)\nsys.stdin.readline()\n"
         "s.close()"],
        cwd=ROOT, env=_env(torch_home, tmp_path / "data"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    running = None
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(webapp.finders, "STORE_RETRY_S", 0.5)
        monkeypatch.setattr(webapp.wiring, "FacePipeline", lambda config=None, wait_for_onnx=True: pipeline)
        demo = webapp.wiring.create_app(settings)
        url = serve(demo, **webapp.wiring.launch_kwargs())
        running = demo
        page = urllib.request.urlopen(url, timeout=30).read().decode() + urllib.request.urlopen(
            url + "config", timeout=30).read().decode()
        assert "busy" in page and "in use by another process" not in page  # the visitor's sentence
        client = Client(url, verbose=False)
        name = f"selfie-{uuid.uuid4().hex}.jpg"
        shutil.copy(image_files(FIVE_TRAIN / "madonna")[0], tmp_path / name)
        out = predict(client, tmp_path / name)
        assert_message(out, "store_unavailable", "busy")
        assert not list(Path(gr.utils.get_upload_folder()).rglob(name))  # not searched, not kept either

        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(30) == 0
        # the app retries opening the store at most every STORE_RETRY_S
        out = predict_once_past(client, tmp_path / name, "store_unavailable", timeout_s=60, pause_s=0.2)
        assert_faces(out, 1)
        assert out["faces"][0]["matches"][0]["person_id"] == "madonna"
        assert out["faces"][0]["matches"][0]["score"] > 0.99
    finally:
        if holder.poll() is None:
            holder.kill()
        if running is not None:
            running.close()


# The crash-and-resume test (SIGKILL at chosen points of the write path) is in tests/test_indexing.py.


def test_read_only_data_folder_gives_one_line_from_the_indexer(torch_home, tmp_path):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    folder = copy_photos(FIVE_TRAIN, tmp_path / "photos", 1)
    command = _read_only(read_only, [sys.executable, "-m", "indexing", "--source", str(folder), "--quiet"])
    env = _env(torch_home, read_only / "data", QDRANT_API_KEY=FAKE_QDRANT_KEY, HF_TOKEN=FAKE_HF_TOKEN)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "cannot be opened" in lines[0] and "LOOKALIKE_DATA_DIR" in lines[0] and "Read-only" in lines[0]
    assert not list(read_only.iterdir())


# -- the app as a subprocess: unreachable Qdrant, read-only folder, secrets -----------------------------


class AppProcess:
    """``python app.py`` on a free port of 127.0.0.1, its stdout and stderr captured to files."""

    def __init__(self, env: dict[str, str], folder: Path, wrap=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = dict(env, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(self.port), LOOKALIKE_MCP="0",
                   GRADIO_TEMP_DIR=str(folder / "gradio"))
        command = [sys.executable, "app.py"]
        self.out, self.err = open(folder / "app.out", "w+"), open(folder / "app.err", "w+")
        self.process = subprocess.Popen(wrap(command) if wrap else command, cwd=ROOT, env=env, stdout=self.out,
                                        stderr=self.err)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.logs()
            try:
                urllib.request.urlopen(self.url, timeout=5).read()
                return
            except OSError:
                time.sleep(0.5)
        raise AssertionError("the app did not start: " + self.logs())

    def get(self, path: str = "") -> str:
        return urllib.request.urlopen(self.url + path, timeout=30).read().decode()

    def logs(self) -> str:
        self.out.flush()
        self.err.flush()
        return Path(self.out.name).read_text() + Path(self.err.name).read_text()

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        return self.logs()


def _api_calls(url: str, photo: Path, tmp_path: Path) -> list[dict]:
    from gradio_client import Client

    junk = tmp_path / "junk.jpg"
    junk.write_bytes(os.urandom(2048))
    client = Client(url, verbose=False)
    return [predict(client, p) for p in (photo, junk)]


def test_app_with_unreachable_qdrant_says_so_and_never_shows_the_secrets(torch_home, tmp_path, app_index):
    env = _env(torch_home, tmp_path / "data", QDRANT_URL=f"http://127.0.0.1:{free_port()}",
               QDRANT_API_KEY=FAKE_QDRANT_KEY, HF_TOKEN=FAKE_HF_TOKEN, LOOKALIKE_QDRANT_TIMEOUT_S="3")
    app = AppProcess(env, tmp_path)
    try:
        page = app.get() + app.get("config") + app.get("gradio_api/info")
        banner = _banner(app.get("config"))
        face, junk = _api_calls(app.url, app_index.photos["madonna"][0], tmp_path)
        assert_message(face, "store_unavailable", "cannot be reached")
        assert_message(junk, "not_an_image")
        assert "cannot be reached" in page  # the start-up banner
        assert app.process.poll() is None
    finally:
        logs = app.stop()
    everything = page + json.dumps([face, junk]) + logs
    assert_for_visitors(banner + json.dumps(face), env["QDRANT_URL"], tmp_path)
    assert f"Qdrant at {env['QDRANT_URL']} cannot be reached; check QDRANT_URL" in logs  # the log says why
    for secret in SECRETS:
        assert secret not in everything
    assert "Traceback" not in logs


def test_app_on_a_read_only_data_folder_explains_and_keeps_serving(torch_home, tmp_path, app_index):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    env = _env(torch_home, read_only / "data", QDRANT_API_KEY=FAKE_QDRANT_KEY, HF_TOKEN=FAKE_HF_TOKEN)
    app = AppProcess(env, tmp_path, wrap=lambda command: _read_only(read_only, command))
    try:
        page = app.get() + app.get("config")
        banner = _banner(app.get("config"))
        face, junk = _api_calls(app.url, app_index.photos["madonna"][0], tmp_path)
        for out in (face, junk):  # the store message either way: nothing can be searched
            assert_message(out, "store_unavailable", "cannot search right now")
        assert "cannot search right now" in page
        assert app.process.poll() is None  # no crash
    finally:
        logs = app.stop()
    assert_for_visitors(banner + json.dumps([face, junk]), read_only)
    assert "cannot be opened" in logs and "Read-only" in logs and "LOOKALIKE_DATA_DIR" in logs
    for secret in SECRETS:
        assert secret not in page + json.dumps([face, junk]) + logs
    assert "Traceback" not in logs


OPERATOR_LOG = {"empty_store": "python -m indexing", "missing_weights": "LOOKALIKE_WEIGHTS",
                "unreachable_server": "check QDRANT_URL"}


@pytest.mark.parametrize("case", sorted(OPERATOR_LOG))
def test_visitors_read_what_happened_and_the_log_tells_the_operator_the_rest(case, pipeline, base_settings, tmp_path,
                                                                             monkeypatch, caplog):
    """An empty store, missing weights, an unreachable server: the banner and the API answer say what happened
    and when to come back, with no server path, store address or setting; the log names them."""
    import logging

    import webapp.wiring

    fields: dict = {"data_dir": tmp_path / "data", "fill_sample": 0, "mcp": False}
    if case == "missing_weights":
        fields["weights"] = tmp_path / "nowhere" / "facenet.pt"
    else:
        monkeypatch.setattr(webapp.wiring, "FacePipeline", lambda config=None, wait_for_onnx=True: pipeline)
    if case == "unreachable_server":
        fields.update(qdrant_url=f"http://127.0.0.1:{free_port()}", qdrant_timeout_s=2)
    with caplog.at_level(logging.INFO):
        demo = webapp.wiring.create_app(app_settings(base_settings, **fields))
        url = serve(demo, **webapp.wiring.launch_kwargs())
        try:
            banner = _banner(urllib.request.urlopen(url + "config", timeout=30).read().decode())
            answer = predict(url, image_files(FIVE_TRAIN / "madonna")[0])
        finally:
            demo.close()
    assert banner.strip() and "error" in answer and "please" in (banner + answer["error"]).lower(), (banner, answer)
    assert_for_visitors(banner + json.dumps(answer), tmp_path, fields.get("qdrant_url", "http"), "Qdrant at")
    assert OPERATOR_LOG[case] in caplog.text


def test_indexer_error_paths_never_show_the_secrets(torch_home, tmp_path):
    folder = copy_photos(FIVE_TRAIN, tmp_path / "photos", 1)
    base = _env(torch_home, tmp_path / "data", QDRANT_API_KEY=FAKE_QDRANT_KEY, HF_TOKEN=FAKE_HF_TOKEN)
    runs = {  # an unreachable Qdrant: tests/test_indexing.py (the CLI in this process)
        "bad_source": (base, ["--source", str(tmp_path / "missing")], 2),
        "normal": (base, ["--source", str(folder)], 0),
    }
    server = CommandServer(INDEXING_IMPORTS, base)
    try:
        for name, (env, argv, code) in runs.items():
            done = server.run(["-m", "indexing", *argv], env)
            assert done.returncode == code, (name, done.stderr)
            for secret in SECRETS:
                assert secret not in done.stdout + done.stderr, name
    finally:
        server.close()


# -- privacy -----------------------------------------------------------------------------------------


def _sha_files(root: Path, skip: Path) -> dict[str, Path]:
    """SHA-256 -> path of the files below ``root`` (not below ``skip``). os.walk passes over folders that
    vanish during the walk: Gradio's cache sweep, and other apps on the machine, delete them."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if skip not in path.parents:
                try:
                    found[hashlib.sha256(path.read_bytes()).hexdigest()] = path
                except OSError:
                    pass
    return found


def _files(root: Path) -> set[Path]:
    return {Path(folder) / name for folder, _, names in os.walk(root) for name in names}


def test_twenty_uploads_leave_nothing_on_disk(client, app_server, app_index, tmp_path, tmp_path_factory):
    uploads = Path(app_server.demo.GRADIO_CACHE)
    before = _files(uploads)
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    photos = [p for paths in app_index.photos.values() for p in paths]
    hashes = set()
    for i in range(20):
        image = Image.open(photos[i % len(photos)]).convert("RGB")
        path = source_dir / f"upload-{i}.jpg"
        image.save(path, quality=85 + i % 10, comment=uuid.uuid4().hex.encode())  # unique bytes each time
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        hashes.add(digest)
        out = predict(client, path, 1 + i % 10)
        assert "faces" in out or out["reason"] == "no_face", out
        assert digest not in _sha_files(uploads, source_dir), f"upload {i} still in {uploads}"  # deleted at once
    leftovers = {}
    for root in {uploads, Path(app_server.demo.GRADIO_CACHE), Path(tmp_path_factory.getbasetemp())}:
        leftovers.update({h: p for h, p in _sha_files(root, source_dir).items() if h in hashes})
    assert not leftovers, leftovers
    # not even an empty file (a gr.File input's preprocessing, which the API does without, left one per call)
    assert _files(uploads) <= before
