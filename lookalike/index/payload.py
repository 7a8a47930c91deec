"""The payload of an indexed face and its point id: the one schema both phases and both engines use.

Each point of a face collection is one photo's main face. Its payload (JSON in Qdrant)::

    {"name": "Tony Blair",              # display name (the first spelling the sources gave)
     "person_id": "tony-blair",         # grouping key, keyword payload index
     "content_sha256": "9f2c...",       # SHA-256 of the photo's bytes; the point id is uuid5 of it
     "sources": ["lfw_dev:Tony_Blair/Tony_Blair_0001.jpg"],
     "thumbnail": "/9j/4AAQ...",        # base64 JPEG of the face (THUMBNAIL_SIZE px), or absent
     "metadata": {"biography": "...", "gender": 1, "known_for_department": "Acting"},
     "box": [x1, y1, x2, y2],           # pixels of the upright photo
     "probability": 0.9993,             # MTCNN's face probability
     "well_known": 1}                   # 1: the person is among the well-known, 0: not (the person pass)

A point of a per-person collection (centroids) has the same payload plus ``photos``, the person's
number of faces. Metadata strings are cut to :data:`METADATA_MAX_CHARS` characters here, whichever
path writes them (a new point or the person-wide merge at the end of an indexing run).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lookalike.filters import declared

POINT_NAMESPACE = uuid.UUID("6f1c3c52-6b3e-4b8e-9a53-2f7f1f6d9a10")
"""uuid5 namespace of point ids (fixed: changing it would re-id every indexed photo)."""

NAME = "name"
PERSON_ID = "person_id"
CONTENT_SHA256 = "content_sha256"
SOURCES = "sources"
THUMBNAIL = "thumbnail"
METADATA = "metadata"
BOX = "box"
PROBABILITY = "probability"
PHOTOS = "photos"
WELL_KNOWN = "well_known"
"""1 or 0, not a JSON bool: qdrant-edge-py matches a filter's bool as an integer, so a bool never matches."""

THUMBNAIL_SIZE = 96
"""Side of a point's face thumbnail (JPEG, pixels): 96 px keeps the full default index within Qdrant
Cloud's free tier with room to spare while a rebuild holds two versions (README, "Qdrant Cloud's free tier")."""

METADATA_MAX_CHARS = 2000
"""Longest metadata string kept (a TMDB biography can run to 10k characters)."""


def filter_fields() -> dict[str, type]:
    """Payload paths a query may filter on, with their value type: each declared filter's
    (:mod:`lookalike.filters`) and ``well_known``. Each has a payload index."""
    return {**{item.path: item.kind for item in declared()}, WELL_KNOWN: int}


def payload_indexes() -> dict[str, type]:
    """Payload indexes of a new face collection: ``str`` is a keyword index, ``int`` an integer index."""
    return {PERSON_ID: str, **filter_fields()}


def point_id(content_sha256: str) -> str:
    """The point id of a photo: uuid5 of its content hash, so one photo is one point wherever it came from."""
    return str(uuid.uuid5(POINT_NAMESPACE, content_sha256))


def person_point_id(person: str) -> str:
    """The point id of a person's mean face in a centroids collection."""
    return str(uuid.uuid5(POINT_NAMESPACE, "person:" + person))


def clean_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    """A person's metadata as stored: scalar values only, strings stripped and cut to METADATA_MAX_CHARS,
    empty values dropped."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str):
            value = value.strip()[:METADATA_MAX_CHARS]
            if not value:
                continue
        if isinstance(value, (str, int, float, bool)):
            out[str(key)] = value
    return out


@dataclass(frozen=True)
class FacePayload:
    """The payload of one point (see the module docstring for the JSON).

    Attributes:
        name: display name. person_id: grouping key (``"tony-blair"``).
        content_sha256: hex SHA-256 of the photo's bytes ("" when the stored point has none).
        sources: where the photo came from (``"<source>:<ref>"``).
        thumbnail: base64 JPEG of the face, or None (not stored, or not asked for).
        metadata: the person's own fields (``biography``, ``gender``, ...), cleaned by :func:`clean_metadata`.
        box: ``[x1, y1, x2, y2]`` pixels of the upright photo, or None. probability: MTCNN's, or None.
        photos: faces of the person (centroid points only), else None.
        well_known: whether the person is among the well-known (``indexing.precedence.mark_well_known``),
            or None where the person pass has not said (counted as well-known).
    """

    name: str
    person_id: str
    content_sha256: str = ""
    sources: list[str] = field(default_factory=list)
    thumbnail: str | None = field(default=None, repr=False)
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    box: list[float] | None = None
    probability: float | None = None
    photos: int | None = None
    well_known: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", clean_metadata(self.metadata))

    def as_dict(self) -> dict[str, Any]:
        """The JSON payload; None fields are left out."""
        out: dict[str, Any] = {NAME: self.name, PERSON_ID: self.person_id, CONTENT_SHA256: self.content_sha256,
                               SOURCES: list(self.sources), METADATA: dict(self.metadata)}
        well_known = None if self.well_known is None else int(self.well_known)
        for key, value in ((THUMBNAIL, self.thumbnail), (BOX, self.box), (PROBABILITY, self.probability),
                           (PHOTOS, self.photos), (WELL_KNOWN, well_known)):
            if value is not None:
                out[key] = list(value) if isinstance(value, list) else value  # the box: a copy
        return out

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> FacePayload:
        """The payload of a stored point (missing keys get their defaults, unknown keys are dropped)."""
        box = payload.get(BOX)
        probability = payload.get(PROBABILITY)
        photos = payload.get(PHOTOS)
        well_known = payload.get(WELL_KNOWN)
        return cls(
            name=str(payload.get(NAME) or "unknown"),
            person_id=str(payload.get(PERSON_ID) or ""),
            content_sha256=str(payload.get(CONTENT_SHA256) or ""),
            sources=[str(s) for s in payload.get(SOURCES) or []],
            thumbnail=payload.get(THUMBNAIL) or None,
            metadata=dict(payload.get(METADATA) or {}),
            box=[float(v) for v in box] if box is not None else None,
            probability=float(probability) if probability is not None else None,
            photos=int(photos) if photos is not None else None,
            well_known=bool(well_known) if isinstance(well_known, (bool, int)) else None,
        )
