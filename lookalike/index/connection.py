"""Where the face store lives and how its engine is opened (:meth:`lookalike.settings.Settings.store_config`
reads it from the environment).

Without a server URL the store is the embedded edge engine (``qdrant-edge-py``) in a folder of this
machine; with one it is that Qdrant server or Cloud (qdrant-client). The adapters are imported only when
chosen, so a process loads one engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from lookalike.errors import StoreUnavailableError
from lookalike.index.storage.port import EngineLockedError, StoragePort
from lookalike.redaction import without_credentials


@dataclass(frozen=True)
class StoreConfig:
    """Where the face store lives: the Qdrant server at ``url``, or without one the embedded edge store.

    Attributes:
        alias: the alias readers use.
        embedded_path: folder of the embedded store (used without ``url``).
        url: Qdrant server or Cloud URL; None or blank: the embedded store.
        api_key: the server's API key, a ``SecretStr`` so that it never shows in repr, str, logs or messages.
        timeout_s: timeout of one server request, seconds.
    """

    alias: str
    embedded_path: Path
    url: str | None = field(default=None, repr=False)  # may hold user:password; messages use ``where``
    api_key: SecretStr | None = None
    timeout_s: float = 10.0

    @property
    def embedded(self) -> bool:
        """True when no server URL is set and the store lives in ``embedded_path``."""
        return not self.url

    @property
    def where(self) -> str:
        """The store in words, for messages: its folder, or the server URL without any user:password part."""
        if self.embedded:
            return f"the embedded store at {self.embedded_path}"
        return f"Qdrant at {without_credentials(self.url or '')}"


def open_engine(config: StoreConfig) -> StoragePort:
    """The engine ``config`` names: the edge engine in ``embedded_path`` (made when missing), or a client of
    the server at ``url`` (nothing is sent until the first call).

    Raises:
        StoreUnavailableError: the embedded folder is locked by another process or unusable.
    """
    if config.url:  # not embedded
        from lookalike.index.storage.qdrant import QdrantEngine

        api_key = config.api_key.get_secret_value() if config.api_key else None
        return QdrantEngine.server(config.url, api_key, config.timeout_s)
    from lookalike.index.storage.edge import EdgeEngine

    path = config.embedded_path
    try:
        path.mkdir(parents=True, exist_ok=True)
        return EdgeEngine(path)
    except EngineLockedError:
        raise StoreUnavailableError(
            "The index is busy right now (it may be being rebuilt); please try again in a few minutes.",
            detail=f"The embedded Qdrant store at {path} is in use by another process (stop the app "
            "before indexing, or set QDRANT_URL to use a Qdrant server)."
        ) from None
    except OSError as exc:
        raise StoreUnavailableError(
            "The app cannot search right now; please come back later.",
            detail=f"The embedded Qdrant store at {path} cannot be opened ({exc.strerror or 'not writable'}); "
            "set LOOKALIKE_DATA_DIR to a writable folder."
        ) from None
