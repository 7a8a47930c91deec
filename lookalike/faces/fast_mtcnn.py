"""facenet-pytorch's MTCNN detection, stage for stage, without its per-box Python loops.

The same three networks and weights (:mod:`lookalike.faces.mtcnn`), image pyramid, thresholds, non-maximum
suppression and box calibration as ``facenet_pytorch.models.utils.detect_face.detect_face``. What
differs is the batching: summed-area tables (:mod:`lookalike.faces.summed_areas`) resample the pyramid
levels and candidate crops of all images of a call, images of any sizes go through one call, pyramid
levels of equal size share one P-Net pass, and R-Net and O-Net each see every candidate of the call in
one batch.

Close to facenet-pytorch's result, not equal to it: float32 arithmetic in another runtime can tip a
candidate across a threshold. ``tests/test_detection.py`` requires boxes at IoU >= 0.95 for 99 % of
faces, probabilities within 0.01, and the same face count for all but 1 % of photos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torchvision.ops import batched_nms

from lookalike.faces.mtcnn import Detection, MtcnnNetwork, ONet, PNet, RNet
from lookalike.faces.runtime import AUTO, export_onnx, prepare_all
from lookalike.faces.summed_areas import SummedAreas

if TYPE_CHECKING:
    import facenet_pytorch

CROP_CHUNK = 64
"""Candidate boxes resampled per gather: each box reads (2 side)^2 table corners of 3 channels, and a
larger chunk's grid outgrows the CPU's caches (``docs/decisions/runtimes.md``)."""

Network = Callable[[np.ndarray], Sequence[np.ndarray]]
"""A network: (n, 3, h, w) float32 in, its outputs (float32 numpy) out."""


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """The scales of facenet-pytorch's image pyramid, computed in the same float order as it does."""
    m = 12.0 / min_face_size
    minl = min(height, width) * m
    scales = []
    scale = m
    while minl >= 12:
        scales.append(scale)
        scale = scale * factor
        minl = minl * factor
    return scales


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """facenet-pytorch's P/R/O-Net input scaling ``(x - 127.5) * 0.0078125``, in float32 as it does,
    in place."""
    pixels -= np.float32(127.5)
    pixels *= np.float32(0.0078125)
    return pixels


def export_networks(pnet: torch.nn.Module, rnet: torch.nn.Module, onet: torch.nn.Module) -> dict[str, bytes]:
    """The three networks as ONNX models (bytes), keyed ``"pnet"``, ``"rnet"``, ``"onet"``."""
    out = {}
    for key, cls, net in (("pnet", PNet, pnet), ("rnet", RNet, rnet), ("onet", ONet, onet)):
        out[key] = export_onnx(net, torch.zeros(cls.example_shape), cls.input_name, cls.output_names,
                               cls.dynamic_axes)
    return out


