"""The handlers behind the page and the API: a photo in, the page's updates or the API's JSON out.

Uploads are decoded by our own code (:mod:`lookalike.images`, through the finder), not by Gradio: the
photo components hand the handler a file path, so an empty, truncated or non-image file gets a plain
sentence instead of Gradio's generic error. Every :class:`~lookalike.errors.LookalikeError` becomes a
message in the page and ``{"error": ..., "reason": ...}`` in the API. The uploaded file is deleted as
soon as the search is done, unless another upload of the same photo still waits for its own search
(:mod:`webapp.traffic`); nothing of an upload is ever logged.

The query path decodes each photo once, asks the index once per face, reads thumbnails only for the page
(the API never shows them) and draws the boxed photo only for the page.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from lookalike.errors import LookalikeError, ModelMismatchError, NoFaceError
from lookalike.faces import NO_FACE
from lookalike.filters import declared
from lookalike.query_faces import query_faces
from lookalike.search import LookalikeFinder, SearchResult
from webapp.finders import FinderHolder
from webapp.gradio_internals import upload_folder
from webapp.options import MAX_TOP_K, SearchOptions, read_options
from webapp.rendering import FaceView, compare_html, draw_faces, face_view
from webapp.traffic import UPLOADS

log = logging.getLogger(__name__)

INDEX_COMMAND = "python -m indexing --per-person 1 --sample 1000"
EMPTY_INDEX_HELP = "The index is being built: there is nobody to compare with yet. Please come back later."
EMPTY_INDEX_LOG = (
    "the index is empty: stop the app, build it from the app's folder with `%s` (see `--help` for the "
    "sources), then start the app again"
)
FILLING_NOTE = "The app answers as soon as the index is ready; this page updates by itself."
INTERNAL_ERROR = "Something went wrong while searching this photo; please try another one."
MISSING_UPLOAD = "That photo was deleted after the last search (photos are not kept): please add it again."


class _NoPhoto(LookalikeError):
    reason = "no_photo"


class NoOneMatchesFilters(LookalikeError):
    reason = "no_one_matches_filters"


class IndexFilling(LookalikeError):
    """The embedded store is being filled in the background (a first start without an index)."""

    reason = "index_filling"


class Answer(NamedTuple):
    """A search's result and the options it was made with."""

    result: SearchResult
    options: SearchOptions


