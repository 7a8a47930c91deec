"""Recognition quality with the real vggface2 weights (marked ``real_weights``): run weekly by the quality
job, which downloads the weights; skipped where they are absent, as on the team's machines.

The code they call, ``evaluation.evaluate.evaluate`` over the one face pipeline, runs in the normal suite
with stand-in weights (``test_evaluate.py``); only the numbers here need the real weights. The report
goes to ``test-output/quality.md`` (the job's summary) and ``test-output/quality.json``.
"""

from __future__ import annotations

import json

import pytest

from conftest import FIVE_TRAIN, FIVE_VAL, LFW, ROOT
from support import copy_photos

pytestmark = pytest.mark.real_weights

MIN_RANK1 = 0.95


@pytest.fixture(scope="module")
def real_report(real_weights, base_settings, tmp_path_factory):
    """Gallery: the first 4 LFW photos of each of 31 people and five_celebs/train; queries: the other 4
    LFW photos of each and five_celebs/val (every query person is in the gallery, no photo in both)."""
    from evaluation.evaluate import evaluate
    from indexing.sources import open_sources
    from lookalike.faces import FacePipeline

    real = base_settings.model_copy(update={"weights": real_weights, "embedder": "torch"})
    pipeline = FacePipeline(real.face_config())
    root = tmp_path_factory.mktemp("quality")
    gallery = open_sources(str(copy_photos(LFW, root / "gallery", per_person=4))) + open_sources(str(FIVE_TRAIN))
    queries = open_sources(str(copy_photos(LFW, root / "queries", per_person=4, start=4))) + open_sources(str(FIVE_VAL))
    report = evaluate(pipeline, gallery, queries, top_k=5)
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    (out / "quality.json").write_text(json.dumps(report.as_json(), indent=2))
    (out / "quality.md").write_text(f"## Recognition quality (real vggface2 weights)\n\n```\n{report.summary()}\n```\n")
    return report


def test_rank1_identification_on_the_committed_photos(real_report):
    assert real_report.queries_in_gallery == 0
    assert real_report.evaluated_queries == 31 * 4 + 24
    assert real_report.rank1 >= MIN_RANK1, real_report.summary()


def test_same_and_different_person_scores_separate(real_report):
    """The threshold that keeps most true matches lets few false ones through; it is reported."""
    true, false = real_report.true_scores, real_report.false_scores
    assert true.mean - false.mean > 0.3, real_report.summary()
    assert real_report.suggested_threshold is not None
    assert real_report.false_above_threshold <= 0.1, real_report.summary()
    print(f"suggested 'no close match' threshold: {real_report.suggested_threshold} "
          f"(false matches above it: {real_report.false_above_threshold:.1%})")
