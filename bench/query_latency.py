"""Selfie to matches: latency of ``LookalikeFinder.find`` for our configurations against the reference
app's per-image path, on the same photos and the same number of indexed faces, in one run.

    python bench/query_latency.py                       # 17,000 faces, 30 runs per photo
    python bench/query_latency.py --faces 50000 --runs 50
    python bench/query_latency.py --http                # also through the app's HTTP API (REST, gradio_client)

Ours: every face of the photo, top-5 people each (grouped by person), through the core API, for each
embedder (torch, auto: the runtime timed fastest) x embedded engine (edge, local) x MTCNN min_face_size (40, 60).
Reference (vector-twin's path): ``MTCNN()`` with its defaults (largest face only, ``forward()`` =
detect + extract), ``InceptionResnetV1(pretrained="vggface2").eval()`` without ``no_grad``, and a plain
top-1 ``query_points`` on qdrant-client's local mode holding the same points.

The index: N synthetic unit vectors clustered like identities (N/17 people x 17 photos, payloads of
real size with a ~4 KB thumbnail) plus the real faces of five_celebs/train (5 people).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--faces", type=int, default=17_000, help="synthetic faces in the index")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per photo and configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--photos", type=int, default=5, help="different photos per size (runs cycle through them)")
    parser.add_argument("--top-k", type=int, default=5, help="matches per face (ours)")
    parser.add_argument("--embedders", default="torch,auto")
    parser.add_argument("--engines", default="edge,local")
    parser.add_argument("--min-face-sizes", default="40,60")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference path")
    parser.add_argument("--http", action="store_true",
                        help="also time the app's HTTP API (REST and gradio_client, from a separate process)")
    return parser


def fill_store(store, fingerprint, vectors, person, real_points: list, batch: int = 512) -> int:
    """The real faces' points plus the synthetic ones, then the index build; returns the point count."""
    import uuid

    from indexing.versions import ensure_collection
    from lookalike.index.payload import FacePayload
    from lookalike.index.store import FacePoint

    collection = ensure_collection(store, fingerprint)
    store.upsert(real_points, collection)
    for start in range(0, len(vectors), batch):
        store.upsert([FacePoint(str(uuid.UUID(int=i + 1)), vectors[i],
                                FacePayload.from_dict(C.synthetic_payload(int(person[i]), i)))
                      for i in range(start, min(len(vectors), start + batch))], collection)
    store.optimize(collection)
    return store.count()


def real_points(pipeline, folder: Path, settings) -> list:
    """The points our indexer makes of ``folder`` (indexed once into a scratch store, read back)."""
    from indexing.indexer import Indexer
    from indexing.sources import open_sources
    from indexing.versions import ensure_collection
    from lookalike.index.payload import FacePayload
    from lookalike.index.store import FacePoint, FaceStore

    store = FaceStore.open(settings.store_config())
    try:
        collection = ensure_collection(store, pipeline.fingerprint)
        Indexer(pipeline, store).run(open_sources(str(folder)), progress=False)
        return [FacePoint(r.id, np.asarray(r.vector, np.float32), FacePayload.from_dict(r.payload))
                for r in store.points(collection, with_vectors=True)]
    finally:
        store.close()


def time_runs(fn, photos: list[bytes], runs: int, warmup: int) -> list[float]:
    for i in range(warmup):
        fn(photos[i % len(photos)])
    samples = []
    for i in range(runs):
        photo = photos[i % len(photos)]
        start = time.perf_counter()
        fn(photo)
        samples.append(time.perf_counter() - start)
    return samples


def split_runs(finder, photos: list[bytes], runs: int, warmup: int, top_k: int) -> dict[str, float]:
    """Median ms of each stage of ``find``: decode, detect, extract, embed, search (all faces)."""
    import torch

    from lookalike.search import Match

    pipe, index = finder.pipeline, finder.index
    stages: dict[str, list[float]] = {k: [] for k in ("decode", "detect", "extract", "embed", "search")}
    for i in range(warmup + runs):
        photo = photos[i % len(photos)]
        marks = [time.perf_counter()]
        image = pipe.load(photo)
        marks.append(time.perf_counter())
        det = pipe.detector.detect_many([image])[0]
        marks.append(time.perf_counter())
        crops = pipe._extract(image, det)
        marks.append(time.perf_counter())
        vectors = (pipe.embedder.embed(torch.from_numpy(crops)) if crops is not None
                   else np.zeros((0, 512), np.float32))
        marks.append(time.perf_counter())
        for v in vectors:
            [Match.from_stored(s) for s in index.query_people(v, top_k)]
        marks.append(time.perf_counter())
        if i >= warmup:
            for k, name in enumerate(stages):
                stages[name].append(marks[k + 1] - marks[k])
    return {k: float(np.median(v) * 1000) for k, v in stages.items()}


