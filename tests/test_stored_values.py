"""Golden values of what a deployed index holds: point ids, payload keys, person keys, collection names
and the model fingerprint, held to literals written once by hand. Each test derives nothing from the
product's own constants, so a change to any of them (which would make the next indexing run write every
photo again under new ids, or stop the app from reading an existing index) fails here."""

from __future__ import annotations

from lookalike.fingerprint import ModelFingerprint
from lookalike.index.payload import FacePayload, payload_indexes, person_point_id, point_id
from lookalike.index.people import person_id


def test_point_ids_are_uuid5_of_the_photos_hash_in_the_fixed_namespace():
    assert point_id("0" * 64) == "0177bd03-9a2d-5574-bdef-9e37649a8984"
    assert point_id("9f2c" + "0" * 60) == "a9ad65ab-0341-5455-81eb-d977d2901d05"
    assert person_point_id("tony-blair") == "ffe4b997-9dc6-5158-91bd-f2dc44340066"


def test_person_keys_are_ascii_lower_case_words_joined_by_hyphens():
    assert person_id("Penélope Cruz") == "penelope-cruz"
    assert person_id("  Tony   BLAIR ") == "tony-blair"
    assert person_id("Beyoncé Knowles-Carter") == "beyonce-knowles-carter"


def test_payload_keys_as_stored():
    payload = FacePayload(name="Tony Blair", person_id="tony-blair", content_sha256="9f2c", sources=["lfw:x.jpg"],
                          thumbnail="/9j/", metadata={"biography": "A politician.", "gender": 2},
                          box=[1.0, 2.0, 3.0, 4.0], probability=0.99, photos=3, well_known=True)
    assert payload.as_dict() == {
        "name": "Tony Blair", "person_id": "tony-blair", "content_sha256": "9f2c", "sources": ["lfw:x.jpg"],
        "metadata": {"biography": "A politician.", "gender": 2}, "thumbnail": "/9j/", "box": [1.0, 2.0, 3.0, 4.0],
        "probability": 0.99, "photos": 3, "well_known": 1}
    assert payload_indexes() == {"person_id": str, "metadata.gender": int, "metadata.known_for_department": str,
                                 "well_known": int}


def test_the_fingerprint_a_collection_records(store):
    from indexing.versions import create_version
    from lookalike.faces import FaceConfig, pipeline_fingerprint

    fingerprint = pipeline_fingerprint(FaceConfig(), ModelFingerprint("InceptionResnetV1", "vggface2", "ab" * 32, "1"))
    name = create_version(store, fingerprint)
    assert store.engine.collection_metadata(name) == {"fingerprint": {
        "model": "InceptionResnetV1", "weights": "vggface2", "weights_sha256": "ab" * 32, "pipeline": "1",
        "detection": "min face 40 px, max side 1280 px"}}


def test_collection_names_behind_the_alias(store):
    from indexing.versions import create_version, version_name
    from lookalike.index.store import centroids_collection

    fingerprint = ModelFingerprint("InceptionResnetV1", "vggface2", "ab" * 32, "1")
    assert store.alias == "celebrities"
    assert create_version(store, fingerprint) == "celebrities_v1"
    assert create_version(store, fingerprint) == "celebrities_v2"
    assert version_name(store, 7) == "celebrities_v7"
    assert centroids_collection("celebrities_v2") == "celebrities_v2_centroids"
    assert store.centroids_alias == "celebrities_centroids"