class FastMTCNN:
    """facenet-pytorch's MTCNN detection (``MTCNN.detect``) for many images of any sizes at once."""

    def __init__(self, mtcnn: facenet_pytorch.MTCNN, runtime: str = AUTO,
                 cache_dir: Path | None = None, wait: bool = True):
        """Detect as ``mtcnn`` does: its networks (weights) and its ``min_face_size``, ``thresholds``
        and ``factor``, on the CPU.

        Args:
            runtime: ``"auto"`` (each network in the runtime timed fastest here) or ``"openvino"``,
                ``"onnxruntime"``, ``"torch"`` for all three (see :mod:`lookalike.faces.runtime`).
            cache_dir: where the ONNX exports and runtime choices are kept; ``None``: in memory.
            wait: with ``wait=False`` and work to do (an export, a timing), serve in torch and switch
                once a background thread has prepared the networks.
        """
        self.min_face_size = mtcnn.min_face_size
        self.thresholds = tuple(float(t) for t in mtcnn.thresholds)
        self.factor = mtcnn.factor
        options = {"cache_dir": cache_dir, "runtime": runtime}
        self.networks: tuple[MtcnnNetwork, MtcnnNetwork, MtcnnNetwork] = (
            PNet(mtcnn.pnet, **options), RNet(mtcnn.rnet, **options), ONet(mtcnn.onet, **options))
        self._resampler = ThreadPoolExecutor(1, thread_name_prefix="mtcnn-levels")
        prepare_all(self.networks, wait, "mtcnn-prepare")

    @property
    def runtimes(self) -> dict[str, str]:
        """Each network's serving runtime, by its name."""
        return {net.name: net.runtime for net in self.networks}

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray | torch.Tensor]) -> list[Detection]:
        """Faces of each (H, W, 3) uint8 RGB image, as ``MTCNN(...).detect(image, landmarks=True)``
        finds them (its order: P-Net's candidates through R-Net and O-Net; not sorted by size)."""
        pixels = [np.asarray(image, np.uint8) for image in images]
        sizes = [(int(p.shape[0]), int(p.shape[1])) for p in pixels]
        areas = SummedAreas(pixels)
        pnet, rnet, onet = (net.served.run for net in self.networks)  # one runtime each for the whole call
        boxes, image_inds = self._propose(pnet, areas, sizes)
        boxes, image_inds = self._refine(rnet, areas, boxes, image_inds, sizes)
        boxes, image_inds, points = self._output(onet, areas, boxes, image_inds, sizes)
        return [Detection(boxes[mine, :4], boxes[mine, 4], points[mine])
                for mine in (image_inds == i for i in range(len(images)))]

    def _propose(self, pnet: Network, areas: SummedAreas, sizes: list[tuple[int, int]]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1: P-Net over every pyramid level of every image (levels of one size share a pass), NMS
        within each level and then each image, boxes calibrated and squared: (n, 5) boxes with scores
        and their image indices."""
        levels: dict[tuple[int, int], list[tuple[int, int, float]]] = {}
        for index, (h, w) in enumerate(sizes):
            for level, scale in enumerate(pyramid_scales(h, w, self.min_face_size, self.factor)):
                levels.setdefault((int(h * scale + 1), int(w * scale + 1)), []).append((index, level, scale))
        if not levels:
            return np.zeros((0, 5), np.float32), np.zeros((0,), np.int64)

        def resample(size: tuple[int, int], members: list[tuple[int, int, float]]) -> np.ndarray:
            return _normalise(areas.levels([m[0] for m in members], *size))

        # A second thread resamples the next levels while P-Net runs on this one.
        found = []
        resampled = self._resampler.map(resample, levels.keys(), levels.values())
        for pixels, members in zip(resampled, levels.values(), strict=True):
            reg, probs = pnet(pixels)
            found.append(_pnet_candidates(reg, probs[:, 1], members, self.thresholds[0]))
        boxes, image_inds, group_ids = (np.concatenate(column) for column in zip(*found, strict=True))
        pick = _nms(boxes, group_ids, 0.5)  # within each scale and image
        boxes, image_inds = boxes[pick], image_inds[pick]
        pick = _nms(boxes, image_inds, 0.7)  # within each image
        boxes, image_inds = boxes[pick], image_inds[pick]
        regw = boxes[:, 2] - boxes[:, 0]
        regh = boxes[:, 3] - boxes[:, 1]
        boxes = np.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                          boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], axis=1)
        return _rerec(boxes), image_inds

    def _refine(self, rnet: Network, areas: SummedAreas, boxes: np.ndarray, image_inds: np.ndarray,
                sizes: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Stage 2: R-Net on every candidate of every image in one batch, thresholded, NMS per image,
        boxes calibrated and squared."""
        if not len(boxes):
            return boxes, image_inds
        crops, ok = _crops(areas, boxes, image_inds, sizes, 24)
        boxes, image_inds = boxes[ok], image_inds[ok]
        reg, probs = rnet(_normalise(crops)) if len(crops) else (np.zeros((0, 4), np.float32),
                                                                 np.zeros((0, 2), np.float32))
        keep = probs[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], probs[keep, 1:2]], axis=1)
        image_inds, reg = image_inds[keep], reg[keep]
        pick = _nms(boxes, image_inds, 0.7)
        boxes, image_inds, reg = boxes[pick], image_inds[pick], reg[pick]
        return _rerec(_bbreg(boxes, reg)), image_inds

    def _output(self, onet: Network, areas: SummedAreas, boxes: np.ndarray, image_inds: np.ndarray,
                sizes: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage 3: O-Net, thresholded, landmarks in pixels, boxes calibrated, "Min" NMS per image:
        (n, 5) boxes with scores, image indices and (n, 5, 2) landmarks."""
        points = np.zeros((0, 5, 2), np.float32)
        if not len(boxes):
            return boxes, image_inds, points
        crops, ok = _crops(areas, boxes, image_inds, sizes, 48)
        boxes, image_inds = boxes[ok], image_inds[ok]
        if len(crops):
            reg, marks, probs = onet(_normalise(crops))
        else:
            reg, marks, probs = (np.zeros((0, n), np.float32) for n in (4, 10, 2))
        keep = probs[:, 1] > self.thresholds[2]
        boxes = np.concatenate([boxes[keep, :4], probs[keep, 1:2]], axis=1)
        image_inds, reg, marks = image_inds[keep], reg[keep], marks[keep]
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack([w * marks[:, :5] + boxes[:, :1] - 1, h * marks[:, 5:10] + boxes[:, 1:2] - 1], axis=2)
        boxes = _bbreg(boxes, reg)
        if len(boxes):
            from facenet_pytorch.models.utils.detect_face import batched_nms_numpy

            pick = batched_nms_numpy(torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]),
                                     torch.from_numpy(image_inds), 0.7, "Min").numpy()
            boxes, image_inds, points = boxes[pick], image_inds[pick], points[pick]
        return boxes, image_inds, points


def _crops(areas: SummedAreas, boxes: np.ndarray, image_inds: np.ndarray, sizes: list[tuple[int, int]],
           side: int) -> tuple[np.ndarray, np.ndarray]:
    """facenet-pytorch's ``pad`` + per-box ``imresample`` for all boxes: the (k, 3, side, side) crops
    and the mask of boxes that have any pixel inside their image (the others are dropped)."""
    heights = np.asarray([s[0] for s in sizes], np.int64)[image_inds]
    widths = np.asarray([s[1] for s in sizes], np.int64)[image_inds]
    corners = np.trunc(boxes[:, :4]).astype(np.int32).astype(np.int64)
    x = np.maximum(corners[:, 0], 1) - 1
    y = np.maximum(corners[:, 1], 1) - 1
    ex = np.minimum(corners[:, 2], widths)
    ey = np.minimum(corners[:, 3], heights)
    ok = (ex > x) & (ey > y) & (x < widths) & (y < heights)
    picked = [v[ok] for v in (image_inds, y, ey, x, ex)]
    crops = np.empty((len(picked[0]), 3, side, side), np.float32)
    for i in range(0, len(crops), CROP_CHUNK):
        image_index, y0, y1, x0, x1 = (v[i:i + CROP_CHUNK] for v in picked)
        areas.crops(image_index, y0, y1, x0, x1, side, out=crops[i:i + CROP_CHUNK])
    return crops, ok


def _pnet_candidates(reg: np.ndarray, probs: np.ndarray, members: list[tuple[int, int, float]],
                     threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """facenet-pytorch's ``generateBoundingBox`` for a batch of levels of one size: P-Net's offsets
    ``reg`` (k, 4, h, w) and face probabilities ``probs`` (k, h, w) of levels ``members`` (image index,
    level, scale) -> (m, 9) float32 boxes ``[x1, y1, x2, y2, score, dx1, dy1, dx2, dy2]``, their image
    indices and their (image, level) groups (int64), in facenet-pytorch's order."""
    member, y, x = np.nonzero(probs >= threshold)
    index, level, scale = (np.asarray(column)[member] for column in zip(*members, strict=True))
    cells = np.stack([x, y], axis=1).astype(np.float32)
    # facenet-pytorch divides a float32 tensor by a Python float: float32 arithmetic, as here.
    scale = scale.astype(np.float32)[:, None]
    boxes = np.concatenate([np.floor((2 * cells + 1) / scale), np.floor((2 * cells + 12) / scale),
                            probs[member, y, x][:, None], reg[member, :, y, x]], axis=1)
    return boxes.astype(np.float32, copy=False), index.astype(np.int64), (index * 64 + level).astype(np.int64)


def _nms(boxes: np.ndarray, groups: np.ndarray, threshold: float) -> np.ndarray:
    """torchvision's ``batched_nms`` (as facenet-pytorch calls it) on boxes ``[x1, y1, x2, y2, score, ...]``:
    the indices kept, highest score first."""
    kept: np.ndarray = batched_nms(torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]),
                                   torch.from_numpy(groups), threshold).numpy()
    return kept


def _bbreg(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """facenet-pytorch's ``bbreg``: boxes (n, 5) moved by the regression offsets (n, 4)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.copy()
    out[:, :4] = boxes[:, :4] + reg[:, :4] * np.stack([w, h, w, h], axis=1)
    return out


def _rerec(boxes: np.ndarray) -> np.ndarray:
    """facenet-pytorch's ``rerec``: boxes (n, 5) made square about their centres."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out

