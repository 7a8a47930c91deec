"""Search at scale: top-10 latency and recall@10 against exact search, for synthetic 512-d vectors
clustered like identities (17 photos per person), per store.

    python bench/search_scale.py                     # 20k and 100k
    python bench/search_scale.py --sizes 1000000     # 1M (edge only; about 2-3 GB RAM, see --estimate)
    python bench/search_scale.py --estimate --sizes 20000,100000,1000000

Stores: ``numpy`` (exact scan, the reference for recall), ``local`` (qdrant-client's embedded mode;
a size is skipped when its upsert would take longer than --local-max-upsert-s, measured on a probe),
``edge`` (qdrant-edge-py HNSW m=16, ef_construct=100, float vectors), ``edge-int8`` (the same with int8
scalar quantization, always_ram, queried with rescore=True and oversampling 2). Queries use hnsw_ef=128,
as the app does. Each (store, size) runs in its own process so memory is its own: RSS growth over the
process after the vectors were generated, and peak RSS. Payloads: person_id and name (no thumbnail,
so disk is the vectors' and index's own; ``--thumbnails`` adds a 4 KB one).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

STORES = ("numpy", "local", "edge", "edge-int8")
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
            from qdrant_edge import (Distance, EdgeConfig, EdgeOptimizersConfig, EdgeShard, EdgeVectorParams,
                                     HnswIndexConfig, PayloadSchemaType, PayloadSelector, Point,
                                     QuantizationSearchParams, Query, QueryRequest, ScalarQuantizationConfig,
                                     ScalarType, SearchParams, UpdateOperation)

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
            params = SearchParams(hnsw_ef=128, quantization=QuantizationSearchParams(rescore=True, oversampling=2.0)
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
        result["recall10"] = float(np.mean([len(set(f[:10]) & set(e)) / 10 for f, e in zip(found, exact)]))
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


def estimate(store: str, size: int) -> float:
    return size * (EST[store]["upsert"] + EST[store]["build"]) + size * 512 * 4 / 2e9 * 10


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
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
