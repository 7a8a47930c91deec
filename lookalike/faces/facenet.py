"""FaceNet (InceptionResnetV1, vggface2 weights): loading, fingerprinting and batched embedding in the
runtime :mod:`lookalike.faces.runtime` chooses.

The weights come through facenet-pytorch's own path, ``InceptionResnetV1(pretrained="vggface2")``,
which reads ``$TORCH_HOME/checkpoints/20180402-114759-vggface2.pt`` and downloads it on first use;
``LOOKALIKE_WEIGHTS`` may name the file instead. The fingerprint (model, weights hash, pipeline
version) is written into every collection so vectors of other weights are never compared.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lookalike.errors import WeightsMissingError
from lookalike.faces.runtime import InferenceModel
from lookalike.fingerprint import EMBEDDING_SIZE, PIPELINE_VERSION, ModelFingerprint

log = logging.getLogger(__name__)

WEIGHTS_FILE_NAME = "20180402-114759-vggface2.pt"
"""The vggface2 weights' file name in facenet-pytorch's release."""

MODEL_UNAVAILABLE = "The app cannot search right now: its face model is not available. Please come back later."
"""What a visitor reads when the weights cannot be loaded (the path and what to do go to the log)."""

VGGFACE2_CLASSES = 8631
"""Classes of the vggface2 checkpoint's logits layer (unused for embedding, present in the file)."""


def default_weights_path() -> Path:
    """Where facenet-pytorch keeps the vggface2 weights: ``$TORCH_HOME/checkpoints/<file>``."""
    from torch.hub import _get_torch_home

    return Path(_get_torch_home()) / "checkpoints" / WEIGHTS_FILE_NAME  # type: ignore[no-untyped-call]


def load_facenet(weights: Path | None = None, device: str = "cpu") -> tuple[torch.nn.Module, ModelFingerprint]:
    """InceptionResnetV1 with vggface2 weights in eval mode, and its fingerprint.

    Args:
        weights: an explicit weights file; ``None`` takes facenet-pytorch's own path (download
            into ``$TORCH_HOME/checkpoints`` on first use).

    Raises:
        WeightsMissingError: the file is missing and could not be downloaded.
    """
    from facenet_pytorch import InceptionResnetV1

    path = Path(weights) if weights else default_weights_path()
    try:
        if weights:
            if not path.is_file():
                raise FileNotFoundError(path)
            model = InceptionResnetV1()
            # As facenet-pytorch's own pretrained path: the file holds the 8631-class logits layer too.
            model.logits = torch.nn.Linear(512, VGGFACE2_CLASSES)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        else:
            model = InceptionResnetV1(pretrained="vggface2")
    except Exception as exc:  # the download raises URLError, HTTPError, OSError, ...
        if path.is_file():  # there, but not a vggface2 checkpoint (truncated, corrupt, other model)
            raise WeightsMissingError(
                MODEL_UNAVAILABLE,
                detail=f"The FaceNet weights file {path} could not be loaded ({type(exc).__name__}): replace it with "
                f"{WEIGHTS_FILE_NAME} from facenet-pytorch's release (or delete it to download it again)."
            ) from exc
        if weights:
            raise WeightsMissingError(
                MODEL_UNAVAILABLE,
                detail=f"The FaceNet weights file {path} does not exist: set LOOKALIKE_WEIGHTS to the path of "
                f"{WEIGHTS_FILE_NAME}, or unset it to use {default_weights_path()}."
            ) from exc
        raise WeightsMissingError(
            MODEL_UNAVAILABLE,
            detail=f"The FaceNet weights are missing and could not be downloaded: put {WEIGHTS_FILE_NAME} "
            f"at {path} (or set LOOKALIKE_WEIGHTS to its path)."
        ) from exc
    model = model.eval().to(device)
    fingerprint = ModelFingerprint("InceptionResnetV1", "vggface2", file_sha256(path), PIPELINE_VERSION)
    return model, fingerprint


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, cached by path, size and modification time."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)  # a few weights files per process; bounded all the same
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class FaceNet(InferenceModel):
    """FaceNet on standardised crops, in batches: (n, 3, 160, 160) -> (n, 512) float32 unit vectors
    (InceptionResnetV1's ``forward`` ends in an L2 normalisation, and so does its export)."""

    name = "facenet"
    input_name = "crops"
    output_names = ("vectors",)
    example_shape = (1, 3, 160, 160)
    dynamic_axes = {"crops": {0: "n"}, "vectors": {0: "n"}}
    warmup_shape = (1, 3, 160, 160)  # one selfie's face: the app's call

    def __init__(self, model: torch.nn.Module, weights_sha256: str, *, batch_size: int = 32, **options: Any):
        """``model`` from :func:`load_facenet`; its weights file's hash names the cached export. ``options``:
        :class:`lookalike.faces.runtime.InferenceModel`'s."""
        super().__init__(model, digest=weights_sha256[:16], **options)
        self.batch_size = batch_size

    def embed(self, crops: torch.Tensor | np.ndarray) -> np.ndarray:
        """(n, 3, 160, 160) standardised crops -> (n, 512) float32 unit vectors."""
        if len(crops) == 0:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        if isinstance(crops, torch.Tensor):
            crops = crops.detach().cpu().numpy()
        crops = np.ascontiguousarray(crops, np.float32)
        run = self.served.run  # one runtime for the whole call
        return np.concatenate([run(crops[i:i + self.batch_size])[0] for i in range(0, len(crops), self.batch_size)])
