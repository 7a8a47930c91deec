"""Search at scale: top-10 latency and recall@10 against exact search, for synthetic 512-d vectors
clustered like identities (17 photos per person), per store.

    python bench/search_scale.py                     # 20k and 100k
    python bench/search_scale.py --sizes 1000000     # 1M (edge only; about 2-3 GB RAM, see --estimate)
    python bench/search_scale.py --estimate --sizes 20000,100000,1000000
    python bench/search_scale.py --people --sizes 100000,1000000 --shard-dir /tmp/people   # person recall@5

Stores: ``numpy`` (exact scan, the reference for recall), ``local`` (qdrant-client's embedded mode;
a size is skipped when its upsert would take longer than --local-max-upsert-s, measured on a probe),
``edge`` (qdrant-edge-py HNSW m=16, ef_construct=100, float vectors), ``edge-int8`` (the same with int8
scalar quantization, always_ram, queried with rescore=True and oversampling 2). Queries use the app's
hnsw_ef (``SearchOptions().hnsw_ef``: 384; 128 before the person-level sweep, ``--people``, moved it).
Each (store, size) runs in its own process so memory is its own: RSS growth over the process after the
vectors were generated, and peak RSS. Payloads: person_id and name (no thumbnail, so disk is the vectors'
and index's own; ``--thumbnails`` adds a 4 KB one).

``--people``: person-level recall@5, what a visitor sees. Synthetic people with FaceNet-like cosines
and a long tail of photos per person (``_common.SyntheticPeople``) go into an edge collection created
by the product's adapter (``EdgeEngine``, ``CollectionSettings.for_edge`` with ``--m`` and
``--ef-construct``), built once per size (kept in ``--shard-dir`` and reused when it is there); then,
for each ``--efs`` value, the product's grouped query (``EdgeEngine.query_groups``, 5 people, as
``FaceIndex.query_people`` calls it) answers new photos of indexed people and photos of strangers, and
its 5 people are compared with the exact 5 (each person's best cosine over all their photos, numpy).
One more row calls ``FaceIndex.query_people`` itself, with the product's default search options.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from lookalike.index.payload import NAME, PERSON_ID, THUMBNAIL  # noqa: E402
from lookalike.index.storage.port import CollectionSettings, PayloadFields, Point, SearchOptions  # noqa: E402

STORES = ("numpy", "local", "edge", "edge-int8")
PEOPLE_K = 5  # people a visitor sees per face (Settings.top_k)
PEOPLE_COLLECTION = "faces"
# Rough per-point costs on the 2-core machine (seconds), for --estimate and the local-mode skip.
EST = {"local": {"upsert": 1 / 1000, "build": 0.0}, "edge": {"upsert": 1 / 15000, "build": 23 / 50000 * 1.4},
       "edge-int8": {"upsert": 1 / 15000, "build": 8.5 / 50000 * 1.4}, "numpy": {"upsert": 0.0, "build": 0.0}}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", default="20000,100000", help="comma-separated point counts")
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--queries", type=int, default=200, help="timed queries per case")
    parser.add_argument("--batch", type=int, default=512, help="points per upsert")
    parser.add_argument("--local-max-upsert-s", type=float, default=180.0,
                        help="skip local mode at a size whose estimated upsert time exceeds this")
    parser.add_argument("--thumbnails", action="store_true", help="add a ~4 KB thumbnail to every payload")
    parser.add_argument("--estimate", action="store_true", help="print the estimated time per case and exit")
    people = parser.add_argument_group("person-level recall (--people)")
    people.add_argument("--people", action="store_true", help="measure person recall@5 instead of the stores")
    people.add_argument("--efs", default="64,128,256,512,1024", help="query hnsw_ef values to sweep")
    people.add_argument("--m", type=int, default=16, help="HNSW m of the built collection")
    people.add_argument("--ef-construct", type=int, default=CollectionSettings().hnsw_ef_construct,
                        help="HNSW ef_construct of the built collection")
    people.add_argument("--seed", type=int, default=0, help="the synthetic people's seed")
    people.add_argument("--shard-dir", help="keep the built collections here and reuse them "
                                            "(default: a temporary folder, deleted at the end)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: "store:size", prints one JSON line
    return parser


def payload(person: int, thumbnails: bool) -> dict:
    out = {"person_id": f"synthetic-person-{person}", "name": f"Synthetic Person {person}"}
    if thumbnails:
        out["thumbnail"] = C.thumbnail_b64()
    return out


def run_case(store: str, size: int, args) -> dict:
    vectors, person = C.identity_vectors(size)
    queries = C.identity_queries(int(person[-1]) + 1, args.queries)
    exact = C.exact_top_k(queries, vectors, 10)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(size)]
    base_rss = C.rss_mb()
    folder = Path(tempfile.mkdtemp(prefix=f"bench_scale_{store}_"))
    result: dict = {"store": store, "size": size}
    try:
        if store == "numpy":
            def query(q):
                scores = vectors @ q
                top = np.argpartition(-scores, 10)[:10]
                return top[np.argsort(-scores[top])]
            result.update(upsert_s=0.0, build_s=0.0)
            to_index = None
        elif store == "local":
            from qdrant_client import QdrantClient, models

            client = QdrantClient(path=str(folder / "local"))
            client.create_collection("faces", vectors_config=models.VectorParams(size=512,
                                                                                 distance=models.Distance.COSINE))

            def upsert(start, stop):
                client.upsert("faces", points=[models.PointStruct(id=ids[i], vector=vectors[i].tolist(),
                                                                  payload=payload(int(person[i]), args.thumbnails))
                                               for i in range(start, stop)])
            probe = min(size, 2000)
            start = time.perf_counter()
            upsert(0, probe)
            rate = probe / (time.perf_counter() - start)
            if size / rate > args.local_max_upsert_s:
                return {**result, "skipped": f"estimated upsert {size / rate:.0f} s at {rate:.0f} points/s "
                                              f"> {args.local_max_upsert_s:.0f} s"}
            for s in range(probe, size, args.batch):
                upsert(s, min(size, s + args.batch))
            result["upsert_s"] = time.perf_counter() - start
            result["build_s"] = 0.0

            def query(q):
                return client.query_points("faces", query=q.tolist(), limit=10, with_payload=["person_id"]).points
            to_index = {u: i for i, u in enumerate(ids)}
        else:
            from qdrant_edge import (
                Distance,
                EdgeConfig,
                EdgeOptimizersConfig,
                EdgeShard,
                EdgeVectorParams,
                HnswIndexConfig,
                PayloadSchemaType,
                PayloadSelector,
                Point,
                QuantizationSearchParams,
                Query,
                QueryRequest,
                ScalarQuantizationConfig,
                ScalarType,
                SearchParams,
                UpdateOperation,
            )

            quantized = store == "edge-int8"
            shard = EdgeShard.create(str(folder / "edge"), EdgeConfig(
                vectors=EdgeVectorParams(size=512, distance=Distance.Cosine),
                hnsw_config=HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10000),
                quantization_config=ScalarQuantizationConfig(type=ScalarType.Int8, quantile=0.99, always_ram=True)
                if quantized else None,
                optimizers=EdgeOptimizersConfig(indexing_threshold=1000)))
            shard.update(UpdateOperation.create_field_index("person_id", PayloadSchemaType.Keyword))
            start = time.perf_counter()
            for s in range(0, size, args.batch):
                shard.update(UpdateOperation.upsert_points([
                    Point(id=ids[i], vector=vectors[i], payload=payload(int(person[i]), args.thumbnails))
                    for i in range(s, min(size, s + args.batch))]))
            result["upsert_s"] = time.perf_counter() - start
            print(f"progress: {store} {size:,} upserted in {result['upsert_s']:.1f} s, RSS {C.rss_mb():.0f} MB",
                  file=sys.stderr, flush=True)
            start = time.perf_counter()
            shard.optimize()
            result["build_s"] = time.perf_counter() - start
            print(f"progress: {store} {size:,} index built in {result['build_s']:.1f} s, RSS {C.rss_mb():.0f} MB",
                  file=sys.stderr, flush=True)
            params = SearchParams(hnsw_ef=SearchOptions().hnsw_ef,
                                  quantization=QuantizationSearchParams(rescore=True, oversampling=2.0)
                                  if quantized else None)
            selector = PayloadSelector.Include(["person_id"])

            def query(q):
                return shard.query(QueryRequest(limit=10, query=Query.Nearest(q), with_payload=selector,
                                                params=params))
            to_index = {u: i for i, u in enumerate(ids)}

        for q in queries[: min(50, len(queries))]:  # warm-up (cold payload pages, caches)
            query(q)
        latencies, found = [], []
        for q in queries:
            start = time.perf_counter()
            hits = query(q)
            latencies.append(time.perf_counter() - start)
            found.append(list(hits) if to_index is None else [to_index[str(h.id)] for h in hits])
        result["p50_ms"], result["p95_ms"] = C.p50_p95(latencies)
        result["recall10"] = float(np.mean([len(set(f[:10]) & set(e)) / 10 for f, e in zip(found, exact, strict=True)]))
        result["rss_growth_mb"] = C.rss_mb() - base_rss
        result["peak_rss_mb"] = C.peak_rss_mb()
        if store == "local":
            client.close()
        elif store != "numpy":
            shard.flush()
            shard.close()
        result["disk_mb"] = C.disk_mb(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result


# -- person-level recall (--people) ----------------------------------------------------------------

def people_folder(root: Path, size: int, args) -> Path:
    return Path(root) / f"people_{size}_m{args.m}_efc{args.ef_construct}_seed{args.seed}"


def person_key(person: int) -> str:
    return f"synthetic-person-{person}"


def build_people(size: int, folder: Path, args) -> dict:
    """Fill and index an edge collection of ``size`` synthetic faces through the product's adapter, once:
    a folder that already holds one is reused. Returns the build's figures (also kept in build.json)."""
    from lookalike.index.storage.edge import EdgeEngine

    done = folder / "build.json"
    if done.exists():
        return {**json.loads(done.read_text()), "reused": True}
    shutil.rmtree(folder, ignore_errors=True)
    vectors, person, centres = C.SyntheticPeople(args.seed).faces(size)
    base_rss = C.rss_mb()
    settings = dataclasses.replace(CollectionSettings.for_edge(payload_indexes={PERSON_ID: "keyword"}),
                                   hnsw_m=args.m, hnsw_ef_construct=args.ef_construct)
    engine = EdgeEngine(folder)
    engine.create_collection(PEOPLE_COLLECTION, settings, {})
    start = time.perf_counter()
    for s in range(0, size, args.batch):
        engine.upsert(PEOPLE_COLLECTION, [
            Point(str(uuid.UUID(int=i + 1)), vectors[i].tolist(),
                  {PERSON_ID: person_key(int(person[i])), NAME: f"Synthetic Person {person[i]}"})
            for i in range(s, min(size, s + args.batch))])
    result = {"size": size, "people": int(person[-1]) + 1, "m": args.m, "ef_construct": args.ef_construct,
              "seed": args.seed, "upsert_s": time.perf_counter() - start}
    del vectors, person, centres  # the generated faces are in the engine now
    gc.collect()
    print(f"progress: people {size:,} upserted in {result['upsert_s']:.0f} s, RSS {C.rss_mb():.0f} MB",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    engine.optimize(PEOPLE_COLLECTION)
    result["build_s"] = time.perf_counter() - start
    result["indexed"] = engine.indexed_vectors(PEOPLE_COLLECTION)
    result["rss_growth_mb"] = C.rss_mb() - base_rss
    result["peak_rss_mb"] = C.peak_rss_mb()
    engine.close()
    result["disk_mb"] = C.disk_mb(folder)
    result["load_average"] = C.load_average()
    print(f"progress: people {size:,} index built in {result['build_s']:.0f} s, peak RSS "
          f"{result['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    done.write_text(json.dumps(result))
    return result


def percentiles(values: np.ndarray, digits: int = 2) -> str:
    p5, p50, p95 = np.percentile(values, [5, 50, 95])
    return f"{p50:.{digits}f} ({p5:.{digits}f} to {p95:.{digits}f})"


def measure_spread(vectors: np.ndarray, person: np.ndarray, starts: np.ndarray, kinds: dict, exact: dict,
                   pairs: int = 20_000) -> dict:
    """The cosines the generator produced: same-person and different-person photo pairs, and for the
    queries their own person's best photo, the best other person, and the near-tie at the 5th person."""
    rng = np.random.default_rng(7)
    counts = np.diff(np.r_[starts, len(person)])
    several = np.flatnonzero(counts >= 2)
    chosen = several[rng.integers(0, len(several), pairs)]
    first = rng.integers(0, counts[chosen])
    second = (first + rng.integers(1, counts[chosen])) % counts[chosen]
    same = np.sum(vectors[starts[chosen] + first] * vectors[starts[chosen] + second], axis=1)
    a, b = rng.integers(0, len(person), (2, pairs))
    keep = person[a] != person[b]
    different = np.sum(vectors[a[keep]] * vectors[b[keep]], axis=1)
    queries, owners = kinds["indexed"]
    own = np.array([np.max(vectors[starts[p]:starts[p] + counts[p]] @ q) for q, p in zip(queries, owners, strict=True)])
    people, scores = exact["indexed"]
    other = np.array([s[p != o][0] for p, s, o in zip(people, scores, owners, strict=True)])
    stranger = exact["stranger"][1]
    return {
        "same person, two photos": percentiles(same),
        "different people, two photos": percentiles(different),
        "indexed query: its own person (best photo)": percentiles(own),
        "indexed query: best other person": percentiles(other),
        "indexed query: own person ranked first (share)": f"{np.mean(people[:, 0] == owners):.3f}",
        "stranger query: best person": percentiles(stranger[:, 0]),
        "stranger query: 5th person": percentiles(stranger[:, PEOPLE_K - 1]),
        "stranger query: gap 5th - 6th person": percentiles(stranger[:, PEOPLE_K - 1] - stranger[:, PEOPLE_K], 4),
        "photos per person: 1 photo (share) / mean / max": f"{np.mean(counts == 1):.2f} / {counts.mean():.1f} / "
                                                          f"{counts.max()}",
    }


def sweep_people(size: int, folder: Path, args) -> dict:
    """Person recall@5 and latency of the product's grouped query at each ``--efs`` value, on the built
    collection in ``folder``, against an exact scan of the same synthetic faces."""
    from lookalike.index.query import FaceIndex
    from lookalike.index.storage.edge import EdgeEngine
    from lookalike.index.store import FaceStore

    model = C.SyntheticPeople(args.seed)
    vectors, person, centres = model.faces(size)
    starts = C.person_starts(person)
    kinds = model.queries(centres, args.queries)
    exact = {kind: C.exact_top_people(q, vectors, starts, PEOPLE_K + 1) for kind, (q, _) in kinds.items()}
    spread = measure_spread(vectors, person, starts, kinds, exact)
    del vectors, person, centres
    gc.collect()
    print(f"progress: people {size:,} exact top-{PEOPLE_K} of {2 * args.queries} queries done",
          file=sys.stderr, flush=True)

    engine = EdgeEngine(folder)
    store = FaceStore(engine, PEOPLE_COLLECTION, where="bench", serialize=True)
    index = FaceIndex(store)
    selected = PayloadFields(exclude=(THUMBNAIL,))
    queries = [(kind, i, q) for kind, (batch, _) in kinds.items() for i, q in enumerate(batch)]
    order = np.random.default_rng(3).permutation(len(queries))  # the kinds interleaved
    found: dict[str, dict[str, list]] = {}

    def path(name: str, ask):
        """A timed path for C.interleaved: each call answers the next ``n`` queries (kinds interleaved)."""
        cursor = [0]

        def run(n: int) -> list[float]:
            durations = []
            for j in order[cursor[0]:cursor[0] + n]:
                kind, i, q = queries[j]
                start = time.perf_counter()
                people = ask(q)
                durations.append(time.perf_counter() - start)
                found[name][kind][i] = [int(p.rsplit("-", 1)[1]) for p in people]
            cursor[0] += n
            return durations
        return run

    def grouped(options: SearchOptions) -> Callable[[np.ndarray], list[str]]:
        return lambda q: [h.payload[PERSON_ID] for h in engine.query_groups(
            PEOPLE_COLLECTION, q.tolist(), PERSON_ID, PEOPLE_K, None, selected, options)]

    asks: dict[str, Callable[[np.ndarray], list[str]]] = {}
    for ef in C.parse_list(args.efs, int):
        asks[f"hnsw_ef {ef}"] = grouped(SearchOptions(hnsw_ef=ef))
    default = f"product default: FaceIndex.query_people (hnsw_ef {SearchOptions().hnsw_ef})"
    asks[default] = lambda q: [m.payload.person_id for m in index.query_people(q, PEOPLE_K, with_thumbnails=False)]
    for name, ask in asks.items():  # warm-up: cold pages of the graph, vectors and payloads
        found[name] = {kind: [None] * args.queries for kind in kinds}
        path(name, ask)(min(50, len(queries)))
    paths = {name: path(name, ask) for name, ask in asks.items()}
    samples = C.interleaved(paths, len(queries), rounds=4)
    rows = []
    for name in paths:
        recalls = {kind: C.person_recall(exact[kind][0][:, :PEOPLE_K], found[name][kind], PEOPLE_K)
                   for kind in kinds}
        p50, p95 = C.p50_p95(samples[name])
        rows.append({"setting": name, "recall_indexed": recalls["indexed"], "recall_stranger": recalls["stranger"],
                     "recall_all": float(np.mean(list(recalls.values()))), "p50_ms": p50, "p95_ms": p95})
    store.close()
    return {"size": size, "queries": args.queries, "spread": spread, "rows": rows,
            "load_average": C.load_average()}


def run_people(args) -> int:
    """The person-level recall report: per size, build (or reuse) the collection, then sweep hnsw_ef."""
    sizes = C.parse_list(args.sizes, int)
    root = Path(args.shard_dir) if args.shard_dir else Path(tempfile.mkdtemp(prefix="bench_people_"))
    print(C.header(f"Person-level recall@{PEOPLE_K} at scale: synthetic people (FaceNet-like spread), "
                   f"{args.queries} + {args.queries} queries, HNSW m={args.m}, ef_construct={args.ef_construct}"))
    print("Generator (`bench/_common.py`, `SyntheticPeople`): " + ", ".join(
        f"{k} {v}" for k, v in C.PEOPLE_SPREAD.items()) + f", seed {args.seed}.\n")
    try:
        for size in sizes:
            results = {}
            for job in ("people-build", "people-sweep"):
                command = [sys.executable, __file__, "--people", "--case", f"{job}:{size}", "--shard-dir", str(root),
                           "--queries", str(args.queries), "--batch", str(args.batch), "--efs", args.efs,
                           "--m", str(args.m), "--ef-construct", str(args.ef_construct), "--seed", str(args.seed)]
                done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
                lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                if done.returncode or not lines:
                    print(f"\n{job} {size:,} failed (exit {done.returncode}); see its stderr above.\n")
                    break
                results[job] = json.loads(lines[-1])
            if "people-sweep" in results:
                print(people_report(results["people-build"], results["people-sweep"]))
    finally:
        if not args.shard_dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def people_report(build: dict, sweep: dict) -> str:
    size = sweep["size"]
    head = (f"### {size:,} faces ({build['people']:,} people), HNSW m={build['m']}, "
            f"ef_construct={build['ef_construct']}\n\n"
            f"Build: upsert {build['upsert_s']:.0f} s, index {build['build_s']:.0f} s, peak RSS "
            f"{build['peak_rss_mb']:.0f} MB, disk {build['disk_mb']:.0f} MB (load average then "
            f"{build.get('load_average', '?')}{'; built by an earlier run, reused' if build.get('reused') else ''}). "
            f"Sweep load average at its end: {sweep['load_average']}.\n")
    rows = [[r["setting"], r["recall_indexed"], r["recall_stranger"], r["recall_all"], r["p50_ms"], r["p95_ms"]]
            for r in sweep["rows"]]
    table = C.table(["query setting", f"recall@{PEOPLE_K} indexed", f"recall@{PEOPLE_K} stranger",
                     f"recall@{PEOPLE_K} both", "p50 ms", "p95 ms"], rows)
    spread = C.table(["cosine (median, 5th-95th percentile)", "measured"], list(sweep["spread"].items()))
    return f"{head}\n{table}\n\n{spread}\n"


def estimate(store: str, size: int) -> float:
    return size * (EST[store]["upsert"] + EST[store]["build"]) + size * 512 * 4 / 2e9 * 10


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.people and args.case:
        job, size = args.case.split(":")
        root = Path(args.shard_dir)
        folder = people_folder(root, int(size), args)
        run = build_people if job == "people-build" else sweep_people
        print(json.dumps(run(int(size), folder, args)))
        return 0
    if args.people:
        return run_people(args)
    if args.case:
        store, size = args.case.split(":")
        print(json.dumps(run_case(store, int(size), args)))
        return 0
    sizes = C.parse_list(args.sizes, int)
    stores = C.parse_list(args.stores)
    if args.estimate:
        print(C.table(["store", "size", "estimated seconds (2 cores, idle)"],
                      [[s, n, estimate(s, n)] for n in sizes for s in stores]))
        return 0
    print(C.header(f"Search at scale: top-10, synthetic 512-d identity clusters (17 per person), "
                   f"{args.queries} queries"))
    rows = []
    for size in sizes:
        for store in stores:
            command = [sys.executable, __file__, "--case", f"{store}:{size}", "--queries", str(args.queries),
                       "--batch", str(args.batch), "--local-max-upsert-s", str(args.local_max_upsert_s)]
            if args.thumbnails:
                command.append("--thumbnails")
            done = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                rows.append([store, f"{size:,}", f"failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}",
                             "", "", "", "", "", "", ""])
                continue
            r = json.loads(lines[-1])
            if "skipped" in r:
                rows.append([store, f"{size:,}", f"skipped: {r['skipped']}", "", "", "", "", "", "", ""])
                continue
            rows.append([store, f"{size:,}", r["p50_ms"], r["p95_ms"], r["recall10"], r["upsert_s"], r["build_s"],
                         r["rss_growth_mb"], r["peak_rss_mb"], r["disk_mb"]])
            print(f"- done {store} {size:,}", file=sys.stderr)
    print(C.table(["store", "points", "p50 ms", "p95 ms", "recall@10", "upsert s", "index build s",
                   "RSS growth MB", "peak RSS MB", "disk MB"], rows))
    print("\nrecall@10 is against exact numpy search; `numpy` is that exact scan (in RAM, no payloads). "
          "edge-int8 queries rescore with the float vectors (oversampling 2). RSS growth: the process after "
          "the store was filled and queried, minus the process holding only the generated vectors.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
