"""The Gradio app: a photo or webcam snapshot in, every face boxed and numbered, a gallery of look-alikes out.

It knows Gradio and the core's :class:`~lookalike.search.LookalikeFinder` and its results, nothing of
Qdrant or the models. ``app.py`` wires settings -> finder -> :func:`build_app`.

Uploads are decoded by our own code (:mod:`lookalike.images`), not by Gradio: the photo components
hand the handler a file path, so an empty, truncated or non-image file gets a plain sentence instead
of Gradio's generic error. Every :class:`~lookalike.errors.LookalikeError` becomes a message in the
page and ``{"error": ..., "reason": ...}`` in the API; the uploaded file is deleted right after it is
read, and ``delete_cache`` sweeps whatever Gradio itself cached (the boxed output photo). Nothing of
an upload is ever logged.

Endpoints: ``/lookalike`` (public, JSON, also the MCP tool); the page's own events are private.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from PIL import Image, ImageDraw, ImageFont

from lookalike.errors import LookalikeError, ModelMismatchError
from lookalike.search import FaceMatches, LookalikeFinder, SearchResult

log = logging.getLogger(__name__)

TITLE = "Celebrity look-alike"
MAX_TOP_K = 10
DISPLAY_MAX_SIDE = 1024
INDEX_COMMAND = "python -m indexing"
EMPTY_INDEX_HELP = (
    f"The index is empty, so there is nobody to compare with yet. Build it with `{INDEX_COMMAND}` "
    f"(for example `{INDEX_COMMAND} --sample 2000`); when the app uses the embedded store, stop the app "
    "first, then start it again."
)
CREDITS = (
    "Celebrity photos and biographies: the Hugging Face datasets "
    "[ashraq/tmdb-celeb-10k](https://huggingface.co/datasets/ashraq/tmdb-celeb-10k) (data from TMDB; this product "
    "uses the TMDB API but is not endorsed or certified by TMDB), "
    "[tonyassi/celebrity-1000](https://huggingface.co/datasets/tonyassi/celebrity-1000) and "
    "[lansinuote/simple_facenet](https://huggingface.co/datasets/lansinuote/simple_facenet). "
    "Faces: [facenet-pytorch](https://github.com/timesler/facenet-pytorch) (MTCNN, InceptionResnetV1 "
    "VGGFace2). Search: [Qdrant](https://qdrant.tech)."
)
PRIVACY = "Privacy: your photo is used for this one search and then deleted; photos are never stored or logged."
INTERNAL_ERROR = "Something went wrong while searching this photo; please try another one."
MISSING_UPLOAD = "That photo was deleted after the last search (photos are not kept): please add it again."
STORE_RETRY_S = 10.0
"""After the store failed to open, a request retries opening it at most this often (seconds)."""
BOX_COLOURS = ["#ff3b30", "#34c759", "#007aff", "#ff9500", "#af52de", "#00c7be", "#ffcc00", "#ff2d55"]

API_DESCRIPTION = (
    "Find the celebrities each face in a photo looks like. Returns JSON: {'faces': [{'box': [x1, y1, x2, y2], "
    "'probability': p, 'matches': [{'name', 'person_id', 'score' (cosine, -1..1), 'similarity' (0..1), "
    "'metadata', ...}]}]} with faces left to right and matches best first, or {'error': sentence, "
    "'reason': slug} when the photo cannot be used (no_face, not_an_image, image_too_large, "
    "empty_index, store_unavailable, model_mismatch)."
)


@dataclass(frozen=True)
class Lookup:
    """One answered photo: the upright image with boxes drawn, and the search result."""

    annotated: Image.Image
    result: SearchResult


def _raw_path(payload: Any) -> str | bytes | None:
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


class LookalikeUI:
    """The handlers behind the page and the API, around one finder.

    ``finder`` is None when the app could not start its models or store; ``problem`` then says why,
    and every request answers with it. With ``reopen`` (a callable that makes the finder, raising a
    :class:`LookalikeError` while it still cannot), a request retries it at most once per
    ``retry_after_s`` seconds (default :data:`STORE_RETRY_S`): an embedded store held by the indexer at
    start-up, say, is picked up once the indexer has released it, without restarting the app.
    """

    def __init__(self, finder: LookalikeFinder | None, problem: LookalikeError | None = None,
                 reopen: Callable[[], LookalikeFinder] | None = None, retry_after_s: float | None = None):
        self.finder = finder
        self.problem = problem
        self.default_top_k = min(MAX_TOP_K, finder.top_k) if finder else 5
        self.reopen = reopen
        self.retry_after_s = STORE_RETRY_S if retry_after_s is None else retry_after_s
        self._next_retry = time.monotonic() + self.retry_after_s  # start-up has just tried
        self._reopen_lock = threading.Lock()

    def current_finder(self) -> LookalikeFinder | None:
        """The finder, opened now if start-up failed, ``reopen`` is set and the cool-down has passed."""
        if self.finder is not None or self.reopen is None:
            return self.finder
        with self._reopen_lock:
            if self.finder is None and time.monotonic() >= self._next_retry:
                try:
                    self.finder = self.reopen()
                    self.problem = None
                    log.info("the store could be opened now; searching")
                except LookalikeError as exc:
                    self.problem = exc
                except Exception as exc:  # never the details (they may name a secret) in the log
                    log.error("reopening the store failed: %s", type(exc).__name__)
                finally:
                    self._next_retry = time.monotonic() + self.retry_after_s
        return self.finder

    # -- the core call ---------------------------------------------------------------------------

    def lookup(self, photo: Any, top_k: Any = None) -> Lookup:
        """Decode ``photo`` (path, bytes, PIL, array), delete it if it was an upload, find, draw boxes.

        Raises:
            LookalikeError: the photo cannot be used or the index cannot answer.
        """
        finder = self.current_finder()
        if finder is None:
            _forget_upload(photo)  # not searched, and not kept either
            raise self.problem or LookalikeError("The app is not ready.")
        if photo is None:
            raise _NoPhoto("Add a photo first: upload one or take a webcam snapshot.")
        if isinstance(photo, (str, os.PathLike)) and not Path(photo).exists():
            raise _NoPhoto(MISSING_UPLOAD)
        try:
            image = finder.pipeline.load(photo)
        finally:
            _forget_upload(photo)
        result = finder.find(image, _clamp_top_k(top_k, self.default_top_k))
        return Lookup(draw_faces(image, result), result)

    # -- handlers --------------------------------------------------------------------------------

    def api(self, photo: Any, top_k: Any = None) -> dict[str, Any]:
        """Find the celebrities each face in a photo looks like.

        Every face found is returned left to right with its box in pixels of the upright photo and its
        look-alikes, one per celebrity, best first.

        Args:
            photo: the photo to search (JPEG, PNG, WebP, ...), as an uploaded file or URL.
            top_k: how many look-alikes to return per face, 1 to 10.

        Returns:
            {"faces": [{"box": [x1, y1, x2, y2], "probability": p, "matches": [{"name", "person_id",
            "score" (cosine), "similarity" (0..1), "metadata", "sources", "point_id"}]}]}, or
            {"error": sentence, "reason": slug} when the photo cannot be used.
        """
        try:
            return self.lookup(photo, top_k).result.as_json()
        except LookalikeError as exc:
            return {"error": str(exc), "reason": exc.reason}
        except Exception as exc:  # never a traceback to the client; never the upload in the log
            log.error("lookalike request failed: %s", type(exc).__name__)
            return {"error": INTERNAL_ERROR, "reason": "internal_error"}

    def submit(self, photo: Any, top_k: Any) -> tuple[Any, ...]:
        """The page's search: (annotated photo, status, face picker, gallery, details, state)."""
        try:
            found = self.lookup(photo, top_k)
        except Exception as exc:
            message = _message(exc)
            return (None, _status(message, error=True), gr.update(choices=[], value=None, visible=False),
                    [], "", [])
        faces = [_face_view(face) for face in found.result.faces]
        count = len(faces)
        status = f"Found {count} face{'s' if count != 1 else ''}." + (
            " Pick a face to see its look-alikes." if count > 1 else "")
        picker = gr.update(choices=[(f"Face {i + 1}", i) for i in range(count)], value=0, visible=count > 1)
        first = faces[0]
        return found.annotated, _status(status), picker, first["gallery"], first["details"], faces

    def pick_face(self, index: Any, faces: list[dict[str, Any]]) -> tuple[Any, str]:
        """The gallery and details of the face chosen in the picker."""
        if not faces or index is None:
            return [], ""
        face = faces[min(max(int(index), 0), len(faces) - 1)]
        return face["gallery"], face["details"]

    def live(self, frame: Any, top_k: Any) -> tuple[Any, ...]:
        """One webcam frame of live mode: (annotated frame, status, gallery, details)."""
        try:
            found = self.lookup(frame, top_k)
        except Exception as exc:
            return gr.update(), _status(_message(exc), error=True), gr.update(), gr.update()
        faces = [_face_view(face) for face in found.result.faces]
        largest = max(range(len(faces)), key=lambda i: found.result.faces[i].face.area)
        count = len(faces)
        note = f"Live: {count} face{'s' if count != 1 else ''}" + (
            f", showing face {largest + 1} (the largest)." if count > 1 else ".")
        return found.annotated, _status(note), faces[largest]["gallery"], faces[largest]["details"]

    def banner(self) -> str:
        """The start-up / page-load notice about the index: empty, unreachable or built by other weights."""
        finder = self.current_finder()
        if finder is None:
            return _status(_message(self.problem), error=True)
        try:
            count = finder.check_index()
        except ModelMismatchError as exc:
            return _status(str(exc), error=True)
        except LookalikeError as exc:
            return _status(str(exc), error=True)
        except Exception as exc:
            log.error("index check failed: %s", type(exc).__name__)
            return _status("The index could not be checked; searches may fail.", error=True)
        if count == 0:
            return _status(EMPTY_INDEX_HELP, error=True)
        return ""


