"""Time a running Gradio app's endpoint through gradio_client, from this separate process, as a user's
machine would call it (a client inside the server's process would compete with it for the GIL and
the CPU, and measure that contention instead of the API).

    python bench/http_client.py http://127.0.0.1:7860/ /lookalike --runs 30 --warmup 3 --extra 5 a.jpg b.jpg

Prints one JSON line: the seconds of each timed call, in order.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("api_name", help="e.g. /lookalike")
    parser.add_argument("photos", nargs="+", help="photo files, used in turn")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--extra", type=int, nargs="*", default=[],
                        help="arguments passed after the photo (e.g. top_k for /lookalike)")
    args = parser.parse_args(argv)

    from gradio_client import Client, handle_file

    client = Client(args.url, verbose=False)
    samples = []
    for i in range(args.warmup + args.runs):
        photo = handle_file(args.photos[i % len(args.photos)])
        start = time.perf_counter()
        client.predict(photo, *args.extra, api_name=args.api_name)
        if i >= args.warmup:
            samples.append(time.perf_counter() - start)
    print(json.dumps(samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
