"""The same query measured on two checkouts of lookalike in one run: this tree and an older one.

    git worktree add /tmp/old <commit>
    python bench/compare_trees.py --old /tmp/old [--runs 30] [--rounds 3]

Each round runs one worker process per tree, alternately (old, new, old, new, ...), so both see the same
machine load. A worker indexes the committed photos (``tests/data``: five_celebs + lfw, 364 photos) into
an embedded store of its own with that tree's code, then times a 640x480 one-face selfie through the core
API (``LookalikeFinder.find``) and through the app's HTTP API (``gradio_client``, ``/lookalike``), and prints
the medians as JSON. Both trees get the same stand-in weights (timings do not depend on the weights'
values). Prints a Markdown table: p50 per tree (median over rounds) and the ratio new / old.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r'''
import io, json, os, statistics, sys, tempfile, time, shutil
from pathlib import Path
import torch
from PIL import Image
torch.set_num_threads(2)
data = Path(sys.argv[1]); runs = int(sys.argv[2]); work = Path(tempfile.mkdtemp(prefix="cmp_"))
from lookalike.settings import Settings
from lookalike.search import LookalikeFinder
from indexing.indexer import Indexer
from indexing.sources import open_sources
settings = Settings(data_dir=work / "data", device="cpu", qdrant_url=None)
finder = LookalikeFinder.from_settings(settings)
folder = work / "photos"
for sub in ("five_celebs/train", "five_celebs/val", "lfw"):
    for person in sorted((data / sub).iterdir()):
        for photo in sorted(person.iterdir()):
            (folder / person.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(photo, folder / person.name / photo.name)
Indexer(finder.pipeline, finder.store).run(open_sources(str(folder)), progress=False)
madonna = data / "five_celebs/val/madonna"
source = Image.open(madonna / sorted(os.listdir(madonna))[0]).convert("RGB")
canvas = Image.new("RGB", (640, 480), (128, 128, 128))
face = source.resize((220, round(220 * source.height / source.width)))
canvas.paste(face, (210, 40))
selfie = work / "selfie.jpg"; canvas.save(selfie, quality=90)
def p50(call):
    for _ in range(3): call()
    times = []
    for _ in range(runs):
        start = time.perf_counter(); call(); times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
core = p50(lambda: finder.find(str(selfie)))
try:
    from webapp.page import build_app
    from webapp.wiring import launch_kwargs
except ImportError:
    from lookalike.ui import build_app, launch_kwargs
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
demo = build_app(finder)
try:  # a tree with private mode makes its browser models in the background: wait, so no round times it
    from webapp.private import assets_of
    assets = assets_of(demo)
    if assets is not None:
        assets.wait(600)
except ImportError:
    pass
demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_kwargs())
from gradio_client import Client, handle_file
client = Client(f"http://127.0.0.1:{port}/", verbose=False)
def call():
    out = client.predict(handle_file(str(selfie)), api_name="/lookalike")
    assert "faces" in out, out
api = p50(call)
demo.close()
print(json.dumps({"core_ms": core, "api_ms": api}))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, type=Path, help="the older checkout (a git worktree)")
    parser.add_argument("--runs", type=int, default=30, help="timed queries per worker and path")
    parser.add_argument("--rounds", type=int, default=3, help="worker runs per tree, alternating")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="cmp_torch_home_")
    subprocess.run([sys.executable, str(ROOT / "tests" / "support.py"), home], check=True, capture_output=True)
    env = {**os.environ, "TORCH_HOME": home, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("QDRANT_URL", None)
    trees = {"old": args.old.resolve(), "new": ROOT}
    results: dict[str, list[dict]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            done = subprocess.run([sys.executable, "-c", WORKER, str(ROOT / "tests" / "data"), str(args.runs)],
                                  cwd=tree, env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{name} worker failed:\n{done.stderr[-2000:]}")
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.old, capture_output=True,
                            text=True).stdout.strip()
    print(f"old tree: {args.old} ({commit}); rounds {args.rounds}, {args.runs} timed queries per path; "
          f"load average at end: {os.getloadavg()[0]:.2f}\n")
    print("| 640x480 one-face selfie, p50 | old | new | new / old |\n| --- | --- | --- | --- |")
    for key, label in (("core_ms", "core API (`LookalikeFinder.find`)"), ("api_ms", "HTTP API (`/lookalike`)")):
        old = statistics.median(r[key] for r in results["old"])
        new = statistics.median(r[key] for r in results["new"])
        print(f"| {label} | {old:.1f} ms | {new:.1f} ms | {new / old:.2f} |")
    for key in ("core_ms", "api_ms"):  # each round's p50, so that the spread between rounds shows
        print(f"\n{key} by round: " + "; ".join(
            f"{name} " + ", ".join(f"{r[key]:.1f}" for r in results[name]) for name in trees))


if __name__ == "__main__":
    main()
