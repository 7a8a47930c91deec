"""Load: 8 concurrent gradio_client clients against the app on 127.0.0.1 (the session app of
``fixtures_app.py``, queue as ``webapp.page.build_app`` configures it: 2 searches at once, 16 waiting).

96 requests by default (12 from each client, all 8 in flight at once); set
``LOOKALIKE_LOAD_REQUESTS`` for a longer run (the README's figures: 200). Figures are printed (``pytest -s -n 0``)
and written to ``test-output/load.json``; nothing is asserted about time except a bound on the whole run.
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from conftest import CORE_FIXTURES, ROOT

pytestmark = [pytest.mark.load, pytest.mark.usefixtures(*CORE_FIXTURES)]

CLIENTS = 8
TIME_BOUND_S = 900


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def test_eight_clients_at_once_none_fails(app_server, app_index):
    from gradio_client import Client, handle_file

    total = int(os.environ.get("LOOKALIKE_LOAD_REQUESTS", "96"))
    photos = [(person, path) for person, paths in sorted(app_index.photos.items()) for path in paths]
    taken = iter(range(total))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.monotonic() + TIME_BOUND_S

    def worker() -> None:
        client = Client(app_server.url, verbose=False)
        while time.monotonic() < deadline:
            with lock:
                number = next(taken, None)
            if number is None:
                return
            person, photo = photos[number % len(photos)]
            start = time.perf_counter()
            try:
                out = client.predict(handle_file(str(photo)), api_name="/lookalike")
            except Exception as exc:  # the request itself failed (queue full, connection): a failure
                with lock:
                    failures.append(f"{number}: {type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - start
            with lock:
                if "error" in out or len(out["faces"]) != 1 or out["faces"][0]["matches"][0]["person_id"] != person:
                    failures.append(f"{number}: {str(out)[:200]}")
                else:
                    latencies.append(elapsed)

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, name=f"client-{i}") for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIME_BOUND_S + 60)
    wall = time.perf_counter() - began

    assert not failures, failures[:5]
    assert len(latencies) == total, f"only {len(latencies)} of {total} requests answered in {TIME_BOUND_S} s"
    figures = {
        "clients": CLIENTS, "requests": total, "failed": len(failures), "wall_s": round(wall, 2),
        "throughput_rps": round(total / wall, 2), "p50_ms": round(_percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(_percentile(latencies, 95) * 1000, 1), "max_ms": round(max(latencies) * 1000, 1),
        "cpu_cores": os.cpu_count(), "queue": "default_concurrency_limit=2, max_size=16",
        "note": "app and clients in one process on a shared machine; stand-in FaceNet weights",
    }
    out_dir = ROOT / "test-output"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "load.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nload: {total} requests, {CLIENTS} clients, {figures['throughput_rps']} req/s, "
          f"p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, max {figures['max_ms']} ms, wall {wall:.1f} s")
