"""lookalike: find the celebrities a face resembles.

The core library, importable without Gradio: settings, image decoding, the face pipeline
(MTCNN + FaceNet), the Qdrant store and the search that ties them together. The public API::

    from lookalike import LookalikeFinder, Settings

    finder = LookalikeFinder.from_settings(Settings())
    for face in finder.find("me.jpg").faces:
        print(face.face.box, [(m.name, m.percent) for m in face.matches])

``LookalikeFinder`` and its results (``SearchResult``, ``FaceMatches``, ``Match``) load torch and the
face models, so they are imported on first use: ``import lookalike`` alone stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from lookalike.search import FaceMatches, LookalikeFinder, Match, SearchResult

_FROM_SEARCH = ("FaceMatches", "LookalikeFinder", "Match", "SearchResult")
"""The names :mod:`lookalike.search` lends this package when first asked for."""

__all__ = [
    "EmptyIndexError",
    "FaceMatches",
    "ImageTooLargeError",
    "LookalikeError",
    "LookalikeFinder",
    "Match",
    "ModelMismatchError",
    "NoFaceError",
    "NotAnImageError",
    "SearchResult",
    "Settings",
    "StoreUnavailableError",
    "WeightsMissingError",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_SEARCH:
        from lookalike import search

        return getattr(search, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
