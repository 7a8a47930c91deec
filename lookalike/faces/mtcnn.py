"""MTCNN's three networks as inference models, and the record of what detection finds.

P-, R- and O-Net are facenet-pytorch's (their weights ship in its wheel); each runs in the runtime
:mod:`lookalike.faces.runtime` chooses for it, so the stages of :mod:`lookalike.faces.fast_mtcnn` call them as numpy
in, numpy out.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lookalike.faces.runtime import InferenceModel


@dataclass(frozen=True)
class Detection:
    """The faces MTCNN found in one image, in pixels of that image.

    Attributes:
        boxes: (n, 4) float32 ``[x1, y1, x2, y2]``.
        probabilities: (n,) float32 in 0..1.
        landmarks: (n, 5, 2) float32 ``(x, y)`` of eyes, nose and mouth corners.
    """

    boxes: np.ndarray
    probabilities: np.ndarray
    landmarks: np.ndarray

    @classmethod
    def empty(cls) -> Detection:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.boxes)

    def largest(self) -> Detection:
        """Only the face with the largest box (ties: the most probable); empty stays empty."""
        if len(self) <= 1:
            return self
        areas = (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])
        best = max(range(len(self)), key=lambda i: (areas[i], self.probabilities[i]))
        return Detection(self.boxes[[best]], self.probabilities[[best]], self.landmarks[[best]])


class MtcnnNetwork(InferenceModel):
    """One of MTCNN's networks, copied to the CPU (the copy leaves the caller's MTCNN where it is)."""

    def __init__(self, net: torch.nn.Module, **options: Any):
        super().__init__(copy.deepcopy(net).cpu().eval(), **options)


class PNet(MtcnnNetwork):
    """(n, 3, h, w) pyramid levels -> box offsets (n, 4, h', w') and face probabilities (n, 2, h', w')."""

    name = "mtcnn-pnet"
    output_names = ("reg", "prob")
    example_shape = (1, 3, 24, 24)
    dynamic_axes = {"x": {0: "n", 2: "h", 3: "w"}}
    warmup_shape = (1, 3, 144, 192)  # about the first pyramid level (145x193) of a 640x480 photo, min face 40
    static_shapes = 64  # the levels of about 8 recurring photo sizes (a 640x480 photo's pyramid has 8)


class RNet(MtcnnNetwork):
    """(n, 3, 24, 24) candidate crops -> box offsets (n, 4) and face probabilities (n, 2)."""

    name = "mtcnn-rnet"
    output_names = ("reg", "prob")
    example_shape = (1, 3, 24, 24)
    dynamic_axes = {"x": {0: "n"}}
    warmup_shape = (32, 3, 24, 24)


class ONet(MtcnnNetwork):
    """(n, 3, 48, 48) candidate crops -> box offsets (n, 4), landmarks (n, 10), face probabilities (n, 2)."""

    name = "mtcnn-onet"
    output_names = ("reg", "points", "prob")
    example_shape = (1, 3, 48, 48)
    dynamic_axes = {"x": {0: "n"}}
    warmup_shape = (8, 3, 48, 48)
