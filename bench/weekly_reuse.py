"""The weekly build's reuse: a first build, a second build over unchanged photos, and a build with 10 % new
photos, each into a new collection version, timed in turn in one run.

    python bench/weekly_reuse.py                        # tests/data/lfw (248 photos), 3 rounds
    python bench/weekly_reuse.py --rounds 1 --people 4

Each round: a fresh embedded store; ``first``: the photos less a tenth, into v1 (no served version:
every face embedded); ``unchanged``: the same photos with ``--recreate`` (a new version beside the
served one: every face copied); ``10% new``: every photo with ``--recreate`` (the tenth held back is
new). The face pipeline is loaded once, before any timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

KINDS = ("first", "unchanged", "10% new")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--source", default=str(C.LFW), help="image folder, one sub-folder per person")
    parser.add_argument("--people", type=int, default=0, help="only the first N people (0: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    return parser


def folders(source: Path, people: int, into: Path) -> tuple[Path, Path]:
    """(most, every): links to every photo, and to all but every tenth (the photos a week adds)."""
    most, every = into / "most", into / "every"
    persons = sorted(p for p in source.iterdir() if p.is_dir())[:people or None]
    photos = [photo for person in persons for photo in sorted(person.iterdir())]
    for number, photo in enumerate(photos):
        for folder in (every, most) if number % 10 != 9 else (every,):
            (folder / photo.parent.name).mkdir(parents=True, exist_ok=True)
            (folder / photo.parent.name / photo.name).symlink_to(photo.resolve())
    return most, every


def one_round(pipeline, settings, most: Path, every: Path, batch_size: int) -> dict[str, tuple[float, Any]]:
    """The three builds into one fresh store: kind -> (seconds, report)."""
    from indexing.indexer import Indexer
    from indexing.sources import open_sources
    from lookalike.index.store import FaceStore

    store = FaceStore.open(settings.store_config())
    out = {}
    try:
        for kind, folder, recreate in (("first", most, False), ("unchanged", most, True), ("10% new", every, True)):
            start = time.perf_counter()
            report = Indexer(pipeline, store, batch_size).run(open_sources(str(folder)), recreate=recreate,
                                                              progress=False)
            out[kind] = (time.perf_counter() - start, report)
    finally:
        store.close()
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    weights_note = C.ensure_weights()
    from lookalike.faces import FacePipeline
    from lookalike.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bench_reuse_"))
    try:
        most, every = folders(Path(args.source), args.people, work / "photos")
        settings = Settings(data_dir=work / "data", device="cpu", qdrant_url=None)
        pipeline = FacePipeline(settings.face_config())
        pipeline.embedder.embed(__import__("torch").zeros(1, 3, 160, 160))  # load and export out of the timing
        shown = os.path.relpath(args.source, C.ROOT)
        print(C.header(f"Weekly build reuse: {shown} (people {args.people or 'all'}), {args.rounds} rounds"))
        print(f"- weights: {weights_note}\n")
        seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
        last = {}
        for round_index in range(args.rounds):
            shutil.rmtree(settings.data_dir, ignore_errors=True)
            last = one_round(pipeline, settings.model_copy(update={"data_dir": work / f"data{round_index}"}),
                             most, every, args.batch_size)
            for kind, (took, _) in last.items():
                seconds[kind].append(took)
        first = median(seconds["first"])
        rows = [(kind, last[kind][1].images_seen, last[kind][1].faces_embedded, last[kind][1].faces_reused,
                 median(seconds[kind]), ", ".join(f"{s:.1f}" for s in seconds[kind]), median(seconds[kind]) / first)
                for kind in KINDS]
        print(C.table(["build", "photos", "embedded", "reused", "median s", "each round, s", "of the first"], rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