def reference_path(client, collection: str):
    """vector-twin's per-image query: MTCNN() forward, resnet without no_grad, top-1 query_points."""
    import io

    from facenet_pytorch import MTCNN, InceptionResnetV1
    from PIL import Image

    mtcnn = MTCNN()
    resnet = InceptionResnetV1(pretrained="vggface2").eval()

    def query(photo: bytes):
        image = Image.open(io.BytesIO(photo)).convert("RGB")
        face = mtcnn(image)
        if face is None:
            return None
        embedding = resnet(face.unsqueeze(0))
        return client.query_points(collection, query=embedding[0].detach().numpy().tolist(), limit=1).points

    return query


def http_rows(finder, photos: dict[str, list[bytes]], runs: int, warmup: int) -> tuple[list[list[object]], str]:
    """p50/p95 through the app's named API endpoint for each photo and each client of
    ``bench/http_client.py`` (Gradio's REST API as curl calls it, and gradio_client), called from a
    separate process as from a user's machine; or a note why it was skipped."""
    try:
        import app  # noqa: F401 - the Space's entry point must import (its build_app is what we launch)
        from http_client import CLIENTS, LOOKALIKE_EXTRA, timed_calls
        from webapp.page import build_app
        from webapp.wiring import launch_kwargs
    except Exception as exc:  # noqa: BLE001
        return [], f"HTTP API skipped: {type(exc).__name__}: {exc}"
    demo = build_app(finder)
    url = C.launch_app(demo, **launch_kwargs())
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for label, items in photos.items():
                files = C.write_photos(Path(folder), items, label.split()[0])
                for client in CLIENTS:
                    samples = timed_calls(url, "lookalike", files, client=client, runs=runs, warmup=warmup,
                                          extra=LOOKALIKE_EXTRA)
                    rows.append([label, client, *C.p50_p95(samples)])
    except Exception as exc:  # noqa: BLE001
        return rows, f"HTTP API failed: {type(exc).__name__}: {exc}"
    finally:
        C.close_app(demo)
    return rows, ""


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    weights_note = C.ensure_weights()
    import shutil

    from lookalike.faces import FacePipeline
    from lookalike.search import LookalikeFinder
    from lookalike.settings import Settings

    print(C.header(f"Query latency: selfie to matches, {args.faces:,} synthetic faces + five_celebs/train"))
    print(f"- weights: {weights_note}\n")
    photos = {
        "640x480, 1 face": C.canvas_photos(640, 480, args.photos),
        "1280x720, 1 face": C.canvas_photos(1280, 720, args.photos),
        "multiface.jpg 1200x630, 6 faces": [C.MULTIFACE.read_bytes()],
    }
    data_dir = Path(tempfile.mkdtemp(prefix="bench_query_"))
    try:
        base = Settings(data_dir=data_dir, device="cpu", qdrant_url=None)
        embedders = C.parse_list(args.embedders)
        engines = C.parse_list(args.engines)
        if not args.no_reference and "local" not in engines:
            engines.append("local")  # the reference queries the local-mode store
        sizes = C.parse_list(args.min_face_sizes, int)
        pipelines = {(e, m): FacePipeline(base.model_copy(update={"embedder": e, "min_face_size": m}).face_config())
                     for e in embedders for m in sizes}
        any_pipeline = next(iter(pipelines.values()))
        vectors, person = C.identity_vectors(args.faces)
        real = real_points(any_pipeline, C.FIVE_TRAIN, base.model_copy(update={"data_dir": data_dir / "scratch"}))
        stores, fill_s = {}, {}
        for engine in engines:
            store = C.open_store(base, engine)
            start = time.perf_counter()
            count = fill_store(store, any_pipeline.fingerprint, vectors, person, real)
            fill_s[engine] = time.perf_counter() - start
            stores[engine] = store
            print(f"- {engine} store: {count:,} points, filled (upsert + index) in {fill_s[engine]:.1f} s")
        print()

        rows, ours = [], {}
        for (embedder, min_face), pipeline in pipelines.items():
            for engine in C.parse_list(args.engines):
                finder = LookalikeFinder(pipeline, stores[engine], top_k=args.top_k)
                label = f"ours: {embedder}, {engine}, min_face {min_face}"
                for photo_label, items in photos.items():
                    samples = time_runs(lambda p, finder=finder: finder.find(p, args.top_k), items, args.runs,
                                        args.warmup)
                    p50, p95 = C.p50_p95(samples)
                    ours[(label, photo_label)] = p50
                    rows.append([label, photo_label, p50, p95, len(samples)])
        reference = {}
        if not args.no_reference:
            store = stores["local"]
            query = reference_path(store.engine.client, store.current_collection())
            for photo_label, items in photos.items():
                samples = time_runs(query, items, args.runs, args.warmup)
                p50, p95 = C.p50_p95(samples)
                reference[photo_label] = p50
                rows.append(["reference: MTCNN() + resnet w/o no_grad + local top-1", photo_label, p50, p95,
                             len(samples)])
        print(f"### p50/p95 over {args.runs} runs after {args.warmup} warm-up runs (ms)\n")
        print(C.table(["path", "photo", "p50 ms", "p95 ms", "runs"], rows))
        print()
        if reference:
            defaults = Settings()
            default = f"ours: {defaults.embedder}, edge, min_face {defaults.min_face_size}"
            ratio_rows = []
            for photo_label, ref in reference.items():
                candidates = {k[0]: v for k, v in ours.items() if k[1] == photo_label}
                if not candidates:
                    continue
                best_label = min(candidates, key=candidates.__getitem__)
                ratio_rows.append([photo_label, ref,
                                   candidates.get(default, float("nan")),
                                   ref / candidates[default] if default in candidates else float("nan"),
                                   best_label.removeprefix("ours: "), candidates[best_label],
                                   ref / candidates[best_label]])
            print("### Ratio reference / ours (p50; > 1 means ours is faster)\n")
            print(C.table(["photo", "reference p50", "ours default p50", "ratio (default)", "ours fastest",
                           "fastest p50", "ratio (fastest)"], ratio_rows))
            print("\nThe reference embeds only the largest face and returns one point; ours embeds every face "
                  f"and returns the top {args.top_k} people per face (multiface: 6 faces).\n")

        split_photos = photos["640x480, 1 face"]
        split_rows = []
        for (embedder, min_face), pipeline in pipelines.items():
            for engine in C.parse_list(args.engines):
                finder = LookalikeFinder(pipeline, stores[engine], top_k=args.top_k)
                parts = split_runs(finder, split_photos, args.runs, args.warmup, args.top_k)
                split_rows.append([f"{embedder}, {engine}, min_face {min_face}", *parts.values(),
                                   sum(parts.values())])
        print("### Where our time goes, 640x480 photo (median ms per stage)\n")
        print(C.table(["configuration", "decode", "detect", "extract", "embed", "search", "sum"], split_rows))
        print()

        if args.http:
            engine = "edge" if "edge" in stores else next(iter(stores))
            defaults = Settings()  # the app's own configuration where this run has it
            key = ((defaults.embedder if defaults.embedder in embedders else embedders[0]),
                   (defaults.min_face_size if defaults.min_face_size in sizes else sizes[0]))
            finder = LookalikeFinder(pipelines[key], stores[engine], top_k=args.top_k)
            http, note = http_rows(finder, photos, args.runs, args.warmup)
            print(f"\n### Through the app's HTTP API (api_name=/lookalike; {key[0]}, {engine}, min_face {key[1]}), "
                  "called from a separate process (bench/http_client.py)\n")
            if http:
                print(C.table(["photo", "client", "p50 ms", "p95 ms"], http))
                print("\n`rest`: Gradio's REST API as curl calls it; `gradio_client`: Client.predict, whose times "
                      "come in 50 ms steps (it checks for the answer every 50 ms).")
            if note:
                print(f"\n{note}")
            print()
        for store in stores.values():
            store.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
