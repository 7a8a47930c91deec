"""Private mode's files: the page's scripts, ONNX Runtime Web and the face models, served by the app itself.

Every file is served under a content-hashed URL with a year-long immutable cache header, so a new model,
new weights or a new script get a new URL and an unchanged one is never fetched twice (the page keeps the
large files in the browser's Cache API, which, unlike the HTTP cache, keeps files of tens of MB). The
manifest (``private/manifest.json``, never cached) names the current URLs and the detector's settings.

The models are made from the app's own networks (:mod:`lookalike.faces.browser`) in a background thread,
so the app answers at once; until they are ready the manifest says so and the page searches on the server.

:class:`PrivateMiddleware` serves all of it, and adds the headers that make the page cross-origin isolated
(where the browser opens the app directly, not inside another site's frame): wasm then runs on more than
one thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.faces.browser import BrowserModel, browser_models, detection_settings
from webapp.gradio_internals import blocks_of

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
"""The page's scripts (``private/``) and the vendored ONNX Runtime Web (``ort/``)."""
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
"""The wasm-only build of ONNX Runtime Web: its loader, the wasm's glue and the wasm itself."""
ORT_VERSION = (STATIC / "ort" / "VERSION").read_text().strip()
PREFIX = "/private/"
IMMUTABLE = "public, max-age=31536000, immutable"
ISOLATION_HEADERS = [(b"cross-origin-opener-policy", b"same-origin"),
                     (b"cross-origin-embedder-policy", b"credentialless")]
"""``credentialless`` rather than ``require-corp``: cross-origin resources the page loads without
credentials (fonts) still load, and the page is isolated all the same."""
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
         ".onnx": "application/octet-stream"}


def _static_files() -> dict[str, Path]:
    """The static files by their path under the bundle's URL (``page.js``, ``ort/ort.wasm.min.mjs``)."""
    files = {path.name: path for path in sorted((STATIC / "private").glob("*.js"))}
    files.update({f"ort/{name}": STATIC / "ort" / name for name in ORT_FILES})
    return files


def _bundle_hash(files: dict[str, Path]) -> str:
    """A hash of the page's scripts and of ONNX Runtime's files. The latter count by their SHA256SUMS (a test
    holds the files to it), so that no start-up reads the 14 MB wasm to hash it again."""
    digest = hashlib.sha256((STATIC / "ort" / "SHA256SUMS").read_bytes())
    for name, path in sorted(files.items()):
        if not name.startswith("ort/"):
            digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


STATIC_FILES = _static_files()
BUNDLE = _bundle_hash(STATIC_FILES)
"""The hash in the scripts' URLs: any change to any of them makes new URLs for all."""


@dataclass(frozen=True)
class Asset:
    """One file to serve: its bytes or path, type and cache header."""

    content_type: str
    cache: str
    path: Path | None = None
    data: bytes | None = None


