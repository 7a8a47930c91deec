"""The fast detector (lookalike.faces.fast_mtcnn) against facenet-pytorch's own MTCNN.detect, called directly.

Every test photo, plus rotated and odd-size copies, goes through both with the same settings
(min_face_size, thresholds, factor); boxes, face counts and probabilities must agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn.functional import interpolate
from torchvision.ops import box_iou

from conftest import CORE_FIXTURES, FIVE_TRAIN, FIVE_VAL, LFW, MULTIFACE, image_files
from lookalike.errors import ModelMismatchError
from lookalike.faces.detection import FaceDetector
from lookalike.faces.fast_mtcnn import FastMTCNN
from lookalike.faces.summed_areas import SummedAreas, summed_area_table, table_dtype

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)

MIN_FACE = 40
PHOTOS = image_files(FIVE_TRAIN) + image_files(FIVE_VAL) + image_files(LFW) + [MULTIFACE]


def rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def variants() -> list[tuple[str, Image.Image]]:
    """Rotated, mirrored, odd-size and very wide/tall copies of a few photos."""
    group = rgb(MULTIFACE)
    portrait = rgb(image_files(FIVE_VAL)[0])
    lfw = rgb(image_files(LFW)[0])
    out = [
        ("multiface rot90", group.rotate(90, expand=True)),
        ("multiface rot180", group.rotate(180)),
        ("multiface 10 degrees", group.rotate(10, expand=True, fillcolor=(0, 0, 0))),
        ("multiface 333x517", group.resize((333, 517))),
        ("multiface 1001x523", group.resize((1001, 523))),
        ("multiface strip", group.crop((0, 200, group.width, 330))),
        ("portrait mirrored", portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        ("portrait rot270", portrait.rotate(270, expand=True)),
        ("portrait 401x239", portrait.resize((401, 239))),
        ("lfw 97x131", lfw.resize((97, 131))),
        ("lfw 251x251", lfw.resize((251, 251))),
        ("lfw padded 513x257", _pad(lfw, (513, 257))),
    ]
    return out


def _pad(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGB", size, (40, 90, 160))
    canvas.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    return canvas


@pytest.fixture(scope="module")
def reference():
    """facenet-pytorch's MTCNN with our detection settings, as its users call it."""
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, min_face_size=MIN_FACE, device="cpu")


@pytest.fixture(scope="module")
def fast_detector() -> FaceDetector:
    """The fast detector with no downscaling (the photos are compared at their own size)."""
    return FaceDetector(min_face_size=MIN_FACE, max_side=100_000, kind="fast")


@pytest.fixture(scope="module")
def compared(reference, fast_detector) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, reference boxes, reference probabilities, our boxes, our probabilities) per image;
    ours detected in batches of mixed sizes (detect_many), the reference one image at a time."""
    named = [(p.name, rgb(p)) for p in PHOTOS] + variants()
    ours = fast_detector.detect_many([image for _, image in named])
    out = []
    for (name, image), found in zip(named, ours, strict=True):
        boxes, probs = reference.detect(image)
        boxes = np.zeros((0, 4), np.float32) if boxes is None else np.asarray(boxes, np.float32)
        probs = np.zeros((0,), np.float32) if len(boxes) == 0 else np.asarray(probs, np.float32)
        out.append((name, boxes, probs, found.boxes, found.probabilities))
    return out


def test_same_face_count_on_99_percent_of_photos(compared):
    assert len(compared) >= 116 + 1 + 12
    differ = [(name, len(rb), len(ob)) for name, rb, _, ob, _ in compared if len(rb) != len(ob)]
    assert len(differ) <= 0.01 * len(compared), differ


def test_boxes_overlap_facenet_pytorch_by_iou_095_for_99_percent_of_faces(compared):
    total, good, misses = 0, 0, []
    for name, ref_boxes, _, our_boxes, _ in compared:
        if len(ref_boxes) == 0:
            continue
        best = (box_iou(torch.from_numpy(ref_boxes), torch.from_numpy(our_boxes)).max(dim=1).values
                if len(our_boxes) else torch.zeros(len(ref_boxes)))
        total += len(best)
        good += int((best >= 0.95).sum())
        misses += [(name, round(float(v), 3)) for v in best if v < 0.95]
    assert total >= 130
    assert good >= 0.99 * total, misses[:20]


def test_probabilities_within_001_of_facenet_pytorch(compared):
    checked = 0
    for name, ref_boxes, ref_probs, our_boxes, our_probs in compared:
        if len(ref_boxes) == 0 or len(our_boxes) == 0:
            continue
        overlap = box_iou(torch.from_numpy(ref_boxes), torch.from_numpy(our_boxes))
        best, match = overlap.max(dim=1)
        for i in np.flatnonzero(best.numpy() >= 0.95):
            assert abs(float(ref_probs[i]) - float(our_probs[int(match[i])])) <= 0.01, name
            checked += 1
    assert checked >= 130


def test_facenet_kind_is_facenet_pytorch_itself(reference):
    detector = FaceDetector(min_face_size=MIN_FACE, max_side=100_000, kind="facenet")
    image = rgb(MULTIFACE)
    (found,) = detector.detect_many([image])
    boxes, probs = reference.detect(image)
    order = np.argsort(boxes[:, 0], kind="stable")
    assert np.array_equal(found.boxes, boxes[order].astype(np.float32))
    assert np.array_equal(found.probabilities, probs[order].astype(np.float32))


def test_mixed_sizes_in_one_call_equal_one_image_per_call(fast_detector):
    images = [rgb(MULTIFACE), rgb(image_files(FIVE_VAL)[3]), Image.new("RGB", (30, 30)), rgb(image_files(LFW)[5]),
              rgb(MULTIFACE).resize((700, 400))]
    together = fast_detector.detect_many(images)
    for image, found in zip(images, together, strict=True):
        alone = fast_detector.detect(image)
        assert len(found) == len(alone)
        assert np.allclose(found.boxes, alone.boxes, atol=1e-3)
        assert np.allclose(found.probabilities, alone.probabilities, atol=1e-5)
        assert np.allclose(found.landmarks, alone.landmarks, atol=1e-3)


@pytest.mark.parametrize("size", [(30, 30), (3000, 20), (20, 3000), (12, 12), (39, 500), (1, 1), (13, 4000)])
def test_tiny_and_thin_images_have_no_face_and_do_not_crash(fast_detector, size):
    image = Image.new("RGB", size, (120, 100, 90))
    assert len(fast_detector.detect(image)) == 0


def test_images_below_min_face_size_reach_the_networks_without_crashing(reference):
    """FastMTCNN itself, without the detector's size filter: no pyramid level, no face."""
    fast = FastMTCNN(reference)
    found = fast.detect([np.zeros((30, 30, 3), np.uint8), np.zeros((12, 900, 3), np.uint8),
                         np.asarray(rgb(MULTIFACE))])
    assert [len(f.boxes) for f in found[:2]] == [0, 0]
    assert len(found[2].boxes) == 6


