"""Image in, look-alikes out (lookalike.search): a small index built by the real indexer, then queries."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import BIOS, CORE_FIXTURES, FIVE_TRAIN, LFW, MULTIFACE, image_files
from lookalike.errors import EmptyIndexError, ModelMismatchError, NoFaceError
from lookalike.fingerprint import ModelFingerprint
from lookalike.index.people import person_id
from lookalike.index.store import FaceStore
from lookalike.search import LookalikeFinder
from support import copy_photos, make_point

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)

LFW_PEOPLE = ["Colin_Powell", "Tony_Blair", "Naomi_Watts"]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two photos of each five_celebs person and of three LFW people, one folder per person."""
    root = copy_photos(FIVE_TRAIN, tmp_path_factory.mktemp("photos"), per_person=2)
    return copy_photos(LFW, root, per_person=2, only=LFW_PEOPLE)


@pytest.fixture(scope="module")
def bios_rows() -> list[dict]:
    import datasets

    rows = datasets.load_dataset(str(BIOS), split="train").cast_column("image", datasets.Image(decode=False))
    return [dict(row) for row in rows]


@pytest.fixture(scope="module")
def index(pipeline, base_settings, photo_folder, tmp_path_factory):
    """The photo folder and celebrity_bios_mini indexed by indexing.Indexer into an embedded store."""
    from indexing.indexer import Indexer
    from indexing.sources import open_sources

    settings = base_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("search_data")})
    store = FaceStore.open(settings.store_config())
    sources = open_sources(str(photo_folder)) + open_sources(str(BIOS))
    report = Indexer(pipeline, store).run(sources, progress=False)
    yield SimpleNamespace(store=store, report=report, finder=LookalikeFinder(pipeline, store, top_k=5))
    store.close()


def test_index_holds_every_photo(index, photo_folder, bios_rows):
    photos = len(image_files(photo_folder)) + len(bios_rows)
    assert index.report.images_seen == photos
    assert not index.report.skipped, index.report.skipped
    assert index.store.count() == index.report.faces_indexed
    assert index.store.count() >= photos - 3  # only byte-identical photos may share a point
    assert index.finder.check_index() == index.store.count()


@pytest.mark.parametrize("person,which", [("ben_afflek", 0), ("madonna", 1), ("Tony_Blair", 0),
                                          ("Naomi_Watts", 1)])
def test_exact_indexed_photo_comes_first(index, photo_folder, person, which):
    photo = image_files(photo_folder / person)[which]
    result = index.finder.find(photo)
    main = max(result.faces, key=lambda f: f.face.area)
    best = main.matches[0]
    assert best.person_id == person_id(person)
    assert best.score == pytest.approx(1.0, abs=1e-3)
    assert best.similarity == pytest.approx(1.0, abs=1e-3) and best.percent == 100
    assert best.thumbnail_jpeg and Image.open(io.BytesIO(best.thumbnail_jpeg)).format == "JPEG"
    assert any(person in source for source in best.sources)
    # The rest are other people, each once, less alike.
    assert all(m.score < 0.999 for m in main.matches[1:])


def test_reencoded_photo_still_finds_itself(index, photo_folder):
    photo = image_files(photo_folder / "jerry_seinfeld")[0]
    buffer = io.BytesIO()
    Image.open(photo).convert("RGB").save(buffer, format="JPEG", quality=70)
    result = index.finder.find(buffer.getvalue())
    main = max(result.faces, key=lambda f: f.face.area)
    assert main.matches[0].person_id == "jerry-seinfeld"
    assert 0.7 < main.matches[0].score < 0.9999


def test_matches_are_people_best_first(index, photo_folder):
    result = index.finder.find(image_files(photo_folder / "elton_john")[0], top_k=7)
    for face in result.faces:
        assert len(face.matches) == 7
        people = [m.person_id for m in face.matches]
        assert len(set(people)) == 7
        scores = [m.score for m in face.matches]
        assert scores == sorted(scores, reverse=True)
        for match in face.matches:
            assert -1.0 <= match.score <= 1.0
            assert 0.0 <= match.similarity <= 1.0
            # the displayed value is now the likeness (lookalike.likeness), kept beside the raw cosine
            assert match.similarity == pytest.approx(match.likeness / 100, abs=1e-4)
            assert match.likeness == pytest.approx(index.finder.likeness(match.score))
            assert isinstance(match.percent, int) and 0 <= match.percent <= 100
            assert match.name and match.person_id == person_id(match.name)


