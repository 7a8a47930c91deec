"""The indexing run: rows -> the rows-to-faces stage -> points upserted into Qdrant -> the person pass.

Re-runnable at any time: point ids come from the photo's bytes (uuid5 of its SHA-256), rows whose
point already exists are not embedded again, so a second run adds nothing and a run killed part-way
finishes on the next one with exactly the points of an uninterrupted run.

A run has two phases. :meth:`Indexer.write` puts the photos (all, or one shard's) into a collection
version, copying the face of each photo the served version already holds (same model fingerprint)
instead of embedding it again; :meth:`Indexer.finalize` runs the person-level pass (display name and metadata of every
person spread over all their points, by source precedence), optimises, and moves the alias. An
unsharded :meth:`Indexer.run` does both; a sharded build runs ``write`` once per shard into one named
version, then ``finalize`` once.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from indexing import versions
from indexing.centroids import build_centroids
from indexing.plan import Plan, plan_rows, ref_order
from indexing.precedence import WELL_KNOWN_PEOPLE, Person, collect_people, mark_well_known
from indexing.report import IndexReport
from indexing.shards import Shard
from indexing.sources import Row, Source, SourceOptions, open_all
from indexing.stage import Photo, decoded_batches, main_faces
from lookalike.batching import batched
from lookalike.faces import FacePipeline, face_thumbnail
from lookalike.index.payload import (
    BOX,
    METADATA,
    NAME,
    PERSON_ID,
    PROBABILITY,
    SOURCES,
    THUMBNAIL,
    THUMBNAIL_SIZE,
    WELL_KNOWN,
    FacePayload,
    point_id,
)
from lookalike.index.store import FacePoint, FaceStore

log = logging.getLogger(__name__)


def index_sources(pipeline: FacePipeline, store: FaceStore, specs: Sequence[str], *, sample: int | None = None,
                  per_person: int | None = None, seed: int = 0, batch_size: int = 32, token: str | None = None,
                  on_progress: Callable[[int, int, int], None] | None = None) -> IndexReport:
    """Index the sources ``specs`` into ``store`` as ``python -m indexing`` does, for a caller in this
    process (the app's background fill): no progress bar, ``on_progress`` after each batch
    (:attr:`Indexer.on_progress`). Errors are raised; :func:`indexing.messages.one_line` words them."""
    indexer = Indexer(pipeline, store, batch_size)
    indexer.on_progress = on_progress
    return indexer.run(open_all(specs, SourceOptions(token=token)), sample, per_person, seed, progress=False)


class Indexer:
    """Indexes sources into the store through the shared rows-to-faces stage.

    Sources are read in order, and the order is the precedence: a person's display name is the
    first spelling seen, each metadata field (``biography``, ...) the first value seen
    (:mod:`indexing.precedence`), and a photo that two sources name differently stays under the first
    name. Every point of each person gets the person's name and metadata (merged into what the
    points already have), so a biography from one source shows with photos from another.
    """

    def __init__(self, pipeline: FacePipeline, store: FaceStore, batch_size: int = 32,
                 well_known: int = WELL_KNOWN_PEOPLE):
        self.pipeline = pipeline
        self.well_known = well_known
        """About how many people the person pass marks well-known (:func:`indexing.precedence.mark_well_known`)."""
        self.store = store
        self.batch_size = batch_size
        self.people: dict[str, Person] = {}
        self._order: Callable[[str], tuple] = ref_order([])
        self.optimize_wait_s: float | None = None
        """How long the person pass waits for a Qdrant server to index the version (None: the engine's default)."""
        self.on_progress: Callable[[int, int, int], None] | None = None
        """Called after each batch of :meth:`write` with (rows done, rows planned, faces indexed)."""

    # -- the whole run ---------------------------------------------------------------------------

    def run(self, sources: Sequence[Source], sample: int | None = None, per_person: int | None = None,
            seed: int = 0, recreate: bool = False, progress: bool = True, quantization: str | None = None,
            centroids: bool = False) -> IndexReport:
        """Index every chosen row of ``sources``, run the person pass, and point the alias at the result.

        The collection: a new version with ``recreate``; else the one behind the alias; else the
        newest version without the alias (a first run killed part-way, resumed); else a new one. The
        alias moves only at the end, so readers never see a half-built version. ``quantization``
        ("int8") applies to a collection this run creates; ``centroids`` rebuilds the per-person mean
        faces (:func:`indexing.centroids.build_centroids`) at the end.
        """
        started = time.perf_counter()
        fingerprint = self.pipeline.fingerprint
        collection = (versions.create_version(self.store, fingerprint, quantization) if recreate
                      else versions.current_or_new(self.store, fingerprint, quantization))
        plan = plan_rows(sources, sample, per_person, seed)
        report = self.write(plan, collection, progress=progress)
        self.finalize(plan, collection, centroids=centroids, report=report)
        report.elapsed_s = time.perf_counter() - started
        return report

    # -- phase 1: photos -------------------------------------------------------------------------

    def write(self, plan: Plan, collection: str, shard: Shard | None = None, progress: bool = True) -> IndexReport:
        """Write the points of the chosen rows (those ``shard`` owns) into ``collection``; no alias move.

        A source opened as a shard's files (``Source.file_share``) is all this shard's; the rows of other
        sources are split by content hash (:mod:`indexing.shards`). Each point is written with its
        person's name and metadata as precedence gives them over the plan (computed first, from the name
        and metadata columns only); :meth:`finalize` spreads the ones of all sources' rows over every
        point, including those of other shards and earlier runs.

        A photo already in ``collection`` (from another source, another shard's file or an earlier run)
        gets this row's reference, all references kept in the order one run reads them
        (:func:`indexing.plan.ref_order`), and this row's person when this row comes first in that order: so shards
        that find the same photo, in whichever order they run, store what one run stores.
        """
        started = time.perf_counter()
        shard = shard or Shard()
        report = IndexReport(collection=collection, shard=str(shard) if shard.count > 1 else "")
        self.people = collect_people(plan)
        report.ignored_files = sum(len(s.ignored_files) for s in {id(s): s for s, _ in plan}.values())
        indexed_people: set[str] = set()

        self._order = ref_order(plan)
        served = self._served(collection, report)

        def batches():  # a batch never spans two sources (a photo in both is found as already indexed)
            for source, indices in plan:
                rows = source.rows(indices)  # a file share's rows are all this shard's (its files)
                yield from batched(rows if source.file_share else filter(shard.owns, rows), self.batch_size)

        def known(batch: Sequence[Row]) -> set[str]:  # in this version or the served one: not decoded
            ids = {point_id(r.sha256): r.sha256 for r in batch if r.sha256}
            found = self.store.existing(list(ids), collection)
            if served:
                found |= self.store.existing([pid for pid in ids if pid not in found], served)
            return {ids[pid] for pid in found}

        total = sum(len(indices) for _, indices in plan)
        with tqdm(total=total, unit="img", disable=not progress, desc="indexing") as bar:
            for batch in decoded_batches(self.pipeline, batches(), known):
                self._index_batch(batch, collection, report, indexed_people, served)
                bar.update(len(batch))
                if self.on_progress is not None:
                    self.on_progress(report.images_seen, total, report.faces_indexed)
            bar.update(total - bar.n)  # rows of other shards
        report.people = len(indexed_people)
        report.elapsed_s = time.perf_counter() - started
        return report

    def _served(self, collection: str, report: IndexReport) -> str | None:
        """The version the alias serves when its faces can be copied into ``collection``: another version
        built with this run's model fingerprint. Logs which, or why none."""
        served = self.store.current_collection()
        if served is None:
            report.reuse_note = "no served version: every photo is embedded"
        elif served == collection:
            return None  # writing into the served version itself: its photos are already indexed
        elif self.store.stored_fingerprint(served) != self.pipeline.fingerprint.as_dict():
            report.reuse_note = f"{served} was built with another model fingerprint: every photo is embedded"
        else:
            report.reused_from = served
            log.info("photos already in %s (same model fingerprint) are copied, not embedded again", served)
            return served
        log.info("%s", report.reuse_note)
        return None

    def _index_batch(self, batch: list[Photo], collection: str, report: IndexReport,
                     indexed_people: set[str], served: str | None = None) -> None:
        report.images_seen += len(batch)
        candidates = self._candidates(batch, report)
        existing = self.store.payloads(list(candidates), collection)
        for pid, payload in existing.items():
            self._merge_existing(pid, payload, candidates.pop(pid), collection, report, indexed_people)
        reused = []
        if served and candidates:  # the served version's face of an unchanged photo: vector and face fields
            for pid, record in self.store.records(list(candidates), served).items():
                photo, refs = candidates.pop(pid)
                stored = record.payload
                reused.append(_point(photo, refs, self.people[photo.row.person], np.asarray(record.vector, np.float32),
                                     stored.get(THUMBNAIL), stored.get(BOX), stored.get(PROBABILITY)))
                indexed_people.add(photo.row.person)
            self.store.upsert(reused, collection)
            report.faces_reused += len(reused)
            report.faces_indexed += len(reused)
        pending = list(candidates.values())
        for photo, _ in pending:
            if photo.image is None:  # the read-ahead saw its point, which is gone now: decode it here
                photo.image = self.pipeline.load(photo.row.data or b"")
        if not pending:
            return
        t0 = time.perf_counter()
        faces = main_faces(self.pipeline, [photo for photo, _ in pending])
        report.embed_s += time.perf_counter() - t0
        points = []
        for (photo, refs), face in zip(pending, faces, strict=True):
            if face is None:
                report.skipped[photo.skip or "no_face"] += 1
                continue
            thumbnail = base64.b64encode(face_thumbnail(photo.image, face.box, THUMBNAIL_SIZE)).decode("ascii")
            points.append(_point(photo, refs, self.people[photo.row.person], face.vector, thumbnail,
                                 [round(v, 1) for v in face.box], round(face.probability, 4)))
            indexed_people.add(photo.row.person)
        self.store.upsert(points, collection)
        report.faces_indexed += len(points)
        if points:
            _reached("after_upsert")

    @staticmethod
    def _candidates(batch: list[Photo], report: IndexReport) -> dict[str, tuple[Photo, list[str]]]:
        """The batch's photos to index by point id, each with the refs of its rows: a photo twice in one
        batch is one point with both sources; skipped photos are counted."""
        candidates: dict[str, tuple[Photo, list[str]]] = {}
        for photo in batch:
            row = photo.row
            if photo.skip:
                report.skipped[photo.skip] += 1
                continue
            pid = point_id(row.sha256)
            if pid not in candidates:
                candidates[pid] = (photo, [row.ref])
                continue
            report.skipped["duplicate"] += 1
            first = candidates[pid][0].row
            if first.person != row.person:
                report.name_conflicts.append(f"{row.ref} is '{first.raw_name}' in {first.ref}, "
                                             f"'{row.raw_name}' here")
            candidates[pid][1].append(row.ref)
        return candidates

    def _merge_existing(self, pid: str, payload: dict, candidate: tuple[Photo, list[str]], collection: str,
                        report: IndexReport, indexed_people: set[str]) -> None:
        """A photo already indexed: its sources gain the new refs, and it moves to the person of the row
        that comes first in precedence (as one run would have written it)."""
        report.already_indexed += 1
        photo, refs = candidate
        row = photo.row
        indexed_people.add(payload.get(PERSON_ID) or row.person)
        if payload.get(PERSON_ID) not in (None, row.person):
            report.name_conflicts.append(f"{row.ref} is '{payload.get(NAME)}' elsewhere, '{row.raw_name}' here")
        known = list(payload.get(SOURCES, []))
        merged = sorted(dict.fromkeys(known + refs), key=self._order)
        update: dict = {SOURCES: merged} if merged != known else {}
        if known and row.person and payload.get(PERSON_ID) != row.person \
                and self._order(refs[0]) < self._order(known[0]):
            # Another shard wrote this photo first from a later row (the same bytes in a file of its share).
            # The person pass then spreads that person's full name and metadata over it.
            person = self.people[row.person]
            update.update({PERSON_ID: row.person, NAME: person.name, METADATA: dict(person.metadata)})
            indexed_people.add(row.person)
        if update:
            self.store.set_payload([pid], update, collection)

    # -- phase 2: people, alias ------------------------------------------------------------------

    def finalize(self, plan: Plan, collection: str, centroids: bool = False,
                 report: IndexReport | None = None) -> IndexReport:
        """The person-level pass over ``collection``, then optimise, centroids, and the alias switch.

        Runs once after all shards of a build (or at the end of an unsharded run) and gives the same
        points as one unsharded run: every point of each person gets the name and metadata that
        precedence over the whole ``plan`` picks (metadata merged into what the points have), and whether
        the person is well-known (``well_known``, about :attr:`well_known` people of the plan). Then
        the alias moves to ``collection`` (when it points elsewhere) and older versions are dropped.
        """
        started = time.perf_counter()
        report = report or IndexReport(collection=collection)
        if not self.people:
            self.people = collect_people(plan)
        report.popularity_threshold = mark_well_known(self.people, self.well_known)
        report.well_known = sum(p.well_known for p in self.people.values())
        _reached("before_person_pass")
        self.store.set_person_payloads({pid: {NAME: p.name, WELL_KNOWN: int(p.well_known)}
                                        for pid, p in self.people.items()}, collection=collection)
        self.store.set_person_payloads({pid: p.metadata for pid, p in self.people.items()},
                                       key=METADATA, collection=collection)
        self.store.optimize(collection, self.optimize_wait_s)
        if centroids:
            report.centroids = build_centroids(self.store, collection, self.pipeline.fingerprint)
        if self.store.current_collection() != collection:
            _reached("before_alias_switch")
            versions.switch_alias(self.store, collection)
            report.alias_moved = True
            _reached("alias_switch")
        versions.drop_old_versions(self.store, keep=1)
        report.elapsed_s += time.perf_counter() - started
        return report


def _reached(point: str) -> None:
    """Logs a named point of the write path at DEBUG, with ``extra={"write_point": point}``: where a run
    may stop and be resumed ("after_upsert", "before_person_pass", "before_alias_switch", "alias_switch")."""
    log.debug("write path: %s", point, extra={"write_point": point})


def _point(photo: Photo, refs: list[str], person: Person, vector: np.ndarray, thumbnail: str | None,
           box: list[float] | None, probability: float | None) -> FacePoint:
    """The point of one photo's main face, with the payload every reader relies on: this run's person and
    references, and the face's vector, thumbnail (base64 JPEG), box and probability, embedded now or copied
    from another version of the same model."""
    row = photo.row
    payload = FacePayload(name=person.name, person_id=row.person, content_sha256=row.sha256, thumbnail=thumbnail,
                          sources=list(refs), metadata=dict(person.metadata), box=box, probability=probability)
    return FacePoint(point_id(row.sha256), vector, payload)