def test_tables_are_int32_while_the_largest_sum_fits_and_int64_beyond():
    fits = (2**31 - 1) // 255  # pixels whose all-255 sum still fits in int32
    assert table_dtype(1, fits) is np.int32 and table_dtype(1, fits + 1) is np.int64
    assert table_dtype(4000, 3000) is np.int64  # a 12-megapixel photo at full size
    assert SummedAreas([np.full((2, 3, 3), 255, np.uint8)]).buffer.dtype == np.int32


def test_a_table_of_an_image_view_is_its_pixels_sums():
    image = np.random.default_rng(4).integers(0, 256, (40, 60, 3), dtype=np.uint8)[5:35, ::-2]  # not contiguous
    table = summed_area_table(image)
    assert table.dtype == np.int32
    assert np.array_equal(table[1:, 1:], image.astype(np.int64).cumsum(axis=0).cumsum(axis=1))


def test_int64_tables_hold_the_exact_sums():
    image = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    table = summed_area_table(image, np.full((38, 54, 3), -1, np.int64))
    assert table.dtype == np.int64
    assert np.array_equal(table[1:, 1:], image.astype(np.int64).cumsum(axis=0).cumsum(axis=1))
    assert not table[0].any() and not table[:, 0].any()


def test_summed_areas_equal_torch_area_interpolation():
    """The one-gather resampling gives interpolate(mode="area") of each crop (facenet-pytorch's imresample)."""
    generator = np.random.default_rng(7)
    # photos of several sizes in one buffer, some of one size side by side (a dataset batch)
    sizes = [(97, 131), (480, 640), (480, 640), (33, 20), (33, 20), (33, 20)]
    images = [generator.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    areas = SummedAreas(images)
    for image, table in zip(images, areas.tables, strict=True):
        assert np.array_equal(table[1:, 1:], image.astype(np.int64).cumsum(axis=0).cumsum(axis=1))
        assert not table[0].any() and not table[:, 0].any()
    index = np.array([0, 1, 2, 3, 5, 2, 4])
    y0, y1 = np.array([0, 5, 100, 0, 3, 470, 10]), np.array([97, 400, 123, 33, 30, 480, 11])
    x0, x1 = np.array([3, 0, 17, 0, 2, 600, 0]), np.array([131, 640, 18, 20, 19, 640, 20])
    for side in (24, 48):
        crops = areas.crops(index, y0, y1, x0, x1, side)
        for k in range(len(index)):
            pixels = torch.from_numpy(images[index[k]][y0[k]:y1[k], x0[k]:x1[k]]).permute(2, 0, 1)[None].float()
            expected = interpolate(pixels, size=(side, side), mode="area")[0].numpy()
            assert np.abs(crops[k] - expected).max() < 1e-3
    level = areas.levels([1], 145, 193)[0]
    whole = torch.from_numpy(images[1]).permute(2, 0, 1)[None].float()
    assert np.abs(level - interpolate(whole, size=(145, 193), mode="area")[0].numpy()).max() < 1e-3


# -- the fingerprint covers the detection settings --------------------------------------------------


def test_index_built_with_other_detection_settings_is_refused(pipeline, settings, store):
    from dataclasses import replace

    from indexing.versions import ensure_collection
    from lookalike.faces import FacePipeline, pipeline_fingerprint

    ensure_collection(store, pipeline.fingerprint)
    store.check_fingerprint(pipeline.fingerprint)  # the same settings pass
    config = settings.face_config()
    other = FacePipeline(replace(config, min_face_size=60, embedder="torch"))
    with pytest.raises(ModelMismatchError):
        store.check_fingerprint(other.fingerprint)
    with pytest.raises(ModelMismatchError):
        store.check_fingerprint(pipeline_fingerprint(replace(config, detect_max_side=960), pipeline.fingerprint))
    # The detector's kind finds the same boxes, so either may query the other's index.
    store.check_fingerprint(pipeline_fingerprint(replace(config, detector="facenet"), pipeline.fingerprint))
