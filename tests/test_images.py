"""Decoding untrusted input (lookalike.images): typed errors for bad files, every mode to upright RGB."""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys
import textwrap
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from conftest import CORE_FIXTURES, FIVE_VAL, MULTIFACE, ROOT, image_files
from lookalike.errors import ImageTooLargeError, LookalikeError, NotAnImageError
from lookalike.images import load_rgb_image
from support import ORIENTATION, iou, rotated_copy

pytestmark = pytest.mark.usefixtures(*CORE_FIXTURES)



def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_huge_png(path: Path, width: int, height: int) -> Path:
    """A real, valid, one-colour greyscale PNG of width x height, compressed row by row (a few hundred KB)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + one byte per pixel
    parts = []
    rows_per_block = 256
    for start in range(0, height, rows_per_block):
        parts.append(compressor.compress(row * min(rows_per_block, height - start)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", b"".join(parts))
                     + _png_chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_huge_png(tmp_path_factory.mktemp("huge") / "huge.png", 12000, 12000)


@pytest.fixture(scope="module")
def face_photo() -> Path:
    return image_files(FIVE_VAL)[0]


# -- bad input ------------------------------------------------------------------------------------


def test_truncated_images_are_not_tolerated_globally():
    # Everything below relies on Pillow refusing truncated files; nothing may switch that off.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_random_bytes(tmp_path: Path):
    data = random.Random(0).randbytes(4096)
    with pytest.raises(NotAnImageError):
        load_rgb_image(data)
    path = tmp_path / "noise.jpg"
    path.write_bytes(data)
    with pytest.raises(NotAnImageError):
        load_rgb_image(path)


def test_empty_file_and_empty_bytes(tmp_path: Path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(NotAnImageError):
        load_rgb_image(path)
    with pytest.raises(NotAnImageError):
        load_rgb_image(b"")
    with pytest.raises(NotAnImageError):
        load_rgb_image(str(path))


def test_missing_file(tmp_path: Path):
    with pytest.raises(NotAnImageError):
        load_rgb_image(tmp_path / "nope.jpg")


def test_text_file_renamed_jpg(tmp_path: Path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are my holiday notes, not a photo\n" * 20)
    with pytest.raises(NotAnImageError) as info:
        load_rgb_image(path)
    assert "notes" not in str(info.value)  # the message is about the file, never its content


@pytest.mark.parametrize("fraction", [0.5, 0.1])
def test_truncated_jpeg(tmp_path: Path, face_photo: Path, fraction: float):
    data = face_photo.read_bytes()
    cut = data[: int(len(data) * fraction)]
    Image.open(io.BytesIO(cut))  # the header alone still opens: only decoding can tell
    with pytest.raises(NotAnImageError):
        load_rgb_image(cut)
    path = tmp_path / "cut.jpg"
    path.write_bytes(cut)
    with pytest.raises(NotAnImageError):
        load_rgb_image(path)


def test_huge_image_refused_before_decoding(huge_png: Path, monkeypatch: pytest.MonkeyPatch):
    assert huge_png.stat().st_size < 2_000_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(huge_png) as probe:
            assert probe.size == (12000, 12000)

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the pixels of a too-large image were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageTooLargeError) as info:
        load_rgb_image(huge_png)
    assert "12000x12000" in str(info.value)
    with pytest.raises(ImageTooLargeError):
        load_rgb_image(huge_png.read_bytes())


def test_huge_image_peak_memory_stays_small(huge_png: Path):
    # In a fresh process so the peak RSS is this call's own (the test process has held far more).
    code = textwrap.dedent(f"""
        import resource, sys
        from lookalike.errors import ImageTooLargeError
        from lookalike.images import load_rgb_image
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            load_rgb_image({str(huge_png)!r})
        except ImageTooLargeError:
            pass
        else:
            sys.exit("no ImageTooLargeError")
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    growth_mb = int(done.stdout.strip().splitlines()[-1])
    # Decoding would need 144 MB for the greyscale pixels alone (432+ MB as RGB).
    assert growth_mb < 64, f"peak RSS grew by {growth_mb} MB"


def test_limit_is_configurable(face_photo: Path):
    with Image.open(face_photo) as probe:
        pixels = probe.width * probe.height
    load_rgb_image(face_photo, max_pixels=pixels)
    with pytest.raises(ImageTooLargeError):
        load_rgb_image(face_photo, max_pixels=pixels - 1)


def test_errors_are_lookalike_errors_with_reasons():
    with pytest.raises(LookalikeError) as info:
        load_rgb_image(b"not an image")
    assert info.value.reason == "not_an_image"
    assert ImageTooLargeError.reason == "image_too_large"


# -- modes ----------------------------------------------------------------------------------------


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def _rgb_at(image: Image.Image, xy: tuple[int, int]) -> np.ndarray:
    return np.asarray(image, dtype=np.int32)[xy[1], xy[0]]


def test_grayscale(tmp_path: Path):
    source = Image.new("L", (64, 48), 90)
    out = load_rgb_image(_save(source, tmp_path / "gray.png"))
    assert out.mode == "RGB" and out.size == (64, 48)
    assert np.array_equal(_rgb_at(out, (10, 10)), [90, 90, 90])


