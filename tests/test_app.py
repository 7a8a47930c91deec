"""The app through gradio_client (and MCP) against a real server on 127.0.0.1, plus its page handlers directly.

The index (tests/fixtures_app.py) holds 36 people; the stand-in FaceNet weights carry little identity,
so ranking tests query exact indexed photos, whose own point is the one cosine-1.0 match.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import io
import json
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import MULTIFACE
from fixtures_app import TEST_DATA, app_finder, bio_photo, bio_row, cartoon_face, launch
from support import file_data, predict, rest_call

CAPTION = re.compile(r"^.+ — \d{1,3} %$")


def gray_photo(path: Path, size=(640, 480)) -> Path:
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path, quality=90)
    return path


def check_faces(out: dict, expected_faces: int | None = None) -> None:
    from lookalike.likeness import DEFAULT

    assert "error" not in out, out
    if expected_faces is not None:
        assert len(out["faces"]) == expected_faces
    for face in out["faces"]:
        assert len(face["box"]) == 4 and 0 <= face["probability"] <= 1
        assert {"searched", "no_close_match", "matches"} <= set(face)
        sims = [m["similarity"] for m in face["matches"]]
        assert all(0.0 <= s <= 1.0 for s in sims)
        scores = [m["score"] for m in face["matches"]]
        assert scores == sorted(scores, reverse=True)
        assert len({m["person_id"] for m in face["matches"]}) == len(face["matches"])  # one tile per person
        for m in face["matches"]:
            assert {"name", "person_id", "score", "likeness", "similarity", "metadata"} <= set(m)
            assert m["likeness"] == pytest.approx(DEFAULT(m["score"]), abs=0.06)  # the cosine stays beside it
            assert m["similarity"] == pytest.approx(m["likeness"] / 100, abs=1e-3)
            assert "thumbnail" not in m and "thumbnail_jpeg" not in m


def test_indexed_photo_finds_its_person_first(client, app_index):
    for person, photos in app_index.photos.items():
        out = predict(client, photos[0])
        check_faces(out, 1)
        matches = out["faces"][0]["matches"]
        assert len(matches) == 5  # the app's default top_k
        assert matches[0]["person_id"] == person
        assert matches[0]["score"] > 0.99 and matches[0]["similarity"] > 0.99 and matches[0]["likeness"] > 99
        assert matches[1]["score"] < matches[0]["score"]
        assert out["faces"][0]["no_close_match"] is False and out["faces"][0]["searched"] is True


def test_top_k_is_an_optional_second_input(client, app_index):
    photo = app_index.photos["madonna"][1]
    assert [len(f["matches"]) for f in predict(client, photo, 3)["faces"]] == [3]
    assert [len(f["matches"]) for f in predict(client, photo, 50)["faces"]] == [10]  # clamped to the slider


def test_a_call_without_top_k_gets_the_apps_own_setting(pipeline, app_index):
    """The API's default top_k is the app's (3 here), in its description and in the answer, not a number
    fixed in the code."""
    from gradio_client import Client

    running = launch(app_finder(pipeline, app_index.store, top_k=3))
    try:
        client = Client(running.url, verbose=False)
        parameters = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/lookalike"]
        assert {p["parameter_name"]: p["parameter_default"] for p in parameters["parameters"]}["top_k"] == 3
        assert [len(f["matches"]) for f in predict(client, app_index.photos["madonna"][1])["faces"]] == [3]
    finally:
        running.demo.close()


def test_multiface_returns_six_faces_left_to_right(client):
    out = predict(client, MULTIFACE)
    check_faces(out, 6)
    lefts = [f["box"][0] for f in out["faces"]]
    assert lefts == sorted(lefts)


def test_the_api_refuses_a_file_that_was_not_uploaded(app_server, app_index, tmp_path):
    """The API takes its inputs unprocessed (gr.api, webapp.page), but Gradio still checks that a path was
    uploaded."""
    import httpx

    elsewhere = tmp_path / "not-uploaded.jpg"
    elsewhere.write_bytes(app_index.photos["jerry-seinfeld"][0].read_bytes())  # a face: searchable if let through
    with httpx.Client(timeout=60) as http:
        status, event, _ = rest_call(http, app_server.url, [file_data(str(elsewhere)), 5, "", ""])
    assert status == 200 and event == "error"
    assert elsewhere.exists()


def test_only_the_lookalike_endpoints_are_public(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/lookalike", "/lookalike_vectors"}  # the page's own events are private
    assert not api["unnamed_endpoints"]
    vectors = api["named_endpoints"]["/lookalike_vectors"]["parameters"]
    assert [p["parameter_name"] for p in vectors] == ["faces", "top_k", "gender", "department", "well_known_only"]
    params = api["named_endpoints"]["/lookalike"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["photo", "top_k", "gender", "department", "well_known_only"]
    assert [p["parameter_has_default"] for p in params] == [False, True, True, True, True]
    assert params[-1]["parameter_default"] is True  # old clients, which leave it out, get well-known people


def test_config_keeps_no_run_history_in_the_browser(app_server):
    config = json.loads(urllib.request.urlopen(app_server.url + "config", timeout=30).read())
    assert config["run_history"] is False
    assert "runs" not in config.get("footer_links", [])
    page = urllib.request.urlopen(app_server.url, timeout=30).read().decode()
    assert "gradio_api/runs" not in page


def test_mcp_lists_the_find_lookalikes_tool(app_server):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def tools():
        async with streamablehttp_client(app_server.url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return (await session.list_tools()).tools

    listed = asyncio.run(tools())
    assert [t.name for t in listed] == ["find_lookalikes", "find_lookalikes_by_vectors"]
    description = listed[0].description
    for field in ("likeness", "score", "no_close_match", "gender", "department", "well_known_only"):
        assert field in description
    assert set(listed[0].inputSchema["properties"]) == {"photo", "top_k", "gender", "department", "well_known_only"}


def test_mcp_tool_answers_with_the_faces_of_a_photo(app_server, app_index):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    photo = app_index.photos["jerry-seinfeld"][0]
    data_url = "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode()

    async def call():
        async with streamablehttp_client(app_server.url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await session.call_tool("find_lookalikes", {"photo": data_url, "top_k": 3})

    result = asyncio.run(call())
    assert not result.isError, result
    out = ast.literal_eval(result.content[0].text)  # gradio's MCP server sends the dict's repr
    check_faces(out, 1)
    assert len(out["faces"][0]["matches"]) == 3


def test_the_query_path_decodes_once_asks_the_index_once_per_face_and_draws_only_for_the_page(
        app_server, monkeypatch):
    import webapp.handlers
    from webapp.handlers import LookalikeUI

    finder = app_server.finder
    calls: dict[str, list] = {"load": [], "query": [], "draw": []}
    real_load, real_query, real_draw = finder.pipeline.load, finder.index.query_people, webapp.handlers.draw_faces

    def load(source):
        calls["load"].append(source)
        return real_load(source)

    def query(vector, top_k, **kwargs):
        calls["query"].append(kwargs)
        found = real_query(vector, top_k, **kwargs)
        calls["query"][-1]["thumbnails"] = [bool(m.payload.thumbnail) for m in found]
        return found

    def draw(image, result, *args):
        calls["draw"].append(image)
        return real_draw(image, result, *args)

    monkeypatch.setattr(finder.pipeline, "load", load)
    monkeypatch.setattr(finder.index, "query_people", query)
    monkeypatch.setattr(webapp.handlers, "draw_faces", draw)
    ui = LookalikeUI(finder)
    out = ui.find_lookalikes(str(MULTIFACE), 3)
    check_faces(out, 6)
    assert len(calls["load"]) == 1 and not calls["draw"]
    assert len(calls["query"]) == 6  # one index query per face
    assert all(q["with_thumbnails"] is False and not any(q["thumbnails"]) for q in calls["query"])

    calls.update(load=[], query=[], draw=[])
    ui.submit(str(MULTIFACE), 3)
    assert len(calls["load"]) == 1 and len(calls["draw"]) == 1 and len(calls["query"]) == 6
    assert all(q["with_thumbnails"] is True and all(q["thumbnails"]) for q in calls["query"])


def test_empty_index_tells_visitors_to_come_back_and_the_operator_how_to_fill_it(pipeline, settings, tmp_path,
                                                                                  caplog):
    from lookalike.index.store import FaceStore
    from lookalike.search import LookalikeFinder
    from webapp.handlers import LookalikeUI

    store = FaceStore.open(settings.store_config())
    finder = LookalikeFinder(pipeline, store)
    running = launch(finder)
    try:
        with caplog.at_level("WARNING"):
            banner = LookalikeUI(finder).banner()
        assert "come back later" in banner and "python -m indexing" not in banner
        assert "python -m indexing" in caplog.text  # the command is the operator's, in the log
        out = predict(running.url, MULTIFACE)
        assert out["reason"] == "empty_index"
        assert "python -m indexing" not in out["error"] and out["error"]
    finally:
        running.demo.close()
        store.close()


def test_page_handlers_box_faces_in_place_of_the_photo_and_show_galleries(app_server):
    from webapp.handlers import LookalikeUI

    ui = LookalikeUI(app_server.finder)
    photo, boxed, again, status, picker, gallery, compare, details, views, find = ui.submit(str(MULTIFACE), 4)
    assert photo["visible"] is False and boxed["visible"] is True and again["visible"] is True  # one photo shown
    assert find["visible"] is False
    assert isinstance(boxed["value"], Image.Image) and "6 faces" in status
    assert picker["visible"] and [c[0] for c in picker["choices"]] == [f"Face {i}" for i in range(1, 7)]
    assert len(views) == 6 and len(gallery) == 4
    assert all(CAPTION.match(cap) for _, cap in gallery)
    assert "data:image/png;base64," in compare  # face 1 beside its best match
    other, other_compare, _ = ui.pick_face(5, views)
    assert other == views[5].gallery and other != gallery and other_compare != compare
    assert max(boxed["value"].size) == 1024  # shown at most 1024 pixels wide
    fresh = ui.new_photo()
    assert fresh[0]["visible"] is True and fresh[1]["visible"] is False and fresh[5] == [] and fresh[9]["visible"]


def test_boxes_are_drawn_where_the_faces_are_on_the_shrunk_photo(pipeline):
    """Each box's left edge lies at the face's box scaled to the display size, not at its full-size place."""
    from lookalike.search import FaceMatches, SearchResult
    from webapp.rendering import BOX_COLOURS, DISPLAY_MAX_SIDE, draw_faces

    image = pipeline.load(MULTIFACE)
    big = image.resize((image.width * 2, image.height * 2))  # 2400x1260: shown at 1024 wide, scale 0.427
    faces = pipeline.faces_many([big])[0]
    drawn = np.asarray(draw_faces(big, SearchResult([FaceMatches(f, []) for f in faces], big)))
    scale = DISPLAY_MAX_SIDE / max(big.size)
    assert drawn.shape[1] == DISPLAY_MAX_SIDE
    for number, face in enumerate(faces):
        colour = np.array(Image.new("RGB", (1, 1), BOX_COLOURS[number % len(BOX_COLOURS)]).getpixel((0, 0)))
        x1, y1, x2, y2 = face.box
        row = round((y1 + y2) / 2 * scale)
        left = drawn[row, round(x1 * scale) + 1]  # just inside the line (>= 2 px wide)
        assert np.abs(left.astype(int) - colour).max() <= 10, (number, left, colour)
        unscaled = round(x1 * scale / 0.5)  # where an unscaled (or half-scaled) box would be
        if unscaled < drawn.shape[1] and abs(unscaled - x1 * scale) > 6:
            assert np.abs(drawn[row, unscaled].astype(int) - colour).max() > 10


def test_page_shows_biography_and_the_side_by_side_card(app_server, tmp_path):
    from webapp.handlers import LookalikeUI
    from webapp.rendering import CARD_SIZE

    row, photo = bio_row("Tony Blair"), bio_photo(tmp_path, "Tony Blair")
    ui = LookalikeUI(app_server.finder)
    _, _, _, status, _, gallery, compare, details, views, _ = ui.submit(str(photo), 3)
    assert gallery[0][1].startswith("Tony Blair — ")
    assert row["biography"][:40] in details and row["biography"][:40] in compare

    class Pick:  # what Gradio passes for a click on the gallery's second tile
        index = 1

    second = ui.pick_match(0, views, Pick())
    assert f"beside {views[0].matches[1].name}:" in second and "beside Tony Blair" not in second
    png = base64.b64decode(re.search(r'href="data:image/png;base64,([^"]+)"', second).group(1))
    card = Image.open(io.BytesIO(png))
    assert card.format == "PNG" and card.size == CARD_SIZE
    assert 'download="lookalike-' in second and "http" not in second  # no address that carries the photo


def test_a_drawn_face_is_not_searched(app_server, tmp_path):
    from webapp.handlers import LookalikeUI

    ui = LookalikeUI(app_server.finder)
    out = ui.find_lookalikes(str(cartoon_face(tmp_path / "cartoon.png")))
    assert len(out["faces"]) == 1, out
    face = out["faces"][0]
    assert face["probability"] < app_server.finder.min_face_probability
    assert face["searched"] is False and face["matches"] == []
    _, _, _, _, _, gallery, _, details, _, _ = ui.submit(str(cartoon_face(tmp_path / "cartoon2.png")), 3)
    assert gallery == [] and "not clear enough to search" in details


def test_no_close_match_when_the_best_match_is_under_the_threshold(pipeline, app_index, tmp_path):
    from webapp.handlers import LookalikeUI

    strict = LookalikeUI(app_finder(pipeline, app_index.store, min_likeness=99.5))
    unknown = next(p for p in sorted((TEST_DATA / "five_celebs" / "val" / "madonna").glob("*.jpg")))
    out = strict.find_lookalikes(str(unknown))
    face = out["faces"][0]
    assert face["no_close_match"] is True and face["searched"] is True
    assert face["matches"] and face["matches"][0]["likeness"] < 99.5  # the nearest are still shown
    _, _, _, _, _, gallery, _, details, _, _ = strict.submit(str(unknown), 3)
    assert len(gallery) == 3 and "No close match" in details
    indexed = strict.find_lookalikes(str(app_index.photos["madonna"][0]))
    assert indexed["faces"][0]["no_close_match"] is False  # its own photo: cosine 1, likeness 100 %


def test_filters_keep_only_matching_people_and_say_when_nobody_is_left(client, app_server, tmp_path):
    from webapp.handlers import LookalikeUI

    photo = bio_photo(tmp_path, "Tony Blair")
    women = predict(client, photo, 10, "female")
    check_faces(women, 1)
    assert women["faces"][0]["matches"] and all(m["metadata"]["gender"] == 1 for m in women["faces"][0]["matches"])
    men = predict(client, photo, 10, "male")
    assert men["faces"][0]["matches"][0]["name"] == "Tony Blair"
    assert all(m["metadata"]["gender"] == 2 for m in men["faces"][0]["matches"])
    actors = predict(client, photo, 10, "", "Acting")
    names = {m["name"] for m in actors["faces"][0]["matches"]}
    assert names == {"Angelina Jolie", "Arnold Schwarzenegger", "Jennifer Aniston", "Jennifer Lopez", "Naomi Watts"}
    nobody = predict(client, photo, 5, "male", "Directing")
    assert nobody["reason"] == "no_one_matches_filters" and "wider filter" in nobody["error"]
    assert predict(client, photo, 5, "robots")["reason"] == "bad_filter"

    choices = LookalikeUI(app_server.finder).filter_choices()
    assert choices == {"gender": [("Anyone", ""), ("Women", 1), ("Men", 2)],
                       "department": [("Any field", ""), ("Acting", "Acting")]}


def test_filters_are_hidden_when_the_index_has_no_such_metadata(pipeline, settings, tmp_path):
    import shutil

    from indexing.indexer import Indexer
    from indexing.sources import open_sources
    from lookalike.index.store import FaceStore
    from webapp.handlers import LookalikeUI

    folder = tmp_path / "people" / "madonna"
    folder.mkdir(parents=True)
    for src in sorted((TEST_DATA / "five_celebs" / "train" / "madonna").glob("*.jpg"))[:2]:
        shutil.copy(src, folder / src.name)
    store = FaceStore.open(settings.store_config())
    try:
        Indexer(pipeline, store).run(open_sources(str(tmp_path / "people")), progress=False)
        assert LookalikeUI(app_finder(pipeline, store)).filter_choices() == {}
    finally:
        store.close()


def test_page_handler_turns_errors_into_a_status(app_server, tmp_path):
    from webapp.handlers import LookalikeUI

    ui = LookalikeUI(app_server.finder)
    out = ui.submit(str(gray_photo(tmp_path / "wall.jpg")), 5)
    assert out[1]["visible"] is False and "No face" in out[3] and out[5] == []
    assert "Add a photo" in ui.submit(None, 5)[3]


def test_app_without_models_explains_why_on_the_page_and_in_the_api(tmp_path):
    from lookalike.errors import WeightsMissingError

    problem = WeightsMissingError("The FaceNet weights are missing; set LOOKALIKE_WEIGHTS.")
    running = launch(None, problem)
    try:
        config = urllib.request.urlopen(running.url + "config", timeout=30).read().decode()
        assert "LOOKALIKE_WEIGHTS" in config  # the banner of the page
        out = predict(running.url, MULTIFACE)
        assert out == {"error": str(problem), "reason": "weights_missing"}
    finally:
        running.demo.close()


def test_every_app_setting_comes_from_settings(monkeypatch):
    from webapp.settings import AppSettings
    from webapp.wiring import launch_kwargs

    monkeypatch.setenv("GRADIO_SERVER_NAME", "127.0.0.9")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    monkeypatch.setenv("LOOKALIKE_MCP", "0")
    monkeypatch.setenv("LOOKALIKE_TORCH_THREADS", "3")
    settings = AppSettings()
    assert (settings.server_name, settings.server_port, settings.mcp, settings.torch_threads) == (
        "127.0.0.9", 7999, False, 3)
    kwargs = launch_kwargs(settings)
    assert kwargs["server_name"] == "127.0.0.9" and kwargs["server_port"] == 7999 and kwargs["mcp_server"] is False
    assert kwargs["run_history"] is False
    app_source = (Path(__file__).resolve().parents[1] / "app.py").read_text()
    assert "os.environ" not in app_source


def test_the_core_imports_without_gradio():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", "import lookalike, lookalike.search, lookalike.index.store, sys; "
                    "assert 'gradio' not in sys.modules"], check=True, cwd=root)
    assert not [p for p in (root / "lookalike").rglob("*.py") if re.search(r"^\s*(import|from)\s+gradio",
                                                                            p.read_text(), re.M)]
