"""The stand-in FaceNet weights (``tests/support.py``) have the properties the other tests rely on.

A plain random init maps every face to nearly the same vector, so a search, ranking or preprocessing
test could not fail with it. These checks fail for such weights, and for a pipeline fed wrongly scaled
crops: they are what makes the rest of the suite able to fail. (Mechanics only: never accuracy.)
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CORE_FIXTURES, FIVE_VAL, image_files

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)


def _one_per_person() -> list:
    return [image_files(person)[0] for person in sorted(p for p in FIVE_VAL.iterdir() if p.is_dir())]


def _vector(pipeline, image: Image.Image) -> np.ndarray:
    (face,) = pipeline.faces_many([image], main_only=True)[0]
    return face.vector


def _reencoded(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [Image.open(p).convert("RGB") for p in _one_per_person()]


def test_photos_of_different_people_are_far_apart(pipeline, photos):
    vectors = [_vector(pipeline, image) for image in photos]
    cosines = [float(a @ b) for a, b in itertools.combinations(vectors, 2)]
    assert len(cosines) == 10
    assert np.mean(cosines) < 0.5, cosines


def test_the_same_photo_reencoded_stays_close(pipeline):
    photos = [Image.open(p).convert("RGB") for p in image_files(FIVE_VAL)]
    cosines = [float(_vector(pipeline, image) @ _vector(pipeline, _reencoded(image))) for image in photos]
    assert np.mean(cosines) > 0.8, cosines


def test_wrongly_scaled_crops_land_far_from_the_right_ones(pipeline, photos):
    """Crops scaled to 0..1 (x / 255) instead of facenet-pytorch's standardisation ((x - 127.5) / 128)."""
    for image in photos:
        detection = pipeline.detector.detect(image)
        crops = pipeline.detector.mtcnn.extract(image, detection.boxes[:1], None)
        wrong = (crops * 128.0 + 127.5) / 255.0
        right_vector, wrong_vector = pipeline.embedder.embed(torch.cat([crops, wrong]))
        assert float(right_vector @ wrong_vector) < 0.5
