"""What made a set of face vectors, recorded in every collection (no torch import: the store uses it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

PIPELINE_VERSION = "1"
"""Bumped whenever detection, cropping or preprocessing changes the vectors."""

EMBEDDING_SIZE = 512
"""FaceNet's output: unit vectors of 512 float32."""


@dataclass(frozen=True)
class ModelFingerprint:
    """What built a set of vectors; two sets compare only when these are equal."""

    model: str
    weights: str
    weights_sha256: str
    pipeline: str
    detection: str = ""
    """The detection settings that change which faces are found and how they are cropped
    (see :func:`detection_setting`); empty where none are known (a bare weights fingerprint)."""

    def as_dict(self) -> dict[str, str]:
        """The fields as stored in a collection (``detection`` only when set)."""
        fields = asdict(self)
        if not fields["detection"]:
            del fields["detection"]
        return fields

    def describe(self) -> str:
        detection = f", {self.detection}" if self.detection else ""
        return f"{self.model}/{self.weights} (weights {self.weights_sha256[:12]}, pipeline v{self.pipeline}{detection})"


def detection_setting(min_face_size: int, detect_max_side: int) -> str:
    """The fingerprint's ``detection`` text for these settings, e.g. ``"min face 40 px, max side 1280 px"``.

    The detector's kind (``fast`` or ``facenet``) is not part of it: their boxes agree closely enough
    (``tests/test_detection.py``) for either to query an index the other built."""
    return f"min face {int(min_face_size)} px, max side {int(detect_max_side)} px"
