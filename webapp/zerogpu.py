"""Hugging Face ZeroGPU, the Space hardware a free account can host: the device a query runs on there,
and the face step decorated with ``@spaces.GPU``.

``spaces`` must be imported before torch (``app.py`` imports it first). Outside ZeroGPU (no
``SPACES_ZERO_GPU``) ``spaces.GPU`` returns the function unchanged and nothing is patched.

On ZeroGPU, torch's CUDA is emulated outside decorated functions, and each decorated call is scheduled
on a shared GPU and charged to the visitor's daily quota (API and MCP callers, who carry no visitor
token, share the Space's). The CPU path needs neither, so ``LOOKALIKE_DEVICE=auto`` runs queries on the
CPU there (README, "Deploy"). ``LOOKALIKE_DEVICE=cuda`` runs detection and embedding inside the
decorated step instead, with facenet-pytorch's own MTCNN and FaceNet in torch on the GPU. ZeroGPU
refuses to start a Space without a decorated function, so the step is decorated at start-up, before any
model loads, whatever fails next.
The background fill never goes through the step (:func:`background_pipeline`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import spaces
from spaces.config import Config

from lookalike.errors import LookalikeError
from lookalike.faces import Face, FaceConfig, FacePipeline

log = logging.getLogger(__name__)

ON_ZERO_GPU = Config.zero_gpu
"""True inside a ZeroGPU Space (``SPACES_ZERO_GPU`` set by the platform)."""

GPU_SECONDS = 10
"""The GPU time each decorated call asks for; ZeroGPU checks it against the visitor's quota left."""


def query_face_config(config: FaceConfig) -> FaceConfig:
    """``config`` as queries run it here: on ZeroGPU ``auto`` means the CPU, and ``cuda`` means
    facenet-pytorch's own MTCNN on the GPU (the compiled CPU detector stays out of the GPU worker)."""
    if not ON_ZERO_GPU:
        return config
    if config.device == "cuda":
        return dataclasses.replace(config, detector="facenet")
    return dataclasses.replace(config, device="cpu")


def scheduled_on_gpu(device: str) -> bool:
    """True when the face step of a query on ``device`` is scheduled on ZeroGPU's shared GPU."""
    return ON_ZERO_GPU and device == "cuda"


class FaceStep:
    """The face step (detection and embedding of a query's photo) as ``@spaces.GPU`` registers it.

    Made at start-up before any model loads, so ZeroGPU finds a decorated function even when the
    weights cannot be loaded (it stops a Space without one); :meth:`attach` gives it the pipeline.
    """

    def __init__(self) -> None:
        self._faces_many: Callable[..., list[list[Face]]] | None = None
        self.decorated = spaces.GPU(duration=GPU_SECONDS)(self._run)

    def _run(self, images, **kwargs):
        if self._faces_many is None:
            raise LookalikeError("The app cannot search right now; please come back later.")
        return self._faces_many(images, **kwargs)

    def attach(self, pipeline: FacePipeline) -> None:
        """Run ``pipeline``'s face step; on ``cuda`` under ZeroGPU every query's detection and embedding go
        through the decorated step (``pipeline.faces_many`` replaced)."""
        self._faces_many = pipeline.faces_many
        if scheduled_on_gpu(pipeline.device):
            pipeline.faces_many = self.decorated  # type: ignore[method-assign]
        if ON_ZERO_GPU:
            log.info("ZeroGPU: queries run on %s",
                     "the GPU (@spaces.GPU)" if scheduled_on_gpu(pipeline.device) else "the CPU")


def background_pipeline(pipeline: FacePipeline, config: FaceConfig) -> FacePipeline:
    """The pipeline for work without a visitor (the background fill): ``pipeline`` itself, unless its face
    step is scheduled on ZeroGPU's GPU (each call asking a visitor's quota): then a CPU one of ``config``."""
    if not scheduled_on_gpu(pipeline.device):
        return pipeline
    return FacePipeline(dataclasses.replace(config, device="cpu"), wait_for_onnx=False)
