"""The one rows-to-faces stage of indexing, evaluation and the benchmarks.

Rows (:class:`indexing.sources.Row`, read but not decoded) go in; batches of :class:`Photo` come out,
each decoded or marked with why it cannot give a face; :func:`main_faces` then finds and embeds each
photo's main (largest) face, batched. Reading and decoding the next batch runs in a read-ahead thread
while the caller computes faces of the current one (:func:`read_ahead`), so the CPU spends the time
that reading parquet rows and decoding JPEGs would cost on MTCNN and FaceNet instead.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from indexing.sources import Row
from lookalike.errors import LookalikeError
from lookalike.faces import Face, FacePipeline

log = logging.getLogger(__name__)

T = TypeVar("T")


_DONE = object()


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced by a background thread up to ``depth`` items ahead of the consumer.

    An exception in the producer is raised in the consumer at the point it happened; closing the
    iterator early (``break``, an exception in the consumer) stops the producer after its current item.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            slots.put((_DONE, exc))

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                pass
            thread.join(0.05)


@dataclass
class Photo:
    """One row on its way to a face.

    Attributes:
        row: the row as read (person id and content hash already computed).
        image: the decoded upright RGB photo, or None when it was not decoded (``skip`` says why, or
            the row's point already exists: ``known``).
        skip: why this row gives no face: the row's ``problem``, ``missing_name``, a decoding reason
            (``not_an_image``, ``image_too_large``, ...), then ``no_face`` or ``detection_failed``.
        known: the caller said this photo is already indexed, so it was not decoded.
    """

    row: Row
    image: Any = None
    skip: str | None = None
    known: bool = False


def decode(pipeline: FacePipeline, row: Row) -> Photo:
    """One row decoded, or with the reason it cannot be."""
    if row.problem or row.data is None:
        return Photo(row, skip=row.problem or "missing_image")
    if not row.person:
        return Photo(row, skip="missing_name")
    try:
        return Photo(row, pipeline.load(row.data))
    except LookalikeError as exc:
        return Photo(row, skip=exc.reason)


def decoded_batches(pipeline: FacePipeline, batches: Iterable[Sequence[Row]],
                    known: Callable[[Sequence[Row]], Collection[str]] | None = None,
                    depth: int = 1) -> Iterator[list[Photo]]:
    """Each batch of rows (e.g. ``batched(source.rows(indices), 32)``) as decoded photos, read and
    decoded ``depth`` batches ahead in a thread.

    Args:
        known: given a batch, the content hashes (``Row.sha256``) of photos already indexed: those are
            not decoded (``Photo.known``). It runs in the read-ahead thread, so it must be safe to call
            from there (the store serialises its own calls). A hint only: the caller decides.
    """
    def produce() -> Iterator[list[Photo]]:
        for batch in batches:
            done = set(known(batch)) if known is not None else set()
            yield [Photo(row, known=True) if row.sha256 and row.sha256 in done and not row.problem and row.person
                   else decode(pipeline, row) for row in batch]

    return read_ahead(produce(), depth)


def main_faces(pipeline: FacePipeline, photos: Sequence[Photo]) -> list[Face | None]:
    """The main face of each decoded photo (None where there is none: ``skip`` is set to why).

    Photos are detected and embedded in one batch; when the batch fails, each photo is retried alone
    and a photo that fails again is skipped as ``detection_failed`` instead of ending a long run.
    """
    if not photos:
        return []
    images = [p.image for p in photos]
    try:
        found = pipeline.faces_many(images, main_only=True)
    except Exception:  # noqa: BLE001 - one odd photo must not stop the run
        found = []
        for photo in photos:
            try:
                found.extend(pipeline.faces_many([photo.image], main_only=True))
            except Exception as exc:  # noqa: BLE001
                log.warning("skipped %s: face detection failed (%s)", photo.row.ref, type(exc).__name__)
                photo.skip = "detection_failed"
                found.append([])
    out: list[Face | None] = []
    for photo, faces in zip(photos, found, strict=True):
        if faces:
            out.append(faces[0])
        else:
            photo.skip = photo.skip or "no_face"
            out.append(None)
    return out
