"""The one face pipeline of both phases: image -> every face with its box, crop and vector.

Indexing and search both call :class:`FacePipeline`, so indexed and query vectors are always made
the same way: MTCNN detects once (on a shrunk copy for large photos), each box is cropped from the
full-resolution image to 160x160 and standardised exactly as facenet-pytorch's ``MTCNN.extract`` does
(:func:`extract_faces`, in numpy), and FaceNet embeds all crops of a call in batched forward passes.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from lookalike.errors import NoFaceError
from lookalike.faces.config import FaceConfig
from lookalike.faces.detection import FaceDetector
from lookalike.faces.facenet import FaceNet, load_facenet
from lookalike.faces.mtcnn import Detection
from lookalike.faces.runtime import prepare_all
from lookalike.fingerprint import ModelFingerprint, detection_setting
from lookalike.images import ImageInput, encode_jpeg, load_rgb_image

log = logging.getLogger(__name__)

NO_FACE = "No face was found in the photo: try a brighter, front-facing picture."
"""The message of :class:`NoFaceError` for a photo without a face (the pipeline's and the finder's)."""


@dataclass(frozen=True)
class Face:
    """One face in a photo.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels of the upright photo (after EXIF rotation).
        probability: MTCNN's detection probability, 0..1.
        landmarks: (5, 2) float32 pixel ``(x, y)`` of the eyes, nose and mouth corners.
        vector: (512,) float32 unit-length FaceNet embedding.
        pixels: (3, 160, 160) float32 standardised crop FaceNet read (facenet-pytorch's
            ``fixed_image_standardization``); :attr:`crop` shows it. None for a face embedded elsewhere
            (a browser in private mode): the server never had its pixels.
    """

    box: tuple[float, float, float, float]
    probability: float
    landmarks: np.ndarray = field(repr=False)
    vector: np.ndarray = field(repr=False)
    pixels: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def crop(self) -> Image.Image | None:
        """The aligned 160x160 RGB crop the vector was computed from (for display), made on first use;
        None without pixels."""
        return None if self.pixels is None else crops_to_images(self.pixels.unsqueeze(0))[0]

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def face_thumbnail(image: Image.Image, box: Sequence[float], size: int = 128, margin: float = 0.25) -> bytes:
    """A ``size`` x ``size`` JPEG (a few KB) of the face in ``box`` with ``margin`` of its size around it."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    square = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    left, top, right, bottom = (round(v) for v in square)
    return encode_jpeg(image.crop((left, top, right, bottom)).resize((size, size), Image.Resampling.BICUBIC),
                       max_side=size)


def extract_faces(image: Image.Image, boxes: np.ndarray, size: int = 160) -> np.ndarray:
    """``MTCNN(image_size=size, margin=0, post_process=True).extract(image, boxes, None)`` in numpy:
    each box's pixels (its corners truncated to int and clipped to the image) resized by PIL to
    ``size`` x ``size``, bilinear, then standardised as ``(x - 127.5) / 128``: (n, 3, size, size)
    float32. The same arithmetic without torch: torch's elementwise ops would wake its OpenMP
    threads, whose busy-waiting then slows the networks that run next."""
    out = np.empty((len(boxes), 3, size, size), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        corners = (int(max(x1, 0)), int(max(y1, 0)), int(min(x2, image.width)), int(min(y2, image.height)))
        pixels = np.asarray(image.crop(corners).resize((size, size), Image.Resampling.BILINEAR), np.float32)
        out[i] = ((pixels - np.float32(127.5)) / np.float32(128.0)).transpose(2, 0, 1)
    return out


def crops_to_images(crops: torch.Tensor) -> list[Image.Image]:
    """Standardised (n, 3, 160, 160) crops back to 8-bit RGB images (inverse of MTCNN's post-process)."""
    pixels = (crops * 128.0 + 127.5).clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(p) for p in pixels]


