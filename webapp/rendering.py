"""What the page draws: the photo with numbered boxes, gallery tiles and captions, the details list, the
side-by-side view of your face and a match, and the result card PNG.

Pure PIL and strings (no Gradio): every function here is a plain value in, a plain value out.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import textwrap
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from lookalike.search import FaceMatches, Match, SearchResult

DISPLAY_MAX_SIDE = 1024
"""The boxed photo is shown at most this many pixels on its longest side."""
BOX_COLOURS = ["#ff3b30", "#34c759", "#007aff", "#ff9500", "#af52de", "#00c7be", "#ffcc00", "#ff2d55"]
BIOGRAPHY_CHARS = 300
CARD_SIZE = (800, 480)
CARD_FACE = 300


def draw_faces(image: Image.Image, result: SearchResult, max_side: int = DISPLAY_MAX_SIDE) -> Image.Image:
    """A copy of ``image`` (shrunk to ``max_side``) with each face boxed and numbered 1..n, left to right.

    The boxes are in pixels of ``image``; they are scaled with it.
    """
    scale = min(1.0, max_side / max(image.size))
    out = image.copy() if scale == 1.0 else image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(out)
    line = max(2, round(max(out.size) / 250))
    font = ImageFont.load_default(size=max(14, round(max(out.size) / 30)))
    for number, face in enumerate(result.faces, start=1):
        colour = BOX_COLOURS[(number - 1) % len(BOX_COLOURS)]
        x1, y1, x2, y2 = (v * scale for v in face.face.box)
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=line)
        label = str(number)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        pad = line * 2
        tx, ty = x1, max(0.0, y1 - (bottom - top) - 2 * pad)
        draw.rectangle((tx, ty, tx + right - left + 2 * pad, ty + bottom - top + 2 * pad), fill=colour)
        draw.text((tx + pad - left, ty + pad - top), label, fill="white", font=font)
    return out


def caption(name: str, percent: int) -> str:
    """A gallery tile's caption: ``"Tony Blair — 87 %"`` (the likeness)."""
    return f"{name} — {percent} %"


def shorten(text: str, limit: int = BIOGRAPHY_CHARS) -> str:
    """``text`` on one line, cut at a word to at most ``limit`` characters (``…`` marks a cut)."""
    return textwrap.shorten(" ".join(str(text).split()), width=limit, placeholder=" …")


def biography(match: Match) -> str:
    return shorten(str(match.metadata.get("biography") or "").strip())


@dataclass
class FaceView:
    """What the page shows of one face: gallery tiles, the details list, a status line, and what the
    side-by-side view and the card need (the face crop and the matches)."""

    gallery: list[tuple[Image.Image, str]]
    details: str
    note: str
    crop: Image.Image | None
    matches: list[Match]


def face_view(number: int, face: FaceMatches, filtered: bool = False) -> FaceView:
    """The view of face ``number`` (1-based) of a result."""
    tiles = [(thumbnail(m.thumbnail_jpeg), caption(m.name, m.percent)) for m in face.matches]
    lines = []
    for rank, match in enumerate(face.matches, start=1):
        line = f"{rank}. **{match.name}** — {match.percent} % alike (cosine {match.score:.2f})"
        bio = biography(match)
        if bio:
            line += f"  \n   {bio}"
        lines.append(line)
    if not face.searched:
        note = (f"Face {number} is not clear enough to search (detection {face.face.probability:.0%}): "
                "try a sharper, front-facing photo.")
    elif not face.matches:
        note = (f"Nobody in the index matches these filters for face {number}: choose a wider filter."
                if filtered else f"No match for face {number}.")
    elif face.no_close_match:
        note = (f"No close match for face {number}: nobody in the index looks much like it (the nearest, "
                f"{face.matches[0].name}, is {face.matches[0].percent} % alike).")
    else:
        note = ""
    details = (f"> **{note}**\n\n" if note else "") + "\n".join(lines)
    return FaceView(tiles, details, note, getattr(face.face, "crop", None), list(face.matches))


def thumbnail(jpeg: bytes | None) -> Image.Image:
    if jpeg:
        try:
            return Image.open(io.BytesIO(jpeg)).convert("RGB")
        except Exception:  # a damaged thumbnail must not break the gallery
            pass
    return Image.new("RGB", (128, 128), (200, 200, 200))


