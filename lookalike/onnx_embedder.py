"""FaceNet in onnxruntime: the same model exported once from torch, about 3x faster than torch at batch 1
on a CPU.

The export (``torch.onnx.export``, opset 17, a few seconds) is cached next to the data as
``facenet-<weights sha256[:16]>-p<pipeline>.onnx``, so other weights never reuse it; its outputs
equal torch's to about 1e-7. (MTCNN's three small networks run in OpenVINO instead,
:mod:`lookalike.compiled`: measured on 2 cores, each runtime is the faster one for its networks.)
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime  # noqa: F401  (fail at import when missing, so callers can fall back)
import torch

from lookalike.fingerprint import EMBEDDING_SIZE, ModelFingerprint

log = logging.getLogger(__name__)


def onnx_path(cache_dir: Path, fingerprint: ModelFingerprint) -> Path:
    """Where the export of these weights is cached."""
    return Path(cache_dir) / f"facenet-{fingerprint.weights_sha256[:16]}-p{fingerprint.pipeline}.onnx"


def export_onnx(model: torch.nn.Module, path: Path) -> Path:
    """Write ``model`` (n, 3, 160, 160) -> (n, 512) to ``path`` atomically; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                copy.deepcopy(model).cpu().eval(), torch.zeros(1, 3, 160, 160), tmp, input_names=["crops"],
                output_names=["vectors"], dynamic_axes={"crops": {0: "n"}, "vectors": {0: "n"}},
                opset_version=17, dynamo=False,
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


class OnnxEmbedder:
    """Runs the exported FaceNet in onnxruntime on standardised crops, in batches."""

    def __init__(self, path: Path, batch_size: int = 32, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3
        # Threads spin between FaceNet's operations while a run is under way, and stop spinning when it
        # returns, so that MTCNN and the store get the CPU back (docs/decisions/runtimes.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.batch_size = batch_size

    @classmethod
    def for_model(cls, model: torch.nn.Module, fingerprint: ModelFingerprint, cache_dir: Path) -> "OnnxEmbedder":
        """The cached export for these weights, exported first if missing."""
        path = onnx_path(cache_dir, fingerprint)
        if not path.exists():
            log.info("exporting FaceNet to ONNX (once, cached at %s)", path)
            export_onnx(model, path)
        return cls(path)

    def embed(self, crops: torch.Tensor) -> np.ndarray:
        """(n, 3, 160, 160) standardised crops -> (n, 512) float32 unit vectors (the exported graph
        ends in FaceNet's own L2 normalisation)."""
        if len(crops) == 0:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        out = [self.session.run(None, {"crops": batch.detach().cpu().numpy().astype(np.float32, copy=False)})[0]
               for batch in crops.split(self.batch_size)]
        return np.concatenate(out)
