"""Image in, look-alikes out: the core API that the app, the client API and the benchmarks call.

>>> finder = LookalikeFinder.from_settings(Settings())
>>> for face in finder.find(Path("me.jpg")).faces:
...     print(face.box, [(m.name, m.percent) for m in face.matches])   # percent: the likeness, 0..100
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from lookalike.errors import NoFaceError
from lookalike.faces import NO_FACE, Face, FacePipeline
from lookalike.filters import declared
from lookalike.images import ImageInput
from lookalike.index.payload import WELL_KNOWN
from lookalike.index.query import FaceIndex, StoredMatch
from lookalike.index.storage.port import Not
from lookalike.index.store import FaceStore
from lookalike.likeness import DEFAULT, LikenessMapping, mapping_for
from lookalike.settings import Settings


@dataclass(frozen=True)
class Match:
    """A celebrity one face resembles.

    Attributes:
        name: display name. person_id: stable grouping key (``"tony-blair"``).
        score: cosine similarity, -1..1.
        likeness: the displayed 0..100 % (:mod:`lookalike.likeness`, one documented mapping of ``score``).
        thumbnail_jpeg: the matched face as JPEG bytes, or None (none stored, or not asked for).
        metadata: the person's metadata (``biography``, ...). sources: where the photo came from.
        point_id: the Qdrant point of the matched photo.
    """

    name: str
    person_id: str
    score: float
    likeness: float
    thumbnail_jpeg: bytes | None = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)
    sources: list[str] = field(repr=False)
    point_id: str = field(repr=False)

    @property
    def percent(self) -> int:
        """The likeness as a whole percentage, for captions."""
        return round(self.likeness)

    @property
    def similarity(self) -> float:
        """The likeness as 0..1 (the API's ``similarity``: the displayed value, as it always was)."""
        return round(self.likeness / 100.0, 4)

    @classmethod
    def from_stored(cls, stored: StoredMatch, mapping: LikenessMapping = DEFAULT) -> Match:
        payload = stored.payload
        return cls(
            name=payload.name,
            person_id=payload.person_id,
            score=stored.score,
            likeness=mapping(stored.score),
            thumbnail_jpeg=base64.b64decode(payload.thumbnail) if payload.thumbnail else None,
            metadata=dict(payload.metadata),
            sources=list(payload.sources),
            point_id=stored.id,
        )

    def as_json(self) -> dict[str, Any]:
        """Plain JSON: name, person_id, score (cosine), likeness (0..100), similarity (likeness / 100),
        metadata, sources, point_id."""
        return {"name": self.name, "person_id": self.person_id, "score": self.score,
                "likeness": round(self.likeness, 1), "similarity": self.similarity, "metadata": self.metadata,
                "sources": self.sources, "point_id": self.point_id}


@dataclass(frozen=True)
class FaceMatches:
    """One face of the query photo and the people it resembles, best first.

    ``searched`` is False for a face MTCNN was not sure enough of (below ``min_face_probability``): it
    has no matches. ``no_close_match`` is True when even the best match is under ``min_likeness``; the
    nearest people are still listed.
    """

    face: Face
    matches: list[Match]
    no_close_match: bool = False
    searched: bool = True

    def as_json(self) -> dict[str, Any]:
        """``{"box": [x1, y1, x2, y2], "probability": p, "searched": bool, "no_close_match": bool,
        "matches": [...]}``, pixels of the upright photo."""
        return {
            "box": [round(v, 1) for v in self.face.box],
            "probability": round(self.face.probability, 4),
            "searched": self.searched,
            "no_close_match": self.no_close_match,
            "matches": [m.as_json() for m in self.matches],
        }


@dataclass(frozen=True)
class SearchResult:
    """Every face found in a photo (left to right) with its matches, and the upright photo they are in."""

    faces: list[FaceMatches]
    image: Image.Image | None = field(default=None, repr=False, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {"faces": [f.as_json() for f in self.faces]}


class LookalikeFinder:
    """The face pipeline and the store, checked to agree on the model fingerprint; searches go through the
    store's read side (``index``, a :class:`FaceIndex`).

    ``min_face_probability``: faces detected with less are not searched. ``min_likeness``: a face whose
    best match reads less is answered as "no close match" (both off by default here; the app takes them
    from :class:`Settings`: 0.95 and 25 %). ``likeness``: the cosine -> % mapping.
    """

    def __init__(self, pipeline: FacePipeline, store: FaceStore, top_k: int = 5, use_centroids: bool = False,
                 min_face_probability: float = 0.0, min_likeness: float = 0.0,
                 likeness: LikenessMapping = DEFAULT):
        self.pipeline = pipeline
        self.index = FaceIndex(store)
        self.top_k = top_k
        self.use_centroids = use_centroids
        self.min_face_probability = min_face_probability
        self.min_likeness = min_likeness
        self.likeness = likeness

    @classmethod
    def from_settings(cls, settings: Settings, wait_for_onnx: bool = True,
                      pipeline: FacePipeline | None = None) -> LookalikeFinder:
        """Pipeline and store as ``settings`` say (see :class:`FacePipeline` for ``wait_for_onnx``)."""
        pipeline = pipeline or FacePipeline(settings.face_config(), wait_for_onnx=wait_for_onnx)
        return cls(pipeline, FaceStore.open(settings.store_config()),
                   settings.top_k, settings.use_centroids, settings.min_face_probability, settings.min_likeness,
                   mapping_for(settings.likeness_center, settings.likeness_width))

    @property
    def store(self) -> FaceStore:
        """The store the index reads (its count and fingerprint; the app's background fill writes to it)."""
        return self.index.store

    def check_index(self) -> int:
        """Faces in the index; raises ModelMismatchError if it was built with other weights."""
        count = self.store.count()
        if count:
            self.store.check_fingerprint(self.pipeline.fingerprint)
        return count

    def filter_values(self) -> dict[str, list[Any]]:
        """The values each filter of :data:`lookalike.filters.FILTERS` can take in this index, by filter name
        (empty: hide the filter)."""
        return {item.name: self.index.filter_values(item.path) for item in declared()}

    def find(self, source: ImageInput, top_k: int | None = None, *, where: Mapping[str, Any] | None = None,
             with_thumbnails: bool = True, well_known_only: bool = False) -> SearchResult:
        """Every face of the photo with its ``top_k`` look-alikes, one per person, best first.

        ``source`` is decoded once (an RGB ``PIL.Image`` is taken as already decoded and upright).
        ``where`` maps filter names of :data:`lookalike.filters.FILTERS` (or payload paths) to the value to keep;
        ``with_thumbnails=False`` leaves the matches' thumbnails unread (the API does not show them).
        ``well_known_only`` leaves out the people the index marks as not well-known (``well_known`` 0;
        people it does not mark count as well-known). One store query per searched face.

        Raises:
            NotAnImageError, ImageTooLargeError, NoFaceError: the photo cannot be used.
            EmptyIndexError, ModelMismatchError, StoreUnavailableError: the index cannot answer.
        """
        image = source if isinstance(source, Image.Image) and source.mode == "RGB" else self.pipeline.load(source)
        faces = self.pipeline.faces_many([image])[0]
        if not faces:
            raise NoFaceError(NO_FACE)
        return self.find_faces(faces, top_k, where=where, with_thumbnails=with_thumbnails,
                               well_known_only=well_known_only, image=image)

    def find_faces(self, faces: Sequence[Face], top_k: int | None = None, *, where: Mapping[str, Any] | None = None,
                   with_thumbnails: bool = True, well_known_only: bool = False,
                   image: Image.Image | None = None) -> SearchResult:
        """:meth:`find` for faces already found and embedded: a photo's faces from :attr:`pipeline`, or
        faces a browser or another app embedded with the same models (:func:`lookalike.query_faces.query_faces`
        checks those). ``image``: the photo they are in, when there is one."""
        k = self.top_k if top_k is None else top_k
        paths = {item.name: item.path for item in declared()}
        conditions = {paths.get(key, key): value for key, value in (where or {}).items()
                      if value is not None and value != ""}
        if well_known_only:
            conditions[WELL_KNOWN] = Not(0)
        return SearchResult([self._face_matches(face, k, conditions, with_thumbnails) for face in faces], image)

    def _face_matches(self, face: Face, top_k: int, where: Mapping[str, Any], with_thumbnails: bool) -> FaceMatches:
        if face.probability < self.min_face_probability:
            return FaceMatches(face, [], no_close_match=True, searched=False)
        matches = self.matches_for(face, top_k, where=where, with_thumbnails=with_thumbnails)
        return FaceMatches(face, matches, no_close_match=not matches or matches[0].likeness < self.min_likeness)

    def matches_for(self, face: Face, top_k: int, *, where: Mapping[str, Any] | None = None,
                    with_thumbnails: bool = True) -> list[Match]:
        """The ``top_k`` people most like one face (one store query)."""
        stored = self.index.query_people(face.vector, top_k, use_centroids=self.use_centroids, where=where or None,
                                         with_thumbnails=with_thumbnails)
        return [Match.from_stored(s, self.likeness) for s in stored]
