"""What never shows in a repr, a log or a message: the ``user:password`` part of a URL, the password
of the ``QDRANT_URL`` this process was given, and the values of the secret variables (API key, tokens).

:func:`without_credentials` is for one URL (the settings' repr, :attr:`StoreConfig.where
<lookalike.index.connection.StoreConfig.where>`); :func:`redact` for free text, such as an error's
message (the indexer's one-line errors).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

URL_VARIABLES = ("QDRANT_URL", "LOOKALIKE_QDRANT_URL")
"""The variables whose URL may hold a password (:class:`lookalike.settings.Settings` reads either)."""
SECRET_VARIABLES = ("QDRANT_API_KEY", "LOOKALIKE_QDRANT_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
"""The variables whose whole value is a secret."""

HIDDEN = "***"
"""What stands where a secret was."""

_MIN_SECRET = 4
"""Shorter passwords are not blanked out of free text: they would blank ordinary words."""

_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/?#]*@")
"""A URL's ``user:password@`` (or ``token@``) part after its scheme, up to its last ``@`` (as ``urlsplit`` reads it)."""


def without_credentials(url: str) -> str:
    """``url`` without its ``user:password@`` part (``https://me:pw@host:6333/p`` -> ``https://host:6333/p``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def url_passwords(environ: Mapping[str, str] | None = None) -> set[str]:
    """The passwords (as written and decoded) of the URLs in :data:`URL_VARIABLES`, long enough to blank out."""
    found = set()
    for name in URL_VARIABLES:
        value = (os.environ if environ is None else environ).get(name)
        try:
            password = urlsplit(value).password if value else None
        except ValueError:  # not a URL (a bad port, say): nothing to find in it
            continue
        found |= {p for p in (password, unquote(password or "")) if p and len(p) >= _MIN_SECRET}
    return found


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every URL's ``user:password@`` part dropped, and the password of ``QDRANT_URL`` and the
    value of each of :data:`SECRET_VARIABLES` (in ``environ``, default the process's environment) blanked
    out wherever else they appear."""
    environ = os.environ if environ is None else environ
    secrets = url_passwords(environ) | {
        value for name in SECRET_VARIABLES if len(value := environ.get(name) or "") >= _MIN_SECRET}
    text = _CREDENTIALS.sub(r"\g<scheme>", text)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text
