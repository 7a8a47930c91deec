"""The app in a real browser: Debian's chromium driven by Playwright, against the app of fixtures_app, at a
desktop (1280x900) and a phone (390x844) viewport, in server mode (the page sends the photo; private mode,
where it does not, is tests/test_private_mode.py's).

Screenshots go to the test's tmp_path and are copied to test-output/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
import time

import pytest

from conftest import MULTIFACE
from fixtures_app import TEST_DATA, bio_photo, bio_row, bios_rows, cartoon_face
from support import (
    CHROMIUM,
    OUTPUT,
    SERVER_MODE,
    TIMEOUT_MS,
    box,
    camera_browser,
    captions,
    new_page,
    screenshot,
    upload_and_find,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium, or python -m playwright "
                                                "install chromium"),
]


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_upload_shows_one_boxed_photo_then_a_compact_gallery_with_readable_names(browser, app_server, app_index,
                                                                                 tmp_path, viewport):
    page = new_page(browser, viewport)
    page.goto(app_server.url + SERVER_MODE)
    assert "python -m indexing" not in page.locator("#banner").inner_text()
    upload_and_find(page, app_index.photos["madonna"][0])
    shown = captions(page)
    assert len(shown) == 5 and shown[0][0] == "Madonna" and shown[0][1] >= 99
    assert [p for _, p in shown] == sorted((p for _, p in shown), reverse=True)
    assert "Found 1 face" in page.locator("#status").inner_text()
    page.locator("#boxed img").first.wait_for(timeout=TIMEOUT_MS)
    page.locator("#compare img.card").wait_for(timeout=TIMEOUT_MS)
    screenshot(page, tmp_path, f"upload-{viewport}.png")
    # one photo: the boxed copy stands in place of the input, which is hidden
    assert page.locator("#photo").is_hidden() and page.locator("#boxed").is_visible()
    assert page.locator("#new-photo").is_visible()
    # names are readable in full: no caption is cut
    cut = page.locator("#gallery .caption-label").evaluate_all(
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => [e.innerText, e.scrollWidth, "
        "e.clientWidth, getComputedStyle(e).whiteSpace, e.parentElement.className])")
    assert not cut, cut
    # the gallery is as tall as its rows (no empty area under them)
    tiles = page.locator("#gallery .thumbnail-item").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom]; })")
    rows_bottom = max(b for _, b in tiles) + page.evaluate("window.scrollY")
    gallery = box(page, "#gallery")
    assert gallery["bottom"] - rows_bottom < 60, (gallery, rows_bottom)
    # the first match follows the photo: on a phone directly under it, on a desktop beside it
    first_tile = box(page, "#gallery .thumbnail-item")
    photo = box(page, "#boxed")
    if viewport == "phone":
        assert first_tile["top"] < photo["bottom"] + 400, (first_tile, photo)
    else:
        assert first_tile["top"] < 900, first_tile  # in the first screen, beside the photo
    # your face beside the best match, and a privacy line that says what happens to the photo
    page.locator("#compare img.card").wait_for(timeout=TIMEOUT_MS)
    privacy = page.locator("#credits").inner_text()
    assert "deleted as soon as the search is done" in privacy and "never stored" in privacy
    assert screenshot(page, tmp_path, f"upload-{viewport}.png").stat().st_size > 10_000


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_pick_a_match_to_see_it_beside_your_face_and_save_the_card(browser, app_server, tmp_path, viewport):
    page = new_page(browser, viewport, accept_downloads=True)
    page.goto(app_server.url + SERVER_MODE)
    upload_and_find(page, bio_photo(tmp_path, "Tony Blair"))
    shown = captions(page)
    assert shown[0][0] == "Tony Blair" and shown[0][1] >= 99
    compare = page.locator("#compare")
    compare.locator("img.card").wait_for(timeout=TIMEOUT_MS)
    assert "Tony Blair" in compare.inner_text()
    biography = bio_row("Tony Blair")["biography"]
    assert biography[:40] in compare.inner_text()
    second = shown[1][0]
    page.locator("#gallery .thumbnail-item").nth(1).click()
    page.wait_for_function("(name) => document.querySelector('#compare .who') && "
                           "document.querySelector('#compare .who').innerText.includes(name)", arg=second,
                           timeout=TIMEOUT_MS)
    assert f"beside {second}" in compare.locator("img.card").get_attribute("alt")
    link = compare.locator("a.save-card")
    assert link.get_attribute("href").startswith("data:image/png;base64,")  # made here, no server address
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        link.click()
    saved = tmp_path / "card.png"
    download.value.save_as(saved)
    from PIL import Image

    assert Image.open(saved).format == "PNG" and download.value.suggested_filename.startswith("lookalike-")
    screenshot(page, tmp_path, f"compare-{viewport}.png")
    shutil.copy(saved, OUTPUT / f"card-{viewport}.png")


def test_several_faces_can_be_picked(browser, app_server, tmp_path):
    page = new_page(browser)
    page.goto(app_server.url + SERVER_MODE)
    upload_and_find(page, MULTIFACE)
    first = captions(page)
    assert "Found 6 faces" in page.locator("#status").inner_text()
    page.locator("#face-picker label", has_text="Face 6").click()
    page.wait_for_function(
        "(before) => [...document.querySelectorAll('#gallery .caption-label')].map(e => e.innerText.trim())"
        ".join('|') !== before", arg="|".join(f"{n} — {p} %" for n, p in first), timeout=TIMEOUT_MS)
    assert captions(page) != first
    screenshot(page, tmp_path, "multiface.png")
    page.locator("#new-photo").click()  # back to an empty photo input
    page.locator("#photo input[type=file]").wait_for(state="attached", timeout=TIMEOUT_MS)
    assert page.locator("#photo").is_visible() and page.locator("#boxed").is_hidden()


def test_filters_in_the_page_keep_only_those_people(browser, app_server, tmp_path):
    women = {r["name"] for r in bios_rows() if r["gender"] == 1}
    page = new_page(browser, "phone")
    page.goto(app_server.url + SERVER_MODE)
    page.locator("#options").get_by_text("Options").click()
    page.locator("#gender input").click()
    page.get_by_role("option", name="Women").click()
    upload_and_find(page, bio_photo(tmp_path, "Tony Blair"))
    shown = captions(page)
    assert shown and {name for name, _ in shown} <= women, shown
    screenshot(page, tmp_path, "filters-phone.png")


def test_a_drawn_face_is_not_searched_in_the_page(browser, app_server, tmp_path):
    page = new_page(browser)
    page.goto(app_server.url + SERVER_MODE)
    upload_and_find(page, cartoon_face(tmp_path / "cartoon.png"))
    page.locator("#details").get_by_text("not clear enough to search").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#gallery .thumbnail-item").count() == 0
    screenshot(page, tmp_path, "cartoon.png")


def test_no_close_match_is_said_and_the_nearest_still_shown(browser, pipeline, app_index, tmp_path):
    from fixtures_app import app_finder, launch

    strict = launch(app_finder(pipeline, app_index.store, min_likeness=99.5))  # only the same photo passes
    try:
        page = new_page(browser, "phone")
        page.goto(strict.url + SERVER_MODE)
        upload_and_find(page, sorted((TEST_DATA / "five_celebs" / "val" / "madonna").glob("*.jpg"))[0])
        shown = captions(page)
        assert shown and all(percent < 99.5 for _, percent in shown)
        assert "No close match" in page.locator("#details").inner_text()
        screenshot(page, tmp_path, "no-close-match-phone.png")
    finally:
        strict.demo.close()


def test_nothing_of_a_search_is_kept_in_the_browser(browser, app_server, app_index, tmp_path):
    page = new_page(browser)
    page.goto(app_server.url + SERVER_MODE)
    upload_and_find(page, app_index.photos["elton-john"][0])
    captions(page)
    page.wait_for_timeout(1000)
    stored = page.evaluate("""async () => ({
        local: Object.keys(localStorage).map(k => [k, localStorage.getItem(k).length]),
        session: Object.keys(sessionStorage).map(k => [k, sessionStorage.getItem(k).length]),
        databases: (await indexedDB.databases()).map(d => d.name)})""")
    assert not stored["databases"], stored
    assert all(size < 2000 for _, size in stored["local"] + stored["session"]), stored  # no photo, no result
    assert page.locator("footer a[href*='runs']").count() == 0


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_webcam_snapshot_opens_the_front_camera(playwright, app_server, app_index, tmp_path, viewport):
    browser, page = camera_browser(playwright, [app_index.photos["madonna"][0]], tmp_path, viewport)
    try:
        page.goto(app_server.url + SERVER_MODE)
        page.locator("#photo button[aria-label='Capture from camera']").click()
        page.get_by_text("Click to Access Webcam").click()
        page.locator("#photo button[aria-label='capture photo']").click(timeout=TIMEOUT_MS)
        page.locator("#photo img").first.wait_for(timeout=TIMEOUT_MS)
        constraints = page.evaluate("window.__mediaConstraints")
        assert constraints and all(c["video"]["facingMode"] == "user" for c in constraints), constraints
        page.locator("#find").click()
        shown = captions(page)
        assert "Found 1 face" in page.locator("#status").inner_text()
        assert "Madonna" in [name for name, _ in shown]  # the camera shows an indexed photo of her
        screenshot(page, tmp_path, f"webcam-{viewport}.png")
    finally:
        browser.close()


def test_live_mode_updates_the_gallery_with_each_new_frame(playwright, app_server, app_index, tmp_path):
    """The fake camera shows Madonna for 3 s, then Elton John for 3 s, in a loop: the live gallery must
    follow, by itself, from one to the other."""
    photos = [app_index.photos["madonna"][0], app_index.photos["elton-john"][0]]
    browser, page = camera_browser(playwright, photos, tmp_path, frames_each=90)
    try:
        page.goto(app_server.url + SERVER_MODE)
        page.get_by_role("tab", name="Live").click()
        page.locator("#live-cam").get_by_text("Click to Access Webcam").click()
        page.locator("#live-cam button", has_text="Record").first.click(timeout=TIMEOUT_MS)  # starts streaming
        captions(page, "#live-gallery")
        seen: list[tuple[str, ...]] = []  # each distinct gallery, in the order they appeared
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # no click: the gallery must change by itself with the frames
            names = tuple(page.locator("#live-gallery .caption-label").all_inner_texts())
            if names and (not seen or names != seen[-1]):
                seen.append(names)
            firsts = {n[0].split(" — ")[0] for n in seen}
            if {"Madonna", "Elton John"} <= firsts:
                break
            page.wait_for_timeout(300)
        firsts = [n[0].split(" — ")[0] for n in seen]
        assert "Madonna" in firsts and "Elton John" in firsts, seen  # each frame's own person comes first
        assert "Live: 1 face" in page.locator("#live-status").inner_text()
        screenshot(page, tmp_path, "live.png")
    finally:
        browser.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_app_embedded_in_an_iframe_answers_an_upload(browser, app_server, app_index, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        "<!doctype html><html><body><h1>My blog</h1>"
        f'<iframe id="lookalike" src="{app_server.url}{SERVER_MODE}" width="1200" height="1800" '
        'frameborder="0"></iframe>'
        "</body></html>")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = new_page(browser)
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        frame = page.frame_locator("#lookalike")
        frame.locator("#find").wait_for(timeout=TIMEOUT_MS)
        upload_and_find(frame, app_index.photos["elton-john"][0])
        shown = captions(frame)
        assert shown[0][0] == "Elton John"
        screenshot(page, tmp_path, "iframe.png")
    finally:
        server.shutdown()


def test_match_shows_its_biography(browser, app_server, tmp_path):
    row = bio_row("Tony Blair")
    assert row["biography"]
    page = new_page(browser)
    page.goto(app_server.url + SERVER_MODE)
    assert row["biography"] not in page.content()
    upload_and_find(page, bio_photo(tmp_path, "Tony Blair"))
    shown = captions(page)
    assert shown[0][0] == "Tony Blair" and shown[0][1] >= 99
    details = page.locator("#details")
    details.get_by_text(row["biography"], exact=False).first.wait_for(timeout=TIMEOUT_MS)
    text = details.inner_text()
    assert "Tony Blair" in text and row["biography"] in text
    screenshot(page, tmp_path, "biography.png")


def test_a_photo_over_the_upload_limit_is_refused_in_the_page_with_the_limit_named(browser, pipeline, app_index,
                                                                                    tmp_path):
    from fixtures_app import app_finder, launch
    from webapp.settings import AppSettings

    small = launch(app_finder(pipeline, app_index.store), traffic=AppSettings(max_upload_mb=0.25))
    try:
        photo = tmp_path / "big.jpg"  # a real photo with padding after its end: 0.3 MB
        photo.write_bytes(bio_photo(tmp_path, "Angelina Jolie").read_bytes().ljust(300_000, b"\0"))
        page = new_page(browser)
        page.goto(small.url + SERVER_MODE)
        page.locator("#photo input[type=file]").set_input_files(str(photo))
        page.get_by_text(re.compile(r"exceed the maximum allowed size of 256")).first.wait_for(timeout=TIMEOUT_MS)
        assert page.locator("#photo img").count() == 0  # nothing was taken
        screenshot(page, tmp_path, "upload-over-the-limit.png")
    finally:
        small.demo.close()
