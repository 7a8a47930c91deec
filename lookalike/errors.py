"""The typed errors of lookalike.

Every error's ``str()`` is one sentence that is safe to show a visitor: it never holds a secret, a
traceback, the bytes of an upload, a server path, the store's address or a setting's name. What the
operator needs (the store, the paths, the variables, the commands) is its ``detail``, for the log and
the indexer's output. The app and the API show ``str()`` as it is; the indexer counts it by its
``reason``.
"""

from __future__ import annotations


class LookalikeError(Exception):
    """Base of every error lookalike raises on purpose.

    ``reason`` is a short stable slug (``"not_an_image"``) for counting and for API clients.
    """

    reason = "error"

    def __init__(self, message: str = "", *, detail: str | None = None):
        super().__init__(message)
        self._detail = detail

    @property
    def detail(self) -> str:
        """The operator's account (never a secret): what failed where and what to do; else ``str()``."""
        return self._detail or str(self)


class NotAnImageError(LookalikeError):
    """The input is empty, not an image, or an image file that cannot be decoded (truncated)."""

    reason = "not_an_image"


class ImageTooLargeError(LookalikeError):
    """The image has more pixels than can be decoded safely (a decompression bomb, say)."""

    reason = "image_too_large"


class NoFaceError(LookalikeError):
    """The image decoded, but no face was found in it."""

    reason = "no_face"


class StoreUnavailableError(LookalikeError):
    """Qdrant cannot be reached, or its embedded folder is held by another process."""

    reason = "store_unavailable"


class EmptyIndexError(LookalikeError):
    """The collection does not exist yet, or holds no faces."""

    reason = "empty_index"


class ModelMismatchError(LookalikeError):
    """The collection was built with other FaceNet weights or another pipeline version."""

    reason = "model_mismatch"


class WeightsMissingError(LookalikeError):
    """The FaceNet weights file is missing and could not be downloaded."""

    reason = "weights_missing"


class BadQueryFacesError(LookalikeError):
    """Faces sent as vectors (private mode, the vector API) that cannot be searched: their reason names
    what is wrong (``bad_faces``, ``bad_vector``, ``bad_box``, ``too_many_faces``)."""

    def __init__(self, message: str, reason: str = "bad_faces"):
        super().__init__(message)
        self.reason = reason


def caused_by(exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
    """True when ``exc``, or an error it was raised from or while handling, is one of ``kinds``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
