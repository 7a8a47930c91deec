"""The page: a photo or webcam snapshot in, every face boxed and numbered in place of the photo, a gallery
of look-alikes, your face beside the picked look-alike with a card to save; a live webcam tab; the public
API beside it (:mod:`webapp.api`).

Layout: two columns on a desktop (the photo left, the results right), one column on a phone, where the
results follow the one photo directly. The page's own events are private.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr

from lookalike.filters import declared
from lookalike.search import LookalikeFinder
from webapp import api
from webapp.finders import FinderHolder
from webapp.gradio_internals import event_data, keep_queue_analytics_small, pass_raw_upload
from webapp.handlers import LookalikeUI
from webapp.options import MAX_TOP_K
from webapp.private import BUNDLE, PrivateAssets, attach

log = logging.getLogger(__name__)

TITLE = "Celebrity look-alike"
CREDITS = (
    "Celebrity photos and biographies: the Hugging Face datasets "
    "[ashraq/tmdb-celeb-10k](https://huggingface.co/datasets/ashraq/tmdb-celeb-10k) and "
    "[ashraq/tmdb-people-image](https://huggingface.co/datasets/ashraq/tmdb-people-image) (data from TMDB; this "
    "product "
    "uses the TMDB API but is not endorsed or certified by TMDB), "
    "[tonyassi/celebrity-1000](https://huggingface.co/datasets/tonyassi/celebrity-1000) and "
    "[lansinuote/simple_facenet](https://huggingface.co/datasets/lansinuote/simple_facenet). "
    "Faces: [facenet-pytorch](https://github.com/timesler/facenet-pytorch) (MTCNN, InceptionResnetV1 "
    "VGGFace2). Search: [Qdrant](https://qdrant.tech)."
)
PRIVACY = (
    "Privacy, private mode (the default wherever your browser can run it): your photo never leaves this "
    "device. Its faces are found and embedded in your browser, and only each face's box and its 512-number "
    "face vector are sent, for one search; nothing of them is logged or stored. The face models are "
    "downloaded from this app once and kept in your browser's cache. Server mode: your photo is sent to "
    "this server for one search, decoded in memory and the uploaded file "
    "deleted as soon as the search is done. The boxed copy shown to you sits in the server's temporary "
    "cache until it is swept (within 3 minutes); your face crops stay in the server's memory only while "
    "this page is open (at most 10 minutes). Nothing of it is logged or saved in your browser, and the "
    "result card is made in memory and handed to your browser, never stored on the server."
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
body.lookalike-private #photo, body.lookalike-private #find, body.lookalike-private #boxed,
body.lookalike-private #new-photo, body.lookalike-private #live-cam, body.lookalike-private #live-boxed,
body:not(.lookalike-private) .private-only { display: none !important; }
.private-line { margin: 0 0 8px; font-size: 0.9rem; }
.private-line button, .private-only button, .private-pick { margin: 4px 6px 4px 0; padding: 6px 12px;
  border-radius: 8px; border: 1px solid var(--border-color-primary);
  background: var(--button-secondary-background-fill);
  cursor: pointer; font-weight: 600; }
.private-drop { border: 2px dashed var(--border-color-primary); border-radius: 12px; padding: 28px 12px;
  text-align: center; }
.private-only canvas, .private-only video { display: block; width: 100%; max-height: 420px; object-fit: contain; }
.private-only video { transform: scaleX(-1); }
.private [hidden] { display: none !important; }
.private-error { color: var(--error-text-color, #c00); font-weight: 600; }
@media (max-width: 640px) {
  #gallery .grid-container, #live-gallery .grid-container { --grid-cols: 2 !important;
    grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
  #title h1 { font-size: 1.4rem; margin: 0; }
}
"""
FRONT_CAMERA = gr.WebcamOptions(mirror=True, constraints={
    "video": {"facingMode": "user", "width": {"ideal": 1280}, "height": {"ideal": 960}}})
"""Phones open their front (selfie) camera; desktops their only one."""


