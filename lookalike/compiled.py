"""MTCNN's exported ONNX networks compiled by OpenVINO for this machine's CPU: numpy in, numpy out.

P-, R- and O-Net are exported from torch once (their own graphs and weights) and run here, always in
float32: on CPUs with AMX, OpenVINO would otherwise choose bfloat16, which moves MTCNN's boxes away from
facenet-pytorch's. Why OpenVINO for these networks and onnxruntime for FaceNet:
``docs/decisions/runtimes.md``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter, OrderedDict, deque
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@functools.cache
def _core():
    import openvino as ov

    return ov.Core()


class CompiledNetwork:
    """One ONNX model (bytes or a file) compiled for the CPU; call it with a float32 array.

    Safe to call from several threads at once: each call uses an idle inference request.
    Raises ImportError when OpenVINO is not installed.
    """

    def __init__(self, model: bytes | Path, *, threads: int | None = None, static_shapes: int = 0,
                 static_after: int = 16):
        """``threads``: OpenVINO's inference threads (``None``: torch's thread count, which the app sets).

        ``static_shapes``: how many input shapes may also get a model compiled for exactly that shape,
        once a shape has been called ``static_after`` times (P-Net runs faster on a fixed shape, and a
        photo size's pyramid levels recur: webcam frames, a dataset of one size; a compile has a cost, so
        a shape must recur to pay for it). 0 keeps only the dynamic model.
        """
        import torch

        self.config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY",
                                          "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
                                          "INFERENCE_PRECISION_HINT": "f32"}
        # Not CPU_DENORMALS_OPTIMIZATION: it sets the calling thread's flush-to-zero flags, so every
        # float computation of the caller would lose subnormal numbers (hypothesis detects it).
        self.source = model if isinstance(model, bytes) else str(model)
        self.dynamic = _Compiled(_core().compile_model(_core().read_model(self.source), "CPU", self.config))
        self.static_shapes = static_shapes
        self.static_after = static_after
        self._static: OrderedDict[tuple[int, ...], _Compiled] = OrderedDict()
        self._seen: Counter[tuple[int, ...]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """The model's outputs, in its output order, for input ``x`` (its first input)."""
        x = np.ascontiguousarray(x, np.float32)
        return self._for_shape(x.shape)(x)

    def _for_shape(self, shape: tuple[int, ...]) -> "_Compiled":
        if not self.static_shapes:
            return self.dynamic
        with self._lock:
            if shape in self._static:
                self._static.move_to_end(shape)
                return self._static[shape]
            if len(self._seen) > 64 * self.static_shapes:  # bounded: a dataset of many sizes
                self._seen.clear()
            self._seen[shape] += 1
            if self._seen[shape] < self.static_after:
                return self.dynamic
            del self._seen[shape]
        try:
            model = _core().read_model(self.source)
            model.reshape({0: list(shape)})
            compiled = _Compiled(_core().compile_model(model, "CPU", self.config))
        except Exception as exc:  # only speed is lost: the dynamic model serves this shape
            log.warning("no fixed-shape model for %s (%s)", shape, type(exc).__name__)
            return self.dynamic
        with self._lock:
            self._static[shape] = compiled
            while len(self._static) > self.static_shapes:
                self._static.popitem(last=False)
        return compiled


class _Compiled:
    """A compiled model and its idle inference requests: a call takes one (or makes one when all are
    busy) and puts it back, so a server's many worker threads share a few requests."""

    def __init__(self, compiled):
        self.compiled = compiled
        self._idle: deque = deque()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            request = self._idle.pop()
        except IndexError:
            request = self.compiled.create_infer_request()
        try:
            # x is contiguous float32, so it is read in place; the outputs are copied out.
            result = request.infer(x, share_inputs=True)
            return [result[output] for output in self.compiled.outputs]
        finally:
            self._idle.append(request)
