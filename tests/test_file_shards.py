"""Sharded builds split parquet datasets by file: each shard loads only its files, the shards' files are
disjoint and together every file once, and N shards then the final pass give one run's points.

Real parts: ``datasets`` reading local folders in the hub's layout (``data/train-0000k-of-0000n.parquet``,
built from the committed photos by ``tests/support.py``), the real MTCNN, stand-in FaceNet weights,
embedded Qdrant stores in temporary folders, the CLI in this process.
"""

from __future__ import annotations

import logging

import pytest

from conftest import BIOS, CORE_FIXTURES, LFW, LFW_FILES
from support import alias_payloads

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


def _refs(sources) -> list[str]:
    return [row.ref for source in sources for row in source.rows(range(len(source)))]


def test_shards_read_disjoint_files_that_together_are_every_file_once():
    """Over BIOS (one file: fewer files than shards) and LFW_FILES (five files of unequal size)."""
    from indexing.shards import Shard
    from indexing.sources import open_all, parquet_files

    files = parquet_files(str(BIOS)) + parquet_files(str(LFW_FILES))
    assert [f.rows for f in files] == [31, 4, 9, 12, 17, 21]
    everything = _refs(open_all([str(BIOS), str(LFW_FILES)]))
    assert len(everything) == len(set(everything)) == 94
    for count in (1, 2, 3, 4, 7):
        taken = [Shard(index, count).files([f.rows for f in files]) for index in range(count)]
        assert sorted(p for share in taken for p in share) == list(range(len(files))), count  # each once
        loads = [sum(files[p].rows for p in share) for share in taken]
        assert max(loads) - min(loads) <= max(f.rows for f in files), (count, loads)
        refs = []
        for index in range(len(taken)):
            sources = open_all([str(BIOS), str(LFW_FILES)], shard=Shard(index, count))
            # every source and split is there, in order, holding only this shard's files' rows
            assert [s.label for s in sources] == ["celebrity_bios_mini", "lfw_files"]
            assert [s.file_share for s in sources] == [count > 1] * 2
            assert sum(len(s) for s in sources) == loads[index]
            refs.extend(_refs(sources))
        # the rows keep their numbers in the whole split: the same references as one run, each once
        assert sorted(refs) == sorted(everything), count


def test_shard_counts_the_files_rows_not_their_number():
    from indexing.shards import Shard

    rows = [100, 1, 1, 1, 1, 1, 1, 1]
    assert Shard(0, 2).files(rows) == [0]
    assert Shard(1, 2).files(rows) == [1, 2, 3, 4, 5, 6, 7]
    assert Shard(0, 3).files([5]) == [0] and Shard(1, 3).files([5]) == Shard(2, 3).files([5]) == []
    assert Shard(0, 1).files(rows) == list(range(8))


def test_the_person_pass_reads_every_file_without_the_images():
    from indexing.sources import SourceOptions, open_all

    with_photos = open_all([str(BIOS), str(LFW_FILES)])
    facts_only = open_all([str(BIOS), str(LFW_FILES)], SourceOptions(photos=False))
    for full, facts in zip(with_photos, facts_only, strict=True):
        assert full.image_column not in facts.dataset.column_names
        assert facts.dataset.column_names == [c for c in full.dataset.column_names if c != full.image_column]
        assert facts.names() == full.names()
        everything = range(len(full))
        assert list(facts.facts(everything)) == list(full.facts(everything))


def test_image_folders_stay_split_by_content_hash(caplog):
    """A folder is local (nothing to download): every shard reads all of it and the indexer keeps the
    photos each owns by content hash (``Shard.owns``, tested in test_merged_sources)."""
    from indexing.shards import Shard
    from indexing.sources import open_all

    whole = open_all([str(LFW)])
    with caplog.at_level(logging.INFO, logger="indexing"):
        shards = [open_all([str(LFW), str(LFW_FILES)], shard=Shard(i, 2))[0] for i in range(2)]
    assert [len(s) for s in shards] == [len(whole[0])] * 2 and not any(s.file_share for s in shards)
    said = [r.getMessage() for r in caplog.records]
    assert f"{LFW} is not parquet files: shard 1/2 reads all of it and takes its photos by content hash" in said


def _sharded_build(cli, capsys, caplog, argv: list[str], order=(0, 1)) -> list[str]:
    """``--prepare``, the shards of ``order`` one after the other, then ``--finalize``, through the CLI;
    returns the shards' log lines about their share."""
    assert cli(["--prepare"]) == 0
    version = capsys.readouterr().out.strip().splitlines()[-1]
    said = []
    for index in order:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="indexing"):
            assert cli([*argv, "--version", version, "--shard", f"{index}/{len(order)}"]) == 0
        said += [r.getMessage() for r in caplog.records if r.getMessage().startswith(("shard ", "--sample"))]
    assert cli([*argv, "--version", version, "--finalize"]) == 0
    return said


def _differing(got: dict, expected: dict) -> list:
    """The payloads (less their thumbnails) of the first points that differ, for the assertion message."""
    differing = [pid for pid in expected if got.get(pid) != expected[pid]]
    return [({k: v for k, v in got.get(p, {}).items() if k != "thumbnail"},
             {k: v for k, v in expected[p].items() if k != "thumbnail"}) for p in differing[:2]]


