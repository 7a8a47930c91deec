"""Errors as the offline phase reports them: one line, never a secret."""

from __future__ import annotations

import os

from lookalike.errors import LookalikeError
from lookalike.redaction import redact

SECRET_VARIABLES = ("QDRANT_API_KEY", "LOOKALIKE_QDRANT_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def one_line(exc: BaseException) -> str:
    """The error's message for the operator (a :class:`~lookalike.errors.LookalikeError`'s ``detail``) on one
    line, with the value of any secret variable and any password in a URL blanked out."""
    text = " ".join((exc.detail if isinstance(exc, LookalikeError) else str(exc)).split()) or type(exc).__name__
    for name in SECRET_VARIABLES:
        secret = os.environ.get(name)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return redact(text)
