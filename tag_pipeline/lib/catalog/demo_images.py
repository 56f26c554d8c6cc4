"""The demo shop's product pictures: a colour fill, the pattern and the category's glyph.

Each picture is drawn with Pillow from a row's category, colour and pattern, so the image
and the tags agree; broken rows get the defect their image state names (no file, bytes
that do not decode, an 8x8 thumbnail).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tag_pipeline.lib.catalog import demo_shop as shop
from tag_pipeline.lib.catalog.demo_files import atomic_write_bytes

# What a row's image is: drawn, absent, a missing file, corrupt bytes, 8x8 pixels.
IMG_OK, IMG_NONE, IMG_MISSING, IMG_CORRUPT, IMG_SMALL = range(5)


def _contrast(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (25, 25, 25) if luminance > 140 else (240, 240, 240)


def _glyphs() -> dict[str, Callable[[ImageDraw.ImageDraw, tuple[int, int, int]], None]]:
    def poly(points: list[tuple[int, int]]) -> Callable[..., None]:
        return lambda d, fg: d.polygon(points, outline=fg, width=2)

    def shirt(d: ImageDraw.ImageDraw, fg: tuple[int, int, int]) -> None:
        d.rectangle((18, 12, 46, 52), outline=fg, width=2)
        d.line([(26, 12), (32, 20), (38, 12)], fill=fg, width=2)
        d.line([(32, 20), (32, 52)], fill=fg, width=2)

    def watch(d: ImageDraw.ImageDraw, fg: tuple[int, int, int]) -> None:
        d.rectangle((26, 6, 38, 20), outline=fg, width=2)
        d.rectangle((26, 44, 38, 58), outline=fg, width=2)
        d.ellipse((20, 20, 44, 44), outline=fg, width=2)

    def bag(d: ImageDraw.ImageDraw, fg: tuple[int, int, int]) -> None:
        d.rectangle((14, 28, 50, 52), outline=fg, width=2)
        d.arc((22, 14, 42, 40), 180, 360, fill=fg, width=2)

    def headphones(d: ImageDraw.ImageDraw, fg: tuple[int, int, int]) -> None:
        d.arc((14, 12, 50, 48), 180, 360, fill=fg, width=2)
        d.rectangle((11, 30, 20, 46), outline=fg, width=2)
        d.rectangle((44, 30, 53, 46), outline=fg, width=2)

    def phone(d: ImageDraw.ImageDraw, fg: tuple[int, int, int]) -> None:
        d.rounded_rectangle((22, 8, 42, 56), radius=5, outline=fg, width=2)
        d.ellipse((26, 12, 31, 17), outline=fg, width=1)

    def bedding(d: ImageDraw.ImageDraw, fg: tuple[int, int, int]) -> None:
        d.rectangle((8, 18, 56, 46), outline=fg, width=2)
        d.line([(8, 26), (56, 26)], fill=fg, width=2)

    def mug(d: ImageDraw.ImageDraw, fg: tuple[int, int, int]) -> None:
        d.rectangle((16, 18, 40, 50), outline=fg, width=2)
        d.arc((32, 24, 50, 42), 270, 90, fill=fg, width=2)

    def jar(d: ImageDraw.ImageDraw, fg: tuple[int, int, int]) -> None:
        d.rectangle((18, 20, 46, 28), outline=fg, width=2)
        d.rectangle((14, 28, 50, 50), outline=fg, width=2)

    def scarf(d: ImageDraw.ImageDraw, fg: tuple[int, int, int]) -> None:
        d.polygon([(10, 16), (54, 12), (54, 22), (10, 26)], outline=fg, width=2)
        d.rectangle((38, 22, 46, 54), outline=fg, width=2)

    return {
        "tshirt": poly([(20, 14), (44, 14), (54, 24), (47, 30), (44, 27), (44, 52), (20, 52),
                        (20, 27), (17, 30), (10, 24)]),
        "shirt": shirt,
        "dress": poly([(26, 10), (38, 10), (50, 54), (14, 54)]),
        "trousers": poly([(20, 10), (44, 10), (46, 54), (35, 54), (32, 26), (29, 54),
                          (18, 54)]),
        "shoe": poly([(10, 48), (10, 28), (22, 28), (30, 36), (54, 40), (54, 48)]),
        "boot": poly([(18, 10), (32, 10), (32, 38), (52, 42), (52, 52), (18, 52)]),
        "watch": watch, "bag": bag, "headphones": headphones, "phone": phone,
        "bedding": bedding, "mug": mug, "jar": jar, "scarf": scarf,
    }


_GLYPHS = _glyphs()


def draw_image(cat: int, color: int, pattern: int, offset: int) -> Image.Image:
    """A 64x64 product picture: colour fill, the pattern, the category's outline glyph.

    The pattern covers at most a third of the picture, so the product colour stays dominant.
    """
    rgb = shop.COLORS[shop.COLOR_NAMES[color]][1]
    fg = _contrast(rgb)
    img = Image.new("RGB", (shop.IMAGE_PX, shop.IMAGE_PX), rgb)
    draw = ImageDraw.Draw(img)
    name = shop.PATTERN_NAMES[pattern]
    if name == "Striped":
        for y in range(0, shop.IMAGE_PX, 8):
            draw.rectangle((0, y, shop.IMAGE_PX - 1, y + 1), fill=fg)
    elif name == "Checked":
        for v in range(0, shop.IMAGE_PX, 12):
            draw.rectangle((0, v, shop.IMAGE_PX - 1, v + 1), fill=fg)
            draw.rectangle((v, 0, v + 1, shop.IMAGE_PX - 1), fill=fg)
    elif name == "Printed":
        for j, y in enumerate(range(5 + offset % 4, shop.IMAGE_PX, 14)):
            for x in range(5 + (j % 2) * 7, shop.IMAGE_PX, 14):
                draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=fg)
    _GLYPHS[shop.CATEGORIES[cat].glyph](draw, fg)
    return img


def png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def _corrupt_bytes(rng: np.random.Generator, variant: int) -> bytes:
    """Bytes a broken download leaves behind: an error page, or a PNG signature and noise."""
    head = (b"<html><body><h1>502 Bad Gateway</h1></body></html>\n" if variant % 2 == 0
            else b"\x89PNG\r\n\x1a\n")
    return head + rng.bytes(256)


def write_image(path: Path, state: int, cat: int, color: int, pattern: int, offset: int,
                 rng: np.random.Generator) -> None:
    if state == IMG_MISSING:
        path.unlink(missing_ok=True)  # a file left by an earlier run would hide the defect
        return
    if state == IMG_CORRUPT:
        atomic_write_bytes(path, _corrupt_bytes(rng, offset))
        return
    img = draw_image(cat, color, pattern, offset)
    if state == IMG_SMALL:
        img = img.resize((shop.SMALL_IMAGE_PX, shop.SMALL_IMAGE_PX), Image.Resampling.NEAREST)
    atomic_write_bytes(path, png_bytes(img))


