"""Public traffic against a real app on 127.0.0.1 (webapp.traffic): concurrent uploads of one photo, the
upload limit, REST calls without their optional inputs, the per-client rate limit, and the sessions Gradio
makes for API calls. Clients are real HTTP clients (httpx, as curl calls the API)."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from conftest import CORE_FIXTURES
from fixtures_app import app_finder, launch
from support import file_data, predict, rest_call, rest_upload

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


def upload_folder() -> Path:
    import gradio as gr

    return Path(gr.utils.get_upload_folder())


def test_eight_concurrent_clients_with_the_same_photo_all_get_answers_and_nothing_is_left(app_server, app_index):
    """Gradio stores equal uploads under one path; no call may delete it under another that still needs it."""
    data = app_index.photos["madonna"][0].read_bytes()
    name = f"same-{uuid.uuid4().hex}.jpg"
    start = threading.Barrier(8)
    answers: list = []

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            start.wait()
            for _ in range(3):
                uploaded = rest_upload(http, app_server.url, data, name)
                answers.append(rest_call(http, app_server.url, [file_data(uploaded.json()[0]), 5, "", ""]))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 24
    failed = [a for a in answers if a[1] != "complete" or "error" in a[2][0]]
    assert not failed, failed[:3]
    assert all(a[2][0]["faces"][0]["matches"][0]["person_id"] == "madonna" for a in answers)
    assert not list(upload_folder().rglob(name))


def test_the_page_keeps_a_photo_that_another_visitor_uploaded_until_both_have_searched(app_server, app_index):
    from webapp.handlers import LookalikeUI

    data = app_index.photos["elton-john"][0].read_bytes()
    name = f"example-{uuid.uuid4().hex}.jpg"
    with httpx.Client(timeout=60) as http:
        paths = [rest_upload(http, app_server.url, data, name).json()[0] for _ in range(2)]
    assert paths[0] == paths[1]  # one file for both visitors
    ui = LookalikeUI(app_server.finder)
    assert ui.submit(paths[0], 5)[3].startswith("Found 1 face")
    assert Path(paths[0]).exists()
    assert ui.submit(paths[1], 5)[3].startswith("Found 1 face")
    assert not Path(paths[0]).exists()


def test_a_search_released_while_an_upload_lands_waits_for_it(tmp_path, monkeypatch):
    """The window in which Gradio may rename a new copy onto a path before the answer counts it: a release
    then only marks the file, and it is deleted once the upload is counted and searched."""
    import gradio as gr

    from webapp.traffic import UploadRegister

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    photo = tmp_path / "abc" / "photo.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"jpeg")
    uploads = UploadRegister()
    uploads.landed([str(photo)])  # the first visitor's upload
    uploads.landing()  # a second upload of the same photo has been read, not yet answered
    uploads.release(photo)  # the first visitor's search ends
    assert photo.exists()
    uploads.landed([str(photo)])
    assert photo.exists() and uploads.pending(photo) == 1
    uploads.release(photo)
    assert not photo.exists() and not photo.parent.exists()
    assert Path(gr.utils.get_upload_folder()) == tmp_path and tmp_path.exists()  # the folder itself stays


@pytest.fixture(scope="module")
def limited_app(pipeline, app_index):
    """The app with a 0.25 MB upload limit and 3 API calls a minute per client, behind one proxy."""
    from webapp.settings import AppSettings

    traffic = AppSettings(max_upload_mb=0.25, api_calls_per_minute=3, proxy_hops=1)
    running = launch(app_finder(pipeline, app_index.store), traffic=traffic, mcp=True)
    yield running
    running.demo.close()


def test_an_upload_just_over_the_limit_is_refused_and_one_just_under_is_taken(limited_app):
    limit = int(0.25 * 2**20)
    over, under = f"over-{uuid.uuid4().hex}.bin", f"under-{uuid.uuid4().hex}.bin"
    with httpx.Client(timeout=60) as http:
        refused = rest_upload(http, limited_app.url, b"\0" * (limit + 1), over)
        taken = rest_upload(http, limited_app.url, b"\0" * (limit - 1), under)
        config = http.get(limited_app.url + "config").json()
    assert refused.status_code == 413
    assert refused.json()["reason"] == "upload_too_large" and "0.25 MB" in refused.json()["error"]
    assert not list(upload_folder().rglob(over))
    assert taken.status_code == 200 and Path(taken.json()[0]).stat().st_size == limit - 1
    assert config["max_file_size"] == limit  # the page refuses larger files before it uploads them


def test_a_huge_upload_is_refused_from_its_length_before_its_body_is_read(limited_app):
    url = urlparse(limited_app.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                     b"boundary=b\r\nContent-Length: 300000000\r\n\r\n")  # no body follows
        answer = b""
        while b"upload_too_large" not in answer and (chunk := sock.recv(4096)):  # the answer, before any body
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"upload_too_large" in answer


def test_a_client_over_the_rate_limit_is_told_to_slow_down_while_another_is_served(limited_app, app_index):
    data = app_index.photos["jerry-seinfeld"][0].read_bytes()
    greedy = {"X-Forwarded-For": "198.51.100.7"}
    # a client cannot pass for someone else by writing entries left of the one its proxy appended
    forged = {"X-Forwarded-For": "203.0.113.1, 198.51.100.7"}
    other = {"X-Forwarded-For": "198.51.100.8"}
    with httpx.Client(timeout=60) as http:
        def call(headers):
            path = rest_upload(http, limited_app.url, data, "me.jpg", headers).json()[0]
            return rest_call(http, limited_app.url, [file_data(path)], headers)

        answers = [call(greedy) for _ in range(3)]
        assert all(a[:2] == (200, "complete") and "faces" in a[2][0] for a in answers), answers
        status, event, refused = call(forged)
        assert status == 429 and refused["reason"] == "rate_limited" and "Slow down" in refused["error"]
        assert call(other)[:2] == (200, "complete")
        # the page's own events are not counted: its search is queued for the same client
        page_fn = next(i for i, fn in limited_app.demo.fns.items() if getattr(fn.fn, "__name__", "") == "submit")
        joined = http.post(limited_app.url + "gradio_api/queue/join", headers=greedy, json={
            "data": [None, 5, "", ""], "fn_index": page_fn, "session_hash": uuid.uuid4().hex, "event_data": None})
        assert joined.status_code == 200, joined.text


def test_a_rest_call_without_the_optional_inputs_gets_the_defaults(app_server, app_index):
    data = app_index.photos["madonna"][1].read_bytes()
    with httpx.Client(timeout=60) as http:
        def call(*extra):
            path = rest_upload(http, app_server.url, data, "me.jpg").json()[0]
            return rest_call(http, app_server.url, [file_data(path), *extra])

        only_photo, with_top_k = call(), call(2)
        missing = rest_call(http, app_server.url, [])
    assert only_photo[1] == "complete" and [len(f["matches"]) for f in only_photo[2][0]["faces"]] == [5]
    assert with_top_k[1] == "complete" and [len(f["matches"]) for f in with_top_k[2][0]["faces"]] == [2]
    assert missing[0] == 422 and missing[2]["reason"] == "missing_input" and "photo" in missing[2]["error"]


def test_api_calls_leave_no_session_behind(app_server, app_index):
    """Gradio makes a session (a copy of every component's configuration) for each REST call and keeps up to
    10,000: the app drops an API call's session when the call ends."""
    sessions = app_server.demo.state_holder.session_data
    before = len(sessions)
    photo = app_index.photos["madonna"][2]
    with httpx.Client(timeout=60) as http:
        for _ in range(3):
            path = rest_upload(http, app_server.url, photo.read_bytes(), "me.jpg").json()[0]
            assert rest_call(http, app_server.url, [file_data(path)])[1] == "complete"
    predict(app_server.url, photo)
    assert len(sessions) <= before


@pytest.mark.parametrize(("forwarded", "hops", "expected"), [
    (None, 1, "127.0.0.1"), ("198.51.100.7", 0, "127.0.0.1"), ("198.51.100.7", 1, "198.51.100.7"),
    ("203.0.113.1, 198.51.100.7", 1, "198.51.100.7"), ("198.51.100.7, 10.0.0.2", 2, "198.51.100.7"),
    ("198.51.100.7", 3, "198.51.100.7")])
def test_the_client_is_the_address_the_nearest_trusted_proxy_saw(forwarded, hops, expected):
    from webapp.traffic import client_address

    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    assert client_address({"headers": headers, "client": ("127.0.0.1", 5000)}, hops) == expected


def test_the_readme_curl_example_uploads_calls_and_reads_the_result(app_server, app_index, tmp_path):
    import json
    import re
    import shutil
    import subprocess

    from conftest import ROOT

    if shutil.which("curl") is None:
        pytest.skip("no curl")
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    example = next(b for b in blocks if "gradio_api/call/lookalike" in b)
    script = re.sub(r"^URL=\S+", f"URL={app_server.url.rstrip('/')}", example, count=1, flags=re.M)
    (tmp_path / "me.jpg").write_bytes(app_index.photos["mindy-kaling"][0].read_bytes())
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "event: complete" in out, out
    answer = json.loads(out.split("data:", 1)[1].strip())[0]
    assert [len(f["matches"]) for f in answer["faces"]] == [3]
    assert answer["faces"][0]["matches"][0]["person_id"] == "mindy-kaling"


def test_mcp_tool_calls_are_counted_once_and_told_to_slow_down_over_the_limit(limited_app, app_index):
    import asyncio
    import base64
    import json

    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    photo = app_index.photos["madonna"][3]
    data_url = "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode()

    async def calls(count: int):
        headers = {"X-Forwarded-For": "198.51.100.99"}
        async with streamablehttp_client(limited_app.url + "gradio_api/mcp/", headers=headers) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return [await session.call_tool("find_lookalikes", {"photo": data_url, "top_k": 1})
                        for _ in range(count)]

    results = asyncio.run(calls(4))
    assert all(not r.isError and "faces" in r.content[0].text for r in results[:3]), results[:3]
    assert results[3].isError and json.loads(results[3].content[0].text)["reason"] == "rate_limited"