class _NoPhoto(LookalikeError):
    reason = "no_photo"


# -- building the page -------------------------------------------------------------------------------


def build_app(finder: LookalikeFinder | None, problem: LookalikeError | None = None,
              reopen: Callable[[], LookalikeFinder] | None = None) -> gr.Blocks:
    """The whole app as a ``gr.Blocks`` with its queue configured; launch it with :func:`launch_kwargs`.

    ``finder`` None (with ``problem``) builds a page that explains why it cannot search; with
    ``reopen`` as well, requests retry making the finder (see :class:`LookalikeUI`).
    """
    ui = LookalikeUI(finder, problem, reopen)
    start_banner = ui.banner()  # checks the index once at start-up (and logs what it found)
    if start_banner:
        log.warning("index check at start-up: %s", start_banner.strip("> ⚠️*"))
    with gr.Blocks(title=TITLE, delete_cache=(60, 120), analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\nWhich celebrities do you look like? Every face in the photo gets its own "
                    "matches.")
        banner = gr.Markdown(start_banner, elem_id="banner")
        top_k = gr.Slider(1, MAX_TOP_K, value=ui.default_top_k, step=1, label="Matches per face",
                          elem_id="top-k")
        with gr.Tabs():
            with gr.Tab("Photo", id="photo"):
                with gr.Row():
                    with gr.Column():
                        photo = gr.Image(sources=["upload", "webcam", "clipboard"], type="filepath",
                                         label="Your photo (upload or webcam snapshot)", elem_id="photo",
                                         format="jpeg")
                        photo.preprocess = _raw_path  # type: ignore[method-assign]
                        go = gr.Button("Find look-alikes", variant="primary", elem_id="find")
                    with gr.Column():
                        boxed = gr.Image(label="Faces found", interactive=False, format="jpeg",
                                         elem_id="boxed")
                status = gr.Markdown(elem_id="status")
                picker = gr.Radio(label="Face", choices=[], visible=False, elem_id="face-picker")
                gallery = gr.Gallery(label="Look-alikes", columns=5, height="auto", object_fit="cover",
                                     allow_preview=True, elem_id="gallery")
                details = gr.Markdown(elem_id="details")
                faces_state = gr.State([])
            with gr.Tab("Live", id="live"):
                gr.Markdown("Start the webcam: the matches refresh about once a second (frames are dropped "
                            "while a search runs, never queued).")
                with gr.Row():
                    cam = gr.Image(sources=["webcam"], streaming=True, type="pil", label="Webcam",
                                   elem_id="live-cam")
                    live_boxed = gr.Image(label="Faces found", interactive=False, format="jpeg",
                                          elem_id="live-boxed")
                live_status = gr.Markdown(elem_id="live-status")
                live_gallery = gr.Gallery(label="Look-alikes of the largest face", columns=5, height="auto",
                                          object_fit="cover", elem_id="live-gallery")
                live_details = gr.Markdown(elem_id="live-details")
        gr.Markdown(f"<small>{CREDITS}<br>{PRIVACY}</small>", elem_id="credits")

        # The public API (and MCP tool): a file path in, JSON out. gr.File lets any file reach our code.
        with gr.Row(visible=False):
            api_photo = gr.File(type="filepath", label="photo")
            # no minimum/maximum: Gradio would raise on them; the handler clamps to 1..MAX_TOP_K instead
            api_top_k = gr.Number(value=ui.default_top_k, label="top_k")
            api_out = gr.JSON(label="result")
            api_button = gr.Button("api")
        api_button.click(ui.api, [api_photo, api_top_k], api_out, api_name="lookalike",
                         api_description=API_DESCRIPTION, concurrency_id="search")

        go.click(ui.submit, [photo, top_k], [boxed, status, picker, gallery, details, faces_state],
                 api_visibility="private", concurrency_id="search", trigger_mode="once")
        picker.input(ui.pick_face, [picker, faces_state], [gallery, details], api_visibility="private",
                     queue=False)
        cam.stream(ui.live, [cam, top_k], [live_boxed, live_status, live_gallery, live_details],
                   api_visibility="private", stream_every=1.0, concurrency_limit=1, concurrency_id="live",
                   trigger_mode="always_last", show_progress="hidden", time_limit=300)
        demo.load(ui.banner, None, banner, api_visibility="private", queue=False)
    demo.queue(default_concurrency_limit=2, max_size=16)
    return demo


