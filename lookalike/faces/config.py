"""What the face pipeline is built from: the weights, the device, where the models' exports are cached,
the detector and each network's runtime, and the detection limits.

The face pipeline reads nothing else: the environment is read by :class:`lookalike.settings.Settings`,
whose ``face_config()`` fills a :class:`FaceConfig` at the composition roots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FaceConfig:
    """The configuration of one :class:`lookalike.faces.FacePipeline`; the defaults are the settings'.

    Attributes:
        weights: the vggface2 weights file; None: ``$TORCH_HOME/checkpoints/``, downloaded on first use.
        device: ``"auto"`` (CUDA when torch sees a GPU), ``"cpu"`` or ``"cuda"``.
        model_cache: folder of the models' ONNX exports and timed runtime choices; None: kept in memory
            and timed on every start.
        detector: ``"fast"`` or ``"facenet"`` (see :class:`lookalike.faces.detection.FaceDetector`).
        detector_runtime, embedder: the runtime of the fast detector's networks and of FaceNet:
            ``"auto"`` (timed once per machine), ``"openvino"``, ``"onnxruntime"`` or ``"torch"``.
        min_face_size: the smallest face MTCNN looks for (pixels).
        detect_max_side: images are shrunk to this longest side for detection (pixels).
        max_image_pixels: larger images are refused before their pixels are decoded.
    """

    weights: Path | None = None
    device: str = "auto"
    model_cache: Path | None = Path("data") / "onnx"
    detector: str = "fast"
    detector_runtime: str = "auto"
    embedder: str = "auto"
    min_face_size: int = 40
    detect_max_side: int = 1280
    max_image_pixels: int = 50_000_000

    def resolved_device(self) -> str:
        """``"cuda"`` or ``"cpu"``: ``auto`` picks CUDA when torch sees a GPU."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
