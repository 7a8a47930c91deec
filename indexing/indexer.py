"""The indexing run: rows -> decoded photos -> the face pipeline -> points upserted into Qdrant.

Re-runnable at any time: point ids come from the photo's bytes (uuid5 of its SHA-256), rows whose
point already exists are not embedded again, so a second run adds nothing and a run killed part-way
finishes on the next one with exactly the points of an uninterrupted run.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from tqdm import tqdm

from indexing.sampling import choose_rows
from indexing.sources import Row, Source
from lookalike.errors import LookalikeError
from lookalike.faces import FacePipeline, face_thumbnail
from lookalike.people import display_name, person_id
from lookalike.payload import METADATA, NAME, PERSON_ID, SOURCES, FacePayload, point_id
from lookalike.store import FacePoint, FaceStore

log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    """What a run did. ``faces_indexed`` counts new points; ``already_indexed`` rows found in place."""

    collection: str = ""
    images_seen: int = 0
    faces_indexed: int = 0
    already_indexed: int = 0
    skipped: Counter = field(default_factory=Counter)
    ignored_files: int = 0
    people: int = 0
    centroids: int = 0
    name_conflicts: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    embed_s: float = 0.0

    @property
    def faces_per_s(self) -> float:
        """New faces per second of the whole run."""
        return self.faces_indexed / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f"collection: {self.collection}",
            f"images seen: {self.images_seen}",
            f"faces indexed: {self.faces_indexed} (already indexed: {self.already_indexed})",
        ]
        lines.append(f"people in this run: {self.people}")
        if self.centroids:
            lines.append(f"per-person mean faces (centroids): {self.centroids}")
        if self.name_conflicts:
            lines.append(f"photos two sources name differently (kept under the first source's name): "
                         f"{len(self.name_conflicts)}, e.g. {'; '.join(self.name_conflicts[:3])}")
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"skipped, {reason.replace('_', ' ')}: {count}")
        if self.ignored_files:
            lines.append(f"files ignored (not an image type): {self.ignored_files}")
        lines.append(f"elapsed: {self.elapsed_s:.1f} s, {self.faces_per_s:.1f} faces/s")
        return "\n".join(lines)


@dataclass
class _Pending:
    """A row that needs embedding: its decoded image and the point it will become."""

    row: Row
    digest: str
    image: Any
    refs: list[str]


@dataclass
class Person:
    """One identity across sources: the display name and metadata that precedence picked."""

    name: str
    metadata: dict[str, Any] = field(default_factory=dict)


class Indexer:
    """Indexes sources into the store through the shared face pipeline.

    Sources are read in order, and the order is the precedence: a person's display name is the
    first spelling seen, each metadata field (``biography``, ...) the first value seen, and a photo
    that two sources name differently stays under the first name. At the end of a run every point
    of each person gets the person's name and metadata (merged into what the points already have),
    so a biography from one source shows with photos from another.
    """

    def __init__(self, pipeline: FacePipeline, store: FaceStore, batch_size: int = 32):
        self.pipeline = pipeline
        self.store = store
        self.batch_size = batch_size
        self.people: dict[str, Person] = {}

    def run(self, sources: Sequence[Source], sample: int | None = None, per_person: int | None = None,
            seed: int = 0, recreate: bool = False, progress: bool = True, quantization: str | None = None,
            centroids: bool = False) -> IndexReport:
        """Index every chosen row of ``sources``; with ``recreate`` into a new version, then move the alias.

        ``quantization`` ("int8") applies to a collection this run creates; ``centroids`` rebuilds the
        per-person mean faces (:meth:`FaceStore.build_centroids`) at the end.
        """
        started = time.perf_counter()
        fingerprint = self.pipeline.fingerprint
        collection = (self.store.create_version(fingerprint, quantization) if recreate
                      else self.store.ensure_collection(fingerprint, quantization))
        report = IndexReport(collection=collection)
        self.people = {}
        plan = [(source, choose_rows([person_id(n) for n in source.names()], sample, per_person, seed))
                for source in sources]
        report.ignored_files = sum(len(s.ignored_files) for s in {id(s): s for s in sources}.values())
        with tqdm(total=sum(len(rows) for _, rows in plan), unit="img", disable=not progress,
                  desc="indexing") as bar:
            for source, indices in plan:
                for batch in _batches(source.rows(indices), self.batch_size):
                    self._index_batch(batch, collection, report)
                    bar.update(len(batch))
        self._spread_person_payloads(collection)
        report.people = len(self.people)
        self.store.optimize(collection)
        if centroids:
            report.centroids = self.store.build_centroids(collection, fingerprint)
        if recreate:
            self.store.point_alias_to(collection)
            self.store.drop_old_versions(keep=1)
        report.elapsed_s = time.perf_counter() - started
        return report

    def _index_batch(self, rows: Sequence[Row], collection: str, report: IndexReport) -> None:
        report.images_seen += len(rows)
        candidates: dict[str, tuple[Row, str, list[str]]] = {}
        for row in rows:
            if row.problem:
                report.skipped[row.problem] += 1
            elif not person_id(row.raw_name):
                report.skipped["missing_name"] += 1
            else:
                self._note_person(row)
                digest = hashlib.sha256(row.data).hexdigest()
                pid = point_id(digest)
                if pid in candidates:  # the same photo twice in one batch: one point, both sources
                    report.skipped["duplicate"] += 1
                    first = candidates[pid][0]
                    if person_id(first.raw_name) != person_id(row.raw_name):
                        report.name_conflicts.append(f"{row.ref} is '{first.raw_name}' in {first.ref}, "
                                                     f"'{row.raw_name}' here")
                    candidates[pid][2].append(row.ref)
                else:
                    candidates[pid] = (row, digest, [row.ref])
        existing = self.store.payloads(list(candidates), collection)
        for pid, payload in existing.items():
            report.already_indexed += 1
            row, _, refs = candidates.pop(pid)
            if payload.get(PERSON_ID) not in (None, person_id(row.raw_name)):
                report.name_conflicts.append(f"{row.ref} is '{payload.get(NAME)}' elsewhere, '{row.raw_name}' here")
            known = list(payload.get(SOURCES, []))
            new_refs = [ref for ref in refs if ref not in known]
            if new_refs:
                self.store.set_payload([pid], {SOURCES: known + new_refs}, collection)
        pending = []
        for row, digest, refs in candidates.values():
            try:
                pending.append(_Pending(row, digest, self.pipeline.load(row.data), refs))
            except LookalikeError as exc:
                report.skipped[exc.reason] += 1
        if not pending:
            return
        t0 = time.perf_counter()
        faces = self._faces(pending, report)
        report.embed_s += time.perf_counter() - t0
        points = []
        for item, found in zip(pending, faces):
            if found is None:  # already counted as detection_failed
                continue
            if not found:
                report.skipped["no_face"] += 1
                continue
            points.append(_point(item, found[0], self.people[person_id(item.row.raw_name)]))
        self.store.upsert(points, collection)
        report.faces_indexed += len(points)

    def _note_person(self, row: Row) -> None:
        """Merge a row's name and metadata into its person; what was seen first wins."""
        person = self.people.setdefault(person_id(row.raw_name), Person(display_name(row.raw_name)))
        for key, value in row.metadata.items():
            person.metadata.setdefault(key, value)

    def _spread_person_payloads(self, collection: str) -> None:
        """Give every point of each person of this run the person's name and merged metadata."""
        self.store.set_person_payloads({pid: {NAME: p.name} for pid, p in self.people.items()},
                                       collection=collection)
        self.store.set_person_payloads({pid: p.metadata for pid, p in self.people.items()},
                                       key=METADATA, collection=collection)

    def _faces(self, pending: Sequence[_Pending], report: IndexReport) -> list[list[Any] | None]:
        """The main face of each photo, batched; a photo that breaks the batch is retried alone and,
        if it fails again, skipped as ``detection_failed`` instead of ending the whole run."""
        try:
            return self.pipeline.faces_many([p.image for p in pending], main_only=True)
        except Exception:  # noqa: BLE001 - one odd photo (e.g. 3000x20 px) must not stop a long run
            out: list[list[Any] | None] = []
            for item in pending:
                try:
                    out.extend(self.pipeline.faces_many([item.image], main_only=True))
                except Exception as exc:  # noqa: BLE001
                    log.warning("skipped %s: face detection failed (%s)", item.row.ref, type(exc).__name__)
                    report.skipped["detection_failed"] += 1
                    out.append(None)
            return out


def _point(item: _Pending, face: Any, person: Person) -> FacePoint:
    """The point of one photo's main face, with the payload every reader relies on."""
    row = item.row
    payload = FacePayload(
        name=person.name,
        person_id=person_id(row.raw_name),
        content_sha256=item.digest,
        thumbnail=base64.b64encode(face_thumbnail(item.image, face.box)).decode("ascii"),
        sources=list(item.refs),
        metadata=dict(person.metadata),
        box=[round(v, 1) for v in face.box],
        probability=round(face.probability, 4),
    )
    return FacePoint(point_id(item.digest), face.vector, payload)


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
