"""The finder the page and the API search with, or why there is none, and its lifecycle.

A store that could not be opened at start-up (an embedded store held by the indexer, say) is retried by
later requests at most once per ``retry_after_s``, so the app picks it up without a restart; while an
empty embedded store is filled in the background (:class:`webapp.fill.BackgroundFill`), the page and
the API say so until it is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from lookalike.errors import LookalikeError
from lookalike.search import LookalikeFinder
from webapp.fill import BackgroundFill, FillProgress

log = logging.getLogger(__name__)

STORE_RETRY_S = 10.0
"""After the store failed to open, a request retries opening it at most this often (seconds)."""


class FinderHolder:
    """The finder, or why there is none.

    ``finder`` None with ``problem`` says why the app cannot search; with ``reopen`` (a callable that
    makes the finder, raising :class:`LookalikeError` while it still cannot), :meth:`get` retries it at
    most once per ``retry_after_s`` seconds (default :data:`STORE_RETRY_S`).
    """

    def __init__(self, finder: LookalikeFinder | None, problem: LookalikeError | None = None,
                 reopen: Callable[[], LookalikeFinder] | None = None, retry_after_s: float | None = None,
                 fill: BackgroundFill | None = None):
        self.finder = finder
        self.problem = problem
        self.fill = fill
        self.reopen = reopen
        self.retry_after_s = STORE_RETRY_S if retry_after_s is None else retry_after_s
        self._next_retry = time.monotonic() + self.retry_after_s  # start-up has just tried
        self._lock = threading.Lock()

    def fill_progress(self) -> FillProgress | None:
        """The background fill's progress while it runs or after it failed; None without a fill or once done."""
        if self.fill is None:
            return None
        progress = self.fill.progress()
        return progress if progress.state in ("filling", "failed") else None

    def get(self) -> LookalikeFinder | None:
        """The finder, opened now if start-up failed, ``reopen`` is set and the cool-down has passed."""
        if self.finder is not None or self.reopen is None:
            return self.finder
        with self._lock:
            if self.finder is None and time.monotonic() >= self._next_retry:
                try:
                    self.finder = self.reopen()
                    self.problem = None
                    log.info("the store could be opened now; searching")
                except LookalikeError as exc:
                    self.problem = exc
                except Exception as exc:  # never the details (they may name a secret) in the log
                    log.error("reopening the store failed: %s", type(exc).__name__)
                finally:
                    self._next_retry = time.monotonic() + self.retry_after_s
        return self.finder
