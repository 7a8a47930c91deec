"""Smoke tests of the benchmark scripts: each runs with tiny sizes and prints its Markdown table.

No timing is asserted: the figures are the scripts' output, not the tests' business.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from support import CommandServer

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# what the scripts import, loaded once in the parent their processes are forked from
PRELOAD = ["torch", "facenet_pytorch", "gradio", "gradio_client", "datasets", "lookalike.faces",
           "lookalike.index.store", "webapp.page"]


@pytest.fixture(scope="module")
def bench_server():
    """The benchmark scripts' processes, forked from one parent that imported their libraries once."""
    server = CommandServer(PRELOAD, dict(os.environ))
    yield server
    server.close()


@pytest.fixture
def run_bench(bench_server):
    """Runs a benchmark script with ``args`` (a real process) and returns its standard output."""
    def run(script: str, *args: str, torch_home: Path | None = None, timeout: int = 900) -> str:
        env = dict(os.environ)
        if torch_home is not None:
            env["TORCH_HOME"] = str(torch_home)
        env.pop("LOOKALIKE_WEIGHTS", None)
        done = bench_server.run([str(ROOT / "bench" / script), *args], env, timeout=timeout)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "- machine: " in done.stdout and "versions: torch" in done.stdout
        return done.stdout

    return run


def test_query_latency_prints_its_tables(run_bench, torch_home):
    """Without --http: the HTTP clients (bench/http_client.py) are run by the targets test below."""
    out = run_bench("query_latency.py", "--faces", "200", "--runs", "2", "--warmup", "1", "--photos", "1",
                    "--embedders", "onnxruntime", "--min-face-sizes", "40", torch_home=torch_home)
    assert "| path | photo | p50 ms | p95 ms | runs |" in out
    for path in ("ours: onnxruntime, edge, min_face 40", "ours: onnxruntime, local, min_face 40", "reference: MTCNN()"):
        assert path in out
    assert "640x480, 1 face" in out and "1280x720, 1 face" in out and "multiface.jpg" in out
    assert "Ratio reference / ours" in out
    assert "| configuration | decode | detect | extract | embed | search | sum |" in out


def test_indexing_throughput_prints_its_tables(run_bench, torch_home):
    out = run_bench("indexing_throughput.py", "--people", "2", "--per-person", "2", "--embedders", "torch,onnx",
                    torch_home=torch_home)
    assert "| path | images | faces | seconds | faces/s | skipped |" in out
    assert "| ours: torch, edge, batch 32 | 4 | 4 |" in out
    assert "| ours: onnx, edge, batch 32 | 4 | 4 |" in out
    assert "| reference: per image, no no_grad, 1 upsert each, local | 4 | 4 |" in out
    assert "Ratio ours / reference" in out and "detect" in out and "upsert" in out


def test_private_mode_prints_the_browser_the_servers_share_and_the_throughputs(run_bench, torch_home):
    pytest.importorskip("playwright")
    from support import CHROMIUM

    if CHROMIUM is None:
        pytest.skip("no Chromium")
    out = run_bench("private_mode.py", "--people", "2", "--per-person", "2", "--runs", "2", "--seconds", "1",
                    "--rounds", "1", torch_home=torch_home)
    assert "| wasm threads | cross-origin isolated | photo -> matches p50 |" in out
    assert "| 1 | True |" in out and "| 2 | True |" in out
    for handler in ("vector API (find_lookalikes_by_vectors)", "page, private (submit_private)",
                    "photo API, server mode (find_lookalikes)"):
        assert f"| {handler} |" in out
    rows = [line for line in out.splitlines() if line.startswith(("| vector API (queue", "| server mode", "| trivial"))]
    assert len(rows) == 5 and all(line.split("|")[4].strip() == "0" for line in rows), rows  # no errors


def test_weekly_reuse_prints_its_three_builds(run_bench, torch_home):
    out = run_bench("weekly_reuse.py", "--people", "2", "--rounds", "1", torch_home=torch_home)
    assert "| build | photos | embedded | reused | median s | each round, s | of the first |" in out
    rows = {line.split("|")[1].strip(): line.split("|")[2:5] for line in out.splitlines() if line.startswith("| ")}
    photos, embedded, reused = (int(v) for v in rows["first"])
    assert embedded == photos and reused == 0
    assert [int(v) for v in rows["unchanged"]] == [photos, 0, photos]
    grown, new, copied = (int(v) for v in rows["10% new"])
    assert grown > photos and new == grown - photos and copied == photos


def test_soak_prints_its_rows_and_the_memory_of_its_calls(run_bench, torch_home):
    out = run_bench("soak.py", "--faces", "120", "--clients", "2", "--calls", "8", "--one-calls", "3",
                    "--row-calls", "3", "--huge-mb", "20", torch_home=torch_home)
    rows = out.split("### The issue's rows")[1]
    for row in ("| 1 client, distinct photos | 3 | 0 |", "| 2 clients, distinct photos | 6 | 0 |",
                "| 2 clients, the same photo bytes | 6 | 0 |"):
        assert row in rows, rows
    assert "413" in rows and "upload_too_large" in rows and "event: complete, 1 face, 3 matches" in rows
    soak = out.split("### Soak: 8 calls from 2 clients")[1]
    assert "| calls | errors | req/s |" in soak and "| 8 | 0 |" in soak, soak