def test_one_bit(tmp_path: Path):
    source = Image.new("1", (40, 30), 1)
    out = load_rgb_image(_save(source, tmp_path / "bits.png"))
    assert out.mode == "RGB" and out.size == (40, 30)
    assert np.array_equal(_rgb_at(out, (5, 5)), [255, 255, 255])


def test_rgba_transparent_becomes_white(tmp_path: Path):
    pixels = np.zeros((40, 60, 4), np.uint8)
    pixels[:, :30] = (200, 0, 0, 255)  # opaque red on the left
    pixels[:, 30:] = (0, 0, 0, 0)  # fully transparent (black underneath) on the right
    out = load_rgb_image(_save(Image.fromarray(pixels, "RGBA"), tmp_path / "alpha.png"))
    assert out.mode == "RGB" and out.size == (60, 40)
    assert np.array_equal(_rgb_at(out, (5, 5)), [200, 0, 0])
    assert np.array_equal(_rgb_at(out, (50, 5)), [255, 255, 255])


def test_palette(tmp_path: Path):
    source = Image.new("RGB", (50, 30), (0, 0, 0))
    source.paste((10, 200, 30), (0, 0, 25, 30))
    palette = source.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert palette.mode == "P"
    out = load_rgb_image(_save(palette, tmp_path / "palette.png"))
    assert out.mode == "RGB" and out.size == (50, 30)
    assert np.abs(_rgb_at(out, (5, 5)) - [10, 200, 30]).max() <= 2
    assert np.abs(_rgb_at(out, (45, 5)) - [0, 0, 0]).max() <= 2


def test_palette_with_transparency_becomes_white(tmp_path: Path):
    image = Image.new("P", (20, 20), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    image.paste(1, (0, 0, 10, 20))
    path = _save(image, tmp_path / "ptrans.png", transparency=0)
    out = load_rgb_image(path)
    assert np.array_equal(_rgb_at(out, (2, 2)), [255, 0, 0])
    assert np.array_equal(_rgb_at(out, (15, 2)), [255, 255, 255])


def test_cmyk_jpeg(tmp_path: Path):
    source = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # pure red in CMYK
    path = _save(source, tmp_path / "cmyk.jpg", quality=95)
    with Image.open(path) as probe:
        assert probe.mode == "CMYK"
    out = load_rgb_image(path)
    assert out.mode == "RGB" and out.size == (64, 64)
    r, g, b = _rgb_at(out, (32, 32))
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_grayscale_png_is_scaled_not_white(tmp_path: Path):
    pixels = np.full((30, 40), 32768, np.uint16)
    pixels[:, :10] = 65535
    pixels[:, 30:] = 0
    path = _save(Image.fromarray(pixels), tmp_path / "sixteen.png")
    with Image.open(path) as probe:
        assert probe.mode.startswith("I")
    out = load_rgb_image(path)
    assert out.mode == "RGB" and out.size == (40, 30)
    mid = _rgb_at(out, (20, 15))
    assert np.all(np.abs(mid - 128) <= 2), mid
    assert np.array_equal(_rgb_at(out, (2, 15)), [255, 255, 255])
    assert np.array_equal(_rgb_at(out, (35, 15)), [0, 0, 0])


def test_animated_gif_first_frame(tmp_path: Path):
    frames = [Image.new("RGB", (32, 24), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as probe:
        assert probe.n_frames == 3  # type: ignore[attr-defined]
    out = load_rgb_image(path)
    assert out.mode == "RGB" and out.size == (32, 24)
    r, g, b = _rgb_at(out, (16, 12))
    assert r > 200 and g < 50 and b < 50


def test_arrays_and_pil_images_pass(face_photo: Path):
    rgb = load_rgb_image(face_photo)
    array = np.asarray(rgb)
    assert load_rgb_image(array).size == rgb.size
    assert load_rgb_image(rgb.convert("L")).mode == "RGB"
    assert np.array_equal(np.asarray(load_rgb_image(array.astype(np.float32) / 255.0)), array)
    with pytest.raises(NotAnImageError):
        load_rgb_image(np.zeros((0, 0, 3), np.uint8))


# -- EXIF orientation -----------------------------------------------------------------------------


def test_exif_rotated_photo_is_upright(tmp_path: Path):
    path = rotated_copy(MULTIFACE, tmp_path / "rotated.jpg")
    with Image.open(path) as stored:
        assert stored.size == (630, 1200)  # stored sideways
        assert stored.getexif()[ORIENTATION] == 6
    upright = load_rgb_image(path)
    assert upright.size == (1200, 630)
    original = np.asarray(Image.open(MULTIFACE).convert("RGB"), np.float32)
    assert np.abs(np.asarray(upright, np.float32) - original).mean() < 6  # same picture, not mirrored
    assert load_rgb_image(path.read_bytes()).size == (1200, 630)


def test_exif_rotated_photo_faces_match_original(tmp_path: Path, pipeline):
    path = rotated_copy(MULTIFACE, tmp_path / "rotated.jpg")
    expected = pipeline.faces(MULTIFACE)
    found = pipeline.faces(path)
    assert len(found) == len(expected) == 6
    for face in expected:
        best = max(iou(face.box, other.box) for other in found)
        assert best > 0.8, (face.box, best)
