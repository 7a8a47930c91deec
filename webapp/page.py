"""The page: a photo or webcam snapshot in, every face boxed and numbered in place of the photo, a gallery
of look-alikes, your face beside the picked look-alike with a card to save; a live webcam tab; the public
``/lookalike`` endpoint (also the MCP tool ``find_lookalikes``).

Layout: two columns on a desktop (the photo left, the results right), one column on a phone, where the
results follow the one photo directly. The page's own events are private.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from lookalike.search import LookalikeFinder
from webapp.finders import FinderHolder
from webapp.handlers import MAX_TOP_K, LookalikeUI

log = logging.getLogger(__name__)

TITLE = "Celebrity look-alike"
CREDITS = (
    "Celebrity photos and biographies: the Hugging Face datasets "
    "[ashraq/tmdb-celeb-10k](https://huggingface.co/datasets/ashraq/tmdb-celeb-10k) and "
    "[ashraq/tmdb-people-image](https://huggingface.co/datasets/ashraq/tmdb-people-image) (data from TMDB; this product "
    "uses the TMDB API but is not endorsed or certified by TMDB), "
    "[tonyassi/celebrity-1000](https://huggingface.co/datasets/tonyassi/celebrity-1000) and "
    "[lansinuote/simple_facenet](https://huggingface.co/datasets/lansinuote/simple_facenet). "
    "Faces: [facenet-pytorch](https://github.com/timesler/facenet-pytorch) (MTCNN, InceptionResnetV1 "
    "VGGFace2). Search: [Qdrant](https://qdrant.tech)."
)
PRIVACY = (
    "Privacy: your photo is sent to this server for one search, decoded in memory and the uploaded file "
    "deleted as soon as the search is done. The boxed copy shown to you sits in the server's temporary "
    "cache until it is swept (within 3 minutes); your face crops stay in the server's memory only while "
    "this page is open (at most 10 minutes). Nothing of it is logged or saved in your browser, and the "
    "result card is made in memory and handed to your browser, never stored on the server."
)
API_DESCRIPTION = (
    "Find the celebrities each face in a photo looks like. Returns JSON: {'faces': [{'box': [x1, y1, x2, y2], "
    "'probability': p, 'searched': bool (false: the detector was not sure enough, no matches), "
    "'no_close_match': bool (true: even the best match is under the app's likeness threshold; the nearest "
    "are still listed), 'matches': [{'name', 'person_id', 'score' (cosine, -1..1), 'likeness' (0..100, "
    "the % shown to people), 'similarity' (likeness / 100), 'metadata', 'sources', 'point_id'}]}]} with faces "
    "left to right and matches best first, or {'error': sentence, 'reason': slug} when the photo cannot be "
    "used (no_face, not_an_image, image_too_large, empty_index, index_filling (an empty index being filled: retry later), store_unavailable, model_mismatch, "
    "no_one_matches_filters, bad_filter). Optional filters: gender ('female', 'male', 'non-binary') and "
    "department (e.g. 'Acting'), where the index has that metadata, and well_known_only (default true: "
    "well-known people only; false: everyone in the index)."
)
CSS = """
#boxed img, #photo img { object-fit: contain; }
#gallery .grid-wrap, #live-gallery .grid-wrap { height: auto !important; max-height: none !important;
  min-height: 0 !important; overflow: visible !important; }
#gallery .caption-label { white-space: normal !important; overflow: visible !important;
  text-overflow: clip !important; max-width: 100% !important; line-height: 1.2; }
