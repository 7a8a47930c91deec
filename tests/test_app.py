"""The app through gradio_client against a real server on 127.0.0.1, plus its page handlers directly.

The index (tests/fixtures_app.py) holds 36 people; the stand-in FaceNet weights carry little identity,
so ranking tests query exact indexed photos, whose own point is the one cosine-1.0 match.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import BIOS, MULTIFACE
from fixtures_app import launch

CAPTION = re.compile(r"^.+ — \d{1,3} %$")


@pytest.fixture(scope="module")
def client(app_server):
    from gradio_client import Client

    return Client(app_server.url, verbose=False)


def predict(client, path: Path, *args):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), *args, api_name="/lookalike")


def gray_photo(path: Path, size=(640, 480)) -> Path:
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path, quality=90)
    return path


def check_faces(out: dict, expected_faces: int | None = None) -> None:
    assert "error" not in out, out
    if expected_faces is not None:
        assert len(out["faces"]) == expected_faces
    for face in out["faces"]:
        assert len(face["box"]) == 4 and 0 <= face["probability"] <= 1
        sims = [m["similarity"] for m in face["matches"]]
        assert all(0.0 <= s <= 1.0 for s in sims)
        scores = [m["score"] for m in face["matches"]]
        assert scores == sorted(scores, reverse=True)
        assert len({m["person_id"] for m in face["matches"]}) == len(face["matches"])  # one tile per person
        for m in face["matches"]:
            assert {"name", "person_id", "score", "similarity", "metadata"} <= set(m)


def test_indexed_photo_finds_its_person_first(client, app_index):
    for person, photos in app_index.photos.items():
        out = predict(client, photos[0])
        check_faces(out, 1)
        matches = out["faces"][0]["matches"]
        assert len(matches) == 5  # the app's default top_k
        assert matches[0]["person_id"] == person
        assert matches[0]["score"] > 0.99 and matches[0]["similarity"] > 0.99
        assert matches[1]["score"] < matches[0]["score"]


def test_top_k_is_an_optional_second_input(client, app_index):
    photo = app_index.photos["madonna"][1]
    assert [len(f["matches"]) for f in predict(client, photo, 3)["faces"]] == [3]
    assert [len(f["matches"]) for f in predict(client, photo, 50)["faces"]] == [10]  # clamped to the slider


def test_multiface_returns_six_faces_left_to_right(client):
    out = predict(client, MULTIFACE)
    check_faces(out, 6)
    lefts = [f["box"][0] for f in out["faces"]]
    assert lefts == sorted(lefts)


@pytest.mark.parametrize("kind", ["no_face", "random_bytes", "empty", "too_large"])
def test_bad_input_gives_a_message_and_the_app_keeps_serving(client, app_index, tmp_path, kind):
    if kind == "no_face":
        path, reason, words = gray_photo(tmp_path / "wall.jpg"), "no_face", "No face"
    elif kind == "random_bytes":
        path = tmp_path / "photo.jpg"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        reason, words = "not_an_image", "not an image"
    elif kind == "empty":
        path = tmp_path / "empty.png"
        path.write_bytes(b"")
        reason, words = "not_an_image", "empty"
    else:  # 8000x7000 = 56 Mpx, over the 50 Mpx limit; refused from the header, never decoded
        path = tmp_path / "huge.png"
        Image.new("L", (8000, 7000)).save(path, optimize=True)
        reason, words = "image_too_large", "megapixels"
    out = predict(client, path)
    assert set(out) == {"error", "reason"}, out
    assert out["reason"] == reason
    assert words in out["error"] and "Traceback" not in out["error"]
    check_faces(predict(client, app_index.photos["elton-john"][0]), 1)  # still serving


def test_upload_is_deleted_after_the_search(client, app_index, tmp_path):
    import gradio as gr

    name = f"selfie-{uuid.uuid4().hex}.jpg"
    (tmp_path / name).write_bytes(app_index.photos["jerry-seinfeld"][0].read_bytes())
    check_faces(predict(client, tmp_path / name), 1)
    cache = Path(gr.utils.get_upload_folder())
    assert not list(cache.rglob(name))


def test_only_the_lookalike_endpoint_is_public(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/lookalike"}
    assert not api["unnamed_endpoints"]
    params = [p["parameter_name"] for p in api["named_endpoints"]["/lookalike"]["parameters"]]
    assert params == ["photo", "top_k"]


def test_empty_index_says_how_to_fill_it(pipeline, settings, tmp_path):
    from gradio_client import Client

    from lookalike.search import LookalikeFinder
    from lookalike.store import FaceStore
    from lookalike.ui import LookalikeUI

    store = FaceStore.open(settings)
    finder = LookalikeFinder(pipeline, store)
    running = launch(finder)
    try:
        assert "python -m indexing" in LookalikeUI(finder).banner()
        out = predict(Client(running.url, verbose=False), MULTIFACE)
        assert out["reason"] == "empty_index"
        assert "python -m indexing" in out["error"] and "stop the app first" in out["error"]
    finally:
        running.demo.close()
        store.close()


def test_unreachable_qdrant_gives_a_message(pipeline, base_settings):
    from fixtures_app import free_port
    from lookalike.search import LookalikeFinder
    from lookalike.store import FaceStore
    from lookalike.ui import LookalikeUI

    dead = base_settings.model_copy(update={"qdrant_url": f"http://127.0.0.1:{free_port()}", "qdrant_timeout_s": 2})
    ui = LookalikeUI(LookalikeFinder(pipeline, FaceStore.open(dead)))
    assert "cannot be reached" in ui.banner()
    out = ui.api(str(MULTIFACE))
    assert out["reason"] == "store_unavailable" and "cannot be reached" in out["error"]


def test_page_handlers_box_faces_and_show_galleries(app_server):
    from lookalike.ui import LookalikeUI

    ui = LookalikeUI(app_server.finder)
    boxed, status, picker, gallery, details, faces = ui.submit(str(MULTIFACE), 4)
    assert isinstance(boxed, Image.Image) and "6 faces" in status
    assert picker["visible"] and [c[0] for c in picker["choices"]] == [f"Face {i}" for i in range(1, 7)]
    assert len(faces) == 6 and len(gallery) == 4
    assert all(CAPTION.match(cap) for _, cap in gallery)
    other, _ = ui.pick_face(5, faces)
    assert other == faces[5]["gallery"] and other != gallery
    # boxes are drawn: the annotated photo differs from the plain one
    plain = Image.open(MULTIFACE).convert("RGB").resize(boxed.size, Image.BILINEAR)
    assert max(boxed.size) == 1024  # shown at most 1024 pixels wide
    assert np.abs(np.asarray(boxed, int) - np.asarray(plain, int)).max() > 100


def test_page_shows_biography_of_a_match(app_server, tmp_path):
    import pandas as pd

    from lookalike.ui import LookalikeUI

    row = pd.read_parquet(next((BIOS / "data").glob("*.parquet"))).iloc[2]
    photo = tmp_path / "bio.jpg"
    photo.write_bytes(row["image"]["bytes"])
    _, status, _, gallery, details, _ = LookalikeUI(app_server.finder).submit(str(photo), 3)
    assert gallery[0][1].startswith(f"{row['name']} — ")
    assert row["biography"][:40] in details


def test_page_handler_turns_errors_into_a_status(app_server, tmp_path):
    from lookalike.ui import LookalikeUI

    ui = LookalikeUI(app_server.finder)
    out = ui.submit(str(gray_photo(tmp_path / "wall.jpg")), 5)
    assert out[0] is None and "No face" in out[1] and out[3] == []
    assert "Add a photo" in ui.submit(None, 5)[1]


def test_app_without_models_explains_why(tmp_path):
    from lookalike.errors import WeightsMissingError
    from lookalike.ui import LookalikeUI, build_app

    problem = WeightsMissingError("The FaceNet weights are missing; set LOOKALIKE_WEIGHTS.")
    build_app(None, problem)  # builds without a finder
    ui = LookalikeUI(None, problem)
    assert ui.api(str(MULTIFACE)) == {"error": str(problem), "reason": "weights_missing"}
    assert "LOOKALIKE_WEIGHTS" in ui.banner()