def test_search_scale_prints_its_table(run_bench):
    out = run_bench("search_scale.py", "--sizes", "600", "--queries", "10")
    assert "| store | points | p50 ms | p95 ms | recall@10 |" in out
    for store in ("numpy", "local", "edge", "edge-int8"):
        assert f"| {store} | 600 |" in out
    assert "failed" not in out
    # the exact scan is its own reference
    assert "| numpy | 600 |" in out and out.split("| numpy | 600 |")[1].split("|")[2].strip() == "1"


def test_search_scale_skips_local_mode_when_too_slow(run_bench):
    out = run_bench("search_scale.py", "--sizes", "2500", "--queries", "5", "--stores", "local",
                    "--local-max-upsert-s", "0.001")
    assert "| local | 2,500 | skipped: estimated upsert" in out


def test_targets_prints_the_four_ratios_first(run_bench, torch_home):
    """Every target gets a figure: the HTTP rows too, from both client processes (REST and gradio_client)."""
    out = run_bench("targets.py", "--faces", "200", "--runs", "2", "--warmup", "1", "--rounds", "1", "--photos", "1",
                    "--people", "2", "--per-person", "2", torch_home=torch_home)
    ratios = out.split("### Ratios")[1].split("### Details")[0]
    for target in ("(a) 640x480 selfie", "(b) detection", "(c) indexing faces/s", "(d) HTTP p50 (rest)",
                   "(d) HTTP p50 (gradio_client)"):
        assert target in ratios
    assert "Worst IoU of a reference box" in out and "nan" not in ratios, out


def test_interleaved_timing_alternates_the_paths_and_pools_their_runs(monkeypatch):
    """Paths compared are timed in alternating blocks (A B, B A, A B), each block a share of the runs."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import _common as C

    calls = []

    def path(name):
        def run(n):
            calls.append((name, n))
            return [float(len(calls))] * n
        return run

    samples = C.interleaved({"a": path("a"), "b": path("b")}, runs=7, rounds=3)
    assert calls == [("a", 3), ("b", 3), ("b", 2), ("a", 2), ("a", 2), ("b", 2)]
    assert samples == {"a": [1.0] * 3 + [4.0] * 2 + [5.0] * 2, "b": [2.0] * 3 + [3.0] * 2 + [6.0] * 2}


def test_person_recall_against_an_exact_store_is_one_and_a_wrong_grouping_scores_less(monkeypatch, tmp_path):
    """Person recall@5: the product's grouped query on a store that scans (2,000 faces, under the edge
    engine's full-scan threshold) finds exactly the exact scan's 5 people; top-5 faces without grouping
    (several photos of one person) do not."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import _common as C
    from lookalike.index.storage.edge import EdgeEngine
    from lookalike.index.storage.port import CollectionSettings, PayloadFields, Point

    model = C.SyntheticPeople(seed=5)
    vectors, person, centres = model.faces(2000)
    starts = C.person_starts(person)
    assert person[0] == 0 and np.all(np.diff(person) >= 0) and len(starts) == person[-1] + 1
    kinds = model.queries(centres, 15)
    engine = EdgeEngine(tmp_path / "edge")
    engine.create_collection("faces", CollectionSettings.for_edge(payload_indexes={"person_id": "keyword"}), {})
    engine.upsert("faces", [Point(f"00000000-0000-0000-0000-{i:012d}", vectors[i].tolist(),
                                  {"person_id": str(person[i])}) for i in range(len(vectors))])
    try:
        for queries, _ in kinds.values():
            exact, scores = C.exact_top_people(queries, vectors, starts, 5)
            brute = [sorted(range(len(starts)), key=lambda p: -float(np.max(vectors[person == p] @ q)))[:5]
                     for q in queries]
            assert exact.tolist() == brute and np.all(np.diff(scores, axis=1) <= 0)
            selected = PayloadFields(include=("person_id",))
            got = [[int(h.payload["person_id"]) for h in
                    engine.query_groups("faces", q.tolist(), "person_id", 5, with_payload=selected)] for q in queries]
            assert C.person_recall(exact, got, 5) == 1.0
        queries, owners = kinds["indexed"]
        exact, _ = C.exact_top_people(queries, vectors, starts, 5)
        ungrouped = [[int(h.payload["person_id"]) for h in engine.query("faces", q.tolist(), 5)] for q in queries]
        assert C.person_recall(exact, ungrouped, 5) < 1.0
        assert np.mean(exact[:, 0] == owners) > 0.9  # a new photo of an indexed person finds that person first
    finally:
        engine.close()


def test_search_scale_people_prints_its_tables(run_bench):
    out = run_bench("search_scale.py", "--people", "--sizes", "2000", "--queries", "10", "--efs", "64")
    assert "| query setting | recall@5 indexed | recall@5 stranger | recall@5 both | p50 ms | p95 ms |" in out
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| hnsw_ef 64 |")
            or line.startswith("| product default: FaceIndex.query_people")]
    assert len(rows) == 2 and all([cell.strip() for cell in row[2:5]] == ["1", "1", "1"] for row in rows), out
    assert "| same person, two photos |" in out and "failed" not in out
