"""``python -m evaluation`` on five_celebs (train gallery, val queries) with stand-in weights.

The stand-in weights carry little identity, so the accuracies here prove only that the numbers come
from the data (counts equal the folders; a query set of the gallery's own photos scores rank-1 = 1.0).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import FIVE_TRAIN, FIVE_VAL, image_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def five_celebs_report(pipeline, tmp_path_factory):
    from evaluation.evaluate import evaluate
    from indexing.sources import open_sources

    out = tmp_path_factory.mktemp("evaluation")
    report = evaluate(pipeline, open_sources(str(FIVE_TRAIN)), open_sources(str(FIVE_VAL)), top_k=5, out_dir=out)
    return report, out


def test_counts_match_the_folders(five_celebs_report):
    report, _ = five_celebs_report
    assert report.gallery_photos == len(image_files(FIVE_TRAIN)) == 92
    assert report.query_photos == len(image_files(FIVE_VAL)) == 24
    people = {p.name for p in FIVE_TRAIN.iterdir() if p.is_dir()}
    assert report.gallery_people == report.query_people == len(people) == 5
    assert 0 < report.gallery_faces <= report.gallery_photos
    assert report.query_faces + round(report.query_no_face_share * report.query_photos) == report.query_photos
    assert report.evaluated_queries == report.query_faces and report.unknown_person_queries == 0
    assert report.queries_in_gallery == 0


def test_report_structure_and_consistency(five_celebs_report):
    report, out = five_celebs_report
    data = json.loads((out / "report.json").read_text())
    for key in ("rank1", "rank5", "gallery_no_face_share", "query_no_face_share", "confused_pairs", "true_scores",
                "false_scores", "suggested_threshold", "per_person_rank1", "embedding_png"):
        assert key in data
    assert data["rank1"] == report.rank1
    assert 0.0 <= report.rank1 <= report.rank5 <= 1.0
    # rank-1 is the mean of the per-person rank-1 weighted by their query counts, and mistakes are the pairs
    mistakes = round((1 - report.rank1) * report.evaluated_queries)
    assert sum(p.count for p in report.confused_pairs) == mistakes
    assert all(p.true_person != p.predicted_person for p in report.confused_pairs)
    assert report.true_scores.count == report.evaluated_queries == report.false_scores.count
    percentiles = list(report.true_scores.percentiles.values())
    assert percentiles == sorted(percentiles) and all(-1.0 <= v <= 1.0 for v in percentiles)
    # the threshold keeps 95 % of true matches
    assert report.suggested_threshold == pytest.approx(report.true_scores.percentiles["p5"], abs=1e-3)
    assert "rank-1 accuracy" in report.summary()


def test_embedding_png_is_a_valid_image(five_celebs_report):
    report, out = five_celebs_report
    png = Path(report.embedding_png)
    assert png == out / "embedding.png" and png.is_file()
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width >= 300 and image.height >= 200
        assert len(image.convert("RGB").getcolors(1 << 24)) > 5  # coloured points, not a blank canvas


def test_gallery_photos_as_queries_score_rank1_one(pipeline, tmp_path):
    from evaluation.evaluate import evaluate
    from indexing.sources import open_sources

    report = evaluate(pipeline, open_sources(str(FIVE_TRAIN)), open_sources(str(FIVE_TRAIN)), top_k=5)
    assert report.queries_in_gallery == report.query_faces == report.gallery_faces
    assert report.rank1 == 1.0 and report.rank5 == 1.0
    assert report.confused_pairs == []
    assert report.true_scores.percentiles["p1"] == pytest.approx(1.0, abs=1e-4)


def test_cli_writes_report_and_picture(pipeline, tmp_path, capsys):
    """The command line on a small copy: one person absent from the gallery is counted, not scored."""
    import shutil

    from evaluation.evaluate import main

    gallery, queries = tmp_path / "gallery", tmp_path / "queries"
    people = sorted(p for p in FIVE_TRAIN.iterdir() if p.is_dir())
    for person in people[:3]:
        shutil.copytree(person, gallery / person.name)
    for person in people[:4]:
        (queries / person.name).mkdir(parents=True)
        for photo in sorted((FIVE_VAL / person.name).glob("*.jpg"))[:2]:
            shutil.copy(photo, queries / person.name / photo.name)
    out = tmp_path / "out"
    assert main(["--gallery", str(gallery), "--queries", str(queries), "--top-k", "2", "--out", str(out)],
                pipeline=pipeline) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["gallery_people"] == 3 and data["query_photos"] == 8
    assert data["unknown_person_queries"] == data["query_faces"] - data["evaluated_queries"]
    assert data["evaluated_queries"] <= 6 and data["unknown_person_queries"] >= 1
    assert (out / "embedding.png").is_file()
    assert "rank-2 accuracy" in capsys.readouterr().out


def test_cli_reports_a_missing_folder(tmp_path, capsys):
    from evaluation.evaluate import main

    assert main(["--gallery", str(tmp_path / "nope"), "--queries", str(FIVE_VAL), "--out", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err


def test_evaluate_reports_the_likeness_fit_of_its_scores():
    from evaluation.evaluate import EvaluationReport, _likeness_fit

    assert "likeness" in EvaluationReport.__dataclass_fields__
    fit = _likeness_fit([0.7, 0.8, 0.9], [-0.1, 0.0, 0.1, 0.2])
    assert fit["center"] == pytest.approx(0.425) and fit["same_median"] == 0.8 and fit["reads"]["1.00"] == 100
    assert _likeness_fit([], [0.1]) is None