.compare { display: flex; flex-direction: column; align-items: center; gap: 6px; }
.compare img.card { width: 100%; max-width: 560px; height: auto; border-radius: 8px; }
.compare p { margin: 0; text-align: center; }
.compare a.save-card { font-weight: 600; }
@media (max-width: 640px) {
  #gallery .grid-container, #live-gallery .grid-container { --grid-cols: 2 !important;
    grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
  #title h1 { font-size: 1.4rem; margin: 0; }
}
"""
FRONT_CAMERA = gr.WebcamOptions(mirror=True, constraints={
    "video": {"facingMode": "user", "width": {"ideal": 1280}, "height": {"ideal": 960}}})
"""Phones open their front (selfie) camera; desktops their only one."""


def build_app(finders: FinderHolder | LookalikeFinder | None) -> gr.Blocks:
    """The whole app as a ``gr.Blocks`` with its queue configured; launch it with
    :func:`webapp.wiring.launch_kwargs`. ``finders``: a :class:`FinderHolder` (or a finder)."""
    ui = LookalikeUI(finders)
    start_banner = ui.banner()  # checks the index once at start-up (and logs what it found)
    if start_banner:
        log.warning("index check at start-up: %s", start_banner.strip("> ⚠️*"))
    choices = ui.filter_choices() if not start_banner else {}
    with gr.Blocks(title=TITLE, delete_cache=(60, 120), analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\nWhich celebrities do you look like? Every face in the photo gets its own "
                    "matches.", elem_id="title")
        banner = gr.Markdown(start_banner, elem_id="banner")
        with gr.Tabs():
            with gr.Tab("Photo", id="photo-tab"):
                tab = _photo_tab(ui, choices)
            with gr.Tab("Live", id="live"):
                live = _live_tab()
        gr.Markdown(f"<small>{CREDITS}<br>{PRIVACY}</small>", elem_id="credits")
        _public_api(demo, ui)
        _photo_events(ui, tab)
        # No trigger_mode: with "always_last" Gradio 6.31 runs a webcam stream's handler on its first frame
        # only. Without it a stream sends its next frame when the handler is free (docs/decisions/webapp.md).
        live.cam.stream(ui.live, [live.cam, *tab.filters], live.outputs, api_visibility="private", stream_every=1.0,
                        concurrency_limit=1, concurrency_id="live", show_progress="hidden", time_limit=300)
        demo.load(ui.banner, None, banner, api_visibility="private", queue=False)
        # While the index is being filled in the background, the banner shows the progress every 2 s.
        filling = gr.Timer(2.0, active=ui.finders.fill_progress() is not None)
        filling.tick(ui.fill_tick, None, [banner, filling], api_visibility="private", queue=False)
    demo.queue(default_concurrency_limit=2, max_size=16)
    return demo


@dataclass
class PhotoTab:
    """The photo tab's components: the inputs, the options and what a search fills in."""

    photo: gr.Image
    boxed: gr.Image
    go: gr.Button
    again: gr.Button
    top_k: gr.Slider
    gender: gr.Dropdown
    department: gr.Dropdown
    well_known: gr.Checkbox
    status: gr.Markdown
    picker: gr.Radio
    gallery: gr.Gallery
    compare: gr.HTML
    details: gr.Markdown
    faces: gr.State

    @property
    def filters(self) -> list[gr.components.Component]:
        """The options a search takes after the photo: matches per face, gender, department, well-known."""
        return [self.top_k, self.gender, self.department, self.well_known]

    @property
    def results(self) -> list[gr.components.Component]:
        """What a search (and "New photo") updates, in :meth:`LookalikeUI.submit`'s order."""
        return [self.photo, self.boxed, self.again, self.status, self.picker, self.gallery, self.compare,
                self.details, self.faces, self.go]


@dataclass
class LiveTab:
    """The live tab's webcam stream and what each frame's search fills in."""

    cam: gr.Image
    outputs: list[gr.components.Component]


def _photo_tab(ui: LookalikeUI, choices: dict[str, list[tuple[str, Any]]]) -> PhotoTab:
    """The photo tab: the photo and options left, the results right (one column on a phone)."""
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            photo = gr.Image(sources=["upload", "webcam", "clipboard"], type="filepath",
                             label="Your photo (upload or webcam snapshot)", elem_id="photo",
                             format="jpeg", webcam_options=FRONT_CAMERA, height=420)
            photo.preprocess = _raw_path  # type: ignore[method-assign]
            boxed = gr.Image(label="Faces found", interactive=False, format="jpeg", elem_id="boxed",
                             visible=False, height=420)
            with gr.Row():
                go = gr.Button("Find look-alikes", variant="primary", elem_id="find")
                again = gr.Button("New photo", elem_id="new-photo", visible=False)
            with gr.Accordion("Options", open=False, elem_id="options"):
                top_k = gr.Slider(1, MAX_TOP_K, value=ui.default_top_k, step=1, label="Matches per face",
                                  elem_id="top-k")
                gender = gr.Dropdown(choices=choices.get("gender", [("Anyone", "")]), value="",
                                     label="Gender", elem_id="gender", visible="gender" in choices)
                department = gr.Dropdown(choices=choices.get("department", [("Any field", "")]),
                                         value="", label="Known for", elem_id="department",
                                         visible="department" in choices)
                well_known = gr.Checkbox(value=True, label="Well-known people only",
                                         info="Untick to search everyone in the index, "
                                              "film crews and little-known people too.",
                                         elem_id="well-known")
        with gr.Column(min_width=300):
            status = gr.Markdown(elem_id="status")
            picker = gr.Radio(label="Face", choices=[], visible=False, elem_id="face-picker")
            gallery = gr.Gallery(label="Look-alikes (pick one to compare)", columns=3, height="auto",
                                 object_fit="cover", allow_preview=False, elem_id="gallery")
            compare = gr.HTML(elem_id="compare")
            details = gr.Markdown(elem_id="details")
    faces = gr.State([], time_to_live=600)
    return PhotoTab(photo, boxed, go, again, top_k, gender, department, well_known, status, picker, gallery,
                    compare, details, faces)


