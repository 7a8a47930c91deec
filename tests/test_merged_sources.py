"""Several sources in one collection, one identity per person, biographies in results.

Real parts: the real MTCNN, stand-in FaceNet weights, the committed test photos and datasets built from them, embedded
Qdrant stores in temporary folders. Each merged index is built once for the module; the small fixture
sources are built in the tests from real face photos.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import BIOS, CELEBRITY_MINI, CORE_FIXTURES, LFW, image_files
from lookalike.index.people import display_name, person_id
from lookalike.index.query import FaceIndex

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)

LFW_PHOTOS = 31 * 8
"""The committed LFW photos: the first 8 of each of 31 people."""
MINI_PEOPLE = {"ben-affleck", "elton-john", "jerry-seinfeld", "madonna", "mindy-kaling"}


# -- helpers ------------------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pid_of(data: bytes) -> str:
    from lookalike.index.payload import point_id

    return point_id(_sha(data))


def _records(store) -> list:
    """Every point of the store's alias, with payloads."""
    return list(store.points())


def _open_store(base_settings, folder: Path):
    from lookalike.index.store import FaceStore

    return FaceStore.open(base_settings.model_copy(update={"data_dir": folder}).store_config())


def _run(pipeline, store, *specs, **options):
    from indexing.indexer import Indexer
    from indexing.sources import SourceOptions, open_sources

    sources = [s for spec in specs for s in open_sources(str(spec), SourceOptions(**options))]
    return Indexer(pipeline, store, batch_size=32).run(sources, progress=False)


def _dataset_rows(spec: Path, split: str | None = None) -> dict[tuple[str, int], dict]:
    """(split, row) -> {"name", "sha", "bytes", "biography"} of a parquet dataset folder."""
    import datasets

    loaded = datasets.load_dataset(str(spec))
    out = {}
    for split_name, dataset in loaded.items():
        if split and split_name != split:
            continue
        dataset = dataset.cast_column("image", datasets.Image(decode=False))
        name_column = "name" if "name" in dataset.column_names else "label"
        for index, row in enumerate(dataset):
            data = row["image"]["bytes"] or Path(row["image"]["path"]).read_bytes()
            out[(split_name, index)] = {"name": row[name_column], "sha": _sha(data), "bytes": data,
                                        "biography": row.get("biography")}
    return out


def _save_dataset(folder: Path, images: list[Path | None], **columns: list) -> Path:
    """A ``save_to_disk`` dataset with an Image column ``image`` (real files) and string ``columns``."""
    import datasets

    data = {"image": [str(p) if p else None for p in images],
            **{name: values for name, values in columns.items()}}
    features = datasets.Features({"image": datasets.Image(),
                                  **{name: datasets.Value("string") for name in columns}})
    dataset = datasets.Dataset.from_dict(data, features=features)
    dataset.save_to_disk(str(folder))
    return folder


def _photo_folder(root: Path, people: dict[str, list[Path]]) -> Path:
    for name, photos in people.items():
        (root / name).mkdir(parents=True)
        for photo in photos:
            shutil.copy(photo, root / name / photo.name)
    return root


def _lfw(person: str, *which: int) -> list[Path]:
    photos = image_files(LFW / person)
    return [photos[i] for i in which]


# -- the shared data, as truth for the checks -----------------------------------------------------------


@pytest.fixture(scope="module")
def lfw_photos() -> dict[str, dict[str, Path]]:
    """person id -> {sha256: file} of every committed LFW photo (distinct photos by content)."""
    out: dict[str, dict[str, Path]] = {}
    for folder in sorted(p for p in LFW.iterdir() if p.is_dir()):
        out[person_id(folder.name)] = {_sha(f.read_bytes()): f for f in image_files(folder)}
    return out


@pytest.fixture(scope="module")
def bios() -> dict[tuple[str, int], dict]:
    return _dataset_rows(BIOS, "train")


@pytest.fixture(scope="module")
def mini() -> dict[tuple[str, int], dict]:
    return _dataset_rows(CELEBRITY_MINI)


