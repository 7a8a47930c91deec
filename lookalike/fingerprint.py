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

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.model}/{self.weights} (weights {self.weights_sha256[:12]}, pipeline v{self.pipeline})"
