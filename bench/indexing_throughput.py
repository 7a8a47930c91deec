"""Indexing throughput (faces/s): our indexer against the reference app's per-image path, in one run.

    python bench/indexing_throughput.py                      # all of tests/data/lfw (248 photos)
    python bench/indexing_throughput.py --people 5 --per-person 4 --embedders torch

Ours: ``indexing.indexer.Indexer`` over ``open_sources(<folder>)`` into a fresh embedded store, for
each embedder (torch, auto: the runtime timed fastest) and engine (default: edge), the stages timed around the
pipeline's own components (decode, detect, extract, embed, upsert, optimize).
Reference (vector-twin's path), per image: decode, ``MTCNN()`` forward (largest face), resnet without
``no_grad``, one ``upsert`` per image with a uuid4 id into qdrant-client's local mode.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--source", default=str(C.LFW), help="image folder, one sub-folder per person")
    parser.add_argument("--people", type=int, default=0, help="only the first N people (0: all)")
    parser.add_argument("--per-person", type=int, default=0, help="only the first K photos of each (0: all)")
    parser.add_argument("--embedders", default="torch,auto")
    parser.add_argument("--engines", default="edge", help="edge and/or local")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-reference", action="store_true")
    return parser


def subset(folder: Path, people: int, per_person: int, into: Path) -> Path:
    """``folder`` itself, or a folder of links to the first ``people`` x ``per_person`` photos."""
    if not people and not per_person:
        return folder
    persons = sorted(p for p in folder.iterdir() if p.is_dir())
    for person in persons[:people or None]:
        (into / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:per_person or None]:
            (into / person.name / photo.name).symlink_to(photo.resolve())
    return into


def ours(folder: Path, settings, batch_size: int, engine: str = "edge") -> tuple[dict, dict]:
    """One indexing run; (result, seconds per stage)."""
    from indexing.indexer import Indexer
    from indexing.sources import open_sources
    from lookalike.faces import FacePipeline

    pipeline = FacePipeline(settings.face_config())
    pipeline.embedder.embed(__import__("torch").zeros(1, 3, 160, 160))  # model load and ONNX export out of the timing
    watch = C.Stopwatch()
    watch.wrap(pipeline, "load", "decode")
    watch.wrap(pipeline.detector, "detect_many", "detect")
    watch.wrap(pipeline, "_extract", "extract")
    watch.wrap(pipeline.embedder, "embed", "embed")
    store = C.open_store(settings, engine)
    watch.wrap(store, "upsert", "upsert")
    watch.wrap(store, "optimize", "optimize")
    watch.wrap(store, "payloads", "lookup existing")
    try:
        start = time.perf_counter()
        sources = open_sources(str(folder))
        open_s = time.perf_counter() - start
        report = Indexer(pipeline, store, batch_size).run(sources, progress=False)
        total = time.perf_counter() - start
    finally:
        store.close()
    stages = dict(watch.seconds)
    stages["open source"] = open_s
    stages["other (hash, thumbnails, bookkeeping)"] = total - sum(stages.values())
    return {"faces": report.faces_indexed, "images": report.images_seen, "seconds": total,
            "skipped": dict(report.skipped)}, stages


def reference(folder: Path, data_dir: Path) -> tuple[dict, dict]:
    """vector-twin's loop: one photo at a time, no no_grad, one upsert per photo with a uuid4 id."""
    from facenet_pytorch import MTCNN, InceptionResnetV1
    from PIL import Image
    from qdrant_client import QdrantClient, models

    from lookalike.images import encode_jpeg

    mtcnn = MTCNN()
    resnet = InceptionResnetV1(pretrained="vggface2").eval()
    client = QdrantClient(path=str(data_dir / "reference"))
    client.create_collection("faces", vectors_config=models.VectorParams(size=512, distance=models.Distance.COSINE))
    watch = C.Stopwatch()
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    faces = 0
    start = time.perf_counter()
    for path in files:
        with watch.time("decode"):
            image = Image.open(path).convert("RGB")
        with watch.time("detect + extract"):
            face = mtcnn(image)
        if face is None:
            continue
        with watch.time("embed"):
            vector = resnet(face.unsqueeze(0))[0].detach().numpy().tolist()
        with watch.time("thumbnail"):
            thumb = base64.b64encode(encode_jpeg(image, max_side=128)).decode("ascii")
        with watch.time("upsert"):
            client.upsert("faces", points=[models.PointStruct(
                id=str(uuid.uuid4()), vector=vector, payload={"name": path.parent.name, "thumbnail": thumb})])
        faces += 1
    total = time.perf_counter() - start
    client.close()
    stages = dict(watch.seconds)
    stages["other"] = total - sum(stages.values())
    return {"faces": faces, "images": len(files), "seconds": total, "skipped": {}}, stages


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    weights_note = C.ensure_weights()
    from lookalike.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bench_index_"))
    try:
        folder = subset(Path(args.source), args.people, args.per_person, work / "photos")
        print(C.header(f"Indexing throughput: {folder if folder == Path(args.source) else args.source} "
                       f"(people {args.people or 'all'}, photos per person {args.per_person or 'all'})"))
        print(f"- weights: {weights_note}\n")
        results, splits = {}, {}
        for embedder in C.parse_list(args.embedders):
            for engine in C.parse_list(args.engines):
                settings = Settings(data_dir=work / f"data_{embedder}_{engine}", device="cpu", qdrant_url=None,
                                    embedder=embedder)
                label = f"ours: {embedder}, {engine}, batch {args.batch_size}"
                results[label], splits[label] = ours(folder, settings, args.batch_size, engine)
        if not args.no_reference:
            label = "reference: per image, no no_grad, 1 upsert each, local"
            results[label], splits[label] = reference(folder, work)
        rows = [[label, r["images"], r["faces"], r["seconds"], r["faces"] / r["seconds"] if r["seconds"] else 0.0,
                 ", ".join(f"{k} {v}" for k, v in r["skipped"].items()) or "-"]
                for label, r in results.items()]
        print("### Faces per second\n")
        print(C.table(["path", "images", "faces", "seconds", "faces/s", "skipped"], rows))
        ref = [r for label, r in results.items() if label.startswith("reference")]
        if ref and ref[0]["faces"]:
            ref_rate = ref[0]["faces"] / ref[0]["seconds"]
            print("\n### Ratio ours / reference (faces/s; > 1 means ours is faster)\n")
            print(C.table(["path", "ratio"], [[label, (r["faces"] / r["seconds"]) / ref_rate]
                                                for label, r in results.items() if label.startswith("ours")]))
        print("\n### Where the time goes (seconds, share of the run)\n")
        stage_rows = []
        for label, stages in splits.items():
            total = results[label]["seconds"]
            stage_rows.append([label, "; ".join(f"{k} {v:.2f} s ({100 * v / total:.0f} %)"
                                                for k, v in stages.items())])
        print(C.table(["path", "stages"], stage_rows))
        print("\nOurs: the model load (and the one-time ONNX export) is outside the timing; `open source` is "
              "`open_sources` (datasets' imagefolder). The reference stores a 128-px thumbnail as ours does.")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