def build_app(finders: FinderHolder | LookalikeFinder | None, private_mode: bool = True) -> gr.Blocks:
    """The whole app as a ``gr.Blocks`` with its queue configured; launch it with
    :func:`webapp.wiring.launch_kwargs`. ``finders``: a :class:`FinderHolder` (or a finder). ``private_mode``:
    offer private mode (its models are made from the finder's pipeline in the background)."""
    ui = LookalikeUI(finders)
    finder = ui.finders.finder
    private = PrivateAssets.for_pipeline(finder.pipeline) if private_mode and finder is not None else None
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
                tab = _photo_tab(ui, choices, private is not None)
            with gr.Tab("Live", id="live"):
                live = _live_tab(private is not None)
        gr.Markdown(f"<small>{CREDITS}<br>{PRIVACY}</small>", elem_id="credits")
        api.add_public_api(demo, ui)
        _photo_events(ui, tab)
        if private is not None:
            _private_events(ui, tab, live)
        # No trigger_mode: with "always_last" Gradio 6.31 runs a webcam stream's handler on its first frame
        # only. Without it a stream sends its next frame when the handler is free (docs/decisions/webapp.md).
        live.cam.stream(ui.live, [live.cam, *tab.options], live.outputs, api_visibility="private", stream_every=1.0,
                        concurrency_limit=1, concurrency_id="live", show_progress="hidden", time_limit=300)
        demo.load(ui.banner, None, banner, api_visibility="private", queue=False)
        # While the index is being filled in the background, the banner shows the progress every 2 s.
        filling = gr.Timer(2.0, active=ui.finders.fill_progress() is not None)
        filling.tick(ui.fill_tick, None, [banner, filling], api_visibility="private", queue=False)
    queue(demo)
    attach(demo, private.start() if private is not None else None)
    return demo


def queue(demo: gr.Blocks) -> None:
    """The app's queue: 2 photo searches at once (the private events and the vector API set their own
    limits), at most 16 waiting, Gradio's analytics kept small."""
    keep_queue_analytics_small()
    demo.queue(default_concurrency_limit=2, max_size=16)


@dataclass
class PhotoTab:
    """The photo tab's components: the inputs, the options and what a search fills in."""

    photo: gr.Image
    boxed: gr.Image
    go: gr.Button
    again: gr.Button
    top_k: gr.Slider
    filters: list[gr.Dropdown]
    well_known: gr.Checkbox
    status: gr.Markdown
    picker: gr.Radio
    gallery: gr.Gallery
    compare: gr.HTML
    details: gr.Markdown
    faces: gr.State
    private: gr.HTML | None

    @property
    def options(self) -> list[gr.components.Component]:
        """The options a search takes after the photo, in :func:`webapp.options.option_names`' order: matches
        per face, one dropdown per declared filter, well-known only."""
        return [self.top_k, *self.filters, self.well_known]

    @property
    def results(self) -> list[gr.components.Component]:
        """What a search (and "New photo") updates, in :meth:`LookalikeUI.submit`'s order."""
        return [self.photo, self.boxed, self.again, self.status, self.picker, self.gallery, self.compare,
                self.details, self.faces, self.go]


    @property
    def private_results(self) -> list[gr.components.Component]:
        """What a private-mode search updates, in :meth:`LookalikeUI.submit_private`'s order."""
        return [self.status, self.picker, self.gallery, self.compare, self.details, self.faces]


@dataclass
class LiveTab:
    """The live tab's webcam stream and what each frame's search fills in."""

    cam: gr.Image
    outputs: list[gr.components.Component]
    private: gr.HTML | None


PHOTO_TEMPLATE = """<div class="private">
<p class="private-line"><span class="private-text"></span> <button class="private-switch" type="button"></button></p>
<div class="private-only">
<div class="private-drop"><label class="private-pick">Choose a photo<input type="file" accept="image/*" hidden>
</label><button class="private-camera" type="button">Use the webcam</button> or drop a photo here</div>
<video playsinline muted hidden></video><button class="private-snap" type="button" hidden>Take the photo</button>
<p class="private-busy" hidden>Finding faces on this device…</p><p class="private-error" hidden></p>
<canvas class="private-boxed" hidden></canvas><button class="private-new" type="button" hidden>New photo</button>
</div></div>"""
LIVE_TEMPLATE = """<div class="private">
<p class="private-line"><span class="private-text"></span> <button class="private-switch" type="button"></button></p>
<div class="private-only"><button class="private-live-toggle" type="button">Start the webcam</button>
<p class="private-error" hidden></p><video playsinline muted hidden></video><canvas></canvas></div></div>"""


def _mount(function: str, events: str) -> str:
    """A gr.HTML's script: load private mode's page script from this app and mount ``function`` on the
    component, with ``events`` (a JS object of callbacks that trigger the component's events)."""
    return ("const app = window.gradio_config && window.gradio_config.root;"
            "const root = app ? new URL(String(app).replace(/\\/*$/, '/')) : new URL('./', document.baseURI);"
            f"import(new URL('private/{BUNDLE}/page.js', root).href).then((page) => page.{function}(element, "
            f"{events}));")