def test_shared_data_is_what_the_tests_assume(lfw_photos, bios, mini):
    assert len(lfw_photos) == 31 and sum(len(v) for v in lfw_photos.values()) == LFW_PHOTOS
    assert len(bios) == 31 and {person_id(r["name"]) for r in bios.values()} == set(lfw_photos)
    for row in bios.values():  # each bios photo is one of that person's folder photos
        assert row["sha"] in lfw_photos[person_id(row["name"])] and row["biography"]
    assert {person_id(r["name"]) for r in mini.values()} == MINI_PEOPLE
    assert {split for split, _ in mini} == {"train", "test"}


# -- lfw + celebrity_bios_mini in one run ------------------------------------------------------------


@pytest.fixture(scope="module")
def merged(pipeline, base_settings, tmp_path_factory):
    """celebrity_bios_mini (first: its names and biographies win) and lfw, indexed in one run."""
    from lookalike.search import LookalikeFinder

    store = _open_store(base_settings, tmp_path_factory.mktemp("merged"))
    report = _run(pipeline, store, BIOS, LFW)
    yield SimpleNamespace(store=store, report=report, records=_records(store),
                          finder=LookalikeFinder(pipeline, store, top_k=5))
    store.close()


def test_merged_index_holds_31_people_not_62(merged, lfw_photos):
    people = {r.payload["person_id"] for r in merged.records}
    assert people == set(lfw_photos) and len(people) == 31
    assert merged.report.people == 31
    assert merged.report.name_conflicts == []
    # every point carries a display name that is its person's, and one name per person
    names = defaultdict(set)
    for record in merged.records:
        names[record.payload["person_id"]].add(record.payload["name"])
        assert person_id(record.payload["name"]) == record.payload["person_id"]
    assert all(len(v) == 1 for v in names.values()), names
    assert names["roh-moo-hyun"] == {"Roh Moo-hyun"}  # the bios spelling, hyphen kept


def test_same_photo_from_two_sources_is_one_point_listing_both(merged, bios, lfw_photos):
    by_id = {str(r.id): r.payload for r in merged.records}
    for (split, index), row in bios.items():
        payload = by_id[_pid_of(row["bytes"])]
        folder_file = lfw_photos[person_id(row["name"])][row["sha"]]
        assert sorted(payload["sources"]) == sorted([
            f"celebrity_bios_mini:{split}:{index}", f"lfw:{folder_file.parent.name}/{folder_file.name}"])
        assert payload["content_sha256"] == row["sha"]
    # 31 + LFW_PHOTOS rows, LFW_PHOTOS distinct photos: the 31 bios photos were not embedded twice
    assert merged.report.images_seen == 31 + LFW_PHOTOS
    assert merged.report.skipped == Counter(), merged.report.skipped  # the same-photo rows are in different batches
    assert merged.report.faces_indexed + merged.report.already_indexed == 31 + LFW_PHOTOS
    assert merged.report.faces_indexed == len(merged.records) == merged.store.count() == LFW_PHOTOS
    assert sum(len(r.payload["sources"]) == 2 for r in merged.records) == 31


def test_each_persons_points_are_their_distinct_photos(merged, lfw_photos):
    shas = defaultdict(set)
    for record in merged.records:
        shas[record.payload["person_id"]].add(record.payload["content_sha256"])
    counts = Counter(r.payload["person_id"] for r in merged.records)
    for person, photos in lfw_photos.items():
        assert counts[person] == len(photos), person
        assert shas[person] == set(photos), person


def test_query_returns_each_person_once_with_the_biography(merged, lfw_photos, bios):
    """A folder photo that is not the bios photo: its own point (folder source only) comes first, and
    the match still carries the biography that only celebrity_bios_mini has."""
    bio_of = {person_id(r["name"]): r for r in bios.values()}
    for person, photos in sorted(lfw_photos.items()):
        query = next(f for sha, f in sorted(photos.items(), key=lambda kv: kv[1].name)
                     if sha != bio_of[person]["sha"])
        result = merged.finder.find(query, top_k=31)
        main = max(result.faces, key=lambda f: f.face.area)
        people = [m.person_id for m in main.matches]
        assert len(people) == 31 and set(people) == set(lfw_photos), person  # everybody, each once
        best = main.matches[0]
        assert best.person_id == person and best.score == pytest.approx(1.0, abs=1e-3), person
        assert best.sources == [f"lfw:{query.parent.name}/{query.name}"]  # not the bios photo
        assert best.name == bio_of[person]["name"]
        assert best.metadata["biography"] == bio_of[person]["biography"], person
        for match in main.matches:
            assert match.metadata.get("biography") == bio_of[match.person_id]["biography"]


