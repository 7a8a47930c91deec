"""Time a running Gradio app's endpoint from this separate process, as a user's machine would call it
(a client inside the server's process would compete with it for the GIL and the CPU, and measure that
contention instead of the API).

    python bench/http_client.py http://127.0.0.1:7860/ lookalike a.jpg b.jpg --runs 30 --extra 5 '""' '""'
    python bench/http_client.py http://127.0.0.1:7860/ lookalike a.jpg --client gradio_client --extra 5

Two clients:

- ``rest`` (default): Gradio's HTTP API as ``curl`` uses it (upload the photo, ``POST
  /gradio_api/call/<api>``, then read the result from ``GET /gradio_api/call/<api>/<event_id>``'s
  event stream as soon as it is sent);
- ``gradio_client``: ``Client.predict``. It reads the event stream through a thread that checks for
  new messages every 50 ms, so its times come in 50 ms steps. On a plain ``http://`` URL it is made with
  ``ssl_verify=False`` (no TLS is involved either way), which spares the CPU of three CA-bundle loads a call.

Prints one JSON line: the seconds of each timed call, in order.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

CLIENTS = ("rest", "gradio_client")
LOOKALIKE_EXTRA = ("5", '""', '""')
"""Our ``/lookalike`` endpoint's inputs after the photo, as JSON texts: top_k 5, any gender, any field."""


def rest_call(http, url: str, api: str, photo: str | None, extra: list) -> None:
    """One call through Gradio's REST API (the photo uploaded first, when there is one, as the first input);
    raises when the app answers with an error event or its own refusal."""
    data = list(extra)
    if photo is not None:
        with open(photo, "rb") as handle:
            uploaded = http.post(f"{url}gradio_api/upload", files={"files": (Path(photo).name, handle)})
        uploaded.raise_for_status()
        data.insert(0, {"path": uploaded.json()[0], "meta": {"_type": "gradio.FileData"}})
    submitted = http.post(f"{url}gradio_api/call/{api}", json={"data": data})
    submitted.raise_for_status()
    event = None
    with http.stream("GET", f"{url}gradio_api/call/{api}/{submitted.json()['event_id']}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                if event == "error":
                    raise RuntimeError(f"{api} answered with an error: {line[:200]}")
                answer = json.loads(line.removeprefix("data:"))
                if answer and isinstance(answer[0], dict) and "error" in answer[0]:  # the app's own refusal
                    raise RuntimeError(f"{api} answered {answer[0].get('reason')}: {answer[0]['error'][:160]}")
                return
    raise RuntimeError(f"{api}: the event stream ended without a result")


def timed_calls(url: str, api_name: str, photos: list[str], *, client: str = "rest", runs: int = 30,
                warmup: int = 3, extra: Sequence[str] = (), keep_going: bool = False):
    """Run this script in a separate process against ``url``: the seconds of each timed call.
    ``extra``: the endpoint's other inputs after the photo, as JSON texts. Raises RuntimeError with the
    end of the client's own error output when it fails. ``keep_going``: failed calls are counted instead,
    and the answer is ``{"seconds": [...], "errors": [...]}`` (the seconds of the calls that succeeded)."""
    try:
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), url, api_name, *photos, "--client",
                              client, "--runs", str(runs), "--warmup", str(warmup), "--extra", *extra,
                              *(["--keep-going"] if keep_going else [])],
                             capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"the {client} client exited with {exc.returncode}: {exc.stderr[-300:]}") from None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the app's root URL, ending in /")
    parser.add_argument("api_name", help="e.g. lookalike")
    parser.add_argument("photos", nargs="+", help="photo files, used in turn")
    parser.add_argument("--client", choices=CLIENTS, default="rest")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--extra", nargs="*", default=[],
                        help="the endpoint's other inputs after the photo, as JSON (e.g. 5 '\"\"')")
    parser.add_argument("--keep-going", action="store_true",
                        help="count failed calls (their messages in 'errors') instead of stopping at the first")
    args = parser.parse_args(argv)
    extra = [json.loads(value) for value in args.extra]

    if args.client == "rest":
        import httpx

        http = httpx.Client(timeout=60)

        def call(photo: str) -> None:
            rest_call(http, args.url, args.api_name, photo, extra)
    else:
        from gradio_client import Client, handle_file

        # The URL is plain http on this machine, so no TLS is involved either way. With the default
        # ssl_verify=True, gradio_client builds a new httpx client, and so a new SSL context that loads the
        # whole CA bundle, for each of a call's three requests: about 75 ms of CPU a call (py-spy), which
        # on a 2-core machine runs beside the server's compute and slows it (measured: the handler took 49-52
        # ms instead of 36-38). A user's own machine would not take that CPU from the server.
        client = Client(args.url, verbose=False, ssl_verify=not args.url.startswith("http://"))

        def call(photo: str) -> None:
            client.predict(handle_file(photo), *extra, api_name=f"/{args.api_name}")

    samples, errors = [], []
    for i in range(args.warmup + args.runs):
        photo = args.photos[i % len(args.photos)]
        start = time.perf_counter()
        try:
            call(photo)
        except Exception as exc:
            if not args.keep_going:
                raise
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            continue
        if i >= args.warmup:
            samples.append(time.perf_counter() - start)
    print(json.dumps({"seconds": samples, "errors": errors} if args.keep_going else samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
