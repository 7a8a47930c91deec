"""The Space's entry point: ``python app.py`` serves the look-alike app on 0.0.0.0:7860.

Settings come from the environment (``QDRANT_URL`` / ``QDRANT_API_KEY`` as Space secrets; without
them the embedded store under ``LOOKALIKE_DATA_DIR``). ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``
are respected; ``LOOKALIKE_MCP=0`` turns the MCP server off.
"""

from __future__ import annotations

import logging
import os

import gradio as gr

from lookalike.errors import LookalikeError
from lookalike.faces import FacePipeline
from lookalike.search import LookalikeFinder
from lookalike.settings import Settings
from lookalike.store import FaceStore
from lookalike.ui import build_app, launch_kwargs

log = logging.getLogger("lookalike.app")


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
    settings = settings or Settings()
    import torch

    # The queue runs 2 searches at once (lookalike.ui): one torch thread each, so that they share the
    # CPU instead of fighting over it (OpenMP threads spin-wait badly when cores are oversubscribed).
    torch.set_num_threads(int(os.environ.get("LOOKALIKE_TORCH_THREADS", "1")))
    try:
        pipeline = FacePipeline(settings, wait_for_onnx=False)
    except LookalikeError as exc:  # weights missing: the page says so instead of crashing
        log.error("cannot search: %s", exc)
        return build_app(None, exc)

    def open_finder() -> LookalikeFinder:
        return LookalikeFinder(pipeline, FaceStore.open(settings), settings.top_k,
                               getattr(settings, "use_centroids", False))

    try:
        finder = open_finder()
    except LookalikeError as exc:  # store locked or unusable: the page says so, requests retry opening it
        log.error("cannot search: %s", exc)
        return build_app(None, exc, reopen=open_finder)
    try:
        warm_up(finder)
    except Exception as exc:  # warming up is an optimisation only
        log.warning("warm-up skipped: %s", type(exc).__name__)
    return build_app(finder)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    demo = create_app()
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        mcp_server=os.environ.get("LOOKALIKE_MCP", "1").strip().lower() not in {"0", "false", "no", "off"},
        **launch_kwargs(),
    )


if __name__ == "__main__":
    main()