def test_index_query_people_groups_by_person(merged, pipeline, lfw_photos):
    photo = sorted(lfw_photos["tony-blair"].values())[5]
    (face,) = pipeline.faces_many([pipeline.load(photo)], main_only=True)[0]
    matches = FaceIndex(merged.store).query_people(face.vector, 40)  # more than there are people
    assert len(matches) == 31
    assert len({m.payload.person_id for m in matches}) == 31
    assert matches[0].payload.person_id == "tony-blair" and matches[0].score > 0.999


def test_rerun_adds_nothing_and_keeps_biographies(merged, pipeline):
    before = {str(r.id): r.payload for r in _records(merged.store)}
    again = _run(pipeline, merged.store, BIOS, LFW)
    assert again.faces_indexed == 0
    assert again.already_indexed == 31 + LFW_PHOTOS and again.name_conflicts == []
    after = {str(r.id): r.payload for r in _records(merged.store)}
    assert after == before  # same points, same sources (no duplicated refs), same names and metadata


def test_later_run_without_metadata_keeps_biographies(merged, pipeline, bios):
    """Run 1 (the fixture): bios + folder. Run 2: the folder alone, with no metadata columns."""
    report = _run(pipeline, merged.store, LFW)
    assert report.faces_indexed == 0 and report.already_indexed == LFW_PHOTOS
    bio_of = {person_id(r["name"]): r["biography"] for r in bios.values()}
    records = _records(merged.store)
    assert len(records) == LFW_PHOTOS
    first = {str(r.id): r.payload for r in merged.records}
    for record in records:
        assert record.payload["metadata"]["biography"] == bio_of[record.payload["person_id"]]
        assert record.payload["metadata"] == first[str(record.id)]["metadata"]  # no field lost
        assert record.payload["name"] == first[str(record.id)]["name"]


def _records_of(store, collection: str) -> dict[str, dict]:
    return {str(r.id): r.payload for r in store.points(collection)}


def test_two_shards_then_the_final_pass_give_one_runs_points(pipeline, base_settings, tmp_path):
    """bios + lfw_dev (two photos a person) as two shards written one after the other into one version,
    then the person pass, give the same point ids and payloads (names and biographies by precedence,
    both sources of a shared photo) as one unsharded run; the alias moves only in the final pass.

    Batch size 1 on both sides: MTCNN detects the photos of a batch together and a shard's batches hold
    other photos, which moves a box by up to 3 px for about 1 photo in 300 (measured at batch 32)."""
    from indexing.indexer import Indexer, plan_rows
    from indexing.shards import Shard
    from indexing.sources import open_sources
    from indexing.versions import ensure_version

    def plan():
        return plan_rows([s for spec in (BIOS, LFW) for s in open_sources(str(spec))], per_person=2, seed=1)

    reference = _open_store(base_settings, tmp_path / "one_run")
    try:
        Indexer(pipeline, reference, batch_size=1).run([s for s, _ in plan()], per_person=2, seed=1, progress=False)
        expected = _records_of(reference, reference.alias)
    finally:
        reference.close()
    assert len(expected) > 60 and all(p["metadata"].get("biography") for p in expected.values())
    assert sum(len(p["sources"]) == 2 for p in expected.values()) > 0  # some photo came from both sources

    store = _open_store(base_settings, tmp_path / "sharded")
    try:
        collection = ensure_version(store, 3, pipeline.fingerprint)
        assert collection == "celebrities_v3"
        shard_ids: list[set[str]] = []
        for index in range(2):
            report = Indexer(pipeline, store, batch_size=1).write(plan(), collection, Shard(index, 2), progress=False)
            written = set(_records_of(store, collection))
            shard_ids.append(written - set().union(*shard_ids))
            assert report.faces_indexed == len(shard_ids[-1]) > 10, index  # each shard its own share
            assert store.current_collection() is None  # a shard never moves the alias
        assert not shard_ids[0] & shard_ids[1]
        done = Indexer(pipeline, store).finalize(plan(), collection)
        assert done.alias_moved and store.current_collection() == collection
        got = _records_of(store, store.alias)
    finally:
        store.close()
    assert set(got) == set(expected)
    differing = [pid for pid in expected if got[pid] != expected[pid]]
    assert differing == [], [(got[p], expected[p]) for p in differing[:1]]