class LookalikeUI:
    """The page's and the API's handlers, around a :class:`FinderHolder` (the finder or why there is none)."""

    def __init__(self, finders: FinderHolder | LookalikeFinder | None, problem: LookalikeError | None = None):
        self.finders = finders if isinstance(finders, FinderHolder) else FinderHolder(finders, problem)
        finder = self.finders.finder
        self.default_top_k = min(MAX_TOP_K, finder.top_k) if finder else 5

    # -- the core call ---------------------------------------------------------------------------

    def search(self, photo: Any, *values: Any, with_thumbnails: bool = True) -> Answer:
        """Search ``photo`` (path, bytes, PIL, array) with the options ``values`` (:mod:`webapp.options`:
        top_k, each filter's value, well-known only; missing ones take their defaults); an upload is deleted
        once it has been searched.

        Raises:
            LookalikeError: the photo cannot be used, the index cannot answer, or the filters leave nobody.
        """
        try:
            finder = self._ready_finder()
        except LookalikeError:
            _forget_upload(photo)  # not searched, and not kept either
            raise
        if photo is None:
            raise _NoPhoto("Add a photo first: upload one or take a webcam snapshot.")
        if isinstance(photo, (str, os.PathLike)) and not Path(photo).exists():
            raise _NoPhoto(MISSING_UPLOAD)
        try:
            options = read_options(values, self.default_top_k)
            result = finder.find(photo, options.top_k, where=options.where, with_thumbnails=with_thumbnails,
                                 well_known_only=options.well_known_only)
        finally:
            _forget_upload(photo)
        return _checked(Answer(result, options))

    def search_vectors(self, faces: Any, *values: Any, with_thumbnails: bool = True) -> Answer:
        """:meth:`search` for faces found and embedded elsewhere (private mode, the vector API): ``faces``
        as :func:`lookalike.query_faces.query_faces` reads them.

        Raises:
            LookalikeError: the faces are malformed, the index cannot answer, or the filters leave nobody.
        """
        finder = self._ready_finder()
        query = query_faces(faces)
        options = read_options(values, self.default_top_k)
        result = finder.find_faces(query, options.top_k, where=options.where, with_thumbnails=with_thumbnails,
                                   well_known_only=options.well_known_only)
        return _checked(Answer(result, options))

    def _ready_finder(self) -> LookalikeFinder:
        """The finder, or the error that says why the app cannot search now."""
        finder = self.finders.get()
        if finder is None:
            raise self.finders.problem or LookalikeError("The app is not ready.")
        filling = self.finders.fill_progress()
        if filling is not None and filling.state == "filling":
            raise IndexFilling(f"{filling.message} {FILLING_NOTE}")
        return finder

    # -- the API and MCP tool --------------------------------------------------------------------

    def find_lookalikes(self, photo: Any, *values: Any) -> dict[str, Any]:
        """The photo endpoint (:mod:`webapp.api` publishes it and describes its JSON): every face of ``photo``
        (a path, or the API's unprocessed FileData) with its look-alikes, searched with the options
        ``values`` (:mod:`webapp.options`), as ``{"faces": [...]}``; or ``{"error": sentence, "reason": slug}``
        when the photo cannot be used. Never raises."""
        if isinstance(photo, dict):  # the API's upload, unprocessed (webapp.api): Gradio's FileData
            photo = photo.get("path")
        try:
            return self.search(photo, *values, with_thumbnails=False).result.as_json()
        except LookalikeError as exc:
            return {"error": str(exc), "reason": exc.reason}
        except Exception as exc:  # never a traceback to the client; never the upload in the log
            log.error("lookalike request failed: %s", type(exc).__name__)
            return {"error": INTERNAL_ERROR, "reason": "internal_error"}

    def find_lookalikes_by_vectors(self, faces: Any, *values: Any) -> dict[str, Any]:
        """The vector endpoint: :meth:`find_lookalikes` for faces found and embedded elsewhere (``faces`` as
        :func:`lookalike.query_faces.query_faces` reads them); no photo is sent. Never raises."""
        try:
            return self.search_vectors(faces, *values, with_thumbnails=False).result.as_json()
        except LookalikeError as exc:
            return {"error": str(exc), "reason": exc.reason}
        except Exception as exc:  # never a traceback to the client
            log.error("lookalike_vectors request failed: %s", type(exc).__name__)
            return {"error": INTERNAL_ERROR, "reason": "internal_error"}

    # -- the page --------------------------------------------------------------------------------

    def submit(self, photo: Any, *values: Any) -> tuple[Any, ...]:
        """The page's search: (photo input, boxed photo, new-photo button, status, face picker, gallery,
        side-by-side view, details, per-face views, find button). The boxed photo takes the input's place."""
        try:
            result, options = self.search(photo, *values)
        except Exception as exc:
            return _cleared(status(message(exc), error=True), photo=gr.update(visible=True))
        shown = _shown(result, bool(options.where))
        boxed = draw_faces(result.image, result) if result.image is not None else None
        return (gr.update(visible=False), gr.update(value=boxed, visible=True),
                gr.update(visible=True), *shown, gr.update(visible=False))

    def submit_private(self, query: Any, *values: Any) -> tuple[Any, ...]:
        """The page's search in private mode: ``query`` is ``{"faces": [...]}`` from the browser, which found,
        embedded and boxed the faces itself. (status, face picker, gallery, side-by-side view, details,
        per-face views): :meth:`submit`'s outputs less the photo's."""
        try:
            result, options = self.search_vectors(_faces_of(query), *values)
        except Exception as exc:
            return _cleared(status(_photo_message(exc), error=True), photo=None)[3:9]
        return _shown(result, bool(options.where))

    def clear_private(self) -> tuple[Any, ...]:
        """Private mode's "New photo": :meth:`submit_private`'s outputs emptied."""
        return _cleared("", photo=None)[3:9]

    def pick_face(self, index: Any, views: list[FaceView]) -> tuple[Any, ...]:
        """The gallery, side-by-side view and details of the face chosen in the picker."""
        if not views or index is None:
            return [], "", ""
        number = min(max(int(index), 0), len(views) - 1)
        view = views[number]
        return (view.gallery, compare_html(view.crop, view.matches[0] if view.matches else None, number + 1),
                view.details)

    def pick_match(self, index: Any, views: list[FaceView], evt: gr.SelectData) -> str:
        """Your face beside the look-alike picked in the gallery, with the card to save."""
        if not views:
            return ""
        number = min(max(int(index or 0), 0), len(views) - 1)
        view = views[number]
        chosen = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
        if not view.matches or not 0 <= chosen < len(view.matches):
            return ""
        return compare_html(view.crop, view.matches[chosen], number + 1)

    def new_photo(self) -> tuple[Any, ...]:
        """Back to an empty photo input: (photo input, boxed photo, new-photo button, status, picker,
        gallery, side-by-side, details, views, find button)."""
        return _cleared("", photo=gr.update(value=None, visible=True))

    def live(self, frame: Any, *values: Any) -> tuple[Any, ...]:
        """One webcam frame of live mode: (boxed frame, status, gallery, details)."""
        try:
            result, options = self.search(frame, *values)
        except Exception as exc:
            return gr.update(), status(message(exc), error=True), gr.update(), gr.update()
        largest = max(range(len(result.faces)), key=lambda i: result.faces[i].face.area)
        view = face_view(largest + 1, result.faces[largest], bool(options.where))
        boxed = draw_faces(result.image, result) if result.image is not None else gr.update()
        return boxed, status(_live_note(len(result.faces), largest + 1)), view.gallery, view.details

    def live_private(self, query: Any, *values: Any) -> tuple[Any, ...]:
        """One frame of live mode in private mode: ``query`` holds the largest face of the frame the browser
        embedded, with ``count`` (faces in the frame) and ``number`` (which one it is). (status, gallery,
        details): :meth:`live`'s outputs less the frame's."""
        try:
            result, options = self.search_vectors(_faces_of(query), *values)
        except Exception as exc:
            return status(_photo_message(exc), error=True), gr.update(), gr.update()
        count, number = _count(query, "count", 1), _count(query, "number", 1)
        view = face_view(number, result.faces[0], bool(options.where))
        return status(_live_note(count, number)), view.gallery, view.details

    def banner(self) -> str:
        """The start-up / page-load notice about the index: empty, unreachable or built by other weights.

        A visitor reads what happened and when to come back; the log gets the store, paths and commands."""
        finder = self.finders.get()
        if finder is None:
            return status(message(self.finders.problem), error=True)
        filling = self.finders.fill_progress()
        if filling is not None:
            return status(f"{filling.message} {FILLING_NOTE}" if filling.state == "filling" else filling.message,
                          error=filling.state == "failed")
        try:
            count = finder.check_index()
        except (ModelMismatchError, LookalikeError) as exc:
            log.error("index check: %s", exc.detail)
            return status(str(exc), error=True)
        except Exception as exc:
            log.error("index check failed: %s", type(exc).__name__)
            return status("The index could not be checked; searches may fail.", error=True)
        if count == 0:
            log.warning(EMPTY_INDEX_LOG, INDEX_COMMAND)
            return status(EMPTY_INDEX_HELP, error=True)
        return ""

    def fill_tick(self) -> tuple[str, Any]:
        """The banner while the background fill runs, and whether its timer keeps ticking."""
        progress = self.finders.fill_progress()
        return self.banner(), gr.Timer(active=progress is not None and progress.state == "filling")

    def filter_choices(self) -> dict[str, list[tuple[str, Any]]]:
        """The choices of each filter the index has metadata for (a filter without any is left out)."""
        finder = self.finders.get()
        if finder is None:
            return {}
        try:
            values = finder.filter_values()
        except Exception as exc:  # an index that cannot say hides its filters
            log.warning("filter values unavailable: %s", type(exc).__name__)
            return {}
        offered = {item.name: item.choices(values.get(item.name, [])) for item in declared()}
        return {name: choices for name, choices in offered.items() if choices}


