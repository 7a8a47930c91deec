"""Public traffic: one ASGI middleware in front of Gradio's routes, and the register of uploads it keeps.

- **Uploads are counted, not shared blindly.** Gradio stores an upload under the SHA-256 of its bytes
  and its file name, so two clients sending the same photo get the same path. :data:`UPLOADS` counts
  the uploads answered with each path; a search releases its own, and the file is deleted only when no
  upload of it is left unsearched. A release that comes while an upload's body has been read but its
  path not yet counted (Gradio may be renaming a new copy onto that path) waits for that count.
- **Uploads over the limit are refused** from their ``Content-Length`` before Gradio reads a byte; one
  sent without it is cut off by Gradio's own ``max_file_size`` at the same limit. Both answer 413 with a
  sentence and ``reason: upload_too_large``.
- **REST calls that leave out optional inputs get their defaults** (those of the API function's
  signature); a call without the photo is told so (``reason: missing_input``).
- **Fair use**: a client (its address, read through ``proxy_hops`` trusted proxies) that sends more than
  ``calls_per_minute`` API or MCP tool calls in a minute is answered ``reason: rate_limited`` (HTTP 429,
  or an MCP tool error) until its oldest call is a minute old. The page's own events are not counted.
"""

from __future__ import annotations

import collections
import functools
import inspect
import json
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from webapp.gradio_internals import (
    MCP_ROUTE,
    QUEUE_JOIN_ROUTE,
    UPLOAD_ROUTE,
    api_function,
    blocks_of,
    call_route,
    joined_api_name,
    says_mcp,
    upload_folder,
)
from webapp.options import option_names
from webapp.private import PrivateMiddleware
from webapp.settings import AppSettings

API_NAME = "lookalike"
VECTOR_API_NAME = "lookalike_vectors"
API_NAMES = (API_NAME, VECTOR_API_NAME)
"""The public APIs: each call is counted against the rate limit and gets its optional inputs' defaults."""
MULTIPART_SLACK = 64 * 1024
"""Bytes of a multipart request beside the file itself (boundaries, part headers) that the
``Content-Length`` check allows; Gradio's own check then holds the file to the exact limit."""
MAX_JSON_BODY = 1024 * 1024
"""Call bodies read to fill in defaults or to find the function called; larger ones pass untouched."""
MAX_TRACKED_CLIENTS = 10_000


# -- uploads ---------------------------------------------------------------------------------------


class UploadRegister:
    """How many answered uploads of each path are still to be searched, and when a file may go."""

    def __init__(self, max_paths: int = 10_000):
        self._lock = threading.Lock()
        self._pending: collections.Counter[str] = collections.Counter()
        self._landing = 0  # uploads whose body is read but whose path is not counted yet
        self._deferred: set[str] = set()
        self._max_paths = max_paths

    def landing(self) -> None:
        """An upload's body has been read: Gradio may now write its file onto a path in use."""
        with self._lock:
            self._landing += 1

    def landed(self, paths: list[str]) -> None:
        """The upload that called :meth:`landing` is answered with ``paths`` (none when it failed)."""
        with self._lock:
            for path in paths:
                self._pending[_key(path)] += 1
            self._landing = max(0, self._landing - 1)
            if self._landing == 0:
                for key in list(self._deferred):
                    if not self._pending[key]:
                        _delete(key)
                self._deferred.clear()
            if len(self._pending) > self._max_paths:  # uploads never searched: their files are swept by Gradio
                for key in [k for k in self._pending if not os.path.exists(k)]:
                    del self._pending[key]

    def release(self, path: str | os.PathLike) -> None:
        """A search is done with its upload: delete the file unless another upload of it is waiting."""
        key = _key(path)
        with self._lock:
            if self._pending[key] > 0:
                self._pending[key] -= 1
            if self._pending[key]:
                return
            del self._pending[key]
            if self._landing:
                self._deferred.add(key)
            else:
                _delete(key)

    def pending(self, path: str | os.PathLike) -> int:
        with self._lock:
            return self._pending.get(_key(path), 0)


def _key(path: str | os.PathLike) -> str:
    return str(Path(path).resolve())


def _delete(path: str) -> None:
    """The file and its folder when that is left empty (Gradio makes one folder per upload hash)."""
    try:
        file = Path(path)
        file.unlink(missing_ok=True)
        if file.parent != Path(upload_folder()).resolve() and not any(file.parent.iterdir()):
            file.parent.rmdir()
    except OSError:
        pass


UPLOADS = UploadRegister()
"""The process's register: Gradio's upload folder is one per process too."""


# -- clients and their rate --------------------------------------------------------------------------