@functools.lru_cache(maxsize=32)  # a few sizes; loading the font each time cost more than drawing
def _font(size: int) -> Any:
    return ImageFont.load_default(size=size)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, width: int, size: int) -> tuple[str, Any]:
    """``text`` in the largest font up to ``size`` that fits ``width`` pixels (cut with … at 16 px)."""
    while size > 16 and draw.textlength(text, font=_font(size)) > width:
        size -= 2
    font = _font(size)
    while draw.textlength(text, font=font) > width and len(text) > 2:
        text = text[:-2] + "…"
    return text, font


CARD_TOP, CARD_GAP = 70, 40
CARD_LEFT = (CARD_SIZE[0] - 2 * CARD_FACE - CARD_GAP) // 2
"""Where your face goes on the card: ``CARD_LEFT``, ``CARD_TOP``, ``CARD_FACE`` pixels square."""


def result_card(crop: Image.Image | None, match: Match) -> bytes:
    """The result card as PNG bytes: your face beside the match's face, the name and the likeness. Without
    ``crop`` (private mode: the server never had your face) its place is left blank for the page to fill, and
    the card is a JPEG draft: the page draws your face on it and makes the PNG itself, so the server spares
    the PNG's encoding.

    Rendered in memory on demand; nothing is written to disk.
    """
    card = Image.new("RGB", CARD_SIZE, (24, 24, 38))
    draw = ImageDraw.Draw(card)
    top = CARD_TOP
    yours = crop.convert("RGB") if crop is not None else Image.new("RGB", (CARD_FACE, CARD_FACE), (60, 60, 80))
    for i, picture in enumerate((yours, thumbnail(match.thumbnail_jpeg))):
        x = CARD_LEFT + i * (CARD_FACE + CARD_GAP)
        card.paste(picture.resize((CARD_FACE, CARD_FACE), Image.Resampling.BICUBIC), (x, top))
        label = "You" if i == 0 else match.name
        text, font = _fit_text(draw, label, CARD_FACE, 28)
        draw.text((x + CARD_FACE / 2, top - 12), text, fill="white", font=font, anchor="ms")
    headline = f"{match.percent} % alike"
    draw.text((CARD_SIZE[0] / 2, top + CARD_FACE + 58), headline, fill=(255, 214, 102), font=_font(44), anchor="ms")
    draw.text((CARD_SIZE[0] / 2, CARD_SIZE[1] - 12), "Celebrity look-alike", fill=(150, 150, 170), font=_font(18),
              anchor="ms")
    buffer = io.BytesIO()
    if crop is None:
        card.save(buffer, format="JPEG", quality=92)
    else:
        card.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def compare_html(crop: Image.Image | None, match: Match | None, face_number: int = 1) -> str:
    """The side-by-side view: the result card (your face beside the match's, name, likeness), the match's
    biography, and a link that saves the card. The PNG travels inside the page as a ``data:`` URL: no file
    on the server, no address that could be shared or fetched again. Without ``crop`` (private mode) the
    card says where your face goes (``data-face``, ``data-slot``: x, y, side) and the page draws it there."""
    if match is None:
        return ""
    png = base64.b64encode(result_card(crop, match)).decode("ascii")
    kind = "png" if crop is not None else "jpeg"
    name = html.escape(match.name)
    bio = html.escape(biography(match))
    slug = "".join(c if c.isalnum() else "-" for c in match.person_id or match.name).strip("-") or "match"
    slot = "" if crop is not None else f' data-face="{face_number}" data-slot="{CARD_LEFT},{CARD_TOP},{CARD_FACE}"'
    return (
        '<div class="compare">'
        f'<img class="card" alt="Your face {face_number} beside {name}: {match.percent} % alike"{slot} '
        f'src="data:image/{kind};base64,{png}">'
        f'<p class="who"><b>{name}</b> — {match.percent} % alike (cosine {match.score:.2f})</p>'
        + (f'<p class="bio">{bio}</p>' if bio else "")
        + f'<a class="save-card" download="lookalike-{html.escape(slug)}.png" href="data:image/{kind};base64,{png}">'
        "Save this card (PNG)</a>"
        "</div>"
    )
