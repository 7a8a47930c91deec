"""Faces sent as vectors instead of a photo (private mode, and apps that embed faces themselves): each a
box and a 512-d FaceNet vector, checked before it is searched.

The checks refuse what no photo run through this pipeline could give, each with its own reason: a vector
of another length, with NaN or infinity, or far from unit length (FaceNet's vectors are normalised, so
another model's, or a corrupted one, shows); more faces than a search takes; a box that is empty, not
finite or larger than any photo the app accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lookalike.errors import BadQueryFacesError, NoFaceError
from lookalike.faces import Face
from lookalike.fingerprint import EMBEDDING_SIZE

MAX_FACES = 32
"""Faces one call may search: a group photo's worth."""
MAX_SIDE = 65_535
"""No photo is longer than this many pixels on a side (JPEG's and PNG's limits in practice)."""
NORM_TOLERANCE = 0.01
"""How far a vector's length may be from 1: float16 storage or a JSON round trip move it by far less."""
NO_LANDMARKS = np.full((5, 2), np.nan, np.float32)
NO_FACES_SENT = "No faces were sent: a photo without a face has nothing to search."


def query_faces(faces: Any, max_faces: int = MAX_FACES) -> list[Face]:
    """``faces`` (a list of ``{"box": [x1, y1, x2, y2], "vector": [512 numbers], "probability": p}``,
    probability optional, default 1) as :class:`~lookalike.faces.Face` objects with unit vectors, in the
    order given.

    Raises:
        NoFaceError: an empty list (a photo without a face).
        BadQueryFacesError: ``bad_faces`` (not a list of such objects), ``too_many_faces``,
            ``bad_vector`` or ``bad_box``, with a sentence that names the face.
    """
    if isinstance(faces, (list, tuple)) and not faces:
        raise NoFaceError(NO_FACES_SENT)
    if not isinstance(faces, (list, tuple)):
        raise BadQueryFacesError('Send the faces as a non-empty list of {"box": [x1, y1, x2, y2], "vector": '
                                 f"[{EMBEDDING_SIZE} numbers]}} objects.")
    if len(faces) > max_faces:
        raise BadQueryFacesError(f"{len(faces)} faces were sent; one search takes at most {max_faces}.",
                                 "too_many_faces")
    return [_face(number, face) for number, face in enumerate(faces, start=1)]


def _face(number: int, face: Any) -> Face:
    if not isinstance(face, dict):
        raise BadQueryFacesError(f'Face {number} is not an object with "box" and "vector".')
    return Face(_box(number, face.get("box")), _probability(number, face.get("probability", 1.0)),
                NO_LANDMARKS, _vector(number, face.get("vector")))


def _numbers(value: Any, length: int) -> np.ndarray | None:
    """``value`` as float64 numbers when it is a list of ``length`` numbers (bools are not numbers)."""
    if not isinstance(value, (list, tuple)) or len(value) != length:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    return np.asarray(value, np.float64)


def _vector(number: int, value: Any) -> np.ndarray:
    vector = _numbers(value, EMBEDDING_SIZE)
    if vector is None:
        got = len(value) if isinstance(value, (list, tuple)) else type(value).__name__
        raise BadQueryFacesError(f"Face {number}'s vector must be {EMBEDDING_SIZE} numbers (got {got}).",
                                 "bad_vector")
    if not np.isfinite(vector).all():
        raise BadQueryFacesError(f"Face {number}'s vector holds NaN or infinity.", "bad_vector")
    norm = float(np.linalg.norm(vector))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise BadQueryFacesError(
            f"Face {number}'s vector has length {norm:.3g}; FaceNet's vectors have length 1 (within "
            f"{NORM_TOLERANCE}): send the model's output as it is.", "bad_vector")
    return (vector / norm).astype(np.float32)


def _box(number: int, value: Any) -> tuple[float, float, float, float]:
    box = _numbers(value, 4)
    if box is None or not np.isfinite(box).all():
        raise BadQueryFacesError(f"Face {number}'s box must be 4 finite numbers [x1, y1, x2, y2] in pixels.",
                                 "bad_box")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1) or max(abs(x1), abs(y1), abs(x2), abs(y2)) > MAX_SIDE:
        raise BadQueryFacesError(
            f"Face {number}'s box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] lies outside any photo: x2 > x1, y2 > y1, "
            f"within {MAX_SIDE} pixels.", "bad_box")
    return x1, y1, x2, y2


def _probability(number: int, value: Any) -> float:
    # NaN fails the range test too.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise BadQueryFacesError(f"Face {number}'s probability must be a number from 0 to 1.", "bad_faces")
    return float(value)


def as_face_list(faces: Sequence[Face]) -> list[dict[str, Any]]:
    """Faces back in the form :func:`query_faces` reads (for clients and tests)."""
    return [{"box": list(f.box), "probability": f.probability, "vector": [float(v) for v in f.vector]}
            for f in faces]
