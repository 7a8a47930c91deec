"""Wiring: the app's settings (:class:`webapp.settings.AppSettings`) -> face pipeline + store -> finder ->
the page. The only module that knows both the core's construction and the web layer; the finder's
lifecycle is :class:`webapp.finders.FinderHolder`'s.
"""

from __future__ import annotations

import logging

import gradio as gr

from lookalike.errors import LookalikeError
from lookalike.faces import FacePipeline
from lookalike.search import LookalikeFinder
from webapp.fill import BackgroundFill
from webapp.finders import FinderHolder
from webapp.page import CSS, build_app
from webapp.settings import AppSettings
from webapp.traffic import launch_options
from webapp.zerogpu import FaceStep, background_pipeline, query_face_config, scheduled_on_gpu

log = logging.getLogger(__name__)


def warm_up(finder: LookalikeFinder) -> None:
    """Run the detector and the embedder once so the first request does not pay for lazy start-up."""
    import numpy as np
    import torch
    from PIL import Image

    blank = Image.fromarray(np.full((480, 640, 3), 128, np.uint8))
    finder.pipeline.faces_many([blank])
    crops = torch.randn(1, 3, 160, 160, generator=torch.Generator().manual_seed(0)) * 0.5
    finder.pipeline.embedder.embed(crops)


def create_app(settings: AppSettings | None = None) -> gr.Blocks:
    """The app for ``settings`` (default: the environment), models loaded before it is returned.

    What the app cannot do is said to visitors in a sentence (the error's ``str``) and to the operator
    in the log (its ``detail``: the store, the paths, the variables, the commands)."""
    settings = settings or AppSettings()
    step = FaceStep()  # registered with ZeroGPU before anything can fail
    import torch

    # The queue runs 2 searches at once (webapp.page): one torch thread each by default, so that they share
    # the CPU instead of fighting over it (OpenMP threads spin-wait badly when cores are oversubscribed).
    torch.set_num_threads(settings.torch_threads)
    config = query_face_config(settings.face_config())
    try:
        pipeline = FacePipeline(config, wait_for_onnx=False)
    except LookalikeError as exc:  # weights missing: the page says so instead of crashing
        log.error("cannot search: %s", exc.detail)
        return build_app(FinderHolder(None, exc))
    step.attach(pipeline)

    def open_finder() -> LookalikeFinder:
        return LookalikeFinder.from_settings(settings, pipeline=pipeline)

    try:
        finder = open_finder()
    except LookalikeError as exc:  # store locked or unusable: the page says so, requests retry opening it
        log.error("cannot search: %s", exc.detail)
        return build_app(FinderHolder(None, exc, reopen=open_finder))
    fill = BackgroundFill(finder.store, pipeline, settings)
    filling = fill.needed()  # no QDRANT_URL and an empty embedded store: fill a sample in this process
    if filling:
        log.info("the embedded store is empty: filling it in the background")
        fill.pipeline = background_pipeline(pipeline, config)  # never through the GPU step
        fill.start()
    try:
        if not scheduled_on_gpu(pipeline.device):  # a ZeroGPU call needs a visitor's request and quota
            warm_up(finder)
    except Exception as exc:  # warming up is an optimisation only
        log.warning("warm-up skipped: %s", type(exc).__name__)
    return build_app(FinderHolder(finder, fill=fill if filling else None), private_mode=settings.private_mode)


def launch_kwargs(settings: AppSettings | None = None) -> dict:
    """What :meth:`gr.Blocks.launch` needs: no Gradio-side error details, no run history kept in the
    visitor's browser (Gradio 6 keeps every run's photo and result there by default), the page's CSS, the
    upload limit and middleware of :mod:`webapp.traffic`, and, with ``settings``, where to listen, whether to
    serve MCP and the rate limit (none without)."""
    kwargs: dict = {"show_error": False, "run_history": False, "footer_links": ["api", "gradio", "settings"],
                    "css": CSS}
    if settings is not None:
        kwargs.update(server_name=settings.server_name, server_port=settings.server_port, mcp_server=settings.mcp)
    kwargs.update(launch_options(settings))  # upload limit, shared uploads, REST defaults, rate limit
    return kwargs
