"""Each behaviour of Gradio that webapp.gradio_internals relies on, checked against the installed Gradio on
small apps of its own: after a Gradio upgrade, run this file first. Private mode's custom events are also
driven end to end by tests/test_private_mode.py, and the MCP server's queue joins by
tests/test_traffic.py::test_mcp_tool_calls_are_counted_once_and_told_to_slow_down_over_the_limit.
"""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client.exceptions import AppError

from conftest import ROOT
from support import rest_call, serve
from webapp import gradio_internals as internals

REACHING_PAST = re.compile(r"state_holder|\.fns\b|fn_index|\._data\b|\.preprocess\b|get_blocks|GRADIO_ANALYTICS|"
                           r"/gradio_api/|gradio\.utils|gr\.utils|x-gradio-user")
"""What only webapp/gradio_internals.py may write: Gradio's internal attributes, routes and variables."""


def test_the_photo_component_hands_its_handler_the_raw_upload(tmp_path):
    from gradio_client import Client, handle_file

    with gr.Blocks() as demo:
        raw, plain, out = gr.Image(type="filepath"), gr.Image(type="filepath"), gr.Textbox()
        internals.pass_raw_upload(raw)
        gr.Button().click(lambda path: f"{type(path).__name__}:{Path(path).read_bytes()[:9]!r}", raw, out,
                          api_name="raw")
        gr.Button().click(lambda path: "decoded", plain, out, api_name="plain")
    url = serve(demo)
    try:
        text = tmp_path / "notes.jpg"
        text.write_bytes(b"not a photo at all")
        client = Client(url, verbose=False)
        assert client.predict(handle_file(str(text)), api_name="/raw") == "str:b'not a pho'"
        with pytest.raises(AppError):  # Gradio's own preprocessing fails on it: what the replacement avoids
            client.predict(handle_file(str(text)), api_name="/plain")
    finally:
        demo.close()


def test_forget_session_drops_each_api_calls_session_and_only_that():
    def kept(x: str) -> str:
        return x

    def forgotten(x: str, request: gr.Request | None = None) -> str:
        internals.forget_session(demo, request)
        return x

    with gr.Blocks() as demo:
        gr.api(kept, api_name="kept")
        gr.api(forgotten, api_name="forgotten")
    url = serve(demo)
    try:
        with httpx.Client(timeout=60) as http:
            before = len(demo.state_holder.session_data)
            for _ in range(3):
                assert rest_call(http, url, ["a"], api="forgotten")[1] == "complete"
            after_forgotten = len(demo.state_holder.session_data)
            for _ in range(3):
                assert rest_call(http, url, ["a"], api="kept")[1] == "complete"
            after_kept = len(demo.state_holder.session_data)
    finally:
        demo.close()
    assert after_forgotten == before
    assert after_kept == before + 3  # without it, each call leaves a session behind


def test_routes_blocks_and_function_indexes_are_where_the_middleware_looks():
    from gradio_client import Client
    from starlette.middleware import Middleware

    seen: list[tuple[str, str, bytes, object]] = []

    class Recorder:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return await self.app(scope, receive, send)
            chunks = []

            async def recorded():
                message = await receive()
                chunks.append(message.get("body", b""))
                return message

            await self.app(scope, recorded, send)
            seen.append((scope["method"], scope["path"], b"".join(chunks), internals.blocks_of(scope)))

    def echo(x: str) -> str:
        return x

    with gr.Blocks() as demo:
        gr.api(echo, api_name="echo")
    url = serve(demo, app_kwargs={"middleware": [Middleware(Recorder)]})
    try:
        with httpx.Client(timeout=60) as http:
            assert rest_call(http, url, ["hi"], api="echo")[2] == ["hi"]
            uploaded = http.post(url.rstrip("/") + internals.UPLOAD_ROUTE, files={"files": ("a.txt", b"abc")})
        assert Client(url, verbose=False).predict("there", api_name="/echo") == "there"
    finally:
        demo.close()
    calls = [path for method, path, _, _ in seen if method == "POST" and path.endswith(internals.call_route("echo"))]
    assert calls, [path for _, path, _, _ in seen]
    assert uploaded.status_code == 200 and Path(uploaded.json()[0]).is_relative_to(internals.upload_folder())
    joins = [body for method, path, body, _ in seen if method == "POST" and path.endswith(internals.QUEUE_JOIN_ROUTE)]
    assert joins, [path for _, path, _, _ in seen]
    import json

    assert internals.joined_api_name(demo, json.loads(joins[-1])) == "echo"
    assert internals.api_function(demo, "echo") is echo
    assert all(blocks is demo for _, _, _, blocks in seen)


def test_event_data_is_a_custom_events_payload():
    assert internals.event_data(gr.EventData(None, {"faces": []})) == {"faces": []}
    assert internals.event_data(None) is None


def test_the_queue_reads_the_analytics_variables(monkeypatch):
    for name in internals.QUEUE_ANALYTICS:
        monkeypatch.delenv(name, raising=False)
    internals.keep_queue_analytics_small()
    demo = gr.Blocks()
    demo.queue()
    assert demo._queue.ANALYTICS_MAX_EVENTS == 1000
    assert demo._queue.ANAYLTICS_CACHE_FREQUENCY == 1000  # Gradio's spelling


def reaching_past(paths) -> list[str]:
    """Lines of ``paths`` that touch Gradio's internals (:data:`REACHING_PAST`)."""
    return [f"{path.name}:{n}: {line.strip()}" for path in paths
            for n, line in enumerate(path.read_text().splitlines(), start=1) if REACHING_PAST.search(line)]


def test_no_other_module_reaches_past_gradios_public_api():
    others = [p for p in sorted((ROOT / "webapp").glob("*.py")) if p.name != "gradio_internals.py"]
    assert others and not reaching_past(others), reaching_past(others)


def test_the_scan_finds_a_reach_past_the_public_api(tmp_path):
    module = tmp_path / "page.py"
    module.write_text("holder = demo.state_holder\nok = gr.Image()\n")
    assert reaching_past([module]) == ["page.py:1: holder = demo.state_holder"]
