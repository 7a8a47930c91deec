"""Private mode's server side (webapp.private, lookalike.faces.browser, the vector API): the files the page
downloads under content-hashed, long-cached URLs, the pinned ONNX Runtime Web, FaceNet with float16-stored
weights, the COOP/COEP headers, and searching by vectors through gradio_client, REST and MCP.

What the browser does with them is tests/test_private_mode.py's.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import CORE_FIXTURES, FIVE_VAL, image_files
from fixtures_app import app_finder, launch
from support import readme_block, rest_call
from webapp.private import assets_of

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)

TOOLS_CACHE = Path(os.environ.get("LOOKALIKE_TOOLS_CACHE") or Path("~/.cache/lookalike-test-tools").expanduser())


@pytest.fixture(scope="module")
def assets(private_app):
    """The running app's private-mode files, its models made."""
    return assets_of(private_app.demo)


@pytest.fixture(scope="module")
def http():
    with httpx.Client(timeout=120) as client:
        yield client


def faces_of(pipeline, photo: Path) -> list[dict]:
    """The server pipeline's faces of ``photo`` in the vector API's form."""
    from lookalike.query_faces import as_face_list

    return as_face_list(pipeline.faces(photo))


# -- the files ---------------------------------------------------------------------------------------


def test_models_are_served_under_their_content_hash_with_a_year_long_cache(app_server, assets, http):
    manifest = http.get(app_server.url + "private/manifest.json")
    assert manifest.status_code == 200 and manifest.headers["cache-control"] == "no-store"
    info = manifest.json()
    assert info["state"] == "ready" and set(info["models"]) == {"pnet", "rnet", "onet", "facenet"}
    for key, model in info["models"].items():
        answer = http.get(app_server.url + model["url"])
        assert answer.status_code == 200, key
        assert hashlib.sha256(answer.content).hexdigest() == model["sha256"] and len(answer.content) == model["bytes"]
        assert model["sha256"][:16] in model["url"]  # new weights, new URL
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    stale = info["models"]["facenet"]["url"].replace(info["models"]["facenet"]["sha256"][:16], "0" * 16)
    assert http.get(app_server.url + stale).status_code == 404
    for name, url in info["ort"].items():
        answer = http.get(app_server.url + url)
        assert answer.status_code == 200 and answer.headers["cache-control"].endswith("immutable"), name
    assert info["detector"] == {"min_face_size": 40.0, "thresholds": [0.6, 0.7, 0.7], "factor": 0.709,
                                "max_side": 1280, "max_image_pixels": 50_000_000}


def test_first_visit_model_bytes_stay_under_50_mb(assets):
    sizes = {key: model.size for key, model in assets.models.items()}
    assert sum(sizes.values()) <= 50_000_000, sizes
    assert sizes["facenet"] < 0.55 * 94_000_000  # float16 storage: about half of the float32 export


def test_the_page_is_cross_origin_isolated_and_says_so_for_every_response(app_server, http):
    for path in ("", "config", "private/manifest.json"):
        answer = http.get(app_server.url + path)
        assert answer.headers["cross-origin-opener-policy"] == "same-origin", path
        assert answer.headers["cross-origin-embedder-policy"] == "credentialless", path


def test_isolation_headers_are_left_out_when_turned_off_and_no_assets_mean_private_mode_is_off():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from webapp.private import BUNDLE, PrivateMiddleware

    inner = Starlette(routes=[Route("/", lambda request: PlainTextResponse("page"))])
    app = PrivateMiddleware(inner, assets=lambda scope: None, isolate=False)

    async def get(*paths: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as plain:
            return [await plain.get(path) for path in paths]

    page, manifest, script, stale = asyncio.run(get("/", "/private/manifest.json", f"/private/{BUNDLE}/page.js",
                                                    "/private/0000000000000000/page.js"))
    assert page.text == "page" and "cross-origin-opener-policy" not in page.headers
    assert manifest.json() == {"state": "off"}
    assert script.status_code == 200 and stale.status_code == 404


def test_vendored_onnxruntime_web_files_are_the_pinned_release(assets):
    """The files in webapp/static/ort are ONNX Runtime Web's, of the version in its VERSION file: their
    SHA256SUMS hold, and they equal the files of that version's npm package (downloaded once into the tools
    cache; skipped only without npm)."""
    from webapp.private import ORT_FILES, ORT_VERSION, STATIC

    folder = STATIC / "ort"
    sums = dict(reversed(line.split()) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == set(ORT_FILES)
    for name in ORT_FILES:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == sums[name], name
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the vendored files were checked against SHA256SUMS only")
    package = TOOLS_CACHE / f"onnxruntime-web-{ORT_VERSION}.tgz"
    if not package.exists():
        package.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", f"onnxruntime-web@{ORT_VERSION}", "--silent"], cwd=package.parent,
                       check=True, capture_output=True, timeout=300)
    with tarfile.open(package) as archive:
        assert json.load(archive.extractfile("package/package.json"))["version"] == ORT_VERSION
        for name in ORT_FILES:
            published = archive.extractfile(f"package/dist/{name}").read()
            assert hashlib.sha256(published).hexdigest() == sums[name], name


def test_facenet_with_half_weights_gives_the_float32_vectors(pipeline):
    """The browser's FaceNet (float16-stored weights) against the float32 export, both in onnxruntime, on
    real face crops: the same vectors to within what a search can tell."""
    import onnxruntime as ort

    from lookalike.faces.browser import half_weights
    from lookalike.faces.pipeline import extract_faces

    export = pipeline.embedder.exported()
    full = export.read_bytes() if isinstance(export, Path) else export
    half = half_weights(full)
    assert len(half) < 0.55 * len(full)
    crops = []
    for person in sorted(FIVE_VAL.iterdir()):
        image = pipeline.load(image_files(person)[0])
        crops.append(extract_faces(image, pipeline.detector.detect(image).boxes[:1]))
    crops = np.concatenate(crops)
    vectors = [ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"crops": crops})[0]
               for model in (full, half)]
    cosines = np.sum(vectors[0] * vectors[1], axis=1)
    assert cosines.min() > 0.9999, cosines
    assert np.abs(vectors[0] - vectors[1]).max() > 0  # the weights were rounded: not the same file