# -- helpers ---------------------------------------------------------------------------------------


def _shown(result: SearchResult, filtered: bool) -> tuple[Any, ...]:
    """What the page shows of a result: (status, face picker, gallery, side-by-side view, details, views)."""
    views = [face_view(i + 1, face, filtered) for i, face in enumerate(result.faces)]
    count = len(views)
    text = f"Found {count} face{'s' if count != 1 else ''}." + (
        " Pick a face to see its look-alikes." if count > 1 else "") + " Pick a look-alike to compare."
    first = views[0]
    if count == 1 and first.note:  # said before the gallery too (with several faces, in each face's details)
        text += f"\n\n> **{first.note}**"
    picker = gr.update(choices=[(f"Face {i + 1}", i) for i in range(count)], value=0, visible=count > 1)
    return (status(text), picker, first.gallery,
            compare_html(first.crop, first.matches[0] if first.matches else None, 1), first.details, views)


def _checked(answer: Answer) -> Answer:
    """``answer``, unless its filters left nobody for any searched face (then NoOneMatchesFilters)."""
    result, options = answer
    searched = [f for f in result.faces if f.searched]
    if (options.where or options.well_known_only) and searched and not any(f.matches for f in searched):
        raise NoOneMatchesFilters(f"Nobody in the index matches the filters ({options.words}): "
                                  "choose a wider filter.")
    return answer