class PrivateAssets:
    """The files of private mode for one face pipeline; the models are made by :meth:`start`.

    ``models``: a callable that makes the browser's models (:func:`lookalike.faces.browser.browser_models`
    of the pipeline); ``settings``: the detector's (:func:`lookalike.faces.browser.detection_settings`).
    """

    def __init__(self, models: Callable[[], dict[str, BrowserModel]], settings: dict[str, Any]):
        self._make = models
        self.settings = settings
        self.state = "preparing"
        self.models: dict[str, BrowserModel] = {}
        self._ready = threading.Event()

    @classmethod
    def for_pipeline(cls, pipeline: Any) -> PrivateAssets | None:
        """The assets of ``pipeline``'s networks, or None where private mode cannot run them (a pipeline
        without the fast detector)."""
        if getattr(pipeline.detector, "fast", None) is None:
            return None
        return cls(lambda: browser_models(pipeline), detection_settings(pipeline))

    def start(self) -> PrivateAssets:
        """Make the models in a background thread (exporting them takes seconds); returns self."""
        threading.Thread(target=self._prepare, name="private-models", daemon=True).start()
        return self

    def _prepare(self) -> None:
        try:
            self.models = self._make()
            self.state = "ready"
            log.info("private mode's models are ready (%.1f MB)", self.model_bytes() / 1e6)
        except Exception as exc:  # noqa: BLE001 - private mode is then off; server mode still answers
            self.state = "failed"
            log.error("private mode is off: its models could not be made (%s: %s)", type(exc).__name__, exc)
        finally:
            self._ready.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the models are made or failed; True when ready."""
        self._ready.wait(timeout)
        return self.state == "ready"

    def model_bytes(self) -> int:
        return sum(model.size for model in self.models.values())

    def manifest(self) -> dict[str, Any]:
        """What the page needs: the state, the scripts' and models' URLs (relative to the app's root), their
        sizes, and the detector's settings."""
        ort = {name.split("/", 1)[1]: f"private/{BUNDLE}/{name}" for name in STATIC_FILES if name.startswith("ort/")}
        out: dict[str, Any] = {"state": self.state, "ort_version": ORT_VERSION, "ort": ort,
                               "wasm_bytes": STATIC_FILES["ort/ort-wasm-simd-threaded.wasm"].stat().st_size,
                               "detector": self.settings}
        if self.state == "ready":
            out["models"] = {key: {"url": _model_url(model), "bytes": model.size, "sha256": model.sha256}
                             for key, model in self.models.items()}
            out["model_bytes"] = self.model_bytes()
        return out

    def asset(self, path: str) -> Asset | None:
        """The file at ``path`` (the part after ``/private/``), or None."""
        if path == "manifest.json":
            return Asset("application/json", "no-store", data=json.dumps(self.manifest()).encode())
        return static_asset(path) or self._model_asset(path)

    def _model_asset(self, path: str) -> Asset | None:
        for model in self.models.values():
            if path == _model_url(model)[len("private/"):]:
                return Asset(TYPES[".onnx"], IMMUTABLE, path=model.path, data=model.data)
        return None


def static_asset(path: str) -> Asset | None:
    """A script or ONNX Runtime file at ``<bundle>/<name>``; None for another bundle or name (an old URL:
    the page that asks for it reloads the manifest)."""
    bundle, _, name = path.partition("/")
    file = STATIC_FILES.get(name) if bundle == BUNDLE else None
    return Asset(TYPES.get(file.suffix, "application/octet-stream"), IMMUTABLE, path=file) if file else None


def _model_url(model: BrowserModel) -> str:
    return f"private/models/{model.sha256[:16]}/{model.name}.onnx"


class PrivateMiddleware:
    """ASGI middleware: serves ``/private/...`` and, with ``isolate``, adds COOP and COEP headers to every
    response. ``assets(scope)`` gives the app's :class:`PrivateAssets` (default: those :func:`attach` kept with
    the app's Blocks); without them the manifest says private mode is off."""

    def __init__(self, app, assets: Callable[[dict], PrivateAssets | None] | None = None, isolate: bool = True):
        self.app = app
        self.assets = assets or _assets_of_app
        self.isolate = isolate

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        at = path.find(PREFIX)
        if at >= 0 and scope["method"] in ("GET", "HEAD"):
            return await self._serve(scope, receive, send, path[at + len(PREFIX):])
        if not self.isolate:
            return await self.app(scope, receive, send)

        async def isolated_send(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *ISOLATION_HEADERS]}
            await send(message)

        return await self.app(scope, receive, isolated_send)

    async def _serve(self, scope, receive, send, path: str) -> None:
        from starlette.responses import FileResponse, Response

        assets = self.assets(scope)
        if assets is None:
            asset = (Asset("application/json", "no-store", data=b'{"state": "off"}') if path == "manifest.json"
                     else static_asset(path))
        else:
            asset = assets.asset(path)
        headers = {"cache-control": asset.cache if asset else "no-store",
                   "cross-origin-resource-policy": "same-origin"}
        if self.isolate:
            headers.update((k.decode(), v.decode()) for k, v in ISOLATION_HEADERS)
        if asset is None:
            response: Response = Response(b"not found", 404, headers, "text/plain")
        elif asset.data is not None:
            response = Response(asset.data, 200, headers, asset.content_type)
        else:  # streamed from disk (a model is tens of MB)
            response = FileResponse(asset.path, headers=headers, media_type=asset.content_type)  # type: ignore[arg-type]
        await response(scope, receive, send)


def attach(blocks: Any, assets: PrivateAssets | None) -> None:
    """Keep ``assets`` with the app's Blocks, where :class:`PrivateMiddleware` finds them."""
    blocks.private_assets = assets


def assets_of(blocks: Any) -> PrivateAssets | None:
    """The assets :func:`attach` kept with ``blocks`` (None: private mode is off there)."""
    return getattr(blocks, "private_assets", None)


def _assets_of_app(scope: dict) -> PrivateAssets | None:
    """The assets of the Blocks that Gradio's app serves."""
    return assets_of(blocks_of(scope))