def launch_kwargs() -> dict[str, Any]:
    """What :meth:`gr.Blocks.launch` needs beyond host and port: no Gradio-side error details."""
    return {"show_error": False}


# -- helpers ---------------------------------------------------------------------------------------


def draw_faces(image: Image.Image, result: SearchResult, max_side: int = DISPLAY_MAX_SIDE) -> Image.Image:
    """A copy of ``image`` (shrunk to ``max_side``) with each face boxed and numbered 1..n, left to right."""
    scale = min(1.0, max_side / max(image.size))
    out = image.copy() if scale == 1.0 else image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
    draw = ImageDraw.Draw(out)
    line = max(2, round(max(out.size) / 250))
    font = ImageFont.load_default(size=max(14, round(max(out.size) / 30)))
    for number, face in enumerate(result.faces, start=1):
        colour = BOX_COLOURS[(number - 1) % len(BOX_COLOURS)]
        x1, y1, x2, y2 = (v * scale for v in face.face.box)
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=line)
        label = str(number)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        pad = line * 2
        tx, ty = x1, max(0.0, y1 - (bottom - top) - 2 * pad)
        draw.rectangle((tx, ty, tx + right - left + 2 * pad, ty + bottom - top + 2 * pad), fill=colour)
        draw.text((tx + pad - left, ty + pad - top), label, fill="white", font=font)
    return out