def client_address(scope: dict, proxy_hops: int) -> str:
    """The caller's address: the entry of ``X-Forwarded-For`` that the nearest of ``proxy_hops`` trusted
    proxies appended (the last with one proxy; entries further left are the client's own word), or the
    connection's peer without proxies or without the header."""
    if proxy_hops > 0:
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for":
                hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
                if hops:
                    return hops[max(0, len(hops) - proxy_hops)]
    client = scope.get("client")
    return client[0] if client else "unknown"


class RateLimiter:
    """At most ``per_minute`` calls per client in any 60 seconds (a sliding window of call times)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._calls: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        self._credits: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._lock = threading.Lock()

    def allow(self, client: str) -> float:
        """0 when ``client`` may call now (the call is counted), else the seconds until it may."""
        now = self._clock()
        with self._lock:
            calls = self._calls.pop(client, None) or collections.deque()
            while calls and calls[0] <= now - 60:
                calls.popleft()
            self._calls[client] = calls  # most recent last: the least recent client is dropped first
            if len(self._calls) > MAX_TRACKED_CLIENTS:
                self._calls.popitem(last=False)
            if len(calls) >= self.per_minute:
                return max(0.001, calls[0] + 60 - now)
            calls.append(now)
            return 0.0

    def credit(self, client: str) -> None:
        """``client``'s next call that :meth:`use_credit` asks about is already counted."""
        with self._lock:
            self._credits[client] = self._credits.pop(client, 0) + 1
            if len(self._credits) > MAX_TRACKED_CLIENTS:
                self._credits.popitem(last=False)

    def use_credit(self, client: str) -> bool:
        with self._lock:
            if self._credits.get(client, 0) <= 0:
                return False
            self._credits[client] -= 1
            return True


# -- the middleware ----------------------------------------------------------------------------------


class TrafficMiddleware:
    """ASGI middleware for a launched Gradio app; see the module's docstring."""

    def __init__(self, app, max_upload_bytes: float = math.inf, calls_per_minute: int = 0,
                 proxy_hops: int = 0, uploads: UploadRegister = UPLOADS):
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.limiter = RateLimiter(calls_per_minute) if calls_per_minute > 0 else None
        self.proxy_hops = proxy_hops
        self.uploads = uploads

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path.endswith(UPLOAD_ROUTE):
            return await self._upload(scope, receive, send)
        called = _called_api(path)
        if called is not None:
            return await self._rest_call(scope, receive, send, called)
        if path.endswith(QUEUE_JOIN_ROUTE) or path.rstrip("/").endswith(MCP_ROUTE):
            return await self._maybe_counted(scope, receive, send)
        return await self.app(scope, receive, send)

    # -- uploads

    async def _upload(self, scope, receive, send):
        length = _content_length(scope)
        if length is not None and length > self.max_upload_bytes + MULTIPART_SLACK:
            return await _json(send, 413, self._too_large())
        landing = False

        async def counted_receive():
            nonlocal landing
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False) and not landing:
                landing = True
                self.uploads.landing()
            return message

        start: dict = {}
        body = bytearray()

        async def held_send(message):  # the answer is held until its paths are counted
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        paths: list[str] = []
        try:
            await self.app(scope, counted_receive, held_send)
            if start.get("status") == 200:
                try:
                    paths = [str(p) for p in json.loads(bytes(body))]
                except (ValueError, TypeError):
                    paths = []
        finally:
            if landing:
                self.uploads.landed(paths)
        if start.get("status") == 413:
            return await _json(send, 413, self._too_large())
        if not start:  # the app sent nothing (the client went away)
            return
        await send(start)
        await send({"type": "http.response.body", "body": bytes(body)})

    def _too_large(self) -> dict:
        return {"error": f"The photo is larger than the {_megabytes(self.max_upload_bytes)} upload limit: "
                         "send a smaller one (a phone photo is usually 2-6 MB).", "reason": "upload_too_large"}

    # -- calls

    async def _rest_call(self, scope, receive, send, api_name: str):
        body, receive = await _read_body(receive)
        refused = self._rate(scope)
        if refused:
            return await _json(send, 429, refused, {"retry-after": str(math.ceil(refused["retry_after_s"]))})
        try:
            payload = json.loads(body) if body is not None else None
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("data"), list):
            data = payload["data"]
            if not data or data[0] in (None, "", {}):
                return await _json(send, 422, {"error": _missing_input(api_name), "reason": "missing_input"})
            defaults = _api_defaults(scope, api_name)
            if defaults is not None and len(data) < len(defaults):
                payload["data"] = data + defaults[len(data):]
                body = json.dumps(payload).encode()
                receive = _replay(body, scope)
        return await self.app(scope, receive, send)

    async def _maybe_counted(self, scope, receive, send):
        if self.limiter is None:
            return await self.app(scope, receive, send)
        body, receive = await _read_body(receive)
        try:
            payload = json.loads(body) if body is not None else None
        except ValueError:
            payload = None
        client = client_address(scope, self.proxy_hops)
        if scope["path"].endswith(QUEUE_JOIN_ROUTE):
            # Gradio's MCP server runs each tool call through its own client, with the tool call's headers:
            # a join that says so is free once per tool call counted for that client (a forged one is not).
            counted = (joined_api_name(blocks_of(scope), payload) in API_NAMES
                       and not (says_mcp(scope) and self.limiter.use_credit(client)))
        else:  # MCP: JSON-RPC; only tool calls are counted (not initialize or tools/list)
            counted = isinstance(payload, dict) and payload.get("method") == "tools/call"
        refused = self._rate(scope) if counted else None
        if counted and refused is None and not scope["path"].endswith(QUEUE_JOIN_ROUTE):
            self.limiter.credit(client)
        if refused is None:
            return await self.app(scope, receive, send)
        if scope["path"].endswith(QUEUE_JOIN_ROUTE):
            return await _json(send, 429, refused, {"retry-after": str(math.ceil(refused["retry_after_s"]))})
        text = json.dumps({"error": refused["error"], "reason": refused["reason"]})
        return await _json(send, 200, {"jsonrpc": "2.0", "id": payload.get("id"), "result": {
            "content": [{"type": "text", "text": text}], "isError": True}})

    def _rate(self, scope) -> dict | None:
        if self.limiter is None:
            return None
        wait = self.limiter.allow(client_address(scope, self.proxy_hops))
        if not wait:
            return None
        return {"error": f"Too many calls: this API answers {self.limiter.per_minute} calls a minute per client. "
                         f"Slow down and try again in {math.ceil(wait)} s.",
                "reason": "rate_limited", "retry_after_s": round(wait, 1)}


