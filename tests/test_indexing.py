"""The offline phase, ``python -m indexing``: sources, sampling, the indexer and its CLI.

Real parts throughout: the real MTCNN, stand-in FaceNet weights (``conftest.torch_home``), real photos
from ``tests/data`` and embedded Qdrant stores in temporary folders. Subprocesses (each loads torch and
the models) are kept to the few tests that need a real ``python -m indexing``: help, a bad source,
and a run killed with SIGKILL and resumed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from conftest import CELEBRITY_MINI, FIVE_TRAIN, image_files
from indexing.versions import versions as version_names
from lookalike.index.payload import THUMBNAIL_SIZE
from lookalike.index.query import FaceIndex
from support import INDEXING_IMPORTS, CommandServer, copy_photos

FAKE_QDRANT_KEY = "sk-FAKE-3f9c2a7e51d84b6c9e0a1b2c3d4e5f60"
FAKE_HF_TOKEN = "hf_FAKEq8Zr5Lw2Xn7Pk4Vt9Ym3Hs6Jd1Gb0Ce"
PEOPLE = {"ben-afflek", "elton-john", "jerry-seinfeld", "madonna", "mindy-kaling"}


# -- helpers ------------------------------------------------------------------------------------------


def _index(pipeline, store, spec, **run):
    from indexing.indexer import Indexer
    from indexing.sources import SourceOptions, open_sources

    split = run.pop("split", None)
    batch_size = run.pop("batch_size", 16)
    sources = open_sources(str(spec), SourceOptions(split=split))
    return Indexer(pipeline, store, batch_size).run(sources, progress=False, **run)


def _open_store(settings):
    from lookalike.index.store import FaceStore

    return FaceStore.open(settings.store_config())


def _expected_id(path: Path) -> str:
    from lookalike.index.payload import point_id

    return point_id(hashlib.sha256(path.read_bytes()).hexdigest())


def _people(store) -> Counter:
    return Counter(r.payload["person_id"] for r in store.points())


def _blank_jpeg(path: Path, size=(400, 300), color=(200, 200, 200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="JPEG")
    return path


def _cli_env(data_dir: Path, torch_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"QDRANT_URL", "QDRANT_API_KEY", "HF_TOKEN", "LOOKALIKE_QDRANT_URL"}}
    env.update(TORCH_HOME=str(torch_home), LOOKALIKE_DATA_DIR=str(data_dir), LOOKALIKE_DEVICE="cpu",
               PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", **extra)
    return env


# -- a whole folder, indexed once for the module ---------------------------------------------------


@pytest.fixture(scope="module")
def five(pipeline, base_settings, tmp_path_factory):
    """five_celebs/train indexed through the folder source into one embedded store."""
    settings = base_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("five")})
    store = _open_store(settings)
    report = _index(pipeline, store, FIVE_TRAIN)
    yield store, report
    store.close()


def test_folder_source_indexes_every_photo_with_a_face(five, pipeline):
    store, report = five
    files = image_files(FIVE_TRAIN)
    detections = pipeline.detector.detect_many([pipeline.load(f) for f in files])
    with_face = [f for f, found in zip(files, detections, strict=True) if len(found) > 0]
    assert len(files) == 92 and len(with_face) > 80
    assert report.faces_indexed == len(with_face) == store.count()
    assert report.images_seen == len(files)
    assert sum(report.skipped.values()) == len(files) - len(with_face)
    assert store.ids() == {_expected_id(f) for f in with_face}
    assert set(_people(store)) == PEOPLE
    assert store.current_collection() == "celebrities_v1"


def test_payloads_carry_name_person_thumbnail_sources_and_hash(five, pipeline):
    store, _ = five
    photo = image_files(FIVE_TRAIN / "madonna")[0]
    pid = _expected_id(photo)
    payload = store.payloads([pid])[pid]
    assert payload["name"] == "Madonna" and payload["person_id"] == "madonna"
    assert payload["content_sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert f"train:madonna/{photo.name}" in payload["sources"]
    jpeg = base64.b64decode(payload["thumbnail"], validate=True)
    assert jpeg[:2] == b"\xff\xd8" and 1_000 < len(jpeg) < 20_000
    thumb = Image.open(io.BytesIO(jpeg))
    assert thumb.format == "JPEG" and thumb.size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    # the stored vector is the pipeline's vector of the photo's largest face
    (face,) = pipeline.faces_many([pipeline.load(photo)], main_only=True)[0]
    (record,) = store.engine.retrieve(store.alias, [pid], with_vectors=True)
    assert sum(a * b for a, b in zip(record.vector, face.vector, strict=True)) > 0.999
    for record in store.points():
        assert {"name", "person_id", "thumbnail", "sources", "content_sha256"} <= set(record.payload)


def test_second_run_adds_nothing(five, pipeline):
    store, first = five
    ids = store.ids()
    again = _index(pipeline, store, FIVE_TRAIN)
    assert again.faces_indexed == 0
    assert again.already_indexed == first.faces_indexed == store.count()
    assert store.ids() == ids


def test_saved_dataset_of_the_same_files_gives_the_same_ids(five, pipeline, tmp_path):
    import datasets

    store, first = five
    ids = store.ids()
    saved = tmp_path / "saved"
    datasets.load_dataset("imagefolder", data_dir=str(FIVE_TRAIN), split="train").save_to_disk(str(saved))
    report = _index(pipeline, store, saved)
    assert report.images_seen == 92
    assert (report.faces_indexed, report.already_indexed) == (0, first.faces_indexed)
    assert store.ids() == ids
    pid = _expected_id(image_files(FIVE_TRAIN / "elton_john")[0])
    assert any(ref.startswith("saved:") for ref in store.payloads([pid])[pid]["sources"])


def test_parquet_dataset_train_split_matches_the_folder(five, pipeline):
    from indexing.sources import SourceOptions, open_sources

    store, first = five
    (train,) = open_sources(str(CELEBRITY_MINI), SourceOptions(split="train"))
    assert (train.split, len(train), train.image_column, train.name_column) == ("train", 92, "image", "label")
    report = _index(pipeline, store, CELEBRITY_MINI, split="train")
    assert (report.faces_indexed, report.already_indexed) == (0, first.faces_indexed)


def test_parquet_dataset_split_all_reads_both_splits(pipeline, store):
    from indexing.sources import SourceOptions, open_sources

    both = open_sources(str(CELEBRITY_MINI), SourceOptions(split="all"))
    assert sorted((s.split, len(s)) for s in both) == [("test", 24), ("train", 92)]
    report = _index(pipeline, store, CELEBRITY_MINI, split="all", sample=2)  # two rows of each split
    assert report.images_seen == 4 and report.faces_indexed == store.count() > 0
    refs = [ref for r in store.points() for ref in r.payload["sources"]]
    assert any(ref.startswith("celebrity_mini:test:") for ref in refs)
    assert any(ref.startswith("celebrity_mini:train:") for ref in refs)
    with pytest.raises(ValueError, match="no split 'validation'"):
        open_sources(str(CELEBRITY_MINI), SourceOptions(split="validation"))


def test_recreate_keeps_readers_answering_then_swaps_the_alias(pipeline, store, tmp_path):
    folder = copy_photos(FIVE_TRAIN, tmp_path / "few", per_person=1)
    _index(pipeline, store, folder)
    assert version_names(store) == ["celebrities_v1"]
    vector = pipeline.faces(image_files(folder)[0])[0].vector
    done, answers, errors = threading.Event(), [], []
    index = FaceIndex(store)

    def reader():
        while not done.is_set():
            try:
                answers.append(index.query_people(vector, 3))
            except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                errors.append(exc)
            time.sleep(0.02)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        while not answers and not errors:
            time.sleep(0.01)
        before = len(answers)
        report = _index(pipeline, store, folder, recreate=True, batch_size=2)
        time.sleep(0.05)
    finally:
        done.set()
        thread.join(10)
    assert errors == []
    assert len(answers) > before + 1  # the reader kept answering while the new version was built
    assert all(len(a) == 3 for a in answers)
    assert report.collection == "celebrities_v2" and report.faces_indexed == store.count() == 5
    assert store.current_collection() == "celebrities_v2"
    assert version_names(store) == ["celebrities_v2"]


def _snapshot(store) -> dict:
    return {r.id: (r.vector, r.payload) for r in store.points(with_vectors=True)}


def test_a_new_version_copies_the_served_faces_and_embeds_only_new_photos(pipeline, store, tmp_path, caplog):
    folder = copy_photos(FIVE_TRAIN, tmp_path / "few", per_person=2)
    first = _index(pipeline, store, folder)
    assert first.faces_embedded == first.faces_indexed > 0 and first.faces_reused == 0
    assert "no served version" in first.summary()
    before = _snapshot(store)
    # the weekly build over unchanged sources: a new version, nothing embedded
    again = _index(pipeline, store, folder, recreate=True)
    assert store.current_collection() == "celebrities_v2"
    assert (again.faces_embedded, again.faces_reused) == (0, first.faces_indexed) and again.embed_s == 0
    assert f"embedded: 0, reused: {first.faces_indexed} (from celebrities_v1" in again.summary()
    assert _snapshot(store) == before  # the same ids, vectors and payloads (well_known too, after the pass)
    # one new photo: only it is embedded
    new = image_files(FIVE_TRAIN / "madonna")[2]
    shutil.copy(new, folder / "madonna" / new.name)
    third = _index(pipeline, store, folder, recreate=True)
    assert (third.faces_embedded, third.faces_reused) == (1, first.faces_indexed)
    assert set(_snapshot(store)) == set(before) | {_expected_id(new)}


def test_a_served_version_of_another_model_is_not_copied(pipeline, store, tmp_path):
    import dataclasses

    from indexing import versions

    folder = copy_photos(FIVE_TRAIN, tmp_path / "few", per_person=1)
    _index(pipeline, store, folder)
    other = dataclasses.replace(pipeline.fingerprint, weights_sha256="0" * 64)
    stale = versions.create_version(store, other)
    store.upsert(_points(store), stale)
    versions.switch_alias(store, stale)
    report = _index(pipeline, store, folder, recreate=True)
    assert (report.faces_embedded, report.faces_reused) == (5, 0) and report.embed_s > 0
    assert "another model fingerprint: every photo is embedded" in report.summary()


def test_a_failed_final_pass_leaves_the_old_version_serving(pipeline, store, tmp_path, monkeypatch):
    """A server still indexing after --optimize-wait-s (or any failure of the final pass): the alias stays."""
    from lookalike.index.storage.port import StorageError

    folder = copy_photos(FIVE_TRAIN, tmp_path / "few", per_person=1)
    _index(pipeline, store, folder)
    before = _snapshot(store)

    def still_indexing(collection=None, timeout_s=None):
        raise StorageError(f"{collection} is still being indexed after {timeout_s} s")

    monkeypatch.setattr(store, "optimize", still_indexing)
    with pytest.raises(StorageError, match="celebrities_v2 is still being indexed"):
        _index(pipeline, store, folder, recreate=True)
    assert store.current_collection() == "celebrities_v1" and _snapshot(store) == before
    vector = pipeline.faces(image_files(folder / "madonna")[0])[0].vector
    assert FaceIndex(store).query_people(vector, 1)[0].payload.person_id == "madonna"  # still answering


def _points(store):
    from lookalike.index.payload import FacePayload
    from lookalike.index.store import FacePoint

    return [FacePoint(r.id, r.vector, FacePayload(**{k: v for k, v in r.payload.items() if k != "well_known"}))
            for r in store.points(with_vectors=True)]


# -- bad input --------------------------------------------------------------------------------------


def _junk_folder(root: Path) -> Path:
    person = root / "Madonna"
    person.mkdir(parents=True)
    for photo in image_files(FIVE_TRAIN / "madonna")[:3]:
        shutil.copy(photo, person / photo.name)
    (person / "notes.txt").write_text("not a photo\n")
    (person / "fake.jpg").write_text("this is text, not a JPEG\n")
    (person / "empty.jpg").write_bytes(b"")
    _blank_jpeg(person / "blank.jpg")
    return root


def test_junk_files_are_skipped_and_reported_by_reason(cli, pipeline, tmp_path, capsys):
    from lookalike.settings import Settings

    folder = _junk_folder(tmp_path / "junk")
    assert cli(["--source", str(folder), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "faces indexed: 3 (already indexed: 0)" in out
    assert "skipped, not an image: 1" in out
    assert "skipped, empty file: 1" in out
    assert "skipped, no face: 1" in out
    assert "files ignored (not an image type): 1" in out
    assert re.search(r"elapsed: [\d.]+ s, [\d.]+ faces/s", out)
    store = _open_store(Settings())  # the CLI's store, released by the CLI
    try:
        assert store.count() == 3
        assert store.ids() == {_expected_id(p) for p in image_files(FIVE_TRAIN / "madonna")[:3]}
        report = _index(pipeline, store, folder)  # the junk is looked at again, and counted again
    finally:
        store.close()
    assert (report.faces_indexed, report.already_indexed) == (0, 3)
    assert dict(report.skipped) == {"not_an_image": 1, "empty_file": 1, "no_face": 1}
    assert report.ignored_files == 1  # notes.txt


def test_dataset_rows_without_image_or_name_are_skipped(pipeline, store, tmp_path):
    import datasets

    from indexing.sources import open_sources

    photos = image_files(FIVE_TRAIN / "jerry_seinfeld")[:3]
    image = lambda p: {"bytes": p.read_bytes(), "path": None}  # noqa: E731
    rows = {"image": [image(photos[0]), None, image(photos[1]), image(photos[2])],
            "label": ["Jerry Seinfeld", "Jerry Seinfeld", "", "Jerry Seinfeld"],
            "biography": ["A comedian.", None, "", "  "]}
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string"),
                                  "biography": datasets.Value("string")})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "ds"))
    report = _index(pipeline, store, tmp_path / "ds")
    assert report.skipped == Counter(missing_image=1, missing_name=1)
    assert report.faces_indexed == store.count() == 2
    assert store.ids() == {_expected_id(photos[0]), _expected_id(photos[2])}
    first = store.payloads([_expected_id(photos[0])])[_expected_id(photos[0])]
    assert first["metadata"] == {"biography": "A comedian."} and first["sources"] == ["ds:train:0"]
    # metadata belongs to the person: the row without a biography gets the one another row gave
    third = _expected_id(photos[2])
    assert store.payloads([third])[third]["metadata"] == {"biography": "A comedian."}
    assert open_sources(str(tmp_path / "ds"))[0].names() == ["Jerry Seinfeld", "Jerry Seinfeld", "", "Jerry Seinfeld"]


def test_same_photo_twice_in_a_batch_is_one_point_with_both_sources(pipeline, store, tmp_path):
    photo = image_files(FIVE_TRAIN / "madonna")[0]
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "dup" / "Madonna").mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, tmp_path / "dup" / "Madonna" / name)
    report = _index(pipeline, store, tmp_path / "dup")
    assert report.faces_indexed == store.count() == 1
    pid = _expected_id(photo)
    assert sorted(store.payloads([pid])[pid]["sources"]) == ["dup:Madonna/a.jpg", "dup:Madonna/b.jpg"]
    assert report.skipped == Counter(duplicate=1)


def test_a_photo_that_breaks_detection_does_not_stop_the_run(pipeline, store, tmp_path):
    folder = tmp_path / "odd"
    _blank_jpeg(folder / "Madonna" / "sliver.jpg", size=(3000, 20))  # shrinks to 1280x8 for MTCNN
    for photo in image_files(FIVE_TRAIN / "madonna")[:2]:
        shutil.copy(photo, folder / "Madonna" / photo.name)
    report = _index(pipeline, store, folder)
    assert report.faces_indexed == store.count() == 2
    assert sum(report.skipped.values()) == 1


# -- sampling ----------------------------------------------------------------------------------------


def test_choose_rows_is_deterministic_sorted_and_bounded():
    from indexing.sampling import choose_rows

    names = [f"p{i % 7}" for i in range(100)]
    assert choose_rows(names) == list(range(100))
    picked = choose_rows(names, sample=10, seed=3)
    assert picked == choose_rows(names, sample=10, seed=3) == sorted(picked)
    assert len(set(picked)) == 10 and picked != choose_rows(names, sample=10, seed=4)
    assert choose_rows(names, sample=1000) == list(range(100))
    capped = choose_rows(names, per_person=2, seed=1)
    assert Counter(names[i] for i in capped) == Counter({f"p{i}": 2 for i in range(7)})
    assert capped == choose_rows(names, per_person=2, seed=1)


def test_choose_rows_sample_with_per_person_spreads_over_people():
    from indexing.sampling import choose_rows

    names = ["big"] * 90 + ["a", "b", "c", "d"] * 2 + ["e"]
    spread = choose_rows(names, sample=5, per_person=3, seed=0)
    assert len(spread) == 5 and len({names[i] for i in spread}) == 5  # five people, one photo each
    six = choose_rows(names, sample=9, per_person=3, seed=0)
    counts = Counter(names[i] for i in six)
    assert len(counts) == 6 and max(counts.values()) - min(counts.values()) <= 1
    assert six == choose_rows(names, sample=9, per_person=3, seed=0)


def test_cli_sample_and_per_person_pick_the_seeded_rows(cli, tmp_path, pipeline):
    from indexing.sampling import choose_rows
    from indexing.sources import open_sources
    from lookalike.index.people import person_id
    from lookalike.settings import Settings

    (source,) = open_sources(str(FIVE_TRAIN))
    chosen = choose_rows([person_id(n) for n in source.names()], sample=5, per_person=2, seed=7)
    expected = {_expected_id(FIVE_TRAIN / row.ref.split(":", 1)[1]) for row in source.rows(chosen)}
    assert cli(["--source", str(FIVE_TRAIN), "--sample", "5", "--per-person", "2", "--seed", "7",
                "--batch-size", "4", "--quiet"]) == 0
    store = _open_store(Settings())
    try:
        assert store.ids() == expected
        assert set(_people(store)) == PEOPLE  # five photos, one of each person
    finally:
        store.close()


# -- CLI -----------------------------------------------------------------------------------------------


def test_cli_help_documents_every_option(torch_home, indexing_server, tmp_path):
    result = indexing_server.run(["-m", "indexing", "--help"], _cli_env(tmp_path, torch_home))
    assert result.returncode == 0
    for option in ("--source", "--split", "--config", "--image-column", "--name-column", "--sample",
                   "--per-person", "--seed", "--batch-size", "--recreate", "--if-empty", "--collection",
                   "--quiet", "--shard", "--version", "--finalize", "--prepare", "QDRANT_URL", "LOOKALIKE_DATA_DIR"):
        assert option in result.stdout, option
    assert "(default: None)" not in result.stdout
    # each option states its default once ("... (default: X)"), never twice
    entries = re.split(r"\n  (?=-)", " ".join(result.stdout.split("\n  --", 1)[1:]).join(["  --", ""]))
    assert len(entries) > 15
    for entry in entries:
        assert " ".join(entry.split()).count("default") <= 1, entry


def test_cli_bad_source_exits_2_with_one_line_and_no_secret(torch_home, indexing_server, tmp_path):
    env = _cli_env(tmp_path / "data", torch_home, QDRANT_API_KEY=FAKE_QDRANT_KEY, HF_TOKEN=FAKE_HF_TOKEN)
    result = indexing_server.run(["-m", "indexing", "--source", str(tmp_path / "no_such_folder"), "--quiet"], env)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "no_such_folder" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    for secret in (FAKE_QDRANT_KEY, FAKE_HF_TOKEN, FAKE_QDRANT_KEY[:12], FAKE_HF_TOKEN[:12]):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("spec", ["./no/such/folder", "../no_such_folder", "a/b/c", "~/no-such-folder-xyz"])
def test_cli_path_like_spec_that_does_not_exist_exits_2(cli, capsys, spec):
    assert cli(["--source", spec, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "no such folder" in err


def test_cli_file_as_source_and_bad_numbers_exit_2(cli, capsys):
    assert cli(["--source", str(image_files(FIVE_TRAIN)[0]), "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err
    for argv in (["--sample", "-1"], ["--batch-size", "0"], ["--per-person", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            cli(argv)
        assert exit_info.value.code == 2


def test_cli_unreachable_qdrant_exits_2_without_the_key(cli, monkeypatch, capfd, tmp_path):
    folder = copy_photos(FIVE_TRAIN, tmp_path / "one", per_person=1)
    monkeypatch.setenv("QDRANT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("QDRANT_API_KEY", FAKE_QDRANT_KEY)
    monkeypatch.setenv("HF_TOKEN", FAKE_HF_TOKEN)
    assert cli(["--source", str(folder), "--quiet"]) == 2
    captured = capfd.readouterr()
    assert "cannot be reached" in captured.err
    assert FAKE_QDRANT_KEY not in captured.out + captured.err and FAKE_HF_TOKEN not in captured.out + captured.err


def test_cli_exits_1_when_no_photo_has_a_face(cli, tmp_path, capsys):
    for i in range(3):
        _blank_jpeg(tmp_path / "blank" / "Nobody" / f"{i}.jpg", color=(40 * i, 90, 160))
    assert cli(["--source", str(tmp_path / "blank"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "skipped, no face: 3" in captured.out
    assert "no face could be indexed" in captured.err


def test_cli_people_counts_only_people_with_a_face_indexed(cli, tmp_path, capsys):
    folder = copy_photos(FIVE_TRAIN, tmp_path / "people", per_person=1)
    for i in range(2):
        _blank_jpeg(folder / "Nobody Withaface" / f"{i}.jpg", color=(30 * i, 90, 160))
    assert cli(["--source", str(folder), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "skipped, no face: 2" in out
    assert "people with a face indexed: 5\n" in out  # not 6: "Nobody Withaface" has no face indexed


def test_cli_missing_weights_fail_before_any_row_and_leave_no_store_folder(indexing_server, tmp_path):
    empty_home = tmp_path / "torch_home"
    empty_home.mkdir()
    data = tmp_path / "data"
    env = _cli_env(data, empty_home, HF_TOKEN=FAKE_HF_TOKEN)
    # a hub source, offline and not downloaded: reading it fails at once, so the weights must come first
    result = indexing_server.run(["-m", "indexing", "--source", "owner/not-downloaded", "--quiet"], env)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "weights" in errors[0].lower() and "not-downloaded" not in errors[0], result.stderr
    assert not data.exists()  # no empty store folder left behind
    assert FAKE_HF_TOKEN not in result.stdout + result.stderr


def test_cli_failed_run_leaves_no_empty_store_folder_but_keeps_a_filled_one(cli, tmp_path, capsys):
    data = tmp_path / "cli"
    assert cli(["--source", str(tmp_path / "no_such_folder"), "--quiet"]) == 2
    assert not (data / "edge").exists()
    assert cli(["--source", str(copy_photos(FIVE_TRAIN, tmp_path / "one", per_person=1)), "--sample", "1",
                "--quiet"]) == 0
    assert cli(["--source", str(tmp_path / "no_such_folder"), "--quiet"]) == 2
    assert (data / "edge").is_dir()  # a store with faces is never removed
    capsys.readouterr()


def test_cli_unreachable_hub_is_one_sentence_within_seconds(cli, monkeypatch, capsys, caplog):
    import huggingface_hub.constants

    import indexing.hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(indexing.hub, "HUB_TIMEOUT_S", 2.0)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    started = time.monotonic()
    assert cli(["--source", "owner-that-is-not-here/no-dataset", "--quiet"]) == 2
    assert time.monotonic() - started < 30  # not datasets' ~30 s of retries
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "Hugging Face Hub cannot be reached" in err
    assert "HF_HUB_OFFLINE=1" in err
    assert not [r for r in caplog.records if "retry" in r.getMessage().lower()]


def test_cli_prepare_resumes_an_unfinished_version_and_finalize_needs_a_written_one(cli, tmp_path, capsys):
    from lookalike.settings import Settings

    folder = copy_photos(FIVE_TRAIN, tmp_path / "one", per_person=1)
    source = ["--source", str(folder), "--quiet"]

    def alias():
        store = _open_store(Settings())
        try:
            return store.current_collection(), version_names(store)
        finally:
            store.close()

    assert cli(["--prepare"]) == 0 and capsys.readouterr().out.strip() == "1"
    assert cli(["--prepare"]) == 0 and capsys.readouterr().out.strip() == "1"  # unfinished: resumed, not v2
    assert cli(["--version", "7", "--finalize", "--quiet", "--source", str(folder)]) == 2  # no shard wrote v7
    assert "celebrities_v7 holds no faces" in capsys.readouterr().err
    assert alias() == (None, ["celebrities_v1"])
    assert cli([*source, "--version", "1", "--shard", "0/1"]) == 0
    assert "(shard" not in capsys.readouterr().out  # 0/1 is the whole set
    assert alias()[0] is None  # the alias waits for the final pass
    assert cli([*source, "--version", "1", "--finalize"]) == 0
    assert "alias 'celebrities' -> celebrities_v1" in capsys.readouterr().out
    assert cli(["--prepare"]) == 0 and capsys.readouterr().out.strip() == "2"  # v1 is live: a new one
    for argv in (["--shard", "0/2"], ["--finalize"], ["--prepare", "--version", "2"],
                 ["--shard", "2/2", "--version", "1"]):
        with pytest.raises(SystemExit) as exit_info:
            cli(argv)
        assert exit_info.value.code == 2, argv


def test_cli_if_empty_does_nothing_on_a_filled_index(cli, tmp_path, capsys):
    from lookalike.settings import Settings

    one = tmp_path / "one" / "Madonna"
    one.mkdir(parents=True)
    shutil.copy(image_files(FIVE_TRAIN / "madonna")[0], one)
    assert cli(["--source", str(tmp_path / "one"), "--if-empty", "--quiet"]) == 0  # empty: it indexes
    assert "faces indexed: 1" in capsys.readouterr().out
    assert cli(["--source", str(FIVE_TRAIN), "--if-empty", "--quiet"]) == 0
    assert "already holds 1 faces; nothing to do" in capsys.readouterr().out
    store = _open_store(Settings())
    try:
        assert store.count() == 1
    finally:
        store.close()


# -- SIGKILL at chosen points of the write path, then resume -------------------------------------------


def _crash_sources(root: Path) -> list[str]:
    """A saved dataset with names and biographies (2 photos each of 5 people) before a folder of the
    same people (3 photos each, 2 of them the dataset's): precedence and shared photos are exercised."""
    import datasets

    photos = {p.name: image_files(p) for p in sorted(FIVE_TRAIN.iterdir()) if p.is_dir()}
    rows: dict[str, list] = {"image": [], "name": [], "biography": []}
    for folder, files in photos.items():
        for photo in files[:2]:
            rows["image"].append({"bytes": photo.read_bytes(), "path": None})
            rows["name"].append(folder[0] + folder[1:].replace("_", " ").upper())  # "mADONNA": kept as spelt
            rows["biography"].append(f"The biography of {folder}.")
    features = datasets.Features({"image": datasets.Image(), "name": datasets.Value("string"),
                                  "biography": datasets.Value("string")})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(root / "bios"))
    copy_photos(FIVE_TRAIN, root / "folder", per_person=3)
    return [str(root / "bios"), str(root / "folder")]


