"""Public traffic against the app: a soak of many API calls from concurrent clients, with the server's
memory, and the rows of issue 22 (concurrency, one photo sent by every client, a huge upload, a REST
call without its optional inputs).

    python bench/soak.py                        # 5,000 calls from 8 clients, plus the rows (about 10 min)
    python bench/soak.py --calls 1000 --no-rows
    python bench/soak.py --queue-variants       # only: what the queue settings do to 8 clients' req/s and p95

The app (``webapp.page.build_app`` with ``webapp.wiring.launch_kwargs()``: no rate limit) runs in this
process over an embedded index of the five_celebs/train faces plus synthetic faces (``--faces`` in all);
each client is its own process (``bench/http_client.py``, Gradio's REST API as curl calls it), every
client sending its own photos (distinct bytes) unless a row says otherwise. RSS is this process's, so
it includes the index and the models. Not a test: it prints Markdown and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import select
import shutil
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from http_client import LOOKALIKE_EXTRA, timed_calls  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--faces", type=int, default=1258, help="faces in the index (five_celebs/train + synthetic)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--calls", type=int, default=5000,
                        help="soak calls in all (RSS after the first 500 and the last)")
    parser.add_argument("--one-calls", type=int, default=20, help="calls of the one-client row")
    parser.add_argument("--row-calls", type=int, default=25, help="calls per client of the concurrent rows")
    parser.add_argument("--no-rows", action="store_true", help="only the soak, not the issue's other rows")
    parser.add_argument("--queue-variants", action="store_true",
                        help="only: 8 clients x 25 calls under several (default_concurrency_limit, max_size)")
    parser.add_argument("--huge-mb", type=int, default=300, help="size of the huge upload row")
    return parser


def photos_for(folder: Path, client: int, count: int = 5) -> list[str]:
    """``count`` 640x480 one-face photos of this client alone: bytes after the JPEG's end make each unique."""
    base = C.canvas_photos(640, 480, count)
    return C.write_photos(folder, [p + f"client {client} photo {i}".encode() for i, p in enumerate(base)],
                          f"client{client}")


def clients_run(url: str, per_client: list[list[str]], calls: int, extra=LOOKALIKE_EXTRA) -> dict:
    """Each client (its own process) makes ``calls`` calls with its photos, all at once: errors, req/s, p50,
    p95 (ms) and the first error messages."""
    start = time.perf_counter()
    with ThreadPoolExecutor(len(per_client)) as pool:
        results = list(pool.map(lambda photos: timed_calls(url, "lookalike", photos, runs=calls, warmup=0,
                                                           extra=extra, keep_going=True), per_client))
    wall = time.perf_counter() - start
    seconds = [s for r in results for s in r["seconds"]]
    errors = [e for r in results for e in r["errors"]]
    p50, p95 = C.p50_p95(seconds) if seconds else (float("nan"), float("nan"))
    return {"calls": calls * len(per_client), "errors": len(errors), "rps": calls * len(per_client) / wall,
            "p50": p50, "p95": p95, "wall": wall, "first_errors": sorted(set(errors))[:3]}


