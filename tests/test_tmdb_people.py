"""ashraq/tmdb-people-image beside tmdb-celeb-10k: one person per TMDB id across the two sets, file
shards of its parquet files, and "well-known people only".

Real parts: ``datasets`` reading local folders in the hub's layouts (TMDB_PEOPLE: 3 parquet files with
the TMDB columns; BIOS: the tmdb-celeb-10k fixture, both built by ``tests/support.py``), the real MTCNN,
stand-in FaceNet weights, embedded Qdrant stores in temporary folders, the CLI in this process.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from types import SimpleNamespace

import pytest

from conftest import BIOS, CORE_FIXTURES, TMDB_PEOPLE
from support import FIVE_TRAIN, TMDB_PEOPLE_FILES, alias_payloads, image_files, tmdb_people_photo

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)

BY_ID = "?id_column=id&id_space=tmdb"
"""The options that make local copies join by TMDB id, as the hub ids do (KNOWN_SOURCES)."""
SPECS = [str(BIOS) + BY_ID, str(TMDB_PEOPLE) + BY_ID]
KEEP = 32
"""--well-known for the fixture: the 31 people of BIOS (popularity 1-31) and Madonna of a celebrity set;
the five_celebs people and Hans Blix's namesake (popularity under 1) are not well-known."""


def _persons(sources) -> dict[str, str]:
    """reference -> person id of every row."""
    return {row.ref: row.person for source in sources for row in source.rows(range(len(source)))}


def test_the_hub_ids_join_by_tmdb_id_in_precedence_order():
    from indexing.sources import DEFAULT_SOURCES, KNOWN_SOURCES

    assert DEFAULT_SOURCES[:2] == ("ashraq/tmdb-celeb-10k", "ashraq/tmdb-people-image")  # the richer record first
    for spec in DEFAULT_SOURCES[:2]:
        assert (KNOWN_SOURCES[spec]["id_column"], KNOWN_SOURCES[spec]["id_space"]) == ("id", "tmdb")
    assert not any("id_column" in KNOWN_SOURCES[spec] for spec in DEFAULT_SOURCES[2:])  # names join those


def test_shards_read_disjoint_files_and_give_each_row_the_person_of_one_run():
    """Shard by shard, the rows are the files' (disjoint, every one once) and each row's person is the
    one an unsharded run gives it, even in a shard that holds no file of BIOS: "Anthony Blair" (id
    900029) is BIOS's "Tony Blair" there too."""
    from indexing.shards import Shard
    from indexing.sources import open_all, parquet_files

    files = [f for spec in SPECS for f in parquet_files(spec)]
    assert [f.rows for f in files] == [31, 4, 5, 3]
    truth = _persons(open_all(SPECS))
    assert len(truth) == 43 and truth["tmdb_people_mini:train:0"] == "tony-blair"
    for count in (2, 3):
        seen: list[str] = []
        for index in range(count):
            sources = open_all(SPECS, shard=Shard(index, count))
            mine = _persons(sources)
            assert {ref: truth[ref] for ref in mine} == mine, (count, index)
            assert sum(len(s) for s in sources) == sum(files[p].rows for p in Shard(index, count).files(
                [f.rows for f in files]))
            seen.extend(mine)
        assert sorted(seen) == sorted(truth), count  # disjoint, and every row once
    # shard 1 of 2 reads the three TMDB files and no BIOS file, and still joins by id
    shard = open_all(SPECS, shard=Shard(1, 2))
    assert [len(s) for s in shard] == [0, 12] and _persons(shard)["tmdb_people_mini:train:0"] == "tony-blair"


def test_a_source_opened_alone_is_linked_by_the_indexers_plan_not_by_reading_it():
    """Linking is a step: a source with ids that nothing linked refuses to give person ids, and
    ``plan_rows`` links it on its own rows, giving the persons ``open_all`` gives it alone."""
    from indexing.indexer import plan_rows
    from indexing.sources import open_all, open_sources

    (alone,) = open_sources(SPECS[1])
    with pytest.raises(RuntimeError, match="link its identities first"):
        alone.person_ids()
    ((planned, rows),) = plan_rows([alone])
    assert planned is alone and len(rows) == len(alone) and alone.identities is not None
    assert _persons([alone]) == _persons(open_all(SPECS[1:]))


def test_file_shards_then_finalize_give_one_runs_points(cli, base_settings, tmp_path, monkeypatch, capsys):
    """BIOS and TMDB_PEOPLE as two file shards through the CLI (the later shard first), then --finalize:
    the same point ids and payloads, well_known included (the 31 BIOS people), as one unsharded run.
    Batch size 1 on both sides: MTCNN detects the photos of a batch together."""
    argv = [a for spec in SPECS for a in ("--source", spec)] + ["--batch-size", "1", "--quiet",
                                                                 "--well-known", "31"]
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "one"))
    assert cli(argv) == 0
    expected = alias_payloads(base_settings.model_copy(update={"data_dir": tmp_path / "one"}))
    assert len(expected) >= 40 and {p.get("well_known") for p in expected.values()} == {0, 1}

    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "sharded"))
    capsys.readouterr()
    assert cli(["--prepare"]) == 0
    version = capsys.readouterr().out.strip().splitlines()[-1]
    for index in (1, 0):
        assert cli([*argv, "--version", version, "--shard", f"{index}/2"]) == 0
    assert cli([*argv, "--version", version, "--finalize"]) == 0
    assert "well-known people: 31 (popularity >= 1)" in capsys.readouterr().out
    got = alias_payloads(base_settings.model_copy(update={"data_dir": tmp_path / "sharded"}))
    assert set(got) == set(expected)
    differing = [pid for pid in expected if got[pid] != expected[pid]]
    assert differing == [], [{k: (got[p]['metadata'].get(k), expected[p]['metadata'].get(k))
                              for k in expected[p]['metadata']
                              if got[p]['metadata'].get(k) != expected[p]['metadata'].get(k)} for p in differing[:3]]


