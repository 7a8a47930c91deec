"""Wiring: settings -> face pipeline + store -> finder -> the page. The only module that knows both the
core's construction and the web layer.

:class:`FinderHolder` owns the finder's lifecycle: a store that could not be opened at start-up (an
embedded store held by the indexer, say) is retried by later requests at most once per
``retry_after_s``, so the app picks it up without a restart; and an empty embedded store is filled in the
background (:class:`indexing.fill.BackgroundFill`), the page and the API saying so until it is done.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import gradio as gr

from indexing.fill import BackgroundFill, FillProgress
from lookalike.errors import LookalikeError
from lookalike.faces import FacePipeline
from lookalike.search import LookalikeFinder
from lookalike.settings import Settings

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


def warm_up(finder: LookalikeFinder) -> None:
    """Run the detector and the embedder once so the first request does not pay for lazy start-up."""
    import numpy as np
    import torch
    from PIL import Image

    blank = Image.fromarray(np.full((480, 640, 3), 128, np.uint8))
    finder.pipeline.faces_many([blank])
    crops = torch.randn(1, 3, 160, 160, generator=torch.Generator().manual_seed(0)) * 0.5
    finder.pipeline.embedder.embed(crops)


def create_app(settings: Settings | None = None) -> gr.Blocks:
    """The app for ``settings`` (default: the environment), models loaded before it is returned."""
    from webapp.page import build_app

    settings = settings or Settings()
    import torch

    # The queue runs 2 searches at once (webapp.page): one torch thread each by default, so that they share
    # the CPU instead of fighting over it (OpenMP threads spin-wait badly when cores are oversubscribed).
    torch.set_num_threads(settings.torch_threads)
    try:
        pipeline = FacePipeline(settings, wait_for_onnx=False)
    except LookalikeError as exc:  # weights missing: the page says so instead of crashing
        log.error("cannot search: %s", exc)
        return build_app(FinderHolder(None, exc))

    def open_finder() -> LookalikeFinder:
        return LookalikeFinder.from_settings(settings, pipeline=pipeline)

    try:
        finder = open_finder()
    except LookalikeError as exc:  # store locked or unusable: the page says so, requests retry opening it
        log.error("cannot search: %s", exc)
        return build_app(FinderHolder(None, exc, reopen=open_finder))
    fill = BackgroundFill(finder.store, pipeline, settings)
    if fill.needed():  # no QDRANT_URL and an empty embedded store: fill a sample in this process
        log.info("the embedded store is empty: filling it in the background")
        fill.start()
    else:
        fill = None
    try:
        warm_up(finder)
    except Exception as exc:  # warming up is an optimisation only
        log.warning("warm-up skipped: %s", type(exc).__name__)
    return build_app(FinderHolder(finder, fill=fill))


def launch_kwargs(settings: Settings | None = None) -> dict:
    """What :meth:`gr.Blocks.launch` needs: no Gradio-side error details, no run history kept in the
    visitor's browser (Gradio 6 keeps every run's photo and result there by default), the page's CSS, the
    upload limit and middleware of :mod:`webapp.traffic`, and, with ``settings``, where to listen, whether to
    serve MCP and the rate limit (none without)."""
    from webapp.page import CSS
    from webapp.traffic import launch_options

    kwargs: dict = {"show_error": False, "run_history": False, "footer_links": ["api", "gradio", "settings"],
                    "css": CSS}
    if settings is not None:
        kwargs.update(server_name=settings.server_name, server_port=settings.server_port, mcp_server=settings.mcp)
    kwargs.update(launch_options(settings))  # upload limit, shared uploads, REST defaults, rate limit
    return kwargs
