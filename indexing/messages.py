"""Errors as the offline phase reports them: one line, never a secret."""

from __future__ import annotations

from lookalike.errors import LookalikeError
from lookalike.redaction import redact


def one_line(exc: BaseException) -> str:
    """The error's message for the operator (a :class:`~lookalike.errors.LookalikeError`'s ``detail``) on one
    line, with any secret blanked out (:func:`lookalike.redaction.redact`)."""
    return redact(" ".join((exc.detail if isinstance(exc, LookalikeError) else str(exc)).split())
                  or type(exc).__name__)