def _photo_tab(ui: LookalikeUI, choices: dict[str, list[tuple[str, Any]]], private_mode: bool) -> PhotoTab:
    """The photo tab: the photo and options left, the results right (one column on a phone)."""
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            private = gr.HTML("", html_template=PHOTO_TEMPLATE, elem_id="private-photo", padding=False,
                              js_on_load=_mount("mountPhoto", "{search: (d) => trigger('private_search', d), "
                                                "clear: () => trigger('private_clear')}")) if private_mode else None
            photo = gr.Image(sources=["upload", "webcam", "clipboard"], type="filepath",
                             label="Your photo (upload or webcam snapshot)", elem_id="photo",
                             format="jpeg", webcam_options=FRONT_CAMERA, height=420)
            pass_raw_upload(photo)
            boxed = gr.Image(label="Faces found", interactive=False, format="jpeg", elem_id="boxed",
                             visible=False, height=420)
            with gr.Row():
                go = gr.Button("Find look-alikes", variant="primary", elem_id="find")
                again = gr.Button("New photo", elem_id="new-photo", visible=False)
            with gr.Accordion("Options", open=False, elem_id="options"):
                top_k = gr.Slider(1, MAX_TOP_K, value=ui.default_top_k, step=1, label="Matches per face",
                                  elem_id="top-k")
                # One dropdown per declared filter, shown when the index holds values it can offer.
                filters = [gr.Dropdown(choices=choices.get(item.name, [(item.anyone, "")]), value="",
                                       label=item.label, elem_id=item.name, visible=item.name in choices)
                           for item in declared()]
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
    return PhotoTab(photo, boxed, go, again, top_k, filters, well_known, status, picker, gallery,
                    compare, details, faces, private)


def _live_tab(private_mode: bool) -> LiveTab:
    """The live tab: the webcam beside its boxed frame, the largest face's matches below."""
    gr.Markdown("Start the webcam: the matches refresh about once a second (frames are dropped "
                "while a search runs, never queued).")
    private = gr.HTML("", html_template=LIVE_TEMPLATE, elem_id="private-live", padding=False,
                      js_on_load=_mount("mountLive", "{live: (d) => trigger('private_live', d)}")
                      ) if private_mode else None
    with gr.Row(equal_height=False):
        cam = gr.Image(sources=["webcam"], streaming=True, type="pil", label="Webcam",
                       elem_id="live-cam", webcam_options=FRONT_CAMERA)
        boxed = gr.Image(label="Faces found", interactive=False, format="jpeg", elem_id="live-boxed")
    status = gr.Markdown(elem_id="live-status")
    gallery = gr.Gallery(label="Look-alikes of the largest face", columns=5, height="auto",
                         object_fit="cover", allow_preview=False, elem_id="live-gallery")
    details = gr.Markdown(elem_id="live-details")
    return LiveTab(cam, [boxed, status, gallery, details], private)


def _photo_events(ui: LookalikeUI, tab: PhotoTab) -> None:
    """The photo tab's private events: search, new photo, pick a face, pick a match."""
    tab.go.click(ui.submit, [tab.photo, *tab.options], tab.results,
                 api_visibility="private", concurrency_id="search", trigger_mode="once")
    tab.again.click(ui.new_photo, None, tab.results, api_visibility="private", queue=False)
    tab.picker.input(ui.pick_face, [tab.picker, tab.faces], [tab.gallery, tab.compare, tab.details],
                     api_visibility="private", queue=False)
    tab.gallery.select(ui.pick_match, [tab.picker, tab.faces], tab.compare, api_visibility="private", queue=False)


def _private_events(ui: LookalikeUI, tab: PhotoTab, live: LiveTab) -> None:
    """Private mode's events: the browser sends each photo's (or live frame's) faces as boxes and vectors,
    and the answers fill the same outputs as server mode's. Searching vectors takes milliseconds, so these
    run 8 at once, apart from the photo searches."""

    # The event's data (the browser's faces) comes first: Gradio puts an EventData where the signature names it.
    def private_search(evt: gr.EventData, *options: Any):
        return ui.submit_private(event_data(evt), *options)

    def private_live(evt: gr.EventData, *options: Any):
        return ui.live_private(event_data(evt), *options)

    assert tab.private is not None and live.private is not None
    tab.private.private_search(private_search, tab.options, tab.private_results, api_visibility="private",
                               concurrency_id="vectors", concurrency_limit=api.VECTOR_CONCURRENCY,
                               show_progress="minimal")
    tab.private.private_clear(ui.clear_private, None, tab.private_results, api_visibility="private", queue=False)
    live.private.private_live(private_live, tab.options, live.outputs[1:], api_visibility="private",
                              concurrency_id="vectors", trigger_mode="always_last", show_progress="hidden")
