"""FaceNet exported to ONNX once and compiled by OpenVINO for this CPU (:mod:`lookalike.compiled`).

The export (``torch.onnx.export``, opset 17, a few seconds) is cached next to the data as
``facenet-<weights sha256[:16]>-p<pipeline>.onnx``, so other weights never reuse it. In float32 (the
default) its vectors equal torch's to about 1e-7. In bfloat16 (``precision="auto"`` on a CPU with AMX)
it takes about a third of float32's time, but real face crops' vectors drift to a cosine of 0.9994
from torch's (median; 0.9984 at worst, measured), while ``tests/test_faces.py`` requires 0.999.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import openvino  # noqa: F401  (fail at import when missing, so callers can fall back)
import torch

from lookalike.compiled import CompiledNetwork, Precision
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
    """Runs the exported FaceNet, compiled by OpenVINO, on standardised crops, in batches."""

    def __init__(self, path: Path, batch_size: int = 32, threads: int | None = None,
                 precision: Precision = "f32"):
        self.network = CompiledNetwork(path, threads=threads, precision=precision)
        self.batch_size = batch_size

    @classmethod
    def for_model(cls, model: torch.nn.Module, fingerprint: ModelFingerprint, cache_dir: Path,
                  precision: Precision = "f32") -> "OnnxEmbedder":
        """The cached export for these weights, exported first if missing."""
        path = onnx_path(cache_dir, fingerprint)
        if not path.exists():
            log.info("exporting FaceNet to ONNX (once, cached at %s)", path)
            export_onnx(model, path)
        return cls(path, precision=precision)

    def embed(self, crops: torch.Tensor) -> np.ndarray:
        """(n, 3, 160, 160) standardised crops -> (n, 512) float32 unit vectors (the exported graph
        ends in FaceNet's own L2 normalisation)."""
        if len(crops) == 0:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        return np.concatenate([self.network(batch.detach().cpu().numpy())[0]
                               for batch in crops.split(self.batch_size)]).astype(np.float32, copy=False)