def huge_upload(url: str, megabytes: int) -> tuple[str, float, float]:
    """POST a multipart upload of ``megabytes`` MB to /gradio_api/upload as a client would stream it: the
    answer's status line, seconds to it, and MB of it left in the upload folder afterwards."""
    import gradio as gr

    host, port = url.removeprefix("http://").rstrip("/").split(":")
    folder = Path(gr.utils.get_upload_folder())
    before = C.disk_mb(folder) if folder.exists() else 0.0
    head = b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"huge.jpg\"\r\n\r\n"
    tail = b"\r\n--b--\r\n"
    size = megabytes * 2**20
    chunk = b"\0" * 2**20
    start = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     + f"Content-Length: {len(head) + size + len(tail)}\r\n\r\n".encode() + head)
        answer, body_left, tail_left = b"", size, tail
        try:
            while body_left or tail_left:  # until the server answers: a refusal comes before the body is read
                readable, writable, _ = select.select([sock], [sock], [], 60)
                if readable:
                    break
                if writable and body_left:
                    body_left -= sock.send(chunk[:min(len(chunk), body_left)])
                elif writable:
                    tail_left = tail_left[sock.send(tail_left):]
            while not answer.rstrip().endswith((b"}", b"]")) and (part := sock.recv(65536)):
                answer += part
        except OSError:  # the server closed the connection after its answer
            pass
    text = answer.decode("latin-1")
    seconds = time.perf_counter() - start
    time.sleep(0.5)  # Gradio moves a finished upload into place in a background task
    left = (C.disk_mb(folder) if folder.exists() else 0.0) - before
    status = text.split("\r\n", 1)[0]
    body = text.split("\r\n\r\n", 1)[-1]
    try:  # the app's refusal: its reason and sentence; an accepted upload: the stored path
        refusal = json.loads(body)
        body = f"{refusal['reason']}: {refusal['error']}" if isinstance(refusal, dict) else body
    except (ValueError, KeyError):
        pass
    return f"{status}: {body[:200]}", seconds, left