def _all_points(store) -> dict[str, dict]:
    return {str(r.id): r.payload for r in store.points()}


@pytest.fixture(scope="module")
def crash_reference(pipeline, base_settings, tmp_path_factory):
    """The sources of the crash tests and the points of one uninterrupted run of them (batch 1)."""
    from indexing.indexer import Indexer
    from indexing.sources import open_sources

    root = tmp_path_factory.mktemp("crash")
    specs = _crash_sources(root)
    store = _open_store(base_settings.model_copy(update={"data_dir": root / "reference"}))
    try:
        Indexer(pipeline, store, 1).run([s for spec in specs for s in open_sources(spec)], progress=False)
        points = _all_points(store)
    finally:
        store.close()
    assert len(points) >= 12 and all(p["metadata"].get("biography") for p in points.values())
    assert any(p["name"] == "mADONNA" for p in points.values())  # the dataset's spelling won
    return specs, points


@pytest.fixture(scope="module")
def indexing_server(torch_home, tmp_path_factory):
    """``python -m indexing`` processes forked from one parent that imported the indexer once."""
    env = _cli_env(tmp_path_factory.mktemp("unused"), torch_home, QDRANT_API_KEY=FAKE_QDRANT_KEY,
                   HF_TOKEN=FAKE_HF_TOKEN, LOOKALIKE_EMBEDDER="torch")
    server = CommandServer(INDEXING_IMPORTS, env)
    yield server
    server.close()