def _live_tab() -> LiveTab:
    """The live tab: the webcam beside its boxed frame, the largest face's matches below."""
    gr.Markdown("Start the webcam: the matches refresh about once a second (frames are dropped "
                "while a search runs, never queued).")
    with gr.Row(equal_height=False):
        cam = gr.Image(sources=["webcam"], streaming=True, type="pil", label="Webcam",
                       elem_id="live-cam", webcam_options=FRONT_CAMERA)
        boxed = gr.Image(label="Faces found", interactive=False, format="jpeg", elem_id="live-boxed")
    status = gr.Markdown(elem_id="live-status")
    gallery = gr.Gallery(label="Look-alikes of the largest face", columns=5, height="auto",
                         object_fit="cover", allow_preview=False, elem_id="live-gallery")
    details = gr.Markdown(elem_id="live-details")
    return LiveTab(cam, [boxed, status, gallery, details])


def _photo_events(ui: LookalikeUI, tab: PhotoTab) -> None:
    """The photo tab's private events: search, new photo, pick a face, pick a match."""
    tab.go.click(ui.submit, [tab.photo, *tab.filters], tab.results,
                 api_visibility="private", concurrency_id="search", trigger_mode="once")
    tab.again.click(ui.new_photo, None, tab.results, api_visibility="private", queue=False)
    tab.picker.input(ui.pick_face, [tab.picker, tab.faces], [tab.gallery, tab.compare, tab.details],
                     api_visibility="private", queue=False)
    tab.gallery.select(ui.pick_match, [tab.picker, tab.faces], tab.compare, api_visibility="private", queue=False)


def _public_api(demo: gr.Blocks, ui: LookalikeUI) -> None:
    """The public API (and MCP tool find_lookalikes): a photo in, JSON out, typed by the signature below.

    ``gr.api``, not hidden components: each REST call builds a session of every component. It hands the
    upload's FileData and the raw values over unprocessed (the handler checks them) and still refuses a
    file outside Gradio's upload folder. A client that leaves top_k out gets the app's setting.
    """
    def find_lookalikes(photo: FileData, top_k: int = ui.default_top_k, gender: str = "",
                        department: str = "", well_known_only: bool = True,
                        request: gr.Request = None) -> dict[str, Any]:
        try:
            return ui.find_lookalikes(photo, top_k, gender, department, well_known_only)
        finally:
            _forget_session(demo, request)

    find_lookalikes.__doc__ = ui.find_lookalikes.__doc__  # the MCP tool's description and arguments
    gr.api(find_lookalikes, api_name="lookalike", api_description=API_DESCRIPTION, concurrency_id="search")


def _forget_session(demo: gr.Blocks, request: gr.Request | None) -> None:
    """Drop the session Gradio made for an API call. Each REST or MCP call gets a new one, holding a copy of
    every component's configuration, and Gradio keeps up to 10,000 of them, so memory would grow with every
    call (``bench/RESULTS.md``, "Public traffic"). The call holds its session until it ends; the page's own
    sessions are left alone."""
    holder = getattr(demo, "state_holder", None)
    session = getattr(request, "session_hash", None)
    if holder is None or session is None:
        return
    with holder.lock:
        holder.session_data.pop(session, None)
        holder.time_last_used.pop(session, None)


def _raw_path(payload):
    """The preprocessing of the page's photo components: the raw upload path, undecoded.

    Gradio's own ``gr.Image`` preprocessing opens the file with PIL before any handler runs, so a file
    that is not an image fails with a generic error; with this the path is passed on and our code
    decodes it. (Set on the instance: subclassing a component makes Gradio write a ``.pyi`` next to
    this module.)
    """
    if payload is None:
        return None
    url = getattr(payload, "url", None)
    if url and url.startswith("data:"):
        import base64

        return base64.b64decode(url.split(",", 1)[1]) if "," in url else b""
    return payload.path
