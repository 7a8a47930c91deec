"""Every behaviour of Gradio this app relies on beyond its public API, one named function each.

Gradio is pinned (requirements.txt, the README's front matter). Each function says which behaviour it relies
on, and ``tests/test_gradio_internals.py`` runs each against the installed Gradio, so an upgrade that changes
one fails there first, by name. No other module of the app reaches past Gradio's public API
(``tests/test_gradio_internals.py`` checks that too).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

import gradio as gr

UPLOAD_ROUTE = "/gradio_api/upload"
"""Gradio's upload route (a POST of multipart files; answers the stored paths as a JSON list)."""
QUEUE_JOIN_ROUTE = "/gradio_api/queue/join"
"""Where the page and gradio_client join the queue: a JSON body naming the function by ``fn_index``."""
MCP_ROUTE = "/gradio_api/mcp"
"""Gradio's MCP server (JSON-RPC; a tool call is ``{"method": "tools/call"}``)."""
MCP_CALL_HEADER = (b"x-gradio-user", b"mcp")
"""The header Gradio's MCP server sends on the queue join it makes for each tool call."""
QUEUE_ANALYTICS = {"GRADIO_ANALYTICS_CACHE_FREQUENCY": "1000", "GRADIO_ANALYTICS_MAX_EVENTS": "1000"}
"""Gradio's queue keeps its last GRADIO_ANALYTICS_MAX_EVENTS events (10,000) and, after every
GRADIO_ANALYTICS_CACHE_FREQUENCY events (1), rebuilds a pandas table of all of them for its monitoring page,
which this app does not serve: a cost per call that grows with the calls served. These keep 1,000 and
rebuild once per 1,000 (bench/RESULTS.md, "Private mode"); the environment may set others."""


def call_route(api_name: str) -> tuple[str, str]:
    """The REST routes that call the public function ``api_name`` (``POST`` then the event stream's ``GET``)."""
    return f"/gradio_api/call/{api_name}", f"/gradio_api/call/v2/{api_name}"


def pass_raw_upload(component: gr.Image) -> None:
    """Make ``component`` hand its handler the raw upload (a path, or bytes of a ``data:`` URL), undecoded.

    Relies on: Gradio calls the component instance's ``preprocess`` on each event's input (its own for
    ``gr.Image`` opens the file with PIL before any handler runs, so a file that is not an image would fail
    with Gradio's generic error; our decoder says what is wrong instead). Set on the instance: subclassing a
    component makes Gradio write a ``.pyi`` beside the module."""
    component.preprocess = _raw_upload  # type: ignore[method-assign]


def _raw_upload(payload: Any) -> Any:
    if payload is None:
        return None
    url = getattr(payload, "url", None)
    if url and url.startswith("data:"):
        return base64.b64decode(url.split(",", 1)[1]) if "," in url else b""
    return payload.path


def forget_session(demo: gr.Blocks, request: gr.Request | None) -> None:
    """Drop the session Gradio made for one API call, once the call is done.

    Relies on: each REST or MCP call gets a new session (``request.session_hash``) in ``demo.state_holder``,
    holding a copy of every component's configuration, and Gradio keeps up to 10,000 of them, so memory
    would grow with every call. The page's own sessions are left alone."""
    holder = getattr(demo, "state_holder", None)
    session = getattr(request, "session_hash", None)
    if holder is None or session is None:
        return
    with holder.lock:
        holder.session_data.pop(session, None)
        holder.time_last_used.pop(session, None)


def event_data(evt: gr.EventData | None) -> Any:
    """The data a gr.HTML script passed to ``trigger(event, data)``.

    Relies on: Gradio hands it to the handler as the ``EventData``'s ``_data`` (the public ``gr.EventData``
    has no other field for a custom event's payload)."""
    return getattr(evt, "_data", None)


def keep_queue_analytics_small() -> None:
    """Set :data:`QUEUE_ANALYTICS` unless the environment sets them; call before ``demo.queue()``.

    Relies on: Gradio's queue reads these variables when it is made."""
    for name, value in QUEUE_ANALYTICS.items():
        os.environ.setdefault(name, value)


def blocks_of(scope: dict) -> gr.Blocks | None:
    """The Blocks a launched app serves, from an ASGI request's scope (None for another app).

    Relies on: Gradio's FastAPI app is the scope's ``app`` and has ``get_blocks()``."""
    getter = getattr(scope.get("app"), "get_blocks", None)
    try:
        return getter() if getter else None
    except Exception:  # noqa: BLE001 - an app without blocks: nothing to look up
        return None


def api_function(blocks: gr.Blocks | None, api_name: str) -> Callable | None:
    """The Python function behind the public endpoint ``api_name``, or None.

    Relies on: ``blocks.fns`` maps each event's index to a block function with ``api_name`` and ``fn``."""
    if blocks is None:
        return None
    found = next((fn for fn in blocks.fns.values() if fn.api_name == api_name), None)
    return found.fn if found is not None else None


def joined_api_name(blocks: gr.Blocks | None, join: Any) -> str | None:
    """The API name of the function a queue join calls (``join``: the join's JSON body), or None.

    Relies on: a queue join names its function by its index in ``blocks.fns``, as the body's ``fn_index``."""
    fn_index = join.get("fn_index") if isinstance(join, dict) else None
    if blocks is None or not isinstance(fn_index, int):
        return None
    fn = blocks.fns.get(fn_index)
    return fn.api_name if fn is not None else None


def says_mcp(scope: dict) -> bool:
    """True when a queue join was made by Gradio's MCP server for a tool call (:data:`MCP_CALL_HEADER`)."""
    return MCP_CALL_HEADER in scope.get("headers", [])


def upload_folder() -> str:
    """Where Gradio writes uploads (``GRADIO_TEMP_DIR``, else the system's temporary folder)."""
    from gradio.utils import get_upload_folder

    return str(get_upload_folder())