def test_biography_comes_with_the_match(index, bios_rows, tmp_path: Path):
    row = next(r for r in bios_rows if r["biography"])
    path = tmp_path / "bio.jpg"
    path.write_bytes(row["image"]["bytes"])
    result = index.finder.find(path)
    best = max(result.faces, key=lambda f: f.face.area).matches[0]
    assert best.name == row["name"]
    assert best.metadata["biography"] == row["biography"]
    assert best.score == pytest.approx(1.0, abs=1e-3)


def test_multiface_gives_six_faces_with_matches(index):
    result = index.finder.find(MULTIFACE, top_k=3)
    assert len(result.faces) == 6
    lefts = [f.face.box[0] for f in result.faces]
    assert lefts == sorted(lefts)
    for face in result.faces:
        assert len(face.matches) == 3


def test_as_json_is_plain_json(index, bios_rows, tmp_path: Path):
    path = tmp_path / "bio.jpg"
    path.write_bytes(next(r for r in bios_rows if r["biography"])["image"]["bytes"])
    for source in (MULTIFACE, path):
        result = index.finder.find(source)
        data = result.as_json()
        assert json.loads(json.dumps(data)) == data  # plain types only, no numpy, no bytes
        assert len(data["faces"]) == len(result.faces)
        for face_json, face in zip(data["faces"], result.faces, strict=True):
            assert set(face_json) == {"box", "probability", "searched", "no_close_match", "matches"}
            assert len(face_json["box"]) == 4 and all(isinstance(v, float) for v in face_json["box"])
            assert face_json["box"] == pytest.approx(list(face.face.box), abs=0.06)
            assert 0.0 <= face_json["probability"] <= 1.0
            assert len(face_json["matches"]) == len(face.matches) == 5
            for match_json, match in zip(face_json["matches"], face.matches, strict=True):
                assert {"name", "person_id", "score", "likeness", "similarity", "metadata"} <= set(match_json)
                assert "thumbnail_jpeg" not in match_json
                assert match_json["name"] == match.name and match_json["score"] == match.score
                assert isinstance(match_json["metadata"], dict)
    best = data["faces"][0]["matches"][0]
    assert best["metadata"]["biography"]


def test_no_face_and_empty_index(index, pipeline, settings, tmp_path: Path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), (200, 200, 200)).save(blank)
    with pytest.raises(NoFaceError):
        index.finder.find(blank)
    empty = FaceStore.open(settings.store_config())
    try:
        finder = LookalikeFinder(pipeline, empty)
        assert finder.check_index() == 0
        with pytest.raises(EmptyIndexError):
            finder.find(MULTIFACE)
    finally:
        empty.close()


def test_index_built_with_other_weights_is_refused(index, pipeline):
    other = ModelFingerprint("InceptionResnetV1", "vggface2", "0" * 64, pipeline.fingerprint.pipeline)
    finder = LookalikeFinder(SimpleNamespace(fingerprint=other), index.store)
    with pytest.raises(ModelMismatchError):
        finder.check_index()