def test_a_shard_owns_each_photo_by_its_hash_whatever_the_row():
    from indexing.shards import Shard
    from indexing.sources import Row

    photos = [f.read_bytes() for f in image_files(LFW)[:60]]
    owners = [[Shard(i, 3).owns(Row.read(data, "Somebody")) for i in range(3)] for data in photos]
    assert all(sum(owned) == 1 for owned in owners)  # exactly one shard each
    assert all(any(o[i] for o in owners) for i in range(3))  # every shard gets some
    # the same bytes under another name, source or row: the same shard
    assert [[Shard(i, 3).owns(Row.read(d, "Other", ref="x:1")) for i in range(3)] for d in photos] == owners
    nobody = Row.read(None, "Nobody", problem="missing_image")
    assert [Shard(i, 3).owns(nobody) for i in range(3)] == [True, False, False]
    for bad in ("3/3", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="I/N"):
            Shard.parse(bad)
    assert Shard.parse("2/5") == Shard(2, 5)


# -- celebrity_mini (both splits) added: 36 people ----------------------------------------------------------


@pytest.fixture(scope="module")
def merged3(pipeline, base_settings, tmp_path_factory):
    """celebrity_bios_mini, lfw and both splits of celebrity_mini in one run, in a store of its own."""
    store = _open_store(base_settings, tmp_path_factory.mktemp("merged3"))
    report = _run(pipeline, store, BIOS, LFW, f"{CELEBRITY_MINI}?split=all")
    yield SimpleNamespace(store=store, report=report, records=_records(store))
    store.close()


def _source_people(lfw_photos, bios, mini) -> dict[str, str]:
    """Every source reference -> the person id its source gives it."""
    refs = {f"celebrity_bios_mini:{s}:{i}": person_id(r["name"]) for (s, i), r in bios.items()}
    refs.update({f"celebrity_mini:{s}:{i}": person_id(r["name"]) for (s, i), r in mini.items()})
    for person, photos in lfw_photos.items():
        refs.update({f"lfw:{f.parent.name}/{f.name}": person for f in photos.values()})
    return refs


def test_three_sources_give_36_people_nobody_merged_with_someone_else(merged3, lfw_photos, bios, mini):
    records = merged3.records
    people = {r.payload["person_id"] for r in records}
    assert len(people) == 36 and people == set(lfw_photos) | MINI_PEOPLE
    assert merged3.report.people == 36 and merged3.report.name_conflicts == []
    assert merged3.report.images_seen == 31 + LFW_PHOTOS + 116
    ref_people = _source_people(lfw_photos, bios, mini)
    photo_people = defaultdict(set)  # sha256 -> people the sources give that photo
    for row in list(bios.values()) + list(mini.values()):
        photo_people[row["sha"]].add(person_id(row["name"]))
    for person, photos in lfw_photos.items():
        for sha in photos:
            photo_people[sha].add(person)
    for record in records:
        payload = record.payload
        assert payload["sources"], payload
        for ref in payload["sources"]:  # every source of the point names this very person
            assert ref_people[ref] == payload["person_id"], (ref, payload["person_id"])
        assert photo_people[payload["content_sha256"]] == {payload["person_id"]}
    counts = Counter(r.payload["person_id"] for r in records)
    for person, photos in lfw_photos.items():
        assert counts[person] == len(photos)
    mini_photos = defaultdict(set)
    for row in mini.values():
        mini_photos[person_id(row["name"])].add(row["sha"])
    for person in MINI_PEOPLE:  # both splits count; only photos without a detectable face are missing
        mine = {r.payload["content_sha256"] for r in records if r.payload["person_id"] == person}
        assert mine <= mini_photos[person] and len(mine) >= len(mini_photos[person]) // 2, person
        assert any(":test:" in ref for r in records if r.payload["person_id"] == person
                   for ref in r.payload["sources"]), person
    no_face = merged3.report.skipped.get("no_face", 0)
    assert len(records) == LFW_PHOTOS + 116 - no_face
    assert set(merged3.report.skipped) <= {"no_face"}, merged3.report.skipped