def test_file_shards_then_finalize_give_one_runs_points(cli, base_settings, tmp_path, monkeypatch, capsys, caplog):
    """BIOS (one file) + LFW_FILES (five) as two file shards through the CLI, the later shard first, then
    --finalize, give the points of one unsharded run: same ids and payloads. That covers photos found by
    both shards: the 31 BIOS photos are each also a row of LFW_FILES, and one LFW_FILES photo is in its
    first and last file under two names. Each point keeps every reference in precedence order and the
    person of the first row (as one run reads them), and each person's name and caption is the first
    one seen across all files, not the one of the shard that wrote the point.

    Batch size 1 on both sides: MTCNN detects the photos of a batch together (see test_merged_sources)."""
    from indexing.shards import Shard
    from indexing.sources import parquet_files

    argv = ["--source", str(BIOS), "--source", str(LFW_FILES), "--batch-size", "1", "--quiet"]
    files = parquet_files(str(BIOS)) + parquet_files(str(LFW_FILES))
    # BIOS and the first LFW_FILES file (the double's first row) in shard 0, the last file in shard 1
    assert Shard(0, 2).files([f.rows for f in files]) == [0, 1, 3]
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "one"))
    assert cli(argv) == 0
    expected = alias_payloads(base_settings.model_copy(update={"data_dir": tmp_path / "one"}))
    assert len(expected) > 55
    (double,) = [p for p in expected.values() if len(p["sources"]) == 3]
    assert double["person_id"] == "alejandro-toledo"
    assert double["sources"] == ["celebrity_bios_mini:train:0", "lfw_files:train:0", "lfw_files:train:62"]
    assert sum(len(p["sources"]) == 2 for p in expected.values()) >= 25  # BIOS photos also in LFW_FILES

    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "sharded"))
    said = _sharded_build(cli, capsys, caplog, argv, order=(1, 0))
    assert said == [f"shard {i}/2 reads 3 of 6 parquet files (47 of 94 rows)" for i in (1, 0)]
    got = alias_payloads(base_settings.model_copy(update={"data_dir": tmp_path / "sharded"}))
    assert set(got) == set(expected)
    assert _differing(got, expected) == []


def test_sampled_shards_read_every_file_and_split_by_content_hash(cli, base_settings, tmp_path, monkeypatch,
                                                                   capsys, caplog):
    """--per-person/--sample choose among every row of a source, so their shards read every file (and
    say so) and split the chosen rows by content hash: together the points of one sampled run."""
    argv = ["--source", str(LFW_FILES), "--per-person", "1", "--sample", "8", "--batch-size", "1", "--quiet"]
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "one"))
    assert cli(argv) == 0
    expected = alias_payloads(base_settings.model_copy(update={"data_dir": tmp_path / "one"}))
    assert 6 <= len(expected) <= 8
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "sharded"))
    said = _sharded_build(cli, capsys, caplog, argv)
    assert len(said) == 2 and all("by content hash" in line and "reads every file" in line for line in said), said
    got = alias_payloads(base_settings.model_copy(update={"data_dir": tmp_path / "sharded"}))
    assert set(got) == set(expected)
    assert _differing(got, expected) == []


def test_pinned_sources_name_the_commit_and_local_folders_stay_as_they_are(monkeypatch):
    """``--pin-sources`` (the workflow's prepare): a Hub dataset gets the commit it is at now."""
    import indexing.sources as sources
    import indexing.sources.spec as spec

    monkeypatch.setattr(spec, "dataset_revision", lambda repo_id, token: f"c0ffee-{repo_id}")
    assert sources.pin_source("owner/name") == "owner/name?revision=c0ffee-owner/name"
    assert sources.pin_source("owner/name?split=test") == "owner/name?split=test&revision=c0ffee-owner/name"
    assert sources.pin_source("owner/name?revision=abc") == "owner/name?revision=abc"  # pinned already
    assert sources.pin_source(str(BIOS)) == str(BIOS)  # a local folder has no commit


def test_a_pinned_source_reads_its_commit_and_keeps_its_references(monkeypatch):
    """Every shard opens the Hub dataset at the pinned commit; its rows' references do not carry it."""
    import datasets

    import indexing.sources as sources
    import indexing.sources.parquet as parquet

    asked = []

    def builder(target, **kwargs):
        asked.append((target, kwargs.get("revision")))
        raise LookupError("stop here")

    monkeypatch.setattr(parquet, "check_hub", lambda repo_id, token: None)
    monkeypatch.setattr(datasets, "load_dataset_builder", builder)
    with pytest.raises(LookupError):
        sources.parquet_files("owner/name?revision=abc123")
    assert asked == [("owner/name", "abc123")]
    pinned = sources.open_sources(f"{BIOS}?revision=abc123")  # a local folder: read as it is
    assert [s.ref_prefix for s in pinned] == [s.ref_prefix for s in sources.open_sources(str(BIOS))]
