"""The per-person mean faces of a version: ``<version>_centroids``, one point per person.

An offline job over every vector of a version; queries read the result through the centroids alias
(:meth:`lookalike.index.query.FaceIndex.query_people` with ``use_centroids``), scanning people instead of faces.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lookalike.batching import batched
from lookalike.fingerprint import ModelFingerprint
from lookalike.index.payload import PERSON_ID, FacePayload, person_point_id
from lookalike.index.storage.port import PayloadFields
from lookalike.index.store import FacePoint, FaceStore, centroids_collection


def build_centroids(store: FaceStore, collection: str, fingerprint: ModelFingerprint) -> int:
    """(Re)build ``<collection>_centroids``: one point per person, the normalised mean of their faces.

    Each person's point carries the payload of their most central photo with ``photos`` (their
    count). When ``collection`` is the current version, the centroids alias moves to the new centroids.
    Returns the number of people.
    """
    sums: dict[str, np.ndarray] = {}
    members: dict[str, list[tuple[str, np.ndarray]]] = {}
    for record in store.points(collection, PayloadFields(include=(PERSON_ID,)), with_vectors=True):
        person = record.payload.get(PERSON_ID)
        if person and record.vector is not None:
            vector = np.asarray(record.vector, np.float32)
            sums[person] = sums.get(person, 0) + vector
            members.setdefault(person, []).append((record.id, vector))
    name = centroids_collection(collection)
    if name in store.collections():
        store.delete_collection(name)
    store.create_collection(name, fingerprint, store.collection_settings("none"))
    for chunk in batched(sums, 256):
        centres = {p: sums[p] / max(float(np.linalg.norm(sums[p])), 1e-12) for p in chunk}
        central = {p: max(members[p], key=lambda m: float(m[1] @ centres[p]))[0] for p in chunk}
        payloads = store.payloads(list(central.values()), collection)
        store.upsert([FacePoint(person_point_id(p), centres[p],
                                dataclasses.replace(FacePayload.from_dict(payloads.get(central[p], {PERSON_ID: p})),
                                                    photos=len(members[p])))
                      for p in chunk], name)
    store.optimize(name)
    if store.current_collection() == collection:
        store.set_aliases({store.centroids_alias: name})
    return len(sums)
