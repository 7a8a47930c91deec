"""The one face pipeline (lookalike.faces): real MTCNN, stand-in FaceNet weights, real photos.

Fidelity to facenet-pytorch is checked against facenet-pytorch itself, called directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from conftest import CORE_FIXTURES, FIVE_TRAIN, FIVE_VAL, LFW, MULTIFACE, image_files
from lookalike.errors import NoFaceError

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)

FIVE_CELEBS = image_files(FIVE_TRAIN) + image_files(FIVE_VAL)
LFW_HALF = image_files(LFW)[::2]


def iou(a, b) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes (torchvision's box_iou)."""
    return float(box_iou(torch.tensor([list(a)], dtype=torch.float64),
                         torch.tensor([list(b)], dtype=torch.float64))[0, 0])


def rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


@pytest.fixture(scope="module")
def five_celebs_faces(pipeline) -> dict[Path, list]:
    """pipeline.faces() of every five_celebs photo (train and val); [] where it raised NoFaceError."""
    out = {}
    for path in FIVE_CELEBS:
        try:
            out[path] = pipeline.faces(path)
        except NoFaceError:
            out[path] = []
    return out


@pytest.fixture(scope="module")
def reference_mtcnn():
    """facenet-pytorch's MTCNN with its defaults, as a user of the library would call it."""
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu")


@pytest.fixture(scope="module")
def reference_resnet(torch_home):
    """InceptionResnetV1 loaded straight from facenet-pytorch (the same stand-in file)."""
    from facenet_pytorch import InceptionResnetV1

    return InceptionResnetV1(pretrained="vggface2").eval()


@pytest.fixture(scope="module")
def large_photo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """multiface.jpg upscaled to 2600 px wide (the detector shrinks it), and the scale factor."""
    original = rgb(MULTIFACE)
    factor = 2600 / original.width
    large = original.resize((2600, round(original.height * factor)), Image.Resampling.BICUBIC)
    path = tmp_path_factory.mktemp("large") / "large.jpg"
    large.save(path, quality=95)
    return path, factor


# -- detection ------------------------------------------------------------------------------------


def test_face_in_every_five_celebs_photo(five_celebs_faces):
    assert len(five_celebs_faces) == 116
    missed = [p.name for p, faces in five_celebs_faces.items() if not faces]
    assert not missed, missed


def test_multiface_six_faces_left_to_right(pipeline):
    faces = pipeline.faces(MULTIFACE)
    assert len(faces) == 6
    lefts = [f.box[0] for f in faces]
    assert lefts == sorted(lefts)
    width, height = Image.open(MULTIFACE).size
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert x1 < x2 and y1 < y2
        assert -5 <= x1 and x2 <= width + 5 and -5 <= y1 and y2 <= height + 5
        assert 0.9 <= face.probability <= 1.0


def test_tiny_image_has_no_face(pipeline):
    with pytest.raises(NoFaceError):
        pipeline.faces(Image.new("RGB", (1, 1), (120, 100, 90)))
    assert pipeline.faces_many([Image.new("RGB", (1, 1))]) == [[]]


def test_blank_image_has_no_face(pipeline, tmp_path: Path):
    path = tmp_path / "blank.png"
    Image.new("RGB", (640, 480), (128, 128, 128)).save(path)
    with pytest.raises(NoFaceError) as info:
        pipeline.faces(path)
    assert info.value.reason == "no_face"


# -- crops and vectors ----------------------------------------------------------------------------


def test_embeddings_shape_dtype_norm_and_crops(pipeline):
    faces = pipeline.faces(MULTIFACE)
    vectors = np.stack([f.vector for f in faces])
    assert vectors.shape == (6, 512)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Six different people: the stand-in weights keep them apart (not all one vector).
    cosines = vectors @ vectors.T
    assert cosines[~np.eye(6, dtype=bool)].max() < 0.99
    for face in faces:
        assert face.crop.size == (160, 160) and face.crop.mode == "RGB"
        assert face.landmarks.shape == (5, 2)
        assert face.area > 0


def test_same_image_same_vector(pipeline):
    path = image_files(FIVE_VAL)[3]
    first = pipeline.faces(path)
    second = pipeline.faces(path.read_bytes())
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.box == b.box
        assert float(a.vector @ b.vector) > 0.99999


