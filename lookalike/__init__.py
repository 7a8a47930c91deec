"""lookalike: find the celebrities a face resembles.

The core library, importable without Gradio: settings, image decoding, the face pipeline
(MTCNN + FaceNet), the Qdrant store and the search that ties them together.
"""

from lookalike.errors import (
    EmptyIndexError,
    ImageTooLargeError,
    LookalikeError,
    ModelMismatchError,
    NoFaceError,
    NotAnImageError,
    StoreUnavailableError,
    WeightsMissingError,
)
from lookalike.settings import Settings

__all__ = [
    "EmptyIndexError",
    "ImageTooLargeError",
    "LookalikeError",
    "ModelMismatchError",
    "NoFaceError",
    "NotAnImageError",
    "Settings",
    "StoreUnavailableError",
    "WeightsMissingError",
]