@pytest.fixture(scope="module")
def tmdb_index(pipeline, base_settings, tmp_path_factory):
    """BIOS, TMDB_PEOPLE and a folder with one photo of Madonna (a celebrities set: no popularity), in
    that precedence, indexed in one run with ``well_known=KEEP``."""
    from indexing.indexer import Indexer
    from indexing.sources import open_all
    from lookalike.index.store import FaceStore
    from lookalike.search import LookalikeFinder

    root = tmp_path_factory.mktemp("tmdb")
    folder = root / "celebrity_set" / "Madonna"
    folder.mkdir(parents=True)
    shutil.copy(image_files(FIVE_TRAIN / "madonna")[1], folder)
    store = FaceStore.open(base_settings.model_copy(update={"data_dir": root / "data"}).store_config())
    report = Indexer(pipeline, store, well_known=KEEP).run(open_all([*SPECS, str(root / "celebrity_set")]),
                                                          progress=False)
    yield SimpleNamespace(store=store, report=report, records=list(store.points()),
                          finder=LookalikeFinder(pipeline, store, top_k=5), root=root)
    store.close()


def test_a_person_in_both_tmdb_sets_is_one_person_whatever_the_spelling(tmdb_index):
    """Joined by TMDB id: "Anthony Blair" and "Lula" of TMDB_PEOPLE are BIOS's "Tony Blair" and "Luiz
    Inacio Lula da Silva" (BIOS's name, biography and popularity win); the photo both sets have is one
    point; another TMDB id under an existing name ("Hans Blix", 990010) stays another person."""
    points = defaultdict(list)
    for record in tmdb_index.records:
        points[record.payload["person_id"]].append(record.payload)
    for pid, name, tmdb_row in (("tony-blair", "Tony Blair", 0), ("luiz-inacio-lula-da-silva",
                                                                   "Luiz Inacio Lula da Silva", 1)):
        mine = points[pid]
        assert len(mine) == 2, pid  # BIOS's photo and TMDB_PEOPLE's, under one person
        assert {p["name"] for p in mine} == {name}
        assert sorted(s for p in mine for s in p["sources"])[-1] == f"tmdb_people_mini:train:{tmdb_row}"
        assert len({p["metadata"]["biography"] for p in mine}) == 1 and len({p["metadata"]["id"] for p in mine}) == 1
    assert points["tony-blair"][0]["metadata"]["popularity"] == 2.0  # BIOS's, not TMDB_PEOPLE's 40
    assert "anthony-blair" not in points and "lula" not in points
    (toledo,) = points["alejandro-toledo"]
    assert toledo["sources"] == ["celebrity_bios_mini:train:0", "tmdb_people_mini:train:3"]
    assert len(points["hans-blix"]) == 1 and len(points["hans-blix-tmdb-990010"]) == 1
    assert points["hans-blix-tmdb-990010"][0]["name"] == "Hans Blix"
    assert points["hans-blix-tmdb-990010"][0]["metadata"]["id"] == 990010
    # 31 BIOS people + 5 five_celebs + the namesake; Madonna of the folder joins TMDB's by name
    assert len(points) == 37 and len(points["madonna"]) == 2
    assert tmdb_index.report.people == 37


def test_well_known_marks_the_celebrity_sets_people_and_the_most_popular(tmdb_index):
    famous = {r.payload["person_id"] for r in tmdb_index.records if r.payload["well_known"] == 1}
    obscure = {r.payload["person_id"] for r in tmdb_index.records if r.payload["well_known"] == 0}
    assert len(famous) == KEEP and "madonna" in famous  # TMDB popularity 0.7, but in a celebrities set
    assert obscure == {"ben-affleck", "elton-john", "jerry-seinfeld", "mindy-kaling", "hans-blix-tmdb-990010"}
    assert (tmdb_index.report.well_known, tmdb_index.report.popularity_threshold) == (KEEP, 1.0)


def _obscure_photo():
    """Elton John's TMDB_PEOPLE photo (popularity 0.6, in no celebrities set here)."""
    (row,) = [r for rows in TMDB_PEOPLE_FILES for r in rows if r[0] == "Elton John"]
    return tmdb_people_photo(row[3])


def test_well_known_only_leaves_out_an_obscure_person_and_off_finds_them(tmdb_index):
    finder = tmdb_index.finder
    photo = _obscure_photo()

    def people(**options) -> list[str]:
        (face,) = finder.find(photo, top_k=40, **options).faces
        return [m.person_id for m in face.matches]

    everyone = people()
    assert everyone[0] == "elton-john" and len(everyone) == 37
    famous = people(well_known_only=True)
    assert "elton-john" not in famous and len(famous) == KEEP
    assert "madonna" in famous


def test_the_api_searches_well_known_people_unless_told_otherwise(tmdb_index, tmp_path):
    """The API handler (webapp.handlers): a call that leaves the option out gets well-known people only;
    ``well_known_only`` false (or "false", as a REST client may send it) gets everyone."""
    from webapp.handlers import LookalikeUI

    ui = LookalikeUI(tmdb_index.finder)
    photo = tmp_path / "elton.jpg"
    shutil.copy(_obscure_photo(), photo)

    def first(*args) -> str:
        answer = ui.find_lookalikes(str(photo), 5, "", "", *args)
        return answer["faces"][0]["matches"][0]["person_id"]

    assert first() != "elton-john"
    assert first(True) != "elton-john"
    assert first(False) == "elton-john" and first("false") == "elton-john"
    assert ui.find_lookalikes(str(photo), 5, "", "", "maybe")["reason"] == "bad_filter"