def caption(name: str, percent: int) -> str:
    """A gallery tile's caption: ``"Tony Blair — 87 %"``."""
    return f"{name} — {percent} %"


def _face_view(face: FaceMatches) -> dict[str, Any]:
    """One face's gallery tiles (thumbnail, caption) and the details under them (with biographies)."""
    tiles = [(_thumbnail(m.thumbnail_jpeg), caption(m.name, m.percent)) for m in face.matches]
    lines = []
    for rank, match in enumerate(face.matches, start=1):
        line = f"{rank}. **{match.name}** — {match.percent} % (cosine {match.score:.2f})"
        bio = str(match.metadata.get("biography") or "").strip()
        if bio:
            line += f"  \n   {_shorten(bio, 300)}"
        lines.append(line)
    return {"gallery": tiles, "details": "\n".join(lines)}


def _thumbnail(jpeg: bytes | None) -> Image.Image:
    if jpeg:
        try:
            return Image.open(io.BytesIO(jpeg)).convert("RGB")
        except Exception:  # a damaged thumbnail must not break the gallery
            pass
    return Image.new("RGB", (128, 128), (200, 200, 200))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _clamp_top_k(value: Any, default: int) -> int:
    try:
        k = int(round(float(value)))
    except (TypeError, ValueError):
        return default
    return min(max(k, 1), MAX_TOP_K)


def _message(exc: BaseException | None) -> str:
    """The sentence a user sees for an exception: ours as they are, anything else generic."""
    if isinstance(exc, LookalikeError):
        return str(exc)
    if exc is not None:
        log.error("search failed: %s", type(exc).__name__)
    return INTERNAL_ERROR


def _status(text: str, error: bool = False) -> str:
    return f"> ⚠️ **{text}**" if error else text


def _forget_upload(photo: Any) -> None:
    """Delete an uploaded file (and its now empty folder) once read, if it lies in Gradio's upload cache."""
    if not isinstance(photo, (str, os.PathLike)):
        return
    try:
        path = Path(photo).resolve()
        cache = Path(gr.utils.get_upload_folder()).resolve()
        if cache not in path.parents:
            return
        path.unlink(missing_ok=True)
        if path.parent != cache and not any(path.parent.iterdir()):
            path.parent.rmdir()
    except OSError:
        pass