def _box(values: np.ndarray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


def pipeline_fingerprint(config: FaceConfig, weights: ModelFingerprint) -> ModelFingerprint:
    """The fingerprint of vectors made with ``weights`` under ``config``: the weights' fingerprint
    plus every detection setting that changes the faces found or their crops."""
    return dataclasses.replace(weights, detection=detection_setting(config.min_face_size, config.detect_max_side))


class FacePipeline:
    """MTCNN + FaceNet with one configuration for indexing and search.

    ``fingerprint`` names the weights and pipeline version that made the vectors; ``device`` is where
    they run (``"cpu"`` or ``"cuda"``).
    """

    def __init__(self, config: FaceConfig | None = None, wait_for_onnx: bool = True):
        """Load MTCNN and FaceNet as ``config`` says (default: :class:`FaceConfig`'s defaults).

        Each network serves in torch at once and switches to the runtime timed fastest on this machine
        (or the one the config forces) once it is exported and timed (:mod:`lookalike.faces.runtime`):
        ``wait_for_onnx=False`` does that in the background unless it is cached, so the app starts in
        seconds; the indexer waits and leaves the exports and choices in ``config.model_cache``.
        """
        config = config or FaceConfig()
        self.device = device = config.resolved_device()
        self.max_image_pixels = config.max_image_pixels
        # The weights first: when they are missing, nothing (no export of the detector) is written.
        model, weights_fingerprint = load_facenet(config.weights, device)
        cache_dir = config.model_cache
        self.detector = FaceDetector(device=device, min_face_size=config.min_face_size,
                                     max_side=config.detect_max_side, kind=config.detector,
                                     cache_dir=cache_dir, wait_for_onnx=wait_for_onnx,
                                     runtime=config.detector_runtime)
        self.fingerprint = pipeline_fingerprint(config, weights_fingerprint)
        self.embedder = FaceNet(model, weights_fingerprint.weights_sha256, cache_dir=cache_dir,
                                runtime=config.embedder, device=device)
        prepare_all([self.embedder], wait_for_onnx, "facenet-prepare")

    def load(self, source: ImageInput) -> Image.Image:
        """Decode any accepted input to upright RGB (see :func:`lookalike.images.load_rgb_image`)."""
        return load_rgb_image(source, self.max_image_pixels)

    def faces(self, source: ImageInput) -> list[Face]:
        """Every face in one photo, left to right.

        Raises:
            NotAnImageError, ImageTooLargeError: the input cannot be decoded safely.
            NoFaceError: no face was found.
        """
        faces = self.faces_many([self.load(source)])[0]
        if not faces:
            raise NoFaceError(NO_FACE)
        return faces

    def faces_many(self, images: Sequence[Image.Image], main_only: bool = False) -> list[list[Face]]:
        """Every face of each decoded RGB image (empty lists where none), embedded in shared batches.

        With ``main_only`` each image keeps only its largest face (a portrait's subject), and only
        that face is cropped and embedded.
        """
        detections = self.detector.detect_many(images)
        if main_only:
            detections = [det.largest() for det in detections]
        crops = [self._extract(image, det) for image, det in zip(images, detections, strict=True)]
        nonempty = [c for c in crops if c is not None]
        # numpy, not torch.cat: a torch copy this size wakes OpenMP threads that then spin beside FaceNet.
        vectors = (self.embedder.embed(torch.from_numpy(np.concatenate(nonempty))) if nonempty
                   else np.zeros((0, 512), np.float32))
        out: list[list[Face]] = []
        offset = 0
        for det, crop in zip(detections, crops, strict=True):
            if crop is None:
                out.append([])
                continue
            out.append([
                Face(_box(det.boxes[i]), float(det.probabilities[i]), det.landmarks[i],
                     vectors[offset + i], torch.from_numpy(crop[i]))
                for i in range(len(det))
            ])
            offset += len(det)
        return out

    def _extract(self, image: Image.Image, detection: Detection) -> np.ndarray | None:
        """facenet-pytorch's crop + standardisation of each box: (n, 3, 160, 160) float32 or None."""
        if len(detection) == 0:
            return None
        return extract_faces(image, detection.boxes)