# -- the vector API ------------------------------------------------------------------------------------


def test_vectors_find_the_same_people_as_the_photo(client, pipeline, app_index):
    photo = app_index.photos["madonna"][0]
    by_photo = client.predict(__import__("gradio_client").handle_file(str(photo)), api_name="/lookalike")
    by_vectors = client.predict(faces_of(pipeline, photo), api_name="/lookalike_vectors")
    assert [m["name"] for m in by_vectors["faces"][0]["matches"]] == \
        [m["name"] for m in by_photo["faces"][0]["matches"]]
    assert by_vectors["faces"][0]["matches"][0]["name"] == "Madonna"
    assert by_vectors["faces"][0]["box"] == by_photo["faces"][0]["box"]
    only_two = client.predict(faces_of(pipeline, photo), 2, "", "", True, api_name="/lookalike_vectors")
    assert len(only_two["faces"][0]["matches"]) == 2


def _bad_calls(pipeline) -> list[tuple[str, list]]:
    """(reason, faces) of calls that must be refused, one for each way a call can be wrong."""
    face = faces_of(pipeline, image_files(FIVE_VAL / "madonna")[0])[0]
    return [
        ("bad_vector", [{**face, "vector": face["vector"][:500]}]),
        ("bad_vector", [{**face, "vector": [math.nan] + face["vector"][1:]}]),
        ("bad_vector", [{**face, "vector": [v * 3 for v in face["vector"]]}]),
        ("too_many_faces", [face] * 33),
        ("bad_box", [{**face, "box": [10, 10, 5, 40]}]),
        ("bad_box", [{**face, "box": [0, 0, 1e9, 1e9]}]),
        ("bad_faces", ["not a face"]),
        ("no_face", []),
    ]


def test_a_bad_vector_call_gets_a_named_error_and_the_app_keeps_serving(app_server, pipeline, http):
    """Every malformed call answers {"error", "reason"} (never a traceback), through REST as curl sends it."""
    for reason, faces in _bad_calls(pipeline):
        status, event, answer = rest_call(http, app_server.url, [faces], api="lookalike_vectors")
        assert status == 200 and event == "complete", (reason, status, event, answer)
        assert answer[0]["reason"] == reason and answer[0]["error"], (reason, answer)
        assert "Traceback" not in answer[0]["error"]
    good = faces_of(pipeline, image_files(FIVE_VAL / "madonna")[0])
    status, event, answer = rest_call(http, app_server.url, [good], api="lookalike_vectors")
    assert event == "complete" and answer[0]["faces"][0]["matches"]


def test_a_vector_call_without_faces_is_told_what_to_send(app_server, http):
    answer = http.post(app_server.url + "gradio_api/call/lookalike_vectors", json={"data": []})
    assert answer.status_code == 422 and answer.json()["reason"] == "missing_input"
    assert '"vector"' in answer.json()["error"]


def test_vector_calls_count_against_the_rate_limit(pipeline, app_index):
    from webapp.settings import AppSettings

    limited = launch(app_finder(pipeline, app_index.store), traffic=AppSettings(api_calls_per_minute=2))
    try:
        faces = faces_of(pipeline, app_index.photos["madonna"][0])
        with httpx.Client(timeout=120) as http:
            answers = [rest_call(http, limited.url, [faces], api="lookalike_vectors") for _ in range(3)]
        assert [a[0] for a in answers] == [200, 200, 429]
        assert answers[2][2]["reason"] == "rate_limited"
    finally:
        limited.demo.close()


def test_mcp_offers_the_vector_tool_beside_the_photo_tool(app_server, pipeline, app_index):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    faces = faces_of(pipeline, app_index.photos["elton-john"][0])

    async def session_calls():
        async with streamablehttp_client(app_server.url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = (await session.list_tools()).tools
                return tools, await session.call_tool("find_lookalikes_by_vectors", {"faces": faces, "top_k": 2})

    tools, result = asyncio.run(session_calls())
    vector_tool = next(t for t in tools if t.name == "find_lookalikes_by_vectors")
    assert set(vector_tool.inputSchema["properties"]) == {"faces", "top_k", "gender", "department", "well_known_only"}
    assert not result.isError and "Elton John" in result.content[0].text


def test_the_readme_vector_example_runs(app_server, pipeline, app_index, tmp_path):
    """The README's gradio_client example of the vector API, run as it is written (against the test app)."""
    code = readme_block("Private mode", "python")
    photo = tmp_path / "me.jpg"
    photo.write_bytes(app_index.photos["jerry-seinfeld"][0].read_bytes())
    out = io.StringIO()
    namespace = {"print": lambda *args: out.write(" ".join(map(str, args)) + "\n")}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code.replace("http://localhost:7860/", app_server.url), "README", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert "Jerry Seinfeld" in out.getvalue()