def rest_without_options(url: str, photo: str) -> str:
    """A REST call with only the photo and top_k (gender and department left out): the event and data."""
    import httpx

    with httpx.Client(timeout=60) as http, open(photo, "rb") as handle:
        path = http.post(f"{url}gradio_api/upload", files={"files": ("me.jpg", handle)}).json()[0]
        posted = http.post(f"{url}gradio_api/call/lookalike",
                           json={"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, 3]})
        if posted.status_code != 200:
            return f"HTTP {posted.status_code}: {posted.text[:160]}"
        text = http.get(f"{url}gradio_api/call/lookalike/{posted.json()['event_id']}").text
    lines = [line for line in text.splitlines() if line.startswith(("event:", "data:"))][-2:]
    summary = " ".join(lines)
    if "event: complete" in summary:
        answer = json.loads(lines[-1].removeprefix("data:"))[0]
        return "event: complete, " + (f"{len(answer['faces'])} face, {len(answer['faces'][0]['matches'])} matches"
                                      if "faces" in answer else str(answer)[:120])
    return summary[:200]


def launch(finder, concurrency: int | None = None, max_size: int | None = None):
    from webapp.page import build_app
    from webapp.wiring import launch_kwargs

    demo = build_app(finder)
    if concurrency is not None:
        demo.queue(default_concurrency_limit=concurrency, max_size=max_size)
    return demo, C.launch_app(demo, **launch_kwargs())


def fmt(row: dict) -> list:
    return [row["calls"], row["errors"], row["rps"], row["p50"], row["p95"]]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    weights_note = C.ensure_weights()
    import torch

    from lookalike.faces import FacePipeline
    from lookalike.search import LookalikeFinder
    from lookalike.settings import Settings
    from query_latency import fill_store, real_points
    from webapp.settings import AppSettings

    torch.set_num_threads(AppSettings().torch_threads)  # as webapp.wiring.create_app: one thread per search
    print(C.header(f"Public traffic: {args.clients} REST clients, {args.faces:,} faces"))
    print(f"- weights: {weights_note}")
    data_dir = Path(tempfile.mkdtemp(prefix="bench_soak_"))
    try:
        settings = Settings(data_dir=data_dir, device="cpu", qdrant_url=None)
        pipeline = FacePipeline(settings.face_config())
        real = real_points(pipeline, C.FIVE_TRAIN, settings.model_copy(update={"data_dir": data_dir / "scratch"}))
        vectors, person = C.identity_vectors(max(0, args.faces - len(real)))
        store = C.open_store(settings, "edge")
        count = fill_store(store, pipeline.fingerprint, vectors, person, real)
        finder = LookalikeFinder(pipeline, store, top_k=5)
        print(f"- index: {count:,} points ({len(real)} real faces of five_celebs/train, the rest synthetic)")
        photos = Path(data_dir / "photos")
        photos.mkdir()
        per_client = [photos_for(photos, c) for c in range(args.clients)]

        if args.queue_variants:
            rows, refusals = [], {}
            for concurrency, max_size in ((1, 16), (2, 16), (3, 16), (4, 16), (2, 4)):
                demo, url = launch(finder, concurrency, max_size)
                try:
                    clients_run(url, per_client[:1], 3)  # warm-up
                    one = clients_run(url, per_client[:1], args.one_calls)
                    many = clients_run(url, per_client, args.row_calls)
                    rows.append([concurrency, max_size, one["rps"], *fmt(many), many["rps"] / one["rps"]])
                    if many["first_errors"]:
                        refusals[(concurrency, max_size)] = many["first_errors"][0]
                finally:
                    C.close_app(demo)
            print(f"\n### Queue settings: 1 client x {args.one_calls} calls, then {args.clients} clients x "
                  f"{args.row_calls} calls, distinct photos\n")
            print(C.table(["default_concurrency_limit", "max_size", "1 client req/s", "calls", "errors", "req/s",
                           "p50 ms", "p95 ms", "ratio to 1 client"], rows))
            for (concurrency, max_size), error in refusals.items():
                print(f"\n- ({concurrency}, {max_size}): the first refusal: {error}")
            print(f"\n- load average at the end: {C.load_average()}")
            return 0

        demo, url = launch(finder)
        try:
            clients_run(url, per_client[:1], 3)  # warm-up
            print(f"- RSS after start-up and warm-up: {C.rss_mb():.0f} MB; load average {C.load_average()}\n")
            if not args.no_rows:
                one = clients_run(url, per_client[:1], args.one_calls)
                eight = clients_run(url, per_client, args.row_calls)
                same = clients_run(url, [per_client[0][:1]] * args.clients, args.row_calls)
                huge = huge_upload(url, args.huge_mb)
                rest = rest_without_options(url, per_client[0][0])
                print("### The issue's rows\n")
                print(C.table(["row", "calls", "errors", "req/s", "p50 ms", "p95 ms"], [
                    ["1 client, distinct photos", *fmt(one)],
                    [f"{args.clients} clients, distinct photos", *fmt(eight)],
                    [f"{args.clients} clients, the same photo bytes", *fmt(same)]]))
                print(f"\n- {args.clients} clients / 1 client req/s: {eight['rps'] / one['rps']:.2f}x")
                for label, row in (("distinct", eight), ("same photo", same)):
                    if row["first_errors"]:
                        print(f"- first errors ({label}): {row['first_errors']}")
                print(f"- one {args.huge_mb} MB upload: {huge[0]!r} after {huge[1]:.2f} s; "
                      f"{huge[2]:.1f} MB of it left in the upload folder")
                print(f"- REST call with only the photo and top_k: {rest}")
                print(f"- RSS after the rows: {C.rss_mb():.0f} MB\n")
            first = min(500, args.calls)
            soak = [clients_run(url, per_client, max(1, first // args.clients))]
            rss_first = C.rss_mb()
            sessions_first = len(demo.state_holder.session_data)
            rest = args.calls - soak[0]["calls"]
            if rest > 0:
                soak.append(clients_run(url, per_client, max(1, rest // args.clients)))
            rss_last = C.rss_mb()
            calls = sum(r["calls"] for r in soak)
            seconds_wall = sum(r["wall"] for r in soak)
            print(f"### Soak: {calls:,} calls from {args.clients} clients\n")
            print(C.table(["calls", "errors", "req/s", "p50 ms (last part)", "p95 ms (last part)",
                           f"RSS after {soak[0]['calls']} MB", f"RSS after {calls} MB", "growth MB",
                           "Gradio sessions held"], [[
                calls, sum(r["errors"] for r in soak), calls / seconds_wall, soak[-1]["p50"], soak[-1]["p95"],
                rss_first, rss_last, rss_last - rss_first,
                f"{sessions_first} -> {len(demo.state_holder.session_data)}"]]))
            errors = [e for r in soak for e in r["first_errors"]]
            if errors:
                print(f"\n- first errors: {errors[:3]}")
            print(f"\n- load average at the end: {C.load_average()}")
        finally:
            C.close_app(demo)
        store.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
