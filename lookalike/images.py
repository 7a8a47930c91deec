"""Decode untrusted image input into an upright 8-bit RGB ``PIL.Image``.

Everything a user can upload passes through :func:`load_rgb_image` before any model sees it:
the size is checked from the header before the pixels are decoded (decompression bombs), EXIF
orientation is applied (phone photos), and every mode becomes RGB the way a person would expect
(16-bit PNGs scaled rather than clipped to white, transparency over white, CMYK converted, the
first frame of an animation).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lookalike.errors import ImageTooLargeError, NotAnImageError

ImageInput = bytes | str | os.PathLike[str] | Image.Image | np.ndarray
"""What :func:`load_rgb_image` accepts: encoded bytes, a file path, a PIL image or an HxWxC array."""

DEFAULT_MAX_PIXELS = 50_000_000


def load_rgb_image(source: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``source`` into an upright RGB image of at most ``max_pixels`` pixels.

    Raises:
        NotAnImageError: empty input, not an image, or an image that cannot be decoded.
        ImageTooLargeError: more than ``max_pixels`` pixels (checked before decoding).
    """
    image = _open(source)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"The image is {width}x{height} pixels; the limit is {max_pixels / 1e6:g} megapixels, "
            "so please send a smaller photo."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise NotAnImageError("The file could not be decoded as an image (it may be truncated).") from exc
    except Image.DecompressionBombError as exc:  # pragma: no cover - caught by our own check first
        raise ImageTooLargeError("The image is too large to decode safely.") from exc


def _open(source: ImageInput) -> Image.Image:
    """Open without decoding pixels; ``PIL.Image`` and arrays pass through."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise NotAnImageError("The file is empty.")
        stream: object = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        try:
            if path.stat().st_size == 0:
                raise NotAnImageError("The file is empty.")
        except OSError as exc:
            raise NotAnImageError("The file could not be read.") from exc
        stream = path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(stream)  # type: ignore[arg-type]
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError("The image is too large to decode safely.") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise NotAnImageError("The file is not an image that can be read (JPEG, PNG, WebP, GIF, ...).") from exc


def _from_array(array: np.ndarray) -> Image.Image:
    """An HxW or HxWx{1,3,4} array (uint8, or floats in 0..1) as a PIL image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or array.size == 0:
        raise NotAnImageError("The array is not an image (expected HxW, HxWx3 or HxWx4).")
    if array.dtype != np.uint8:
        scale = 255.0 if array.dtype.kind == "f" and float(np.nanmax(array)) <= 1.0 else 1.0
        array = np.clip(np.nan_to_num(array.astype(np.float64)) * scale, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB: high bit depths rescaled, transparency flattened onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(pixels / peak * 255.0, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def encode_jpeg(image: Image.Image, max_side: int = 128, quality: int = 80) -> bytes:
    """A small JPEG of ``image`` (longest side at most ``max_side`` pixels), for thumbnails."""
    thumb = image.convert("RGB")
    thumb.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()
