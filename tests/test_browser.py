"""The app in a real browser: Debian's chromium driven by Playwright, against the app of fixtures_app.

Screenshots go to the test's tmp_path and are copied to test-output/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import io
import re
import shutil
import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
CAPTION = re.compile(r"^(.+) — (\d{1,3}) %$")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
TIMEOUT_MS = 120_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


def open_browser(playwright, *extra: str):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*ARGS, *extra])


def screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    OUTPUT.mkdir(exist_ok=True)
    shutil.copy(path, OUTPUT / name)
    return path


def captions(root, gallery: str = "#gallery") -> list[tuple[str, int]]:
    """The (name, percent) of every gallery tile, waiting for the gallery to fill."""
    root.locator(f"{gallery} .caption-label").first.wait_for(timeout=TIMEOUT_MS)
    texts = root.locator(f"{gallery} .caption-label").all_inner_texts()
    parsed = [CAPTION.match(t.strip()) for t in texts]
    assert texts and all(parsed), texts
    return [(m.group(1), int(m.group(2))) for m in parsed]


def upload_and_find(root, photo: Path) -> None:
    root.locator("#photo input[type=file]").set_input_files(str(photo))
    root.locator("#photo img").first.wait_for(timeout=TIMEOUT_MS)
    root.locator("#find").click()


def test_upload_shows_boxes_and_a_gallery_with_names_and_percentages(playwright, app_server, app_index, tmp_path):
    browser = open_browser(playwright)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app_server.url)
        assert "python -m indexing" not in page.locator("#banner").inner_text()
        upload_and_find(page, app_index.photos["madonna"][0])
        shown = captions(page)
        assert len(shown) == 5 and shown[0][0] == "Madonna" and shown[0][1] >= 99
        assert [p for _, p in shown] == sorted((p for _, p in shown), reverse=True)
        assert "Found 1 face" in page.locator("#status").inner_text()
        page.locator("#boxed img").first.wait_for(timeout=TIMEOUT_MS)
        assert "photos are never stored" in page.locator("#credits").inner_text()
        assert screenshot(page, tmp_path, "upload.png").stat().st_size > 10_000
    finally:
        browser.close()


def test_several_faces_can_be_picked(playwright, app_server, tmp_path):
    from conftest import MULTIFACE

    browser = open_browser(playwright)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app_server.url)
        upload_and_find(page, MULTIFACE)
        first = captions(page)
        assert "Found 6 faces" in page.locator("#status").inner_text()
        page.locator("#face-picker label", has_text="Face 6").click()
        page.wait_for_function(
            "(before) => [...document.querySelectorAll('#gallery .caption-label')].map(e => e.innerText.trim())"
            ".join('|') !== before", arg="|".join(f"{n} — {p} %" for n, p in first), timeout=TIMEOUT_MS)
        assert captions(page) != first
        screenshot(page, tmp_path, "multiface.png")
    finally:
        browser.close()


def fake_camera(photo: Path, folder: Path) -> Path:
    """An MJPEG file (concatenated 640x480 JPEGs) of ``photo`` for chromium's fake webcam."""
    from PIL import Image

    image = Image.open(photo).convert("RGB")
    image.thumbnail((640, 480))
    frame = Image.new("RGB", (640, 480), (128, 128, 128))
    frame.paste(image, ((640 - image.width) // 2, (480 - image.height) // 2))
    buffer = io.BytesIO()
    frame.save(buffer, "JPEG", quality=90)
    path = folder / "face.mjpeg"
    path.write_bytes(buffer.getvalue() * 10)
    return path


def camera_browser(playwright, app_index, tmp_path):
    mjpeg = fake_camera(app_index.photos["madonna"][0], tmp_path)
    browser = open_browser(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                           f"--use-file-for-fake-video-capture={mjpeg}")
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, permissions=["camera"])
    return browser, context.new_page()


def test_webcam_snapshot_with_a_fake_camera(playwright, app_server, app_index, tmp_path):
    browser, page = camera_browser(playwright, app_index, tmp_path)
    try:
        page.goto(app_server.url)
        page.locator("#photo button[aria-label='Capture from camera']").click()
        page.get_by_text("Click to Access Webcam").click()
        page.locator("#photo button[aria-label='capture photo']").click(timeout=TIMEOUT_MS)
        page.locator("#photo img").first.wait_for(timeout=TIMEOUT_MS)
        page.locator("#find").click()
        shown = captions(page)
        assert "Found 1 face" in page.locator("#status").inner_text()
        assert "Madonna" in [name for name, _ in shown]  # the camera shows an indexed photo of her
        screenshot(page, tmp_path, "webcam.png")
    finally:
        browser.close()


def test_live_mode_refreshes_matches_by_itself(playwright, app_server, app_index, tmp_path):
    browser, page = camera_browser(playwright, app_index, tmp_path)
    try:
        page.goto(app_server.url)
        page.get_by_role("tab", name="Live").click()
        page.locator("#live-cam").get_by_text("Click to Access Webcam").click()
        page.locator("#live-cam button", has_text="Record").first.click(timeout=TIMEOUT_MS)  # starts streaming
        shown = captions(page, "#live-gallery")
        assert "Madonna" in [name for name, _ in shown]
        assert "Live: 1 face" in page.locator("#live-status").inner_text()
        screenshot(page, tmp_path, "live.png")
    finally:
        browser.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_app_embedded_in_an_iframe_answers_an_upload(playwright, app_server, app_index, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        "<!doctype html><html><body><h1>My blog</h1>"
        f'<iframe id="lookalike" src="{app_server.url}" width="1200" height="1800" frameborder="0"></iframe>'
        "</body></html>")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    browser = open_browser(playwright)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        frame = page.frame_locator("#lookalike")
        frame.locator("#find").wait_for(timeout=TIMEOUT_MS)
        upload_and_find(frame, app_index.photos["elton-john"][0])
        shown = captions(frame)
        assert shown[0][0] == "Elton John"
        screenshot(page, tmp_path, "iframe.png")
    finally:
        browser.close()
        server.shutdown()


def test_match_shows_its_biography(playwright, app_server, tmp_path):
    import datasets

    from fixtures_app import BIOS

    rows = datasets.load_dataset(str(BIOS), split="train").cast_column("image", datasets.Image(decode=False))
    row = next(r for r in rows if r["name"] == "Tony Blair")
    assert row["biography"]
    photo = tmp_path / "tony_blair.jpg"
    photo.write_bytes(row["image"]["bytes"])
    browser = open_browser(playwright)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app_server.url)
        assert row["biography"] not in page.content()
        upload_and_find(page, photo)
        shown = captions(page)
        assert shown[0][0] == "Tony Blair" and shown[0][1] >= 99
        details = page.locator("#details")
        details.get_by_text(row["biography"], exact=False).first.wait_for(timeout=TIMEOUT_MS)
        text = details.inner_text()
        assert "Tony Blair" in text and row["biography"] in text
        screenshot(page, tmp_path, "biography.png")
    finally:
        browser.close()