# -- small sources made here: spellings, precedence, conflicts, missing names -----------------------------


def test_accents_and_pins_prefix_meet_the_plain_spelling(pipeline, store, tmp_path):
    folder = _photo_folder(tmp_path / "pins_faces", {
        "pins_Beyoncé Knowles": _lfw("Jennifer_Lopez", 0, 1),
        "Tony_Blair": _lfw("Tony_Blair", 0),
    })
    extra = _lfw("Jennifer_Lopez", 2) + _lfw("Tony_Blair", 1) + _lfw("Naomi_Watts", 0)
    dataset = _save_dataset(tmp_path / "plain", extra, name=["Beyonce Knowles", "tony blair", "Naomi Watts"],
                            biography=["A singer.", "A prime minister.", "An actress."])
    report = _run(pipeline, store, folder, dataset)
    assert report.faces_indexed == 6 and report.people == 3
    records = _records(store)
    by_person = defaultdict(list)
    for record in records:
        by_person[record.payload["person_id"]].append(record.payload)
    assert Counter({k: len(v) for k, v in by_person.items()}) == Counter(
        {"beyonce-knowles": 3, "tony-blair": 2, "naomi-watts": 1})
    for payload in by_person["beyonce-knowles"]:
        assert payload["name"] == "Beyoncé Knowles"  # the folder came first; accents kept, prefix gone
        assert payload["metadata"] == {"biography": "A singer."}  # on the folder's photos too
    assert {p["name"] for p in by_person["tony-blair"]} == {"Tony Blair"}
    assert all(p["metadata"] == {"biography": "A prime minister."} for p in by_person["tony-blair"])


@pytest.mark.parametrize("order", ["first_second", "second_first"])
def test_conflicting_metadata_follows_source_order(pipeline, store, tmp_path, order):
    photos = _lfw("Angelina_Jolie", 0, 1, 2)
    first = _save_dataset(tmp_path / "first", photos[:2], name=["Beyoncé Knowles", "Beyoncé Knowles"],
                          biography=["First biography.", "First biography, second row."],
                          birthday=[None, "1981-09-04"], known_for_department=["Acting", "Acting"])
    second = _save_dataset(tmp_path / "second", photos[1:], name=["BEYONCE KNOWLES", "BEYONCE KNOWLES"],
                           biography=["Second biography.", "Second biography."],
                           birthday=["1900-01-01", ""], place_of_birth=["Houston", "Houston"])
    specs = (first, second) if order == "first_second" else (second, first)
    report = _run(pipeline, store, *specs)
    assert report.faces_indexed == 3 and report.people == 1 and report.name_conflicts == []
    records = _records(store)
    assert len(records) == 3
    if order == "first_second":  # earlier source wins per field, first value seen within a source
        expected_name = "Beyoncé Knowles"
        expected = {"biography": "First biography.", "birthday": "1981-09-04",
                    "known_for_department": "Acting", "place_of_birth": "Houston"}
    else:
        expected_name = "Beyonce Knowles"  # all upper case, made readable
        expected = {"biography": "Second biography.", "birthday": "1900-01-01",
                    "known_for_department": "Acting", "place_of_birth": "Houston"}
    for record in records:
        assert record.payload["person_id"] == "beyonce-knowles"
        assert record.payload["name"] == expected_name
        assert record.payload["metadata"] == expected  # fields only one source has are added


