"""Start-up: seconds from ``python app.py`` to its first answered request, with an index built first.

    python bench/startup.py

1. ``python -m indexing --source tests/data/five_celebs/train`` into a fresh data folder (this is
   where the ONNX exports of FaceNet and MTCNN are made and cached, under ``data/onnx``);
2. ``python app.py`` on a free port, and ``gradio_client`` asking ``/lookalike`` with a selfie until
   the first answer: the time from the process start to that answer;
3. the same start once more with ``data/onnx`` deleted (the app then starts in torch and exports in
   the background: the first answer must not wait for an export).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def first_answer(env: dict, photo: Path, timeout_s: float = 180.0) -> tuple[float, float, str]:
    """(seconds to the first answer, seconds of a second request, note) of a fresh ``python app.py``."""
    from gradio_client import Client, handle_file

    port = C.free_port()
    env = dict(env, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", LOOKALIKE_MCP="0")
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py"], cwd=C.ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        while time.perf_counter() - start < timeout_s:
            if process.poll() is not None:
                return float("nan"), float("nan"), f"app exited: {(process.stderr or io.StringIO()).read()[-500:]}"
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                client.predict(handle_file(str(photo)), 5, api_name="/lookalike")
                first = time.perf_counter() - start
                again = time.perf_counter()
                client.predict(handle_file(str(photo)), 5, api_name="/lookalike")
                return first, time.perf_counter() - again, ""
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.1)
        return float("nan"), float("nan"), "timed out"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=str(C.FIVE_TRAIN))
    args = parser.parse_args(argv)
    weights_note = C.ensure_weights()
    print(C.header("Start-up: `python app.py` to its first answered request"))
    print(f"- weights: {weights_note}\n")
    work = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    try:
        env = dict(os.environ, LOOKALIKE_DATA_DIR=str(work / "data"), LOOKALIKE_DEVICE="cpu")
        for name in ("QDRANT_URL", "QDRANT_API_KEY", "LOOKALIKE_QDRANT_URL"):
            env.pop(name, None)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "indexing", "--source", args.source, "--quiet"], cwd=C.ROOT, env=env,
                       check=True, capture_output=True)
        index_s = time.perf_counter() - start
        exports = sorted(p.name for p in (work / "data" / "onnx").glob("*.onnx"))
        photo = work / "selfie.jpg"
        photo.write_bytes(C.canvas_photos(640, 480, 1)[0])
        rows = []
        first, second, note = first_answer(env, photo)
        rows.append(["exports cached by the indexer", first, second * 1000, note or "-"])
        shutil.rmtree(work / "data" / "onnx")
        first, second, note = first_answer(env, photo)
        rows.append(["no exports (torch first, export in the background)", first, second * 1000, note or "-"])
        print(f"- index: `python -m indexing --source {args.source}` took {index_s:.1f} s and left "
              f"{', '.join(exports) or 'no exports'} in data/onnx\n")
        print(C.table(["start", "first answer s", "next request ms", "note"], rows))
        print()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
