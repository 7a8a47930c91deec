"""The background fill: a deployment without ``QDRANT_URL`` whose embedded store is empty indexes a
small sample of the default sources itself, in a thread of the app's own process.

The thread uses the app's already-open store and face pipeline, so no second process needs the
embedded store's folder lock, and the app keeps answering meanwhile (with "the index is being
filled" until the alias exists: the first version's alias moves only when the fill is complete).

The sample: ``LOOKALIKE_FILL_SAMPLE`` photos per source (default 1,000), one per person, seed 0, of
``LOOKALIKE_FILL_SOURCES`` (default: the default sources less ``ashraq/tmdb-people-image``, 3.7 GB of
whole parquet files to download for a sample). For those sources that is about
2,100 photos of as many people: 1,000 of tmdb-celeb-10k, one of each of the 997 people of
celebrity-1000 and of the 105 of simple_facenet. The same as
``python -m indexing --per-person 1 --sample 1000``.

Wiring (the app)::

    fill = BackgroundFill(store, pipeline, settings)
    if fill.needed():
        fill.start()
    ...
    fill.progress()  # FillProgress(state="filling", done=480, total=2102, faces=455, message="...")
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from indexing.indexer import index_sources
from indexing.messages import one_line
from indexing.sources import SMALL_DEFAULT_SOURCES
from lookalike.faces import FacePipeline
from lookalike.index.store import FaceStore
from webapp.settings import AppSettings

log = logging.getLogger(__name__)

FILL_FAILED = "Filling the index failed, so the app cannot search yet; please come back later."
"""What a visitor reads when the fill failed (why, with the sources, goes to the log)."""

FillState = Literal["idle", "filling", "done", "failed"]


@dataclass(frozen=True)
class FillProgress:
    """Where the fill stands.

    Attributes:
        state: ``idle`` (not started), ``filling``, ``done`` or ``failed``.
        done / total: photos processed / planned (total is 0 while the sources are being opened).
        faces: faces indexed so far.
        message: one sentence for a page or an API client.
        elapsed_s: seconds since the fill started (0 before).
    """

    state: FillState
    done: int = 0
    total: int = 0
    faces: int = 0
    message: str = ""
    elapsed_s: float = 0.0

    @property
    def fraction(self) -> float:
        """Share of the planned photos processed, 0..1."""
        return self.done / self.total if self.total else 0.0


class BackgroundFill:
    """Fills an empty embedded store with a small sample of the default sources, in a daemon thread."""

    def __init__(self, store: FaceStore, pipeline: FacePipeline, settings: AppSettings,
                 sources: Sequence[str] | None = None, sample: int | None = None, per_person: int = 1,
                 batch_size: int = 16, seed: int = 0):
        """
        Args:
            store, pipeline: the app's open store and face pipeline (shared; the store serialises calls).
            sources: source specs; default ``settings.fill_sources``, else :data:`SMALL_DEFAULT_SOURCES`
                (the default sources less the 3.7 GB one, whose whole files a sample would download).
            sample: photos per source; default ``settings.fill_sample`` (0: the fill never runs).
            per_person: photos of each person (1: as many people as the sample allows).
        """
        self.store = store
        self.pipeline = pipeline
        self.settings = settings
        self.sources = tuple(sources or settings.fill_sources or SMALL_DEFAULT_SOURCES)
        self.sample = settings.fill_sample if sample is None else sample
        self.per_person = per_person
        self.batch_size = batch_size
        self.seed = seed
        self._lock = threading.Lock()
        self._progress = FillProgress("idle", message="The index has not been filled yet.")
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def needed(self) -> bool:
        """True for an embedded store without faces (and a fill not turned off with a sample of 0)."""
        return self.settings.embedded and self.sample > 0 and self.store.count() == 0

    def start(self) -> bool:
        """Start the fill thread unless it runs or ran already; True when this call started it."""
        with self._lock:
            if self._thread is not None:
                return False
            self._started = time.monotonic()
            self._progress = FillProgress("filling", message=f"Filling the index: opening {len(self.sources)} "
                                                             "source(s)...")
            self._thread = threading.Thread(target=self._run, name="background-fill", daemon=True)
            self._thread.start()
            return True

    def progress(self) -> FillProgress:
        """The current :class:`FillProgress` (safe from any thread)."""
        with self._lock:
            return self._progress

    def wait(self, timeout: float | None = None) -> FillProgress:
        """Block until the fill ends (or ``timeout`` seconds pass); the progress then."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.progress()

    # -- the thread ------------------------------------------------------------------------------

    def _set(self, state: FillState, done: int, total: int, faces: int, message: str) -> None:
        with self._lock:
            self._progress = FillProgress(state, done, total, faces, message,
                                          round(time.monotonic() - self._started, 1))

    def _run(self) -> None:
        try:
            token = self.settings.hf_token.get_secret_value() if self.settings.hf_token else None

            def report(done: int, total: int, faces: int) -> None:
                self._set("filling", done, total, faces,
                          f"Filling the index: {done} of {total} photos read, {faces} faces indexed.")

            result = index_sources(self.pipeline, self.store, self.sources, sample=self.sample,
                                   per_person=self.per_person, seed=self.seed, batch_size=self.batch_size,
                                   token=token, on_progress=report)
        except Exception as exc:  # noqa: BLE001 - any failure becomes the fill's one sentence
            log.warning("background fill failed: %s", one_line(exc))
            now = self.progress()
            self._set("failed", now.done, now.total, now.faces, FILL_FAILED)
            return
        if result.faces_indexed + result.already_indexed == 0:
            log.warning("background fill failed: no face could be indexed from %s", ", ".join(self.sources))
            self._set("failed", result.images_seen, result.images_seen, 0, FILL_FAILED)
            return
        self._set("done", result.images_seen, result.images_seen, result.faces_indexed,
                  f"The index holds {result.faces_indexed + result.already_indexed} faces of {result.people} "
                  f"people (filled in {time.monotonic() - self._started:.0f} s).")
        log.info("background fill done: %s faces, %s people", result.faces_indexed, result.people)
