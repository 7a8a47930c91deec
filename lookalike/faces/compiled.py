"""The sessions :mod:`lookalike.faces.runtime` serves a model with, one per runtime: numpy in, numpy out.

OpenVINO's (:class:`CompiledNetwork`) always computes in float32: on CPUs with AMX it would otherwise
choose bfloat16, which moves MTCNN's boxes and FaceNet's vectors away from facenet-pytorch's.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

Session = Callable[[np.ndarray], Sequence[np.ndarray]]
"""A compiled model: a contiguous float32 array in, its outputs (float32 numpy, the model's order) out."""


def torch_session(module: torch.nn.Module, device: str = "cpu") -> Session:
    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            out = module(torch.from_numpy(x).to(device))
        return [o.float().cpu().numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]

    return run


def onnxruntime_session(model: bytes | Path, threads: int) -> Session:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # Threads spin while a run is under way and stop when it returns, so the next model gets the CPU.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


@functools.cache
def _core() -> Any:
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

    def _for_shape(self, shape: tuple[int, ...]) -> _Compiled:
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

    def __init__(self, compiled: Any):
        self.compiled = compiled
        self._idle: deque[Any] = deque()

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
