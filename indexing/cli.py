"""``python -m indexing``: build or update the celebrity index from datasets or image folders."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from indexing.sources import DEFAULT_SOURCE, open_sources
from lookalike.errors import LookalikeError
from lookalike.settings import Settings

log = logging.getLogger("indexing")


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
                             "image folder with one sub-folder per person; repeat for several "
                             f"(default: {DEFAULT_SOURCE})")
    parser.add_argument("--split", default=None,
                        help="dataset split, or 'all' for every split (default: the source's known split, else train)")
    parser.add_argument("--config", default=None, help="dataset configuration name, if the dataset has several")
    parser.add_argument("--image-column", default=None, help="image column (default: known or detected)")
    parser.add_argument("--name-column", default=None,
                        help="person name column (default: known, else label/name/person, else a ClassLabel)")
    parser.add_argument("--sample", type=int, default=0, help="index at most N photos per source, chosen at random (0: all)")
    parser.add_argument("--per-person", type=int, default=0, help="at most K photos of each person (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the sampling")
    parser.add_argument("--batch-size", type=int, default=32, help="photos embedded per batch")
    parser.add_argument("--recreate", action="store_true",
                        help="build a new collection version, then move the alias to it (readers keep answering)")
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
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2

    from indexing.indexer import Indexer
    from lookalike.faces import FacePipeline
    from lookalike.store import FaceStore

    try:
        store = FaceStore.open(settings)
        if args.if_empty and store.count() > 0:
            print(f"The index '{settings.collection}' already holds {store.count()} faces; nothing to do.")
            return 0
        token = os.environ.get("HF_TOKEN") or None
        sources = []
        for spec in args.source or [DEFAULT_SOURCE]:
            sources.extend(open_sources(spec, args.split, args.image_column, args.name_column, args.config, token))
        pipeline = FacePipeline(settings)
        report = Indexer(pipeline, store, args.batch_size).run(
            sources, args.sample, args.per_person, args.seed, args.recreate, progress=not args.quiet)
    except LookalikeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    if report.faces_indexed == 0 and report.already_indexed == 0:
        print("error: no face could be indexed from the sources.", file=sys.stderr)
        return 1
    return 0
