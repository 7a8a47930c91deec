"""The public API: ``/lookalike`` (a photo in) and ``/lookalike_vectors`` (faces found and embedded
elsewhere), also the MCP tools ``find_lookalikes`` and ``find_lookalikes_by_vectors``; JSON out.

Each is a ``gr.api`` function. Gradio reads its arguments and their types from the function's signature,
and each argument's description in the MCP tool from its docstring; both are made here from the options
(:mod:`webapp.options`), so each filter declared in :mod:`lookalike.filters` is an argument of both
endpoints, with its description. ``gr.api``, not hidden components: each REST call builds a session of
every component. It hands the upload's FileData and the raw values over unprocessed (the handlers check
them) and still refuses a file outside Gradio's upload folder. A client that leaves top_k out gets the
app's setting.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from lookalike.filters import declared
from webapp.gradio_internals import forget_session
from webapp.handlers import LookalikeUI
from webapp.options import TOP_K, WELL_KNOWN_ONLY, option_docs, option_names
from webapp.traffic import API_NAME, VECTOR_API_NAME

VECTOR_CONCURRENCY = 8
"""Vector searches (private mode's and the vector API's) run at once: each takes milliseconds of CPU, and the
embedded store serialises its own calls (bench/RESULTS.md, "Private mode", measures other limits)."""

ANSWER = (
    "{'faces': [{'box': [x1, y1, x2, y2], 'probability': p, 'searched': bool (false: the detector was not sure "
    "enough, no matches), 'no_close_match': bool (true: even the best match is under the app's likeness "
    "threshold; the nearest are still listed), 'matches': [{'name', 'person_id', 'score' (cosine, -1..1), "
    "'likeness' (0..100, the % shown to people), 'similarity' (likeness / 100), 'metadata', 'sources', "
    "'point_id'}]}]} with faces left to right and matches best first"
)
PHOTO_ERRORS = (
    "no_face, not_an_image, image_too_large, empty_index, index_filling (an empty index being filled: retry "
    "later), store_unavailable, model_mismatch, no_one_matches_filters, bad_filter"
)


@dataclass(frozen=True)
class Endpoint:
    """One public endpoint: its MCP tool's name, its API name, what it takes first, and its description (the
    API page's and the MCP tool's)."""

    tool: str
    api_name: str
    first: str
    first_type: Any
    first_doc: str
    summary: str
    names_filters: bool = False

    def description(self) -> str:
        """The endpoint's description on the API page and in the MCP tool: its summary, and for the photo
        endpoint the optional filters as declared now."""
        if not self.names_filters:
            return self.summary
        named = [f"{item.name} ({item.spelled()})" for item in declared()]
        listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
        return (f"{self.summary} Optional filters: {listed}, where the index has that metadata, and "
                f"{WELL_KNOWN_ONLY} (default true: well-known people only; false: everyone in the index).")


PHOTO = Endpoint(
    tool="find_lookalikes", api_name=API_NAME, first="photo", first_type=FileData,
    first_doc="the photo to search (JPEG, PNG, WebP, ...), as an uploaded file or URL.",
    summary=f"Find the celebrities each face in a photo looks like. Returns JSON: {ANSWER}, or "
            f"{{'error': sentence, 'reason': slug}} when the photo cannot be used ({PHOTO_ERRORS}).",
    names_filters=True,
)
VECTORS = Endpoint(
    tool="find_lookalikes_by_vectors", api_name=VECTOR_API_NAME, first="faces", first_type=list[dict[str, Any]],
    first_doc="the faces, at most 32: [{'box': [x1, y1, x2, y2] (pixels), 'vector': [512 numbers] (unit "
              "length: FaceNet's, as this app makes them: MTCNN, a 160x160 crop standardised as (x - 127.5) / "
              "128, InceptionResnetV1 with the vggface2 weights), 'probability': p (optional, 0..1: the "
              "detector's; faces under the app's threshold are not searched)}].",
    summary="The same search from faces you found and embedded yourself (no photo is sent): faces as "
            "[{'box': [x1, y1, x2, y2], 'vector': [512 numbers, unit length, FaceNet vggface2 as "
            "facenet-pytorch makes it], 'probability': p (optional)}], at most 32, plus top_k and the "
            "photo API's filters. Returns the photo API's JSON, or {'error': sentence, 'reason': slug} "
            "with bad_faces, bad_vector, bad_box, too_many_faces or no_face.",
)


def add_public_api(demo: gr.Blocks, ui: LookalikeUI) -> None:
    """Both endpoints on ``demo`` (inside its ``with`` block): photo searches share the page's "search"
    queue; vector searches run :data:`VECTOR_CONCURRENCY` at once beside private mode's."""
    gr.api(api_function(demo, PHOTO, ui.find_lookalikes, ui.default_top_k), api_name=PHOTO.api_name,
           api_description=PHOTO.description(), concurrency_id="search")
    gr.api(api_function(demo, VECTORS, ui.find_lookalikes_by_vectors, ui.default_top_k), api_name=VECTORS.api_name,
           api_description=VECTORS.description(), concurrency_id="vectors", concurrency_limit=VECTOR_CONCURRENCY)


def api_function(demo: gr.Blocks, endpoint: Endpoint, handler: Callable[..., dict[str, Any]],
                 default_top_k: int) -> Callable[..., dict[str, Any]]:
    """The function ``gr.api`` publishes for ``endpoint``: its signature names the first input, then each
    option (top_k, the declared filters, well_known_only) with its type and default, then the request; its
    docstring describes each. A call hands the values to ``handler`` in that order and drops the call's
    session (:func:`webapp.gradio_internals.forget_session`) when it is done."""
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    typed = {TOP_K: (int, default_top_k), WELL_KNOWN_ONLY: (bool, True)}  # a filter's value: a word, "" for none
    options = [inspect.Parameter(name, keyword, annotation=typed.get(name, (str, ""))[0],
                                 default=typed.get(name, (str, ""))[1]) for name in option_names()]
    parameters = [inspect.Parameter(endpoint.first, keyword, annotation=endpoint.first_type), *options,
                  inspect.Parameter("request", keyword, default=None, annotation=gr.Request | None)]

    def call(*values: Any) -> dict[str, Any]:
        *inputs, request = values  # Gradio hands every input (defaults filled in), the request in its place
        try:
            return handler(*inputs)
        finally:
            forget_session(demo, request)

    # The return type as a string, as the functions written by hand had it: Gradio then publishes no schema.
    call.__name__ = call.__qualname__ = endpoint.tool
    call.__signature__ = inspect.Signature(parameters, return_annotation="dict[str, Any]")  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": "dict[str, Any]"}
    args = {endpoint.first: endpoint.first_doc, **option_docs(default_top_k)}
    call.__doc__ = "\n".join([endpoint.description(), "", "Args:",
                              *(f"    {name}: {doc}" for name, doc in args.items())])
    return call
