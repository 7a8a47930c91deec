"""Face detection with facenet-pytorch's MTCNN: boxes, probabilities and landmarks.

Detection runs on a copy shrunk to ``max_side`` (large phone photos cost the same as a selfie),
with ``min_face_size`` pixels as the smallest face; boxes and landmarks come back in pixels of
the full image. Cropping reads the full-resolution image (:mod:`lookalike.faces.pipeline`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.batching import batched
from lookalike.faces.mtcnn import Detection
from lookalike.faces.runtime import AUTO

# MTCNN's P-Net needs at least 12x12 pixels; smaller inputs cannot hold a face.
MIN_DETECTABLE_SIDE = 12


def smallest_detectable_side(min_face_size: int) -> int:
    """The shortest image side MTCNN can scan: its first pyramid level scales by ``12 / min_face_size``,
    and a level shorter than 12 pixels leaves no level at all (facenet-pytorch then fails in
    ``torch.cat`` with an empty list), so an image shorter than ``min_face_size`` holds no findable face."""
    return max(MIN_DETECTABLE_SIDE, int(min_face_size))


class FaceDetector:
    """MTCNN (weights shipped in facenet-pytorch's wheel) with downscaling for large images.

    ``kind="fast"`` (the default) detects with :class:`lookalike.faces.fast_mtcnn.FastMTCNN`: facenet-pytorch's
    networks, stages and thresholds, with every image, pyramid level and candidate box of a call
    resampled in one pass and each network in the runtime timed fastest here, on the CPU.
    ``kind="facenet"`` calls facenet-pytorch's own ``MTCNN.detect`` (on ``device``), for comparison.
    The two agree closely, not exactly: ``tests/test_detection.py`` holds the fast boxes to facenet-pytorch's
    at IoU >= 0.95 for 99 % of faces and allows another face count on 1 % of photos.
    """

    def __init__(self, device: str = "cpu", min_face_size: int = 40, max_side: int = 1280, batch_size: int = 32,
                 kind: str = "fast", cache_dir: Path | None = None, wait_for_onnx: bool = True,
                 runtime: str = AUTO):
        """``runtime``, ``cache_dir`` and ``wait_for_onnx``: the fast detector's runtime, where it caches
        its exports and runtime choices, and whether it waits for them (see
        :class:`lookalike.faces.fast_mtcnn.FastMTCNN`)."""
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(image_size=160, margin=0, min_face_size=min_face_size, keep_all=True,
                           post_process=True, device=device)
        self.kind = kind
        self.fast = None
        if kind == "fast":
            from lookalike.faces.fast_mtcnn import FastMTCNN

            self.fast = FastMTCNN(self.mtcnn, runtime=runtime, cache_dir=cache_dir, wait=wait_for_onnx)
        elif kind != "facenet":
            raise ValueError(f"unknown detector {kind!r}: 'fast' or 'facenet'")
        self.max_side = max_side
        self.batch_size = batch_size
        self.min_side = smallest_detectable_side(min_face_size)

    def detect(self, image: Image.Image) -> Detection:
        """All faces in one RGB image, sorted left to right."""
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[Image.Image]) -> list[Detection]:
        """All faces in each RGB image, in batches of ``batch_size`` images (the fast detector takes
        images of any sizes together; facenet-pytorch's, only images of one size)."""
        results: list[Detection] = [Detection.empty() for _ in images]
        scaled: dict[int, tuple[Image.Image, float]] = {}
        for index, image in enumerate(images):
            small, scale = _shrink(image, self.max_side)
            if min(small.size) < self.min_side:  # a 3000x20 strip: nothing MTCNN can scan, so no face
                continue
            scaled[index] = (small, scale)
        if self.fast is not None:
            batches = list(batched(scaled, self.batch_size))
        else:
            groups: dict[tuple[int, int], list[int]] = defaultdict(list)
            for index, (small, _) in scaled.items():
                groups[small.size].append(index)
            batches = [batch for g in groups.values() for batch in batched(g, self.batch_size)]
        for chunk in batches:
            for i, (boxes, probs, marks) in zip(chunk, self._detect([scaled[i][0] for i in chunk]), strict=True):
                results[i] = _detection(boxes, probs, marks, 1.0 / scaled[i][1])
        return results

    def _detect(self, images: list[Image.Image]) -> list[tuple[np.ndarray | None, ...]]:
        """(boxes, probabilities, landmarks) of each image, in the shrunk images' pixels."""
        if self.fast is not None:
            return [(d.boxes, d.probabilities, d.landmarks) for d in self.fast.detect([np.asarray(i) for i in images])]
        boxes, probs, points = self.mtcnn.detect(images, landmarks=True)
        return list(zip(boxes, probs, points, strict=True))


def _shrink(image: Image.Image, max_side: int) -> tuple[Image.Image, float]:
    """``image`` scaled so its longest side is at most ``max_side``, and the scale used (<= 1)."""
    longest = max(image.size)
    if longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), scale


def _detection(boxes: np.ndarray | None, probs: np.ndarray | None, points: np.ndarray | None,
               factor: float) -> Detection:
    """MTCNN's per-image output, scaled by ``factor`` and sorted left to right."""
    if boxes is None or len(boxes) == 0:
        return Detection.empty()
    boxes = np.asarray(boxes, np.float32) * factor
    points = np.asarray(points, np.float32) * factor
    probs = np.asarray(probs, np.float32)
    order = np.argsort(boxes[:, 0], kind="stable")
    return Detection(boxes[order], probs[order], points[order])
