"""facenet-pytorch's MTCNN, stage for stage, without its per-box Python loops.

The same three networks with their shipped weights (``MTCNN().pnet/rnet/onet``), the same image
pyramid, thresholds, non-maximum suppression and box calibration as
``facenet_pytorch.models.utils.detect_face.detect_face``. What differs is how pixels are resampled:
facenet-pytorch calls ``interpolate(mode="area")`` once per pyramid level and once per candidate box;
here one summed-area table per image serves every pyramid level and every candidate crop of every
image in a single gather (area resampling is a box average, so four look-ups give each output pixel,
exactly: the table holds integer sums). Images of different sizes go through in one call; pyramid
levels of equal size (images of equal size) share one P-Net pass; R-Net and O-Net see every candidate
of every image in one batch. The networks run compiled by OpenVINO in float32 when it is installed
(exported to ONNX once, in well under a second, and cached beside FaceNet's export), else in torch.

``tests/test_detection.py`` holds the result to facenet-pytorch's on every test photo and on rotated and
odd-sized copies: boxes at IoU >= 0.95 for 99 % of faces, probabilities within 0.01, and the same face
count for all but 1 % of photos (the networks' float32 arithmetic in another runtime can tip a candidate
across a threshold).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import itertools
import logging
import os
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torchvision.ops import batched_nms

log = logging.getLogger(__name__)

CROP_CHUNK = 64
"""Candidate boxes resampled per gather (about 15 MB of index grid at 48x48; measured on a batch of 64
LFW photos, 32-128 boxes per gather cropped 10 % faster than 256, whose grid outgrows the caches)."""

PNET_STATIC_SHAPES = 64
"""P-Net input shapes compiled for exactly their size (a 640x480 photo's pyramid has 8 levels)."""

Network = Callable[[np.ndarray], Sequence[np.ndarray]]
"""A network: (n, 3, h, w) float32 in, its outputs (float32 numpy) out."""


@dataclass(frozen=True)
class RawDetection:
    """MTCNN's output for one image: boxes (n, 4) float32, probabilities (n,), landmarks (n, 5, 2)."""

    boxes: np.ndarray
    probabilities: np.ndarray
    landmarks: np.ndarray


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


class SummedAreas:
    """Summed-area tables of a list of (H, W, 3) uint8 images (numpy, exact integer sums).

    :meth:`levels` and :meth:`crops` average pixel rectangles onto grids exactly as
    ``torch.nn.functional.interpolate(mode="area")`` (adaptive average pooling) does: each output
    pixel is the mean of its bin, here four look-ups in the table instead of a sum over the bin.
    """

    def __init__(self, images: Sequence[np.ndarray]):
        # All tables live in one (total rows, 3) buffer, so that crops of every image are one gather.
        shapes = [(int(image.shape[0]) + 1, int(image.shape[1]) + 1) for image in images]
        sizes = [h * w for h, w in shapes]
        dtype = np.result_type(np.int32, *(table_dtype(h - 1, w - 1) for h, w in shapes))
        self.buffer = np.empty((sum(sizes), 3), dtype)
        self.offsets = np.cumsum([0] + sizes[:-1]).astype(np.int64)
        self.widths = np.asarray([w for _, w in shapes], np.int64)
        self.tables: list[np.ndarray] = []
        # Consecutive images of one size (a dataset batch) are summed together: one pass over the rows
        # for all of them instead of one per image.
        start = 0
        for (h, w), run in itertools.groupby(shapes):
            count = len(list(run))
            block = self.buffer[self.offsets[start]:self.offsets[start] + count * h * w].reshape(count, h, w, 3)
            batch = images[start][None] if count == 1 else np.stack(images[start:start + count])
            summed_area_table(batch, block)
            self.tables.extend(block)
            start += count

    def levels(self, indices: Sequence[int], out_h: int, out_w: int) -> np.ndarray:
        """Whole images ``indices`` averaged onto ``out_h x out_w``: (k, 3, out_h, out_w) float32,
        pixel values 0..255."""
        return np.stack([self._level(self.tables[i], out_h, out_w) for i in indices])

    @staticmethod
    def _level(table: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
        rows, cols, area = _level_bins(table.shape[0] - 1, table.shape[1] - 1, out_h, out_w)
        picked = table.take(rows, axis=0)  # (2 out_h, W+1, 3): the bin edges' rows
        band = picked[out_h:] - picked[:out_h]  # (out_h, W+1, 3): the row bins' running sums
        picked = band.take(cols, axis=1)
        sums = picked[:, out_w:] - picked[:, :out_w]  # (out_h, out_w, 3): each bin's sum
        return (sums.astype(np.float32) / area).transpose(2, 0, 1)

    def crops(self, image_index: np.ndarray, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray,
              x1: np.ndarray, side: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``y0:y1`` and columns ``x0:x1`` (int64 arrays of shape (k,), non-empty, inside the
        image) of image ``image_index`` each averaged onto ``side x side``: (k, 3, side, side) float32
        (written into ``out`` when given)."""
        rows = _bin_edges(y0, y1, side)  # (k, side, 2)
        cols = _bin_edges(x0, x1, side)
        r = np.concatenate([rows[:, :, 0], rows[:, :, 1]], axis=1) * self.widths[image_index][:, None]
        c = np.concatenate([cols[:, :, 0], cols[:, :, 1]], axis=1)  # (k, 2 side)
        flat = (self.offsets[image_index][:, None] + r)[:, :, None] + c[:, None, :]  # the bins' corners
        grid = self.buffer.take(flat, axis=0)  # (k, 2 side, 2 side, 3)
        sums = (grid[:, side:, side:] - grid[:, :side, side:] - grid[:, side:, :side] + grid[:, :side, :side])
        area = ((rows[:, :, 1] - rows[:, :, 0])[:, :, None] * (cols[:, :, 1] - cols[:, :, 0])[:, None, :])
        if out is None:
            out = np.empty((len(image_index), 3, side, side), np.float32)
        np.divide(sums.transpose(0, 3, 1, 2), area[:, None].astype(np.float32), out=out, dtype=np.float32)
        return out


def table_dtype(height: int, width: int) -> type:
    """The integer type of a summed-area table of a ``height x width`` uint8 image: int32 while its
    largest sum (255 per pixel) fits, else int64."""
    return np.int32 if height * width * 255 < 2**31 else np.int64


def summed_area_table(image: np.ndarray, table: np.ndarray | None = None) -> np.ndarray:
    """(..., H+1, W+1, 3) integer tables of (..., H, W, 3) uint8 images (one, or a stack of one size):
    ``t[..., y, x, :]`` sums ``image[..., :y, :x, :]`` per channel (int32 unless the image is too large
    for it), written into ``table`` when given."""
    h, w = image.shape[-3:-1]
    if table is None:
        table = np.empty(image.shape[:-3] + (h + 1, w + 1, 3), table_dtype(h, w))
    table[..., 0, :, :] = 0
    table[..., :, 0, :] = 0
    # Down the rows one row at a time: numpy's cumsum along the rows walks the array column by column
    # (measured 2x slower at 640x480); along the columns it is fast.
    for y in range(h):
        np.add(table[..., y, 1:, :], image[..., y, :, :], out=table[..., y + 1, 1:, :])
    np.cumsum(table[..., 1:, 1:, :], axis=-2, out=table[..., 1:, 1:, :])
    return table


@functools.lru_cache(maxsize=256)
def _level_bins(h: int, w: int, out_h: int, out_w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A whole ``h x w`` image's bins onto ``out_h x out_w``: the rows (2 out_h,) and columns (2 out_w,)
    of the bins' edges (first edges, then last edges) and the bins' areas (out_h, out_w, 1) float32."""
    rows = _bin_edges(np.zeros(1, np.int64), np.full(1, h), out_h)[0]
    cols = _bin_edges(np.zeros(1, np.int64), np.full(1, w), out_w)[0]
    area = np.outer(rows[:, 1] - rows[:, 0], cols[:, 1] - cols[:, 0]).astype(np.float32)[:, :, None]
    cached = (rows.T.reshape(-1), cols.T.reshape(-1), area)
    for array in cached:  # shared by every later call: nobody may change them
        array.flags.writeable = False
    return cached


def _bin_edges(start: np.ndarray, stop: np.ndarray, out: int) -> np.ndarray:
    """Adaptive average pooling's bins of ``start:stop`` onto ``out`` cells: (k, out, 2) int64
    ``[first, last + 1)`` in absolute pixels (PyTorch's ``floor(i*L/out)``, ``ceil((i+1)*L/out)``)."""
    length = (np.asarray(stop, np.int64) - start).reshape(-1, 1)
    i = np.arange(out, dtype=np.int64).reshape(1, -1)
    first = (i * length) // out
    last = -((-(i + 1) * length) // out)  # ceil
    return np.stack([first, last], axis=2) + np.asarray(start, np.int64).reshape(-1, 1, 1)


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """facenet-pytorch's P/R/O-Net input scaling ``(x - 127.5) * 0.0078125``, in float32 as it does,
    in place."""
    pixels -= np.float32(127.5)
    pixels *= np.float32(0.0078125)
    return pixels


# -- networks ------------------------------------------------------------------------------------------


_EXAMPLES = {"pnet": ((1, 3, 24, 24), ["reg", "prob"], True), "rnet": ((1, 3, 24, 24), ["reg", "prob"], False),
             "onet": ((1, 3, 48, 48), ["reg", "points", "prob"], False)}


def export_networks(pnet: torch.nn.Module, rnet: torch.nn.Module, onet: torch.nn.Module) -> dict[str, bytes]:
    """The three networks as ONNX models (bytes; well under a second, 2 MB in all)."""
    out = {}
    for name, model in (("pnet", pnet), ("rnet", rnet), ("onet", onet)):
        shape, outputs, spatial = _EXAMPLES[name]
        buffer = io.BytesIO()
        axes = {"x": {0: "n", 2: "h", 3: "w"} if spatial else {0: "n"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(copy.deepcopy(model).cpu().eval(), torch.zeros(shape), buffer, input_names=["x"],
                              output_names=outputs, dynamic_axes=axes, opset_version=17, dynamo=False)
        out[name] = buffer.getvalue()
    return out


def weights_digest(*models: torch.nn.Module) -> str:
    """SHA-256 (16 hex digits) of the networks' weights: names cached exports of exactly these weights."""
    digest = hashlib.sha256()
    for model in models:
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_exports(cache_dir: Path, digest: str) -> dict[str, Path]:
    """Where the exports of weights ``digest`` are cached."""
    return {name: Path(cache_dir) / f"mtcnn-{name}-{digest}.onnx" for name in _EXAMPLES}


def compiled_networks(models: dict[str, bytes | Path], threads: int | None = None) -> tuple[Network, Network, Network]:
    """The exported P-, R- and O-Net (bytes or files) compiled by OpenVINO in float32. Raises ImportError
    when OpenVINO is missing."""
    from lookalike.compiled import CompiledNetwork

    return (CompiledNetwork(models["pnet"], threads=threads, static_shapes=PNET_STATIC_SHAPES),
            CompiledNetwork(models["rnet"], threads=threads),
            CompiledNetwork(models["onet"], threads=threads))


# -- the detector --------------------------------------------------------------------------------------


class FastMTCNN:
    """facenet-pytorch's MTCNN detection (``MTCNN.detect``) for many images of any sizes at once."""

    def __init__(self, mtcnn: "facenet_pytorch.MTCNN", runtime: str = "onnx",  # noqa: F821
                 cache_dir: Path | None = None, wait: bool = True):
        """Detect as ``mtcnn`` does: its networks (weights) and its ``min_face_size``, ``thresholds``
        and ``factor``.

        Args:
            runtime: ``"onnx"`` (the ONNX exports compiled by OpenVINO for the CPU; torch when it
                is missing) or ``"torch"`` (on the CPU too: the resampling runs in numpy).
            cache_dir: where the ONNX exports are kept (``mtcnn-<net>-<weights digest>.onnx``);
                ``None`` exports in memory.
            wait: with ``wait=False`` and no cached export, start in torch and switch to
                OpenVINO once a background thread has exported and cached the networks (the
                app never exports on its start; the indexer, which waits, leaves the files behind).
        """
        self.min_face_size = mtcnn.min_face_size
        self.thresholds = tuple(float(t) for t in mtcnn.thresholds)
        self.factor = mtcnn.factor
        self.pnet, self.rnet, self.onet = (copy.deepcopy(net).cpu().eval()
                                           for net in (mtcnn.pnet, mtcnn.rnet, mtcnn.onet))
        self.networks: tuple[Network, Network, Network] = tuple(  # type: ignore[assignment]
            _torch_network(net) for net in (self.pnet, self.rnet, self.onet))
        self.runtime = "torch"
        self._resampler = ThreadPoolExecutor(1, thread_name_prefix="mtcnn-levels")
        if runtime != "onnx":
            return
        files = cached_exports(cache_dir, weights_digest(self.pnet, self.rnet, self.onet)) if cache_dir else None
        if wait or (files and all(f.exists() for f in files.values())):
            self._use_onnx(files)
        else:
            threading.Thread(target=self._use_onnx, args=(files,), name="mtcnn-onnx-export", daemon=True).start()

    def _use_onnx(self, files: dict[str, Path] | None) -> None:
        """Switch the networks to OpenVINO: cached files, else a fresh export (cached when ``files``)."""
        try:
            if files and all(f.exists() for f in files.values()):
                models: dict[str, bytes | Path] = dict(files)
            else:
                models = dict(export_networks(self.pnet, self.rnet, self.onet))
                if files:
                    try:
                        for name, data in models.items():
                            _write_atomic(files[name], data)
                    except OSError as exc:  # a read-only data folder: the export serves from memory
                        log.debug("MTCNN's ONNX export is not cached (%s)", exc.strerror or type(exc).__name__)
            self.networks = compiled_networks(models)
            self.runtime = "onnx"
        except Exception as exc:  # OpenVINO missing or the export failed: only speed is lost
            log.warning("MTCNN stays in torch (%s: %s)", type(exc).__name__, exc)

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray | torch.Tensor]) -> list[RawDetection]:
        """Faces of each (H, W, 3) uint8 RGB image, as ``MTCNN(...).detect(image, landmarks=True)``
        finds them (its order: P-Net's candidates through R-Net and O-Net; not sorted by size)."""
        pixels = [np.asarray(image, np.uint8) for image in images]
        sizes = [(int(p.shape[0]), int(p.shape[1])) for p in pixels]
        areas = SummedAreas(pixels)
        pnet, rnet, onet = self.networks

        # Stage 1: P-Net over every pyramid level of every image; levels of one size share a pass.
        levels: dict[tuple[int, int], list[tuple[int, int, float]]] = {}
        for index, (h, w) in enumerate(sizes):
            for level, scale in enumerate(pyramid_scales(h, w, self.min_face_size, self.factor)):
                levels.setdefault((int(h * scale + 1), int(w * scale + 1)), []).append((index, level, scale))
        found = []
        def resample(size: tuple[int, int], members: list[tuple[int, int, float]]) -> np.ndarray:
            return _normalise(areas.levels([m[0] for m in members], *size))

        # A second thread resamples the next levels while P-Net runs on this one.
        resampled = self._resampler.map(resample, levels.keys(), levels.values())
        for pixels, members in zip(resampled, levels.values()):
            reg, probs = pnet(pixels)
            found.append(_pnet_candidates(reg, probs[:, 1], members, self.thresholds[0]))
        if not found:
            return [_empty() for _ in images]
        boxes, image_inds, group_ids = (np.concatenate(column) for column in zip(*found))
        pick = _nms(boxes, group_ids, 0.5)  # within each scale and image
        boxes, image_inds = boxes[pick], image_inds[pick]
        pick = _nms(boxes, image_inds, 0.7)  # within each image
        boxes, image_inds = boxes[pick], image_inds[pick]
        regw = boxes[:, 2] - boxes[:, 0]
        regh = boxes[:, 3] - boxes[:, 1]
        boxes = np.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                          boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], axis=1)
        boxes = _rerec(boxes)

        # Stage 2: R-Net on every candidate of every image in one batch.
        if len(boxes):
            crops, ok = self._crops(areas, boxes, image_inds, sizes, 24)
            boxes, image_inds = boxes[ok], image_inds[ok]
            reg, probs = rnet(_normalise(crops)) if len(crops) else (np.zeros((0, 4), np.float32),
                                                                     np.zeros((0, 2), np.float32))
            keep = probs[:, 1] > self.thresholds[1]
            boxes = np.concatenate([boxes[keep, :4], probs[keep, 1:2]], axis=1)
            image_inds, reg = image_inds[keep], reg[keep]
            pick = _nms(boxes, image_inds, 0.7)
            boxes, image_inds, reg = boxes[pick], image_inds[pick], reg[pick]
            boxes = _rerec(_bbreg(boxes, reg))

        # Stage 3: O-Net, landmarks, calibration and "Min" NMS.
        points = np.zeros((0, 5, 2), np.float32)
        if len(boxes):
            crops, ok = self._crops(areas, boxes, image_inds, sizes, 48)
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

        return [RawDetection(boxes[mine, :4], boxes[mine, 4], points[mine])
                for mine in (image_inds == i for i in range(len(images)))]

    def _crops(self, areas: SummedAreas, boxes: np.ndarray, image_inds: np.ndarray,
               sizes: list[tuple[int, int]], side: int) -> tuple[np.ndarray, np.ndarray]:
        """facenet-pytorch's ``pad`` + per-box ``imresample`` for all boxes: the (k, 3, side, side)
        crops and the mask of boxes that have any pixel inside their image (the others are dropped)."""
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
        # In chunks of CROP_CHUNK boxes: the gather's index grid takes 4 * 3 * side^2 int64 per box.
        for i in range(0, len(crops), CROP_CHUNK):
            areas.crops(*(v[i:i + CROP_CHUNK] for v in picked), side, out=crops[i:i + CROP_CHUNK])
        return crops, ok


def _pnet_candidates(reg: np.ndarray, probs: np.ndarray, members: list[tuple[int, int, float]],
                     threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """facenet-pytorch's ``generateBoundingBox`` for a batch of levels of one size: P-Net's offsets
    ``reg`` (k, 4, h, w) and face probabilities ``probs`` (k, h, w) of levels ``members`` (image index,
    level, scale) -> (m, 9) float32 boxes ``[x1, y1, x2, y2, score, dx1, dy1, dx2, dy2]``, their image
    indices and their (image, level) groups (int64), in facenet-pytorch's order."""
    member, y, x = np.nonzero(probs >= threshold)
    index, level, scale = (np.asarray(column)[member] for column in zip(*members))
    cells = np.stack([x, y], axis=1).astype(np.float32)
    # facenet-pytorch divides a float32 tensor by a Python float: float32 arithmetic, as here.
    scale = scale.astype(np.float32)[:, None]
    boxes = np.concatenate([np.floor((2 * cells + 1) / scale), np.floor((2 * cells + 12) / scale),
                            probs[member, y, x][:, None], reg[member, :, y, x]], axis=1)
    return boxes.astype(np.float32, copy=False), index.astype(np.int64), (index * 64 + level).astype(np.int64)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _torch_network(net: torch.nn.Module) -> Network:
    def call(x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(o.numpy() for o in net(torch.from_numpy(x)))

    return call


def _nms(boxes: np.ndarray, groups: np.ndarray, threshold: float) -> np.ndarray:
    """torchvision's ``batched_nms`` (as facenet-pytorch calls it) on boxes ``[x1, y1, x2, y2, score, ...]``:
    the indices kept, highest score first."""
    return batched_nms(torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]), torch.from_numpy(groups),
                       threshold).numpy()


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


def _empty() -> RawDetection:
    return RawDetection(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))
