"""Area resampling by summed-area tables: every pyramid level and candidate crop of MTCNN's input.

``interpolate(mode="area")`` averages each output pixel's bin of input pixels; a summed-area table gives
any bin's sum from four look-ups, exactly (the table holds integer sums). One buffer holds the tables of
all images of a call, so crops of different images share one gather.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import numpy as np


class SummedAreas:
    """Summed-area tables of a list of (H, W, 3) uint8 images (numpy, exact integer sums).

    :meth:`levels` and :meth:`crops` average pixel rectangles onto the same bins as
    ``torch.nn.functional.interpolate(mode="area")`` (adaptive average pooling): each bin's sum is exact
    (four look-ups in the table), its mean equal to torch's up to float32 rounding.
    """

    def __init__(self, images: Sequence[np.ndarray]):
        # All tables live in one (total rows, 3) buffer, so that crops of every image are one gather.
        shapes = [(int(image.shape[0]) + 1, int(image.shape[1]) + 1) for image in images]
        sizes = [h * w for h, w in shapes]
        dtype = np.result_type(np.int32, *(table_dtype(h - 1, w - 1) for h, w in shapes))
        self.buffer = np.empty((sum(sizes), 3), dtype)
        self.offsets = np.cumsum([0] + sizes[:-1]).astype(np.int64)
        self.widths = np.asarray([w for _, w in shapes], np.int64)
        self.tables = [self.buffer[offset:offset + h * w].reshape(h, w, 3)
                       for offset, (h, w) in zip(self.offsets, shapes, strict=True)]
        for image, table in zip(images, self.tables, strict=True):
            summed_area_table(image, table)

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
        level: np.ndarray = (sums.astype(np.float32) / area).transpose(2, 0, 1)
        return level

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
    """The (H+1, W+1, 3) integer table of an (H, W, 3) uint8 image: ``t[y, x, :]`` sums ``image[:y, :x, :]``
    per channel (int32 unless the image is too large for it), written into ``table`` when given.

    OpenCV's ``integral`` computes it; int64 tables come from its float64 sums, which are exact far beyond
    any photo's (2**53).
    """
    h, w = image.shape[:2]
    dtype = np.dtype(table.dtype if table is not None else table_dtype(h, w))
    image = np.ascontiguousarray(image, np.uint8)
    if dtype == np.int32:
        return cv2.integral(image, table, sdepth=cv2.CV_32S)  # fills ``table`` in place when given
    sums = cv2.integral(image, sdepth=cv2.CV_64F)
    if table is None:
        return sums.astype(np.int64)
    table[...] = sums
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

