"""Recognition quality with the real vggface2 weights (marked ``real_weights``): run weekly by the quality
job, which downloads the weights; skipped where they are absent, as on the team's machines.

The code they call, ``evaluation.evaluate.evaluate`` over the one face pipeline, runs in the normal suite
with stand-in weights (``test_evaluate.py``); only the numbers here need the real weights. The report
goes to ``test-output/quality.md`` (the job's summary) and ``test-output/quality.json``; private mode's
FaceNet (float16-stored weights, as browsers download it) against the server's goes to
``test-output/quality-private.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FIVE_TRAIN, FIVE_VAL, LFW, ROOT
from support import copy_photos

pytestmark = pytest.mark.real_weights

MIN_RANK1 = 0.95
MIN_PRIVATE_COSINE = 0.99
"""Private mode's vectors against the server's: the tolerance the browser's model was admitted under."""


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


def test_private_modes_facenet_gives_the_servers_vectors_and_nearest_people(real_weights, base_settings,
                                                                           tmp_path_factory):
    """The FaceNet private mode's browsers run (its float16-stored export, here in onnxruntime, which
    ``tests/test_private_mode.py`` holds the browser to) against the server's float32 torch model, on the
    quality job's photos: each query face's cosine between the two, and whether its nearest gallery person
    (gallery embedded by the server, as the index is) is the same with either."""
    import numpy as np
    import onnxruntime as ort

    from lookalike.faces import FacePipeline
    from lookalike.faces.browser import half_weights
    from lookalike.faces.pipeline import extract_faces

    real = base_settings.model_copy(update={"weights": real_weights, "embedder": "torch"})
    pipeline = FacePipeline(real.face_config())
    root = tmp_path_factory.mktemp("quality-private")
    export = pipeline.embedder.exported()
    session = ort.InferenceSession(half_weights(export.read_bytes() if isinstance(export, Path) else export),
                                   providers=["CPUExecutionProvider"])

    def crops(folder):
        people, out = [], []
        for person in sorted(p for p in folder.iterdir() if p.is_dir()):
            for photo in sorted(person.glob("*.jpg")):
                image = pipeline.load(photo)
                detection = pipeline.detector.detect(image).largest()
                if len(detection):
                    people.append(person.name)
                    out.append(extract_faces(image, detection.boxes))
        return people, np.concatenate(out)

    gallery_people, gallery = crops(copy_photos(LFW, root / "gallery", per_person=4))
    query_people, queries = crops(copy_photos(LFW, root / "queries", per_person=4, start=4))
    server_gallery = pipeline.embedder.embed(gallery)
    server, browser = pipeline.embedder.embed(queries), session.run(None, {"crops": queries})[0]
    cosines = np.sum(server * browser, axis=1)
    nearest = [np.argmax(vectors @ server_gallery.T, axis=1) for vectors in (server, browser)]
    same_top1 = float(np.mean([gallery_people[a] == gallery_people[b] for a, b in zip(*nearest, strict=True)]))
    right = [float(np.mean([gallery_people[i] == person for i, person in zip(n, query_people, strict=True)]))
             for n in nearest]
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    (out / "quality-private.md").write_text(
        "## Private mode's FaceNet (float16-stored weights) against the server's (real vggface2 weights)\n\n"
        f"- {len(queries)} query faces (LFW), gallery of {len(gallery)} faces embedded by the server\n"
        f"- cosine, browser's model vs server's: min {cosines.min():.6f}, median {np.median(cosines):.6f}\n"
        f"- nearest gallery person the same with either: {same_top1:.1%}\n"
        f"- rank-1 correct: server {right[0]:.1%}, browser's model {right[1]:.1%}\n")
    assert cosines.min() >= MIN_PRIVATE_COSINE, cosines.min()
    assert same_top1 >= 0.99, same_top1
