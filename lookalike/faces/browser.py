"""The face pipeline's networks as a browser runs them (private mode): files, and what detection needs.

MTCNN's P-, R- and O-Net go as they are exported (2 MB together). FaceNet's export is 94 MB in float32, so
its large weights are stored as float16 and cast back to float32 when the model loads
(:func:`half_weights`): half the download, the same arithmetic, vectors within 1e-5 of the float32
model's (``tests/test_private.py``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.atomic import write_atomic
from lookalike.faces.runtime import InferenceModel

log = logging.getLogger(__name__)

HALF_MIN_VALUES = 1024
"""Float weights with at least this many values are stored as float16; smaller ones (biases, the
normalisation's scales) stay float32, where they cost nothing and keep full precision."""


@dataclass(frozen=True)
class BrowserModel:
    """One network file for the browser: its bytes on disk (or in memory where the cache folder is not
    writable), their SHA-256 and size."""

    name: str
    sha256: str
    size: int
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def of(cls, name: str, data: bytes, path: Path | None = None) -> BrowserModel:
        """The model whose bytes are ``data``, served from ``path`` when they are there (else from memory)."""
        digest = hashlib.sha256(data).hexdigest()
        return cls(name, digest, len(data), path=path, data=None if path is not None else data)


def half_weights(model: bytes, min_values: int = HALF_MIN_VALUES) -> bytes:
    """``model`` (ONNX bytes) with each float32 initializer of ``min_values`` or more values stored as
    float16 behind a ``Cast`` to float32: the graph computes as before, on weights rounded to float16."""
    import onnx
    from onnx import helper, numpy_helper

    graph = (proto := onnx.load_from_string(model)).graph
    casts, kept = [], []
    for tensor in graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT or int(np.prod(tensor.dims)) < min_values:
            kept.append(tensor)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), f"{tensor.name}__half")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=onnx.TensorProto.FLOAT,
                                      name=f"{tensor.name}__cast"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


def browser_model(network: InferenceModel, key: str, half: bool = False) -> BrowserModel:
    """``network``'s export as the browser gets it (with :func:`half_weights` when ``half``), cached beside
    the export as ``<name>-<digest>.browser.onnx``."""
    cached = network.cached_file(".browser.onnx")
    if cached is not None and cached.exists():
        return BrowserModel.of(key, cached.read_bytes(), cached)
    export = network.exported()
    data = export.read_bytes() if isinstance(export, Path) else export
    if half:
        data = half_weights(data)
    if cached is not None:
        try:
            write_atomic(cached, data)
            return BrowserModel.of(key, data, cached)
        except OSError as exc:  # a read-only cache folder: the file serves from memory
            log.debug("%s's browser model is not cached (%s)", network.name, exc.strerror or type(exc).__name__)
    return BrowserModel.of(key, data)


def browser_models(pipeline: Any) -> dict[str, BrowserModel]:
    """The four files private mode downloads, keyed ``pnet``, ``rnet``, ``onet``, ``facenet``, made from
    ``pipeline``'s own networks (a :class:`lookalike.faces.FacePipeline` with the fast detector)."""
    fast = pipeline.detector.fast
    if fast is None:
        raise ValueError("private mode needs the fast detector (LOOKALIKE_DETECTOR=fast)")
    pnet, rnet, onet = fast.networks
    return {"pnet": browser_model(pnet, "pnet"), "rnet": browser_model(rnet, "rnet"),
            "onet": browser_model(onet, "onet"), "facenet": browser_model(pipeline.embedder, "facenet", half=True)}


def detection_settings(pipeline: Any) -> dict[str, Any]:
    """What the browser's detector needs to find the faces the server finds: MTCNN's smallest face,
    thresholds and pyramid factor, the side photos are shrunk to, and the largest photo accepted."""
    fast = pipeline.detector.fast
    return {"min_face_size": float(fast.min_face_size), "thresholds": list(fast.thresholds),
            "factor": float(fast.factor), "max_side": int(pipeline.detector.max_side),
            "max_image_pixels": int(pipeline.max_image_pixels)}