def test_matches_equal_an_exact_search_with_facenet_pytorchs_own_vector(index, photo_folder, bios_rows, torch_home):
    """The finder's people and scores equal a brute-force search done independently: the query vector from
    facenet-pytorch's own ``MTCNN.extract`` + ``InceptionResnetV1`` on the same box, against every indexed
    photo's vector, best photo per person. A second preprocessing path or a wrong score would show here."""
    import torch
    from facenet_pytorch import InceptionResnetV1

    photo = image_files(photo_folder / "mindy_kaling")[1]
    result = index.finder.find(photo, top_k=5)
    face = max(result.faces, key=lambda f: f.face.area)
    image = Image.open(photo).convert("RGB")
    crop = index.finder.pipeline.detector.mtcnn.extract(image, np.array([face.face.box]), None)
    with torch.no_grad():
        query = InceptionResnetV1(pretrained="vggface2").eval()(crop)[0].numpy()
    gallery = [(person_id(p.parent.name), p) for p in image_files(photo_folder)]
    gallery += [(person_id(row["name"]), row["image"]["bytes"]) for row in bios_rows]
    images = [index.finder.pipeline.load(source) for _, source in gallery]
    best: dict[str, float] = {}
    for (person, _), faces in zip(gallery, index.finder.pipeline.faces_many(images, main_only=True), strict=True):
        if faces:
            best[person] = max(best.get(person, -1.0), float(faces[0].vector @ query))
    expected = sorted(best.items(), key=lambda item: -item[1])[:5]
    assert [m.person_id for m in face.matches] == [person for person, _ in expected]
    assert [m.score for m in face.matches] == pytest.approx([score for _, score in expected], abs=2e-3)


@pytest.mark.qdrant_server
def test_a_qdrant_server_gives_the_same_people_and_scores(index, pipeline, photo_folder, server_settings):
    """Indexing and search against a real Qdrant server (grouping by ``query_points_groups`` there) answer
    as the embedded engine does on the same photos: the same people in the same order, the same scores."""
    from indexing.indexer import Indexer
    from indexing.sources import open_sources

    server = FaceStore.open(server_settings.store_config())
    try:
        report = Indexer(pipeline, server).run(open_sources(str(photo_folder)) + open_sources(str(BIOS)),
                                               progress=False)
        assert report.faces_indexed == index.report.faces_indexed and server.count() == index.store.count()
        finder = LookalikeFinder(pipeline, server, top_k=5)
        for photo in [image_files(photo_folder / "madonna")[0], image_files(photo_folder / "Tony_Blair")[1], MULTIFACE]:
            ours, theirs = index.finder.find(photo), finder.find(photo)
            for a, b in zip(ours.faces, theirs.faces, strict=True):
                assert [m.person_id for m in a.matches] == [m.person_id for m in b.matches]
                assert [m.score for m in a.matches] == pytest.approx([m.score for m in b.matches], abs=1e-4)
    finally:
        server.close()


def test_well_known_only_still_finds_the_people_of_an_index_built_before_the_mark(pipeline, store):
    """An index built before the person pass marked anyone holds no ``well_known``: "well-known only" (the
    app's default) must still search its people, and leave out only those marked 0."""
    from indexing.versions import ensure_collection

    marks = {"madonna": None, "elton_john": 1, "mindy_kaling": 0}  # unmarked (an older index), marked, marked not
    photos = {person: image_files(FIVE_TRAIN / person)[0] for person in marks}
    ensure_collection(store, pipeline.fingerprint)
    points = []
    for person, photo in photos.items():
        face = max(pipeline.faces_many([pipeline.load(photo)], main_only=True)[0], key=lambda f: f.area)
        point = make_point(face.vector, person, "0")
        well_known = None if marks[person] is None else bool(marks[person])
        points.append(dataclasses.replace(point, payload=dataclasses.replace(point.payload, well_known=well_known)))
    store.upsert(points)
    assert [p.payload.as_dict().get("well_known") for p in points] == [None, 1, 0]
    finder = LookalikeFinder(pipeline, store, top_k=5)

    def people(photo: Path, well_known_only: bool) -> list[str]:
        (face,) = finder.find(photo, well_known_only=well_known_only).faces
        return [m.person_id for m in face.matches]

    assert people(photos["madonna"], True)[0] == "madonna"
    assert sorted(people(photos["madonna"], True)) == ["elton_john", "madonna"]
    assert sorted(people(photos["mindy_kaling"], True)) == ["elton_john", "madonna"]
    assert sorted(people(photos["mindy_kaling"], False)) == ["elton_john", "madonna", "mindy_kaling"]
