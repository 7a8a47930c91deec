"""facenet-pytorch's MTCNN, stage for stage, without its per-box Python loops.

The same three networks with their shipped weights (``MTCNN().pnet/rnet/onet``), the same image
pyramid, thresholds, non-maximum suppression and box calibration as
``facenet_pytorch.models.utils.detect_face.detect_face``. What differs is how pixels are resampled:
facenet-pytorch calls ``interpolate(mode="area")`` once per pyramid level and once per candidate box;
here one summed-area table per image serves every pyramid level and every candidate crop of every
image in a single gather (area resampling is a box average, so four look-ups give each output pixel,
exactly: the table holds integer sums). Images of different sizes go through in one call; pyramid
levels of equal size (images of equal size) share one P-Net pass; R-Net and O-Net see every candidate
of every image in one batch. The networks run in onnxruntime when it is installed (exported once, in
well under a second, and cached beside FaceNet's export), else in torch.

Boxes equal facenet-pytorch's up to float rounding (``tests/test_detection.py`` holds them to it).
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torchvision.ops import batched_nms

log = logging.getLogger(__name__)

CROP_CHUNK = 256
"""Candidate boxes resampled per gather (bounds its memory to about 60 MB at 48x48)."""

Network = Callable[[np.ndarray], tuple[torch.Tensor, ...]]
"""A network: (n, 3, h, w) float32 numpy in, its torch outputs out."""


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
        self.tables: list[np.ndarray] = []
        offsets, widths, heights, offset = [], [], [], 0
        for image in images:
            h, w, _ = image.shape
            dtype = np.int32 if h * w * 255 < 2**31 else np.int64
            table = np.zeros((3, h + 1, w + 1), dtype)
            inner = table[:, 1:, 1:]
            np.cumsum(image.transpose(2, 0, 1), axis=1, dtype=dtype, out=inner)
            np.cumsum(inner, axis=2, out=inner)
            self.tables.append(table)
            offsets.append(offset)
            heights.append(h + 1)
            widths.append(w + 1)
            offset += table.size
        self.flat = (np.concatenate([t.reshape(-1).astype(np.int64, copy=False) for t in self.tables])
                     if self.tables else np.zeros(0, np.int64))
        self.offsets = np.asarray(offsets, np.int64)
        self.plane = np.asarray(heights, np.int64) * np.asarray(widths, np.int64)
        self.row = np.asarray(widths, np.int64)

    def levels(self, indices: Sequence[int], out_h: int, out_w: int) -> np.ndarray:
        """Whole images ``indices`` averaged onto ``out_h x out_w``: (k, 3, out_h, out_w) float32,
        pixel values 0..255."""
        shapes = [self.tables[i].shape for i in indices]
        if len(set(shapes)) == 1:
            return self._levels(indices, out_h, out_w)
        out = np.empty((len(indices), 3, out_h, out_w), np.float32)
        for shape in set(shapes):
            same = [k for k, s in enumerate(shapes) if s == shape]
            out[same] = self._levels([indices[k] for k in same], out_h, out_w)
        return out

    def _levels(self, indices: Sequence[int], out_h: int, out_w: int) -> np.ndarray:
        tables = np.stack([self.tables[i] for i in indices])  # (k, 3, H+1, W+1), one size
        h, w = tables.shape[2] - 1, tables.shape[3] - 1
        rows, cols = _bin_edges(np.zeros(1, np.int64), np.full(1, h), out_h)[0], \
            _bin_edges(np.zeros(1, np.int64), np.full(1, w), out_w)[0]
        picked = tables[:, :, np.concatenate([rows[:, 0], rows[:, 1]])]
        band = picked[:, :, out_h:] - picked[:, :, :out_h]  # (k, 3, out_h, W+1) row-bin sums
        picked = band[..., np.concatenate([cols[:, 0], cols[:, 1]])]
        sums = picked[..., out_w:] - picked[..., :out_w]
        area = np.outer(rows[:, 1] - rows[:, 0], cols[:, 1] - cols[:, 0])
        return (sums / area).astype(np.float32)

    def crops(self, image_index: np.ndarray, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray,
              x1: np.ndarray, side: int) -> np.ndarray:
        """Rows ``y0:y1`` and columns ``x0:x1`` (int64 arrays of shape (k,), non-empty, inside the
        image) of image ``image_index`` each averaged onto ``side x side``: (k, 3, side, side) float32."""
        rows = _bin_edges(y0, y1, side)  # (k, side, 2)
        cols = _bin_edges(x0, x1, side)
        base = (self.offsets[image_index][:, None, None, None]
                + np.arange(3)[None, :, None, None] * self.plane[image_index][:, None, None, None])
        r = np.concatenate([rows[:, :, 0], rows[:, :, 1]], axis=1) * self.row[image_index][:, None]
        c = np.concatenate([cols[:, :, 0], cols[:, :, 1]], axis=1)
        grid = self.flat[base + r[:, None, :, None] + c[:, None, None, :]]  # (k, 3, 2s, 2s)
        sums = (grid[:, :, side:, side:] - grid[:, :, :side, side:]
                - grid[:, :, side:, :side] + grid[:, :, :side, :side])
        area = ((rows[:, :, 1] - rows[:, :, 0])[:, :, None] * (cols[:, :, 1] - cols[:, :, 0])[:, None, :])
        return (sums / area[:, None]).astype(np.float32)


def _bin_edges(start: np.ndarray, stop: np.ndarray, out: int) -> np.ndarray:
    """Adaptive average pooling's bins of ``start:stop`` onto ``out`` cells: (k, out, 2) int64
    ``[first, last + 1)`` in absolute pixels (PyTorch's ``floor(i*L/out)``, ``ceil((i+1)*L/out)``)."""
    length = (np.asarray(stop, np.int64) - start).reshape(-1, 1)
    i = np.arange(out, dtype=np.int64).reshape(1, -1)
    first = (i * length) // out
    last = -((-(i + 1) * length) // out)  # ceil
    return np.stack([first, last], axis=2) + np.asarray(start, np.int64).reshape(-1, 1, 1)


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """facenet-pytorch's P/R/O-Net input scaling, in float32 as it does."""
    return (pixels - np.float32(127.5)) * np.float32(0.0078125)


# -- networks ------------------------------------------------------------------------------------------


def _session_options(threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # No busy-waiting threads (see lookalike.onnx_embedder): they would steal the CPU from the rest.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


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


def onnx_networks(models: dict[str, bytes | Path], threads: int | None = None) -> tuple[Network, Network, Network]:
    """onnxruntime sessions of the exported P-, R- and O-Net (bytes or files) as numpy-in, torch-out
    callables. Raises ImportError when onnxruntime is missing."""
    import onnxruntime as ort

    options = _session_options(threads)

    def session(model: bytes | Path) -> Network:
        source = model if isinstance(model, bytes) else str(model)
        run = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"]).run

        def call(x: np.ndarray) -> tuple[torch.Tensor, ...]:
            return tuple(torch.from_numpy(o) for o in run(None, {"x": np.ascontiguousarray(x)}))

        return call

    return session(models["pnet"]), session(models["rnet"]), session(models["onet"])


# -- the detector --------------------------------------------------------------------------------------


class FastMTCNN:
    """facenet-pytorch's MTCNN detection (``MTCNN.detect``) for many images of any sizes at once."""

    def __init__(self, mtcnn: "facenet_pytorch.MTCNN", runtime: str = "onnx",  # noqa: F821
                 cache_dir: Path | None = None, wait: bool = True):
        """Detect as ``mtcnn`` does: its networks (weights) and its ``min_face_size``, ``thresholds``
        and ``factor``.

        Args:
            runtime: ``"onnx"`` (onnxruntime on the CPU; torch when it is missing) or ``"torch"``
                (on the CPU too: the resampling runs in numpy).
            cache_dir: where the ONNX exports are kept (``mtcnn-<net>-<weights digest>.onnx``);
                ``None`` exports in memory.
            wait: with ``wait=False`` and no cached export, start in torch and switch to
                onnxruntime once a background thread has exported and cached the networks (the
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
        if runtime != "onnx":
            return
        files = cached_exports(cache_dir, weights_digest(self.pnet, self.rnet, self.onet)) if cache_dir else None
        if wait or (files and all(f.exists() for f in files.values())):
            self._use_onnx(files)
        else:
            threading.Thread(target=self._use_onnx, args=(files,), name="mtcnn-onnx-export", daemon=True).start()

    def _use_onnx(self, files: dict[str, Path] | None) -> None:
        """Switch the networks to onnxruntime: cached files, else a fresh export (cached when ``files``)."""
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
            self.networks = onnx_networks(models)
            self.runtime = "onnx"
        except Exception as exc:  # onnxruntime missing or the export failed: only speed is lost
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
        for (lh, lw), members in levels.items():
            index = torch.tensor([m[0] for m in members])
            reg, probs = pnet(_normalise(areas.levels([m[0] for m in members], lh, lw)))
            scales = torch.tensor([m[2] for m in members], dtype=torch.float64)
            groups = torch.tensor([m[0] * 64 + m[1] for m in members])
            found.append(_pnet_candidates(reg, probs[:, 1], scales, groups, index, self.thresholds[0]))
        if not found:
            return [_empty() for _ in images]
        boxes = torch.cat([f[0] for f in found])
        image_inds = torch.cat([f[1] for f in found])
        group_ids = torch.cat([f[2] for f in found])
        pick = batched_nms(boxes[:, :4], boxes[:, 4], group_ids, 0.5)  # within each scale and image
        boxes, image_inds = boxes[pick], image_inds[pick]
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)  # within each image
        boxes, image_inds = boxes[pick], image_inds[pick]
        regw = boxes[:, 2] - boxes[:, 0]
        regh = boxes[:, 3] - boxes[:, 1]
        boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                             boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh,
                             boxes[:, 4]], dim=1)
        boxes = _rerec(boxes)

        # Stage 2: R-Net on every candidate of every image in one batch.
        if len(boxes):
            crops, ok = self._crops(areas, boxes, image_inds, sizes, 24)
            boxes, image_inds = boxes[ok], image_inds[ok]
            reg, probs = rnet(_normalise(crops)) if len(crops) else (torch.zeros(0, 4), torch.zeros(0, 2))
            score = probs[:, 1]
            keep = score > self.thresholds[1]
            boxes = torch.cat([boxes[keep, :4], score[keep].unsqueeze(1)], dim=1)
            image_inds, reg = image_inds[keep], reg[keep]
            pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
            boxes, image_inds, reg = boxes[pick], image_inds[pick], reg[pick]
            boxes = _rerec(_bbreg(boxes, reg))

        # Stage 3: O-Net, landmarks, calibration and "Min" NMS.
        points = torch.zeros(0, 5, 2)
        if len(boxes):
            crops, ok = self._crops(areas, boxes, image_inds, sizes, 48)
            boxes, image_inds = boxes[ok], image_inds[ok]
            if len(crops):
                reg, marks, probs = onet(_normalise(crops))
            else:
                reg, marks, probs = torch.zeros(0, 4), torch.zeros(0, 10), torch.zeros(0, 2)
            score = probs[:, 1]
            keep = score > self.thresholds[2]
            boxes = torch.cat([boxes[keep, :4], score[keep].unsqueeze(1)], dim=1)
            image_inds, reg, marks = image_inds[keep], reg[keep], marks[keep]
            w = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(1)
            h = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(1)
            points = torch.stack([w * marks[:, :5] + boxes[:, :1] - 1, h * marks[:, 5:10] + boxes[:, 1:2] - 1],
                                 dim=2)
            boxes = _bbreg(boxes, reg)
            if len(boxes):
                from facenet_pytorch.models.utils.detect_face import batched_nms_numpy

                pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
                boxes, image_inds, points = boxes[pick], image_inds[pick], points[pick]

        boxes_np, points_np, inds_np = boxes.numpy(), points.numpy(), image_inds.numpy()
        out = []
        for i in range(len(images)):
            mine = inds_np == i
            out.append(RawDetection(boxes_np[mine, :4].astype(np.float32), boxes_np[mine, 4].astype(np.float32),
                                    points_np[mine].astype(np.float32)))
        return out

    def _crops(self, areas: SummedAreas, boxes: torch.Tensor, image_inds: torch.Tensor,
               sizes: list[tuple[int, int]], side: int) -> tuple[torch.Tensor, torch.Tensor]:
        """facenet-pytorch's ``pad`` + per-box ``imresample`` for all boxes: the (k, 3, side, side)
        crops and the mask of boxes that have any pixel inside their image (the others are dropped)."""
        inds = image_inds.numpy()
        heights = np.asarray([s[0] for s in sizes], np.int64)[inds]
        widths = np.asarray([s[1] for s in sizes], np.int64)[inds]
        corners = boxes[:, :4].trunc().to(torch.int32).numpy().astype(np.int64)
        x = np.maximum(corners[:, 0], 1) - 1
        y = np.maximum(corners[:, 1], 1) - 1
        ex = np.minimum(corners[:, 2], widths)
        ey = np.minimum(corners[:, 3], heights)
        ok = (ex > x) & (ey > y) & (x < widths) & (y < heights)
        picked = [v[ok] for v in (inds, y, ey, x, ex)]
        # In chunks of CROP_CHUNK boxes: the gather's index grid takes 4 * 3 * side^2 int64 per box.
        crops = np.concatenate([areas.crops(*(v[i:i + CROP_CHUNK] for v in picked), side)
                                for i in range(0, max(1, len(picked[0])), CROP_CHUNK)])
        return crops, torch.from_numpy(ok)


def _pnet_candidates(reg: torch.Tensor, probs: torch.Tensor, scales: torch.Tensor, groups: torch.Tensor,
                     image_index: torch.Tensor, threshold: float) -> tuple[torch.Tensor, ...]:
    """facenet-pytorch's ``generateBoundingBox`` for a batch of levels: (m, 9) boxes
    ``[x1, y1, x2, y2, score, dx1, dy1, dx2, dy2]``, their image indices and (image, level) groups."""
    mask = probs >= threshold
    where = mask.nonzero()
    member = where[:, 0]
    score = probs[mask]
    offsets = reg.permute(1, 0, 2, 3)[:, mask].permute(1, 0)
    cells = where[:, 1:].to(reg.dtype).flip(1)
    scale = scales[member]
    # facenet-pytorch divides a float32 tensor by a Python float: the same rounding here.
    q1 = ((2 * cells + 1) / scale.to(reg.dtype).unsqueeze(1)).floor()
    q2 = ((2 * cells + 12) / scale.to(reg.dtype).unsqueeze(1)).floor()
    boxes = torch.cat([q1, q2, score.unsqueeze(1), offsets], dim=1)
    return boxes, image_index[member], groups[member]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _torch_network(net: torch.nn.Module) -> Network:
    def call(x: np.ndarray) -> tuple[torch.Tensor, ...]:
        return net(torch.from_numpy(x))

    return call


def _bbreg(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.clone()
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def _rerec(boxes: torch.Tensor) -> torch.Tensor:
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.maximum(w, h)
    out = boxes.clone()
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _empty() -> RawDetection:
    return RawDetection(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))
