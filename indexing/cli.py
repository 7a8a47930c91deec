"""``python -m indexing``: build or update the celebrity index from datasets or image folders.

One machine: ``python -m indexing`` (all photos, the person pass, the alias). Several runners (the
weekly Action): ``--prepare`` prints the version to build, each runner runs ``--shard I/N --version V``
(its share of the parquet files, so it downloads only those: :mod:`indexing.shards`), and one final
``--finalize --version V`` runs the person pass (names and metadata only, no photo) and moves the alias.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from indexing.messages import one_line
from indexing.precedence import WELL_KNOWN_PEOPLE
from indexing.shards import Shard
from indexing.sources import DEFAULT_SOURCES, SOURCE_OPTIONS, SourceOptions, check_source_spec, open_all
from lookalike.errors import LookalikeError
from lookalike.index.storage.port import StorageError
from lookalike.settings import Settings

if TYPE_CHECKING:
    from indexing.indexer import Indexer
    from indexing.report import IndexReport
    from indexing.sources import Source
    from lookalike.faces import FacePipeline
    from lookalike.fingerprint import ModelFingerprint
    from lookalike.index.store import FaceStore

log = logging.getLogger("indexing")


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


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" only where the help does not state its default and there is one to state."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False or action.nargs == 0:
            return text
        return super()._get_help_string(action)


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexing",
        description=(
            "Detect and embed the faces of celebrity photos and upsert them into Qdrant. Re-running adds "
            "only photos not yet indexed. Qdrant comes from QDRANT_URL / QDRANT_API_KEY, or the embedded "
            "store under LOOKALIKE_DATA_DIR (default ./data) when QDRANT_URL is unset; stop the app "
            "first when it holds the embedded store."
        ),
        formatter_class=_HelpFormatter,
    )
    _source_arguments(parser)
    _index_arguments(parser)
    _shard_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no INFO log lines")
    return parser


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    """Which photos: the sources, their splits and columns, and the sampling."""
    parser.add_argument("--source", action="append", metavar="SPEC",
                        help="a Hugging Face dataset id, a local dataset folder, a save_to_disk folder, or an "
                             "image folder with one sub-folder per person, optionally with its own options "
                             f"after '?' ({', '.join(SOURCE_OPTIONS)}), "
                             "e.g. 'owner/name?split=test&name_column=person'. "
                             "Repeat for several: they go into one collection, one identity per person, and "
                             "earlier sources win for display names and metadata "
                             f"(default: {' '.join(DEFAULT_SOURCES)})")
    parser.add_argument("--split", help="dataset split, or 'all' for every split (default: the source's known "
                                        "split, else train)")
    parser.add_argument("--config", help="dataset configuration name, if the dataset has several")
    parser.add_argument("--image-column", help="image column (default: known or detected)")
    parser.add_argument("--name-column", help="person name column (default: known, else label/name/person, else "
                                              "a ClassLabel)")
    parser.add_argument("--sample", type=_count(0), default=0,
                        help="index at most N photos per source, chosen at random (0: all)")
    parser.add_argument("--per-person", type=_count(0), default=0, help="at most K photos of each person (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the sampling")


def _index_arguments(parser: argparse.ArgumentParser) -> None:
    """How the collection is written: batches, versions, quantization, centroids, the well-known mark."""
    parser.add_argument("--batch-size", type=_count(1), default=32, help="photos embedded per batch")
    parser.add_argument("--recreate", action="store_true",
                        help="build a new collection version, then move the alias to it (readers keep answering)")
    parser.add_argument("--quantization", choices=["auto", "none", "int8"], default="auto",
                        help="for a collection this run creates: int8 is Qdrant scalar quantization (vectors 4x "
                             "smaller in RAM, queries rescored with the float vectors so scores stay exact); "
                             "auto is int8 on a Qdrant server or Cloud (what bench/ recommends) and none in "
                             "the embedded store")
    parser.add_argument("--centroids", action="store_true",
                        help="also build <collection>_centroids, one mean face per person (costs one pass over "
                             "all vectors and a point per person; with LOOKALIKE_USE_CENTROIDS=1 the app then "
                             "scans people instead of faces)")
    parser.add_argument("--well-known", type=_count(0), default=WELL_KNOWN_PEOPLE, metavar="N",
                        help="about how many people the page shows by default ('well-known people only'): those "
                             "of sources without a popularity column, then the most popular others; 0: everyone")
    parser.add_argument("--if-empty", action="store_true", help="do nothing when the index already holds faces")
    parser.add_argument("--collection", help="the alias to fill (default: LOOKALIKE_COLLECTION or celebrities)")


def _shard_arguments(parser: argparse.ArgumentParser) -> None:
    """Sharded builds: several runners write one version, one finalizes it."""
    sharding = parser.add_argument_group(
        "sharded builds", "Several processes or runners build one collection version <alias>_v<V> together: "
        "each runs --shard I/N --version V (its share of the sources: of the parquet datasets' files, of "
        "image folders' photos by content hash; the alias does not move), then one runs --finalize --version "
        "V (the person-level pass, then the alias moves).")
    sharding.add_argument("--prepare", action="store_true",
                          help="create the version to build and print its number V: the newest unfinished "
                               "version (newer than the alias's, same weights), so a failed build resumes, "
                               "else a new one")
    sharding.add_argument("--pin-sources", action="store_true",
                          help="print the sources as a JSON list, each Hugging Face dataset pinned to the commit "
                               "it is at now (owner/name?revision=<sha>): what every shard and the final pass "
                               "of one build read, so they read the same files")
    sharding.add_argument("--version", type=_count(1), metavar="V",
                          help="write into collection version <alias>_v<V> (created when missing) and leave "
                               "the alias alone")
    sharding.add_argument("--shard", type=_shard, metavar="I/N",
                          help="index only shard I of N (0 <= I < N): its share of the parquet files (with "
                               "--sample or --per-person, of the photos by content hash); needs --version")
    sharding.add_argument("--optimize-wait-s", type=_count(1), metavar="S",
                          help="how long the person pass waits for a Qdrant server to finish indexing the version "
                               "before the alias moves, seconds (default: 600; a free cluster's 0.5 vCPU needs "
                               "more); it logs the server's progress meanwhile")
    sharding.add_argument("--finalize", action="store_true",
                          help="after every shard of --version V: the person-level pass over the same "
                               "sources, then move the alias to V and drop older versions (reads only "
                               "names and metadata, no photo: parquet datasets are streamed without "
                               "their image column)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; 0 on success, 1 when nothing could be indexed, 2 on a configuration error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.shard and args.version is None:
        parser.error("--shard needs --version V (the collection version all shards write)")
    if args.finalize and args.version is None:
        parser.error("--finalize needs --version V (the version the shards wrote)")
    if args.prepare and (args.version is not None or args.finalize or args.shard):
        parser.error("--prepare stands alone: it prints the V that --version takes")
    if args.pin_sources and (args.prepare or args.version is not None or args.finalize or args.shard):
        parser.error("--pin-sources stands alone: it prints the sources the shards then take")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    overrides = {"collection": args.collection} if args.collection else {}
    try:
        settings = Settings(**overrides)
    except Exception as exc:  # pydantic's ValidationError names the field, never the secret's value
        print(f"error: invalid settings: {one_line(exc)}", file=sys.stderr)
        return 2

    if args.pin_sources:
        return _pin_sources(args.source or DEFAULT_SOURCES, settings)

    from lookalike import faces
    from lookalike.index.store import FaceStore

    store = None
    created = _created_folders(settings)
    code = 2
    try:
        specs = args.source or DEFAULT_SOURCES
        for spec in specs:  # a mistyped folder is reported before any model loads
            check_source_spec(spec)
        # Then the weights: a missing file is reported before any source row is read or downloaded.
        pipeline = faces.FacePipeline(settings.face_config())
        store = FaceStore.open(settings.store_config())
        code, report = _run(args, settings, specs, pipeline, store)
    except (LookalikeError, ValueError, OSError, StorageError) as exc:
        # StorageError: a server still indexing after --optimize-wait-s, say. OSError covers a missing path
        # (FileNotFoundError), an unreachable hub (ConnectionError) and datasets' DatasetNotFoundError; each is
        # one line, never a traceback.
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return code
    finally:
        if store is not None:  # release the embedded store's folder lock (in-process callers, the app)
            store.close()
        if code != 0:
            _remove_empty(created, settings)
    if report is not None:
        print(report.summary())
    if code == 1:
        print("error: no face could be indexed from the sources.", file=sys.stderr)
    return code


def _run(args: argparse.Namespace, settings: Settings, specs: Sequence[str], pipeline: FacePipeline,
         store: FaceStore) -> tuple[int, IndexReport | None]:
    """What the arguments ask of an open pipeline and store: the exit code, and the report to print
    (None when the run prints its own answer)."""
    from indexing.indexer import Indexer
    from indexing.plan import plan_rows
    from indexing.versions import ensure_version, prepare_version

    quantization = _quantization(args.quantization)
    if args.prepare:
        print(prepare_version(store, pipeline.fingerprint, quantization))
        return 0, None
    if args.if_empty and store.count() > 0:
        print(f"The index '{settings.collection}' already holds {store.count()} faces; nothing to do.")
        return 0, None
    token = settings.hf_token.get_secret_value() if settings.hf_token else None
    # A shard reads only its share of the parquet files; a sampled run's choice needs every row of a
    # source, so its shards read every file and split the rows by content hash instead.
    by_file = args.shard if args.shard and not (args.sample or args.per_person) else None
    if args.shard and args.shard.count > 1 and by_file is None:
        log.info("--sample/--per-person choose among every row of a source: shard %s reads every file "
                 "and indexes the photos it owns by content hash", args.shard)
    options = SourceOptions(split=args.split, image_column=args.image_column, name_column=args.name_column,
                            config=args.config, token=token, photos=not args.finalize)
    sources = open_all(specs, options, shard=by_file)
    indexer = Indexer(pipeline, store, args.batch_size, well_known=args.well_known)
    indexer.optimize_wait_s = args.optimize_wait_s
    if args.finalize:
        _finalize(args, indexer, sources, store, pipeline.fingerprint)
        return 0, None
    if args.version is None:
        report = indexer.run(sources, args.sample, args.per_person, args.seed, args.recreate,
                             progress=not args.quiet, quantization=quantization, centroids=args.centroids)
    else:
        collection = ensure_version(store, args.version, pipeline.fingerprint, quantization)
        report = indexer.write(plan_rows(sources, args.sample, args.per_person, args.seed), collection,
                               shard=args.shard, progress=not args.quiet)
    nothing = report.faces_indexed == 0 and report.already_indexed == 0 and not report.shard
    return (1 if nothing else 0), report


def _finalize(args: argparse.Namespace, indexer: Indexer, sources: list[Source], store: FaceStore,
              fingerprint: ModelFingerprint) -> None:
    """``--finalize --version V``: the person pass over the sources, then the alias moves to V; prints
    what it did. Never points the alias at a version no shard wrote (a mistyped V, say)."""
    from indexing.plan import plan_rows
    from indexing.versions import version_name, versions

    collection = version_name(store, args.version)
    if collection not in versions(store) or store.count(collection) == 0:
        raise ValueError(f"{collection} holds no faces: run the shards (--version {args.version} "
                         "--shard I/N) before --finalize; the alias stays where it is.")
    store.check_fingerprint(fingerprint, collection)
    done = indexer.finalize(plan_rows(sources, args.sample, args.per_person, args.seed), collection,
                            centroids=args.centroids)
    threshold = "" if done.popularity_threshold is None else f" (popularity >= {done.popularity_threshold:g})"
    print(f"collection: {collection}\nfaces: {store.count(collection)}\n"
          f"people in the sources: {len(indexer.people)}\n"
          f"well-known people: {done.well_known}{threshold}\n"
          f"alias '{store.alias}' -> {store.current_collection()}" + ("" if done.alias_moved else " (already there)"))


def _pin_sources(specs: Sequence[str], settings: Settings) -> int:
    """``--pin-sources``: prints the pinned specs as one JSON line; 0, or 2 when a source cannot be resolved."""
    import json

    from indexing.sources import pin_source

    token = settings.hf_token.get_secret_value() if settings.hf_token else None
    try:
        for spec in specs:
            check_source_spec(spec)
        print(json.dumps([pin_source(spec, token) for spec in specs]))
    except (LookalikeError, ValueError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    return 0


def _quantization(choice: str) -> str | None:
    """``--quantization`` as the store takes it: ``auto`` (None) is the store's default, int8 on a server
    and none when embedded (see :meth:`FaceStore.collection_settings`)."""
    return None if choice == "auto" else choice


def _created_folders(settings: Settings) -> list[Path]:
    """The folders this run would create for the embedded store (none exist yet), outermost first."""
    if not settings.embedded:
        return []
    missing = []
    for folder in (settings.data_dir, settings.embedded_path):
        if not folder.exists():
            missing.append(folder)
    return missing


def _remove_empty(created: list[Path], settings: Settings) -> None:
    """After a failed run, remove the store folder this run created when it holds no point.

    The store was closed; a folder that existed before the run is never touched.
    """
    if not created:
        return
    from indexing.versions import versions
    from lookalike.index.store import FaceStore

    path = settings.embedded_path
    if path.exists():
        try:
            store = FaceStore.open(settings.store_config())
        except LookalikeError:
            return
        try:
            empty = all(store.count(name) == 0 for name in versions(store))
        finally:
            store.close()
        if not empty:
            return
    if settings.embedded_path in created:
        shutil.rmtree(settings.embedded_path, ignore_errors=True)
    if settings.data_dir in created and settings.data_dir.is_dir() and not any(settings.data_dir.iterdir()):
        settings.data_dir.rmdir()  # kept when it holds anything else (the ONNX export, say)