def test_photo_named_differently_by_two_sources_is_reported_and_kept_under_the_first(pipeline, store, tmp_path):
    shared_photo, other = _lfw("Jennifer_Aniston", 0, 1)
    first = _save_dataset(tmp_path / "first", [shared_photo, other], name=["Jennifer Aniston"] * 2,
                          biography=["An actress.", None])
    second = _save_dataset(tmp_path / "second", [shared_photo], name=["Naomi Watts"],
                           biography=["Somebody else."])
    report = _run(pipeline, store, first, second)
    assert report.faces_indexed == 2
    assert len(report.name_conflicts) == 1
    assert "second:train:0" in report.name_conflicts[0] and "Naomi Watts" in report.name_conflicts[0]
    assert "name differently" in report.summary()
    payload = store.payloads([_pid_of(shared_photo.read_bytes())])[_pid_of(shared_photo.read_bytes())]
    assert payload["person_id"] == "jennifer-aniston" and payload["name"] == "Jennifer Aniston"
    assert payload["metadata"] == {"biography": "An actress."}
    assert sorted(payload["sources"]) == ["first:train:0", "second:train:0"]
    assert {r.payload["person_id"] for r in _records(store)} == {"jennifer-aniston"}


def test_same_photo_named_differently_within_one_source_is_reported(pipeline, store, tmp_path):
    photo = _lfw("Hans_Blix", 0)[0]
    dataset = _save_dataset(tmp_path / "one", [photo, photo], name=["Hans Blix", "Kofi Annan"])
    report = _run(pipeline, store, dataset)
    assert report.faces_indexed == 1 and len(report.name_conflicts) == 1
    assert [r.payload["person_id"] for r in _records(store)] == ["hans-blix"]


def test_rows_with_missing_or_empty_names_are_skipped_by_reason(pipeline, store, tmp_path):
    photos = _lfw("Colin_Powell", 0, 1, 2, 3, 4, 5)
    dataset = _save_dataset(tmp_path / "names", photos,
                            name=["Colin Powell", None, "", "   ", "???", "pins_"],
                            biography=["A general.", "orphan 1", "orphan 2", "orphan 3", "orphan 4", "orphan 5"])
    report = _run(pipeline, store, dataset)
    assert report.skipped == Counter(missing_name=5)
    assert "skipped, missing name: 5" in report.summary()
    assert report.faces_indexed == store.count() == 1
    (record,) = _records(store)
    assert record.payload["person_id"] == "colin-powell" and record.payload["name"] == "Colin Powell"
    assert record.payload["metadata"] == {"biography": "A general."}
    assert store.ids() == {_pid_of(photos[0].read_bytes())}


def test_a_name_column_that_does_not_exist_is_a_clear_error(tmp_path):
    from indexing.sources import SourceOptions, open_sources

    dataset = _save_dataset(tmp_path / "cols", _lfw("Colin_Powell", 0), person=["Colin Powell"])
    with pytest.raises(ValueError, match=r"no column 'celebrity'.*person"):
        open_sources(str(dataset), SourceOptions(name_column="celebrity"))
    with pytest.raises(ValueError, match=r"no column 'celebrity'"):
        open_sources(f"{dataset}?name_column=celebrity")
    nameless = _save_dataset(tmp_path / "nameless", _lfw("Colin_Powell", 0), caption=["a photo"])
    with pytest.raises(ValueError, match="no name column"):
        open_sources(str(nameless))
    (found,) = open_sources(str(dataset))  # "person" is one of the detected name columns
    assert found.name_column == "person" and found.names() == ["Colin Powell"]


# -- per-source options ----------------------------------------------------------------------------------


def test_parse_source_spec():
    from indexing.sources import parse_source_spec

    assert parse_source_spec("a/b?split=test&name_column=person") == ("a/b", {"split": "test",
                                                                           "name_column": "person"})
    assert parse_source_spec("a/b") == ("a/b", {})
    assert parse_source_spec("../x/y?image_column=photo&config=c") == ("../x/y", {"image_column": "photo",
                                                                                "config": "c"})
    with pytest.raises(ValueError, match="unknown source option colour"):
        parse_source_spec("a/b?split=test&colour=red")