# (command kind, crash point): every named point of the write path, in a plain run and in a shard
CRASHES = [("run", "after_upsert:2"), ("run", "before_person_pass"), ("run", "before_alias_switch"),
           ("run", "alias_switch"), ("recreate", "alias_switch"), ("shard", "after_upsert:2")]


@pytest.mark.parametrize("kind,point", CRASHES, ids=[f"{k}-{p}" for k, p in CRASHES])
def test_indexer_killed_at_a_write_point_resumes_to_the_uninterrupted_points(crash_reference, base_settings,
                                                                              torch_home, indexing_server, tmp_path,
                                                                              kind, point):
    """The indexer (a real ``python -m indexing`` process) is killed with SIGKILL when it logs the write
    point ``point`` (``support.kill_at``); the same command run again completes, and the final points (ids
    and payloads) equal those of an uninterrupted run. A shard's alias never moves before ``--finalize``."""
    specs, expected = crash_reference
    where = f"crash at {point} of a {kind} run"
    data = tmp_path / "data"
    settings = base_settings.model_copy(update={"data_dir": data})
    sources = [arg for spec in specs for arg in ("--source", spec)]
    env = _cli_env(data, torch_home, QDRANT_API_KEY=FAKE_QDRANT_KEY, HF_TOKEN=FAKE_HF_TOKEN,
                   LOOKALIKE_EMBEDDER="torch")

    def indexing(*argv: str, crash: str | None = None) -> subprocess.CompletedProcess:
        done = indexing_server.run(["-m", "indexing", *sources, "--batch-size", "1", "--quiet", *argv], env,
                                   setup=("kill_at", crash) if crash else ())
        for secret in (FAKE_QDRANT_KEY, FAKE_HF_TOKEN):
            assert secret not in done.stdout + done.stderr, where
        return done

    def alias() -> str | None:
        store = _open_store(settings)
        try:
            return store.current_collection()
        finally:
            store.close()

    if kind == "recreate":  # a first complete run, so the killed --recreate has a version to replace
        assert indexing().returncode == 0, where
    command = {"run": [], "recreate": ["--recreate"], "shard": ["--version", "4", "--shard", "0/2"]}[kind]
    killed = indexing(*command, crash=point)
    assert killed.returncode == -signal.SIGKILL, (where, killed.stderr[-2000:])
    if kind == "shard":
        assert alias() is None, where
        for argv in (command, ["--version", "4", "--shard", "1/2"]):
            again = indexing(*argv)
            assert again.returncode == 0, (where, again.stderr[-2000:])
            assert "(shard " in again.stdout and alias() is None, where
        final = indexing("--version", "4", "--finalize")
        assert final.returncode == 0, (where, final.stderr[-2000:])
        assert "alias 'celebrities' -> celebrities_v4" in final.stdout, where
    else:
        again = indexing(*command) if kind == "run" else indexing()
        assert again.returncode == 0, (where, again.stderr[-2000:])
    store = _open_store(settings)
    try:
        got = _all_points(store)
        versions = version_names(store)
    finally:
        store.close()
    assert set(got) == set(expected), where
    assert got == expected, where
    assert len(versions) == 1, (where, versions)  # older versions dropped once the alias moved
