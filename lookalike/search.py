"""Image in, look-alikes out: the core API that the app, the client API and the benchmarks call.

>>> finder = LookalikeFinder.from_settings(Settings())
>>> for face in finder.find(Path("me.jpg")).faces:
...     print(face.box, [(m.name, m.percent) for m in face.matches])
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from typing import Any

from lookalike.faces import Face, FacePipeline
from lookalike.images import ImageInput
from lookalike.settings import Settings
from lookalike.store import FaceStore, StoredMatch


def similarity(cosine: float) -> float:
    """The display similarity of a cosine: ``max(cosine, 0)``, 0..1 (shown as a percentage).

    FaceNet puts unrelated faces near 0 and photos of one person around 0.6-0.9, so the cosine
    itself reads well as a percentage; negative cosines (less alike than strangers) show as 0 %.
    """
    return min(1.0, max(0.0, float(cosine)))


@dataclass(frozen=True)
class Match:
    """A celebrity one face resembles.

    Attributes:
        name: display name. person_id: stable grouping key (``"tony-blair"``).
        score: cosine similarity, -1..1. similarity: :func:`similarity` of it, 0..1.
        thumbnail_jpeg: the matched face as JPEG bytes, or None if the point has none.
        metadata: the person's metadata (``biography``, ...). sources: where the photo came from.
        point_id: the Qdrant point of the matched photo.
    """

    name: str
    person_id: str
    score: float
    similarity: float
    thumbnail_jpeg: bytes | None = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)
    sources: list[str] = field(repr=False)
    point_id: str = field(repr=False)

    @property
    def percent(self) -> int:
        """Similarity as a whole percentage, for captions."""
        return round(self.similarity * 100)

    @classmethod
    def from_stored(cls, stored: StoredMatch) -> "Match":
        payload = stored.payload
        return cls(
            name=payload.name,
            person_id=payload.person_id,
            score=stored.score,
            similarity=similarity(stored.score),
            thumbnail_jpeg=base64.b64decode(payload.thumbnail) if payload.thumbnail else None,
            metadata=dict(payload.metadata),
            sources=list(payload.sources),
            point_id=stored.id,
        )

    def as_json(self) -> dict[str, Any]:
        """Plain JSON: name, person_id, score (cosine), similarity (0..1), metadata, sources."""
        out = asdict(self)
        out.pop("thumbnail_jpeg")
        return out


@dataclass(frozen=True)
class FaceMatches:
    """One face of the query photo and the people it resembles, best first."""

    face: Face
    matches: list[Match]

    def as_json(self) -> dict[str, Any]:
        """``{"box": [x1, y1, x2, y2], "probability": p, "matches": [...]}``, pixels of the upright photo."""
        return {
            "box": [round(v, 1) for v in self.face.box],
            "probability": round(self.face.probability, 4),
            "matches": [m.as_json() for m in self.matches],
        }


@dataclass(frozen=True)
class SearchResult:
    """Every face found in a photo (left to right) with its matches."""

    faces: list[FaceMatches]

    def as_json(self) -> dict[str, Any]:
        return {"faces": [f.as_json() for f in self.faces]}


class LookalikeFinder:
    """The face pipeline and the store, checked to agree on the model fingerprint."""

    def __init__(self, pipeline: FacePipeline, store: FaceStore, top_k: int = 5, use_centroids: bool = False):
        self.pipeline = pipeline
        self.store = store
        self.top_k = top_k
        self.use_centroids = use_centroids

    @classmethod
    def from_settings(cls, settings: Settings, wait_for_onnx: bool = True) -> "LookalikeFinder":
        """Pipeline and store as ``settings`` say (see :class:`FacePipeline` for ``wait_for_onnx``)."""
        return cls(FacePipeline(settings, wait_for_onnx=wait_for_onnx), FaceStore.open(settings), settings.top_k,
                   settings.use_centroids)

    def check_index(self) -> int:
        """Faces in the index; raises ModelMismatchError if it was built with other weights."""
        count = self.store.count()
        if count:
            self.store.check_fingerprint(self.pipeline.fingerprint)
        return count

    def find(self, source: ImageInput, top_k: int | None = None) -> SearchResult:
        """Every face of the photo with its ``top_k`` look-alikes, one per person, best first.

        Raises:
            NotAnImageError, ImageTooLargeError, NoFaceError: the photo cannot be used.
            EmptyIndexError, ModelMismatchError, StoreUnavailableError: the index cannot answer.
        """
        faces = self.pipeline.faces(source)
        k = self.top_k if top_k is None else top_k
        return SearchResult([FaceMatches(face, self.matches_for(face, k)) for face in faces])

    def matches_for(self, face: Face, top_k: int) -> list[Match]:
        """The ``top_k`` people most like one face."""
        stored = self.store.query_people(face.vector, top_k, use_centroids=self.use_centroids)
        return [Match.from_stored(s) for s in stored]
