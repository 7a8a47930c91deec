"""Likeness: the 0-100 % a visitor reads, one documented mapping of FaceNet's cosine.

A raw cosine reads badly as a percentage (a striking look-alike of another person rarely passes 0.7), so
the likeness places a cosine between the model's different-person and same-person scores:

    likeness(c) = 100 * (s(c) - s(-1)) / (s(1) - s(-1)),    s(c) = 1 / (1 + exp(-(c - center) / width))

with ``center`` halfway between the two medians and ``width`` such that they read about 10 % and 90 %.
:data:`DEFAULT` is fitted from published scores of the real vggface2 weights; :func:`fit_likeness` fits
other scores (``python -m evaluation`` prints a fit; ``LOOKALIKE_LIKENESS_CENTER`` and
``LOOKALIKE_LIKENESS_WIDTH`` apply one). Sources and readings: ``docs/decisions/likeness.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MEDIAN_LIKENESS = (10.0, 90.0)
"""The likeness (%) the medians of the different-person and same-person scores read before the stretch."""

_INFER_IPYNB_DISTANCES = (1.344806, 0.781201, 1.425579, 1.448495, 1.256238, 0.922126, 0.891145, 1.366423,
                          1.416447, 0.985438)
PUBLISHED_DIFFERENT: tuple[float, ...] = tuple(round(1 - d * d / 2, 4) for d in _INFER_IPYNB_DISTANCES)
"""Different-person cosines of the real vggface2 FaceNet: the 10 pairs of facenet-pytorch's ``examples/infer.ipynb``."""


def _deepface_cosine(confidence: float, w: float = -5.868251768046832, b: float = 0.8674084834913275,
                     normalizer: float = 1.384316) -> float:
    """The cosine at which DeepFace's Facenet512 logistic fit gives ``confidence`` (%, before its rescaling)."""
    z = math.log(confidence / (100 - confidence))
    return 1 - normalizer * (z - b) / w


PUBLISHED_SAME: tuple[float, ...] = (round(_deepface_cosine(40.700922463435305), 4),
                                     round(_deepface_cosine(62.19495119465813), 4))
"""Farthest and closest same-person cosines behind DeepFace's Facenet512 fit (0.707, 0.913)."""


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass(frozen=True)
class LikenessMapping:
    """The logistic likeness curve: ``center`` (cosine read as ~50 %) and ``width`` (cosine per e-fold).

    Attributes:
        center: cosine halfway between the median different-person and same-person scores.
        width: ``(same median - different median) / (2 ln 9)``: the medians read ~10 % and ~90 %.
        same_median / different_median: the medians it was fitted from (for reports).
        same_count / different_count: how many scores each median came from.
    """

    center: float
    width: float
    same_median: float | None = None
    different_median: float | None = None
    same_count: int = 0
    different_count: int = 0

    def __call__(self, cosine: float) -> float:
        """The likeness of ``cosine`` (-1..1) in percent, 0..100, increasing with the cosine."""
        c = min(1.0, max(-1.0, float(cosine)))
        low, high = _sigmoid((-1 - self.center) / self.width), _sigmoid((1 - self.center) / self.width)
        return min(100.0, max(0.0, 100.0 * (_sigmoid((c - self.center) / self.width) - low) / (high - low)))

    def cosine_for(self, likeness: float) -> float:
        """The cosine that reads ``likeness`` % (the inverse; for documenting thresholds)."""
        low, high = _sigmoid((-1 - self.center) / self.width), _sigmoid((1 - self.center) / self.width)
        raw = min(1 - 1e-12, max(1e-12, low + likeness / 100.0 * (high - low)))
        return self.center + self.width * math.log(raw / (1 - raw))

    def as_json(self) -> dict[str, float | int | dict[str, float] | None]:
        return {"center": round(self.center, 4), "width": round(self.width, 4),
                "same_median": self.same_median, "different_median": self.different_median,
                "same_count": self.same_count, "different_count": self.different_count,
                "reads": {f"{c:.2f}": round(self(c), 1) for c in (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)}}


def fit_likeness(same_scores: Sequence[float], different_scores: Sequence[float]) -> LikenessMapping:
    """The likeness curve from cosines of same-person pairs and of different-person pairs.

    Raises:
        ValueError: a list is empty, or the same-person median is not above the different-person one.
    """
    if len(same_scores) == 0 or len(different_scores) == 0:
        raise ValueError("fit_likeness needs same-person and different-person scores")
    same, different = float(np.median(same_scores)), float(np.median(different_scores))
    if same <= different:
        raise ValueError(f"same-person median {same:.3f} is not above the different-person median {different:.3f}")
    low, high = MEDIAN_LIKENESS
    spread = math.log(high / (100 - high)) - math.log(low / (100 - low))  # 2 ln 9 for 10 % / 90 %
    return LikenessMapping(center=(same + different) / 2, width=(same - different) / spread,
                           same_median=round(same, 4), different_median=round(different, 4),
                           same_count=len(same_scores), different_count=len(different_scores))


DEFAULT = fit_likeness(PUBLISHED_SAME, PUBLISHED_DIFFERENT)
"""The mapping fitted from :data:`PUBLISHED_SAME` and :data:`PUBLISHED_DIFFERENT`."""


def mapping_for(center: float | None = None, width: float | None = None) -> LikenessMapping:
    """:data:`DEFAULT`, or a mapping with the given center and/or width (the settings' override)."""
    if center is None and width is None:
        return DEFAULT
    return LikenessMapping(center=DEFAULT.center if center is None else center,
                           width=DEFAULT.width if width is None else width)