def test_source_options_override_the_call_defaults(tmp_path):
    from indexing.sources import SourceOptions, open_sources

    dataset = _save_dataset(tmp_path / "opts", _lfw("Colin_Powell", 0), label=["actor"], person=["Colin Powell"])
    (default,) = open_sources(str(dataset))
    assert default.name_column == "label"  # detected: the first known name column
    (chosen,) = open_sources(f"{dataset}?name_column=person", SourceOptions(name_column="label"))
    assert chosen.name_column == "person" and chosen.names() == ["Colin Powell"]
    both = open_sources(f"{CELEBRITY_MINI}?split=all", SourceOptions(split="train"))
    assert sorted((s.split, len(s)) for s in both) == [("test", 24), ("train", 92)]
    with pytest.raises(ValueError, match="unknown source option"):
        open_sources(f"{dataset}?name=person")


def test_cli_two_sources_with_different_name_columns(cli, tmp_path, capsys):
    from lookalike.index.store import FaceStore
    from lookalike.settings import Settings

    a = _save_dataset(tmp_path / "a", _lfw("Kofi_Annan", 0, 1), label=["diplomat", "diplomat"],
                      person=["Kofi Annan", "Kofi Annan"])
    b = _save_dataset(tmp_path / "b", _lfw("Hans_Blix", 0), celebrity_name=["Hans Blix"],
                      biography=["A diplomat."])
    assert cli(["--source", f"{a}?name_column=person", "--source", f"{b}?name_column=celebrity_name",
                "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "faces indexed: 3" in out and "people with a face indexed: 2" in out
    store = FaceStore.open(Settings().store_config())
    try:
        people = Counter(r.payload["person_id"] for r in _records(store))
        assert people == Counter({"kofi-annan": 2, "hans-blix": 1})
        assert all(r.payload["metadata"].get("label") == "diplomat" for r in _records(store)
                   if r.payload["person_id"] == "kofi-annan")
    finally:
        store.close()


def test_cli_missing_name_column_exits_2(cli, tmp_path, capsys):
    a = _save_dataset(tmp_path / "a", _lfw("Kofi_Annan", 0), person=["Kofi Annan"])
    capsys.readouterr()  # datasets' own progress bars
    assert cli(["--source", f"{a}?name_column=nom", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no column 'nom'" in err and "\n" not in err
    assert cli(["--source", f"{a}?colour=red", "--quiet"]) == 2
    assert "unknown source option colour" in capsys.readouterr().err


# -- names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["Tony_Blair", "tony blair", "pins_Tony Blair", "TONY-BLAIR", "  Tony   Blair ",
                                 "tony.blair", "pins_tony_blair"])
def test_person_id_of_one_person_however_spelled(raw):
    assert person_id(raw) == "tony-blair"
    assert display_name(raw) == "Tony Blair"


@pytest.mark.parametrize("raw,pid,shown", [
    ("Beyoncé", "beyonce", "Beyoncé"),
    ("pins_Beyoncé Knowles", "beyonce-knowles", "Beyoncé Knowles"),
    ("beyoncé knowles", "beyonce-knowles", "Beyoncé Knowles"),
    ("Penélope_Cruz", "penelope-cruz", "Penélope Cruz"),
    ("Roh_Moo-hyun", "roh-moo-hyun", "Roh Moo-hyun"),
    ("George W. Bush", "george-w-bush", "George W. Bush"),
    ("Luiz_Inacio_Lula_da_Silva", "luiz-inacio-lula-da-silva", "Luiz Inacio Lula da Silva"),
])
def test_accents_are_folded_in_the_id_and_kept_in_the_display_name(raw, pid, shown):
    assert person_id(raw) == pid
    assert display_name(raw) == shown


@pytest.mark.parametrize("raw", ["", "   ", "\t\n", "???", "-", "_", "..", "pins_", "--_--"])
def test_names_without_letters_give_nothing(raw):
    assert person_id(raw) == ""
    assert display_name(raw) == ""
