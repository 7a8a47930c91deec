"""``python -m indexing``: build or update the celebrity index from datasets or image folders."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from indexing.sources import DEFAULT_SOURCES, SOURCE_OPTIONS, open_sources
from lookalike.errors import LookalikeError
from lookalike.settings import Settings

log = logging.getLogger("indexing")

SECRET_VARIABLES = ("QDRANT_API_KEY", "LOOKALIKE_QDRANT_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def _count(minimum: int):
    """An argparse type: an integer of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    parse.__name__ = "int"
    return parse


def _one_line(exc: BaseException) -> str:
    """The error's message on one line, with the value of any secret variable blanked out."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for name in SECRET_VARIABLES:
        secret = os.environ.get(name)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexing",
        description=(
            "Detect and embed the faces of celebrity photos and upsert them into Qdrant. Re-running adds "
            "only photos not yet indexed. Qdrant comes from QDRANT_URL / QDRANT_API_KEY, or the embedded "
            "store under LOOKALIKE_DATA_DIR (default ./data) when QDRANT_URL is unset; stop the app "
            "first when it holds the embedded store."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--source", action="append", metavar="SPEC",
                        help="a Hugging Face dataset id, a local dataset folder, a save_to_disk folder, or an "
                             "image folder with one sub-folder per person, optionally with its own options "
                             f"after '?' ({', '.join(SOURCE_OPTIONS)}), e.g. 'owner/name?split=test&name_column=person'. "
                             "Repeat for several: they go into one collection, one identity per person, and "
                             "earlier sources win for display names and metadata "
                             f"(default: {' '.join(DEFAULT_SOURCES)})")
    parser.add_argument("--split", default=None,
                        help="dataset split, or 'all' for every split (default: the source's known split, else train)")
    parser.add_argument("--config", default=None, help="dataset configuration name, if the dataset has several")
    parser.add_argument("--image-column", default=None, help="image column (default: known or detected)")
    parser.add_argument("--name-column", default=None,
                        help="person name column (default: known, else label/name/person, else a ClassLabel)")
    parser.add_argument("--sample", type=_count(0), default=0, help="index at most N photos per source, chosen at random (0: all)")
    parser.add_argument("--per-person", type=_count(0), default=0, help="at most K photos of each person (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the sampling")
    parser.add_argument("--batch-size", type=_count(1), default=32, help="photos embedded per batch")
    parser.add_argument("--recreate", action="store_true",
                        help="build a new collection version, then move the alias to it (readers keep answering)")
    parser.add_argument("--quantization", choices=["none", "int8"], default="none",
                        help="int8: Qdrant scalar quantization for a collection this run creates (vectors 4x "
                             "smaller in RAM, queries rescored with the float vectors so scores stay exact; "
                             "worth it from about a million faces)")
    parser.add_argument("--centroids", action="store_true",
                        help="also build <collection>_centroids, one mean face per person (costs one pass over "
                             "all vectors and a point per person; with LOOKALIKE_USE_CENTROIDS=1 the app then "
                             "scans people instead of faces)")
    parser.add_argument("--if-empty", action="store_true", help="do nothing when the index already holds faces")
    parser.add_argument("--collection", default=None, help="the alias to fill (default: LOOKALIKE_COLLECTION or celebrities)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; 0 on success, 1 when nothing could be indexed, 2 on a configuration error."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = {"collection": args.collection} if args.collection else {}
    try:
        settings = Settings(**overrides)
    except Exception as exc:  # pydantic's ValidationError names the field, never the secret's value
        print(f"error: invalid settings: {_one_line(exc)}", file=sys.stderr)
        return 2

    from indexing.indexer import Indexer
    from lookalike.faces import FacePipeline
    from lookalike.store import FaceStore

    store = None
    try:
        store = FaceStore.open(settings)
        if args.if_empty and store.count() > 0:
            print(f"The index '{settings.collection}' already holds {store.count()} faces; nothing to do.")
            return 0
        token = os.environ.get("HF_TOKEN") or None
        sources = []
        for spec in args.source or DEFAULT_SOURCES:
            sources.extend(open_sources(spec, args.split, args.image_column, args.name_column, args.config, token))
        pipeline = FacePipeline(settings)
        report = Indexer(pipeline, store, args.batch_size).run(
            sources, args.sample, args.per_person, args.seed, args.recreate, progress=not args.quiet,
            quantization=None if args.quantization == "none" else args.quantization, centroids=args.centroids)
    except (LookalikeError, ValueError, OSError) as exc:
        # OSError covers a missing path (FileNotFoundError), an unreachable hub (ConnectionError) and
        # datasets' DatasetNotFoundError; each is one line, never a traceback.
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        if store is not None:  # release the embedded store's folder lock (in-process callers, the app)
            store.close()
    print(report.summary())
    if report.faces_indexed == 0 and report.already_indexed == 0:
        print("error: no face could be indexed from the sources.", file=sys.stderr)
        return 1
    return 0