def _photo_message(exc: BaseException) -> str:
    """:func:`message` for the page's private mode, where the visitor chose a photo: no face sent is the
    photo's "no face"."""
    return NO_FACE if isinstance(exc, NoFaceError) else message(exc)


def _faces_of(query: Any) -> Any:
    """The faces of a private-mode event's data (``{"faces": [...]}``); anything else is checked as faces."""
    return query.get("faces") if isinstance(query, dict) else query


def _count(query: Any, key: str, default: int) -> int:
    value = query.get(key) if isinstance(query, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1000 else default


def _live_note(count: int, number: int) -> str:
    return f"Live: {count} face{'s' if count != 1 else ''}" + (
        f", showing face {number} (the largest)." if count > 1 else ".")


def message(exc: BaseException | None) -> str:
    """The sentence a user sees for an exception: ours as they are, anything else generic."""
    if isinstance(exc, LookalikeError):
        return str(exc)
    if exc is not None:
        log.error("search failed: %s", type(exc).__name__)
    return INTERNAL_ERROR


def _cleared(note: str, photo: Any) -> tuple[Any, ...]:
    """The page's results emptied, in :meth:`LookalikeUI.submit`'s output order, with ``note`` as the status and
    ``photo`` as the photo input's update."""
    return (photo, gr.update(value=None, visible=False), gr.update(visible=False), note,
            gr.update(choices=[], value=None, visible=False), [], "", "", [], gr.update(visible=True))


def status(text: str, error: bool = False) -> str:
    return f"> ⚠️ **{text}**" if error else text


def _forget_upload(photo: Any) -> None:
    """Release an upload once read, if it lies in Gradio's upload cache: its file is deleted unless another
    upload of the same photo is still waiting for its search (:data:`webapp.traffic.UPLOADS`)."""
    if not isinstance(photo, (str, os.PathLike)):
        return
    try:
        path = Path(photo).resolve()
        cache = Path(upload_folder()).resolve()
    except OSError:
        return
    if cache in path.parents:
        UPLOADS.release(path)