def test_batches_equal_single_calls(pipeline):
    """faces_many over mixed images (one faceless) gives each image what faces() gives it alone."""
    paths = [MULTIFACE, image_files(FIVE_VAL)[0], image_files(FIVE_VAL)[7]]
    images = [rgb(paths[0]), rgb(paths[1]), Image.new("RGB", (300, 200), (30, 30, 30)), rgb(paths[2]),
              rgb(paths[1])]
    batched = pipeline.faces_many(images)
    assert batched[2] == []
    for found, path in zip([batched[0], batched[1], batched[3], batched[4]], [paths[0], paths[1], paths[2], paths[1]],
                           strict=True):
        alone = pipeline.faces(path)
        assert len(found) == len(alone)
        assert np.allclose([f.box for f in found], [f.box for f in alone], atol=1e-3)
        for a, b in zip(found, alone, strict=True):
            assert float(a.vector @ b.vector) > 0.9999


def test_main_only_keeps_the_largest_face(pipeline):
    every = pipeline.faces(MULTIFACE)
    (main,) = pipeline.faces_many([rgb(MULTIFACE)], main_only=True)
    assert len(main) == 1
    assert main[0].area == pytest.approx(max(f.area for f in every), rel=1e-4)
    twin = max(every, key=lambda f: iou(f.box, main[0].box))
    assert float(twin.vector @ main[0].vector) > 0.9999


# -- fidelity to facenet-pytorch ------------------------------------------------------------------


def test_boxes_match_facenet_pytorch_detect(pipeline, five_celebs_faces, reference_mtcnn):
    """Against plain MTCNN(keep_all=True).detect on the full photo: IoU >= 0.8 for >= 95 % of faces."""
    ours: dict[Path, list] = {p: [f.box for f in faces] for p, faces in five_celebs_faces.items()}
    lfw_images = [rgb(p) for p in LFW_HALF]
    for path, faces in zip(LFW_HALF, pipeline.faces_many(lfw_images), strict=True):
        ours[path] = [f.box for f in faces]
    assert len(ours) == 116 + 124

    total = good = 0
    failures = []
    for path, boxes in ours.items():
        reference, _ = reference_mtcnn.detect(rgb(path))
        for ref in ([] if reference is None else reference):
            total += 1
            best = max((iou(ref, box) for box in boxes), default=0.0)
            if best >= 0.8:
                good += 1
            else:
                failures.append((path.name, round(best, 2)))
    assert total >= 271
    assert good / total >= 0.95, f"{good}/{total} faces overlap; misses: {failures[:20]}"


def _reference_vector(reference_resnet, image: Image.Image, box) -> np.ndarray:
    from facenet_pytorch import MTCNN

    crop = MTCNN().extract(image, np.asarray([box], np.float32), None)
    with torch.no_grad():
        vector = reference_resnet(crop.unsqueeze(0))[0].numpy()
    return vector / np.linalg.norm(vector)


@pytest.mark.parametrize("which", ["multiface", "val0", "val9", "val20", "lfw"])
def test_vectors_match_facenet_pytorch(pipeline, reference_resnet, which):
    path = {"multiface": MULTIFACE, "val0": image_files(FIVE_VAL)[0], "val9": image_files(FIVE_VAL)[9],
            "val20": image_files(FIVE_VAL)[20], "lfw": LFW_HALF[10]}[which]
    image = rgb(path)
    faces = pipeline.faces(path)
    for face in faces:
        expected = _reference_vector(reference_resnet, image, face.box)
        assert float(face.vector @ expected) > 0.999


def test_large_photo_boxes_in_original_pixels_and_vectors_match(pipeline, reference_resnet, reference_mtcnn,
                                                                large_photo):
    path, factor = large_photo
    image = rgb(path)
    assert max(image.size) > pipeline.detector.max_side  # the detector works on a shrunk copy
    faces = pipeline.faces(path)
    assert len(faces) == 6
    # Boxes are in pixels of the large photo: they match the small photo's boxes scaled up ...
    small = pipeline.faces(MULTIFACE)
    for face, expected in zip(faces, small, strict=True):
        scaled = [v * factor for v in expected.box]
        assert iou(face.box, scaled) > 0.8, (face.box, scaled)
    # ... and facenet-pytorch's own detection on the full large photo.
    reference, _ = reference_mtcnn.detect(image)
    for ref in reference:
        if (ref[2] - ref[0]) >= 40 * factor:
            assert max(iou(ref, f.box) for f in faces) >= 0.8
    # The crop comes from the full-resolution photo, exactly as facenet-pytorch crops it.
    for face in faces:
        expected = _reference_vector(reference_resnet, image, face.box)
        assert float(face.vector @ expected) > 0.999