# -- helpers -----------------------------------------------------------------------------------------


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_body(receive) -> tuple[bytes | None, Callable]:
    """The request's body (None when it is larger than :data:`MAX_JSON_BODY`) and a ``receive`` that
    hands the whole body on to the app."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if not message.get("more_body", False) or size > MAX_JSON_BODY:
            break
    complete = not message.get("more_body", False) if message["type"] == "http.request" else True
    body = b"".join(chunks)
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return (body if complete else None), replay


def _replay(body: bytes, scope) -> Callable:
    """A ``receive`` for a rewritten body (the Content-Length header is fixed to match)."""
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-length"] + [
        (b"content-length", str(len(body)).encode())]
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _called_api(path: str) -> str | None:
    """The public API a REST call's path names (one of its :func:`call_route`), or None."""
    tail = path.rstrip("/")
    return next((name for name in API_NAMES if tail.endswith(call_route(name))), None)


def _missing_input(api_name: str) -> str:
    """What a REST call that sent no inputs is told: how to send the first, and which inputs are optional."""
    optional = option_names()
    named = f"({', '.join(optional[:-1])} and {optional[-1]} are optional)."
    if api_name == VECTOR_API_NAME:
        return ('The faces are missing: send {"data": [[{"box": [x1, y1, x2, y2], "vector": [512 numbers]}]]} '
                + named)
    return (f"The photo is missing: upload it to {UPLOAD_ROUTE}, then send "
            f'{{"data": [{{"path": "<the path it returned>", "meta": {{"_type": "gradio.FileData"}}}}]}} {named}')


def _api_defaults(scope, api_name: str) -> list | None:
    """The API function's inputs as JSON defaults, in order (the first input has none: None in its place)."""
    function = api_function(blocks_of(scope), api_name)
    return list(_defaults(function)) if function is not None else None


@functools.lru_cache(maxsize=16)
def _defaults(function: Callable) -> tuple:
    """``function``'s positional parameters' defaults (None where there is none), once per function."""
    return tuple(None if p.default is inspect.Parameter.empty else p.default
                 for p in inspect.signature(function).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "request")


async def _json(send, status: int, content: dict, headers: dict | None = None) -> None:
    body = json.dumps(content).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _megabytes(size: float) -> str:
    return f"{size / 2**20:g} MB"


def launch_options(settings: AppSettings | None = None) -> dict:
    """What :meth:`gr.Blocks.launch` needs for the above: Gradio's own size limit (which the page also
    checks before it uploads) and the middleware, behind private mode's (:mod:`webapp.private`: its files
    and the cross-origin isolation headers). Without ``settings`` (the tests' and benchmarks' apps):
    the default upload limit and no rate limit."""
    from starlette.middleware import Middleware

    upload_mb = settings.max_upload_mb if settings else AppSettings.model_fields["max_upload_mb"].default
    limit = int(upload_mb * 2**20)
    isolate = settings.cross_origin_isolation if settings else True
    return {"max_file_size": limit, "app_kwargs": {"middleware": [
        Middleware(PrivateMiddleware, isolate=isolate),
        Middleware(TrafficMiddleware, max_upload_bytes=limit,
                   calls_per_minute=settings.api_calls_per_minute if settings else 0,
                   proxy_hops=settings.proxy_hops if settings else 0)]}}
