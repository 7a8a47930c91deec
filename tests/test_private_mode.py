"""Private mode in a real browser (Debian's chromium through Playwright) against the app of fixtures_app: the
page finds, embeds and boxes faces itself and sends only vectors. Every request the page makes is recorded.

The browser's copy of the face pipeline is held to the server's the way the server's is held to
facenet-pytorch's: the same faces (boxes at IoU >= 0.95, the same count), the same vectors (cosine >= 0.99)
and the same people found, on the photos below.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import FIVE_VAL, LFW, MULTIFACE, image_files
from support import CHROMIUM, DESKTOP, TIMEOUT_MS, camera_browser, captions, iou, rotated_copy, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium, or python -m playwright "
                                                "install chromium"),
]

IMAGE_MAGIC = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF", b"GIF8"]
"""JPEG, PNG, WebP and GIF files begin so; base64 text of them too, once encoded (see :func:`carries_image`)."""


def photos(folder: Path) -> list[Path]:
    """The photos the browser is held to the server on: the first of each person of five_celebs/val, the group
    photo, an EXIF-rotated copy of it, and three LFW photos."""
    rotated = rotated_copy(MULTIFACE, folder / "rotated.jpg")
    lfw = [image_files(person)[0] for person in sorted(LFW.iterdir())[:3]]
    return [image_files(person)[0] for person in sorted(FIVE_VAL.iterdir())] + [MULTIFACE, rotated, *lfw]


def carries_image(body: bytes) -> bool:
    """True when a request body holds an image file's bytes, raw or base64-encoded (a data URL, JSON)."""
    for magic in IMAGE_MAGIC:
        encoded = base64.b64encode(magic)[: len(magic) * 4 // 3]
        if magic in body or encoded in body:
            return True
    return False


@pytest.fixture(scope="module")
def private_page(browser, private_app):
    """One page in private mode for the module, its models downloaded, and every request it made."""
    context = browser.new_context(**DESKTOP)
    requests = []
    context.on("request", lambda request: requests.append(request))
    page = context.new_page()
    page.goto(private_app.url)
    page.wait_for_function("window.lookalikePrivate && window.lookalikePrivate.loaded()", timeout=TIMEOUT_MS)
    assert page.evaluate("window.lookalikePrivate.mode()") == "private"
    yield page, requests
    context.close()


def search_privately(page, photo: Path) -> list[str]:
    """Choose ``photo`` in private mode and wait for the answer: the gallery's names (empty when the first
    face was not clear enough to search)."""
    again = page.locator("#private-photo .private-new")
    if again.is_visible():
        again.click()
        page.wait_for_function("!document.querySelector('#status').innerText", timeout=TIMEOUT_MS)
    page.locator("#private-photo input[type=file]").set_input_files(str(photo))
    page.wait_for_function("document.querySelector('#gallery .caption-label') || "
                           "document.querySelector('#details').innerText.includes('not clear enough') || "
                           "document.querySelector('#status').innerText.includes('⚠') || "
                           "document.querySelector('#private-photo .private-error').innerText", timeout=TIMEOUT_MS)
    problem = page.locator("#private-photo .private-error").inner_text() or page.locator("#status").inner_text()
    assert "⚠" not in problem and "found" in page.locator("#status").inner_text().lower(), (photo.name, problem)
    if not page.locator("#gallery .caption-label").count():
        return []
    return [name for name, _ in captions(page)]


def test_no_request_carries_the_photo_and_the_same_people_are_found_as_in_server_mode(
        private_page, private_app, tmp_path):
    page, requests = private_page
    finder = private_app.finder
    for photo in photos(tmp_path):
        shown = search_privately(page, photo)
        first = finder.find(photo).faces[0]  # server mode's first face, left to right, as the page shows
        expected = [m.name for m in first.matches]
        if not first.searched:  # not clear enough to search: the same in both modes
            assert shown == [], (photo.name, shown)
            continue
        assert shown[0] == expected[0], (photo.name, shown, expected)
        assert len(set(shown) & set(expected)) >= 4, (photo.name, shown, expected)
    screenshot(page, tmp_path, "private-rotated-group.png")
    assert not [r.url for r in requests if "/upload" in r.url]
    sent = [(r.method, r.url) for r in requests if r.post_data_buffer and carries_image(r.post_data_buffer)]
    assert not sent, sent
    assert any(b'"vector"' in (r.post_data_buffer or b"") for r in requests)  # what was sent: the vectors


def test_a_sent_photo_would_be_caught():
    """The check above can fail: a JPEG in a multipart upload, and a PNG in a JSON data URL, are found."""
    jpeg, png = io.BytesIO(), io.BytesIO()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(jpeg, "JPEG")
    Image.new("RGB", (8, 8)).save(png, "PNG")
    assert carries_image(b"--b\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg.getvalue())
    assert carries_image(b'{"data": ["data:image/png;base64,' + base64.b64encode(png.getvalue()) + b'"]}')
    assert not carries_image(b'{"data": [{"faces": [{"box": [1, 2, 3, 4], "vector": [0.1]}]}]}')


def test_the_browser_finds_the_servers_boxes_and_vectors(private_page, pipeline, tmp_path):
    page, _ = private_page
    for photo in photos(tmp_path):
        data = base64.b64encode(photo.read_bytes()).decode()
        found = page.evaluate("""async (data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            return window.lookalikePrivate.faces(new Blob([bytes]));
        }""", data)
        expected = pipeline.faces(photo)
        assert len(found) == len(expected), (photo.name, len(found), len(expected))
        for ours, theirs in zip(found, expected, strict=True):
            assert iou(ours["box"], theirs.box) >= 0.95, (photo.name, ours["box"], theirs.box)
            assert abs(ours["probability"] - theirs.probability) < 0.01, photo.name
            cosine = float(np.dot(np.asarray(ours["vector"], np.float32), theirs.vector))
            assert cosine >= 0.99, (photo.name, cosine)


def test_the_boxed_photo_and_your_face_on_the_card_are_drawn_in_the_browser(private_page, tmp_path):
    from PIL import Image

    page, _ = private_page
    search_privately(page, image_files(FIVE_VAL / "madonna")[0])
    assert page.locator("#private-photo canvas.private-boxed").is_visible()
    assert page.locator("#boxed").is_hidden() and page.locator("#photo").is_hidden()
    page.locator("#compare img.card[data-completed]").wait_for(timeout=TIMEOUT_MS)
    card = page.locator("#compare img.card").get_attribute("src")
    picture = Image.open(io.BytesIO(base64.b64decode(card.split(",", 1)[1]))).convert("RGB")
    x, y, side = (int(v) for v in page.locator("#compare img.card").get_attribute("data-slot").split(","))
    slot = np.asarray(picture.crop((x, y, x + side, y + side)), np.float32)
    assert slot.std() > 20  # a face, not the blank the server left for it
    assert page.locator("#compare a.save-card").get_attribute("href") == card
    screenshot(page, tmp_path, "private-card.png")


def test_a_second_visit_downloads_no_model_bytes(private_page, private_app):
    page, _ = private_page  # the first visit: the models are in this context's cache
    info = page.evaluate("fetch('private/manifest.json').then((r) => r.json())")
    heavy = {private_app.url + m["url"] for m in info["models"].values()}
    heavy.add(private_app.url + info["ort"]["ort-wasm-simd-threaded.wasm"])
    second = page.context.new_page()
    requests = []
    second.on("request", lambda request: requests.append(request.url))
    second.goto(private_app.url)
    second.wait_for_function("window.lookalikePrivate && window.lookalikePrivate.loaded()", timeout=TIMEOUT_MS)
    assert "downloading" not in second.locator("#private-photo .private-text").inner_text()
    assert not heavy & set(requests), heavy & set(requests)
    cached = second.evaluate("""async () => {
        const out = [];
        for (const name of await caches.keys()) {
            for (const request of await (await caches.open(name)).keys()) out.push(request.url);
        }
        return out;
    }""")
    assert set(cached) == heavy, cached  # the models and the runtime, nothing of a photo or a result
    second.close()


def test_without_its_models_the_page_searches_on_the_server_and_says_why(browser, private_app, tmp_path):
    context = browser.new_context(**DESKTOP)
    context.route(re.compile(r".*/private/models/.*"), lambda route: route.abort())
    try:
        page = context.new_page()
        page.goto(private_app.url)
        page.wait_for_function("window.lookalikePrivate && window.lookalikePrivate.mode() === 'server'",
                               timeout=TIMEOUT_MS)
        line = page.locator("#private-photo .private-text").inner_text()
        assert "Private mode is unavailable" in line and "could not be downloaded" in line, line
        page.locator("#photo input[type=file]").set_input_files(str(image_files(FIVE_VAL / "madonna")[0]))
        page.locator("#photo img").first.wait_for(timeout=TIMEOUT_MS)
        page.locator("#find").click()
        assert captions(page)
        screenshot(page, tmp_path, "private-fallback.png")
    finally:
        context.close()


def test_live_mode_in_private_mode_follows_the_camera_without_sending_frames(playwright, private_app, app_index,
                                                                             tmp_path):
    """The fake camera shows Madonna for 3 s, then Jerry Seinfeld, in a loop: the gallery follows by itself.
    (Elton John's letterboxed frame is a small face that the stand-in weights cannot tell apart.)"""
    photos = [app_index.photos["madonna"][0], app_index.photos["jerry-seinfeld"][0]]
    browser, page = camera_browser(playwright, photos, tmp_path, frames_each=90)
    requests = []
    page.on("request", lambda request: requests.append(request))
    try:
        page.goto(private_app.url)
        page.wait_for_function("window.lookalikePrivate && window.lookalikePrivate.loaded()", timeout=TIMEOUT_MS)
        page.get_by_role("tab", name="Live").click()
        page.locator("#private-live .private-live-toggle").click()
        firsts: set[str] = set()
        for _ in range(400):
            names = page.locator("#live-gallery .caption-label").all_inner_texts()
            if names:
                firsts.add(names[0].split(" — ")[0])
            if {"Madonna", "Jerry Seinfeld"} <= firsts:
                break
            page.wait_for_timeout(300)
        assert {"Madonna", "Jerry Seinfeld"} <= firsts, firsts
        assert "Live: 1 face" in page.locator("#live-status").inner_text()
        assert not [r.url for r in requests if "/upload" in r.url or "/stream" in r.url]
        assert not [r.url for r in requests if r.post_data_buffer and carries_image(r.post_data_buffer)]
        screenshot(page, tmp_path, "private-live.png")
    finally:
        browser.close()
