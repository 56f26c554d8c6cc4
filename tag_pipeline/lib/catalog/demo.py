"""A deterministic, bilingual demo shop: landing files shaped like a real catalog export.

Two writers share one vocabulary and one vectorised row builder:

* :func:`generate_demo_catalog` writes a small export (a CSV snapshot, a later JSON Lines
  delta and one Pillow-drawn image per product) with realistic, counted defects.
* :func:`write_scaled_catalog` writes the same columns at benchmark scale, chunk by chunk.

Every value comes from a seeded ``numpy`` generator, so the same arguments give byte-identical
files. Each file is written under a temporary name in its folder and moved into place with
``os.replace``, so a reader never sees a half-written file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np
import polars as pl
from PIL import Image, ImageDraw

COLUMNS: tuple[str, ...] = (
    "sku", "title", "description", "image", "category_path", "attributes", "occasions",
    "price", "updated_at",
)
SNAPSHOT_FILE = "products_2026-11-01.csv"
DELTA_FILE = "products_2026-11-15.jsonl"
SCALED_FILE = "products_2026-12-01.csv"
IMAGE_DIR = "images"
IMAGE_PX = 64
SMALL_IMAGE_PX = 8
CATEGORY_SEPARATOR = " > "
ATTRIBUTE_SEPARATOR = "; "
OCCASION_SEPARATOR = "|"
# Percent of products whose title does not name the colour (the photo still shows it).
_COLOR_UNNAMED_PERCENT = 25

# English canonical name -> (Chinese word, RGB the images are painted with).
COLORS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "Black": ("黑色", (20, 20, 20)),
    "White": ("白色", (245, 245, 245)),
    "Blue": ("蓝色", (30, 70, 200)),
    "Red": ("红色", (200, 30, 30)),
    "Grey": ("灰色", (128, 128, 128)),
    "Pink": ("粉色", (240, 130, 170)),
    "Green": ("绿色", (30, 150, 60)),
    "Brown": ("棕色", (120, 70, 30)),
    "Yellow": ("黄色", (240, 200, 30)),
}
COLOR_RGB: dict[str, tuple[int, int, int]] = {name: rgb for name, (_, rgb) in COLORS.items()}
# The pattern drawn on the image; always named in the title and the description.
PATTERNS: dict[str, str] = {
    "Solid": "纯色", "Striped": "条纹", "Checked": "格子", "Printed": "印花",
}
# Further style words; with PATTERNS they form the style lexicon mined from the text.
STYLES: dict[str, str] = {
    "Slim Fit": "修身", "Fashionable": "时尚", "Comfortable": "舒适", "Luxury": "奢华",
    "Casual": "休闲",
}
OCCASIONS: dict[str, str] = {
    "Spring": "春季", "Summer": "夏季", "Autumn": "秋季", "Winter": "冬季", "Sport": "运动",
    "Formal": "正式", "Party": "派对", "Casual": "休闲", "Office": "办公", "Travel": "旅行",
    "Holiday Sale": "节日大促",
}
MATERIALS: dict[str, str] = {
    "Cotton": "纯棉", "Polyester": "涤纶", "Linen": "亚麻", "Modal": "莫代尔", "Silk": "真丝",
    "Chiffon": "雪纺", "Denim": "牛仔布", "Mesh": "网面", "Canvas": "帆布", "Leather": "真皮",
    "Suede": "麂皮", "Stainless Steel": "不锈钢", "Silicone": "硅胶", "Nylon": "尼龙",
    "Plastic": "塑料", "Aluminum": "铝合金", "Ceramic": "陶瓷", "Glass": "玻璃", "Wool": "羊毛",
    "Cashmere": "羊绒",
}
GENDERS: tuple[str, ...] = ("Men", "Women", "Unisex")

# Defect rates, as shares of the products drawn (superseded: of the snapshot's products).
SNAPSHOT_SHARE = 0.60
SUPERSEDED_RATE = 0.03
HTML_RATE = 0.10
FULLWIDTH_RATE = 0.03
EMPTY_TITLE_RATE = 0.01
MISSING_ID_RATE = 0.005
NO_IMAGE_RATE = 0.25
MISSING_IMAGE_FILE_RATE = 0.02
CORRUPT_IMAGE_RATE = 0.01
SMALL_IMAGE_RATE = 0.005

_APPAREL_SIZES = {"XS": 0.08, "S": 0.18, "M": 0.28, "L": 0.25, "XL": 0.14, "XXL": 0.07}
_SHOE_SIZES = {str(s): w for s, w in zip(range(36, 46), (1, 3, 5, 7, 8, 8, 7, 5, 3, 1),
                                         strict=True)}
_G_ADULT = {"Men": 0.4, "Women": 0.45, "Unisex": 0.15}
_P_APPAREL = (0.40, 0.20, 0.15, 0.25)  # Solid, Striped, Checked, Printed
_P_MOSTLY_SOLID = (0.75, 0.05, 0.0, 0.20)


@dataclass(frozen=True)
class _Category:
    path: str
    weight: float
    nouns_en: tuple[str, ...]
    nouns_zh: tuple[str, ...]
    glyph: str
    materials: tuple[str, ...]
    genders: dict[str, float]
    sizes: dict[str, float]
    patterns: tuple[float, float, float, float]
    styles: dict[str, float]
    occasions: dict[str, float]
    price_cny: tuple[int, int]
    brands: tuple[str, ...]


# Weights give a long tail: T-shirts are common, scarves and mugs rare.
_CATEGORIES: tuple[_Category, ...] = (
    _Category("Apparel > Tops > T-Shirts", 0.20, ("T-Shirt", "Tee"), ("T恤", "短袖T恤"),
              "tshirt", ("Cotton", "Polyester", "Linen", "Modal"), _G_ADULT, _APPAREL_SIZES,
              _P_APPAREL, {"Slim Fit": 0.25, "Comfortable": 0.35, "Casual": 0.3},
              {"Spring": 0.3, "Summer": 0.7, "Sport": 0.3, "Casual": 0.6, "Travel": 0.15},
              (39, 299), ("Uniqlo", "Zara", "Peacebird")),
    _Category("Apparel > Tops > Shirts", 0.12, ("Shirt", "Button-Down Shirt"), ("衬衫",),
              "shirt", ("Cotton", "Linen", "Silk", "Polyester"), _G_ADULT, _APPAREL_SIZES,
              _P_APPAREL, {"Slim Fit": 0.35, "Luxury": 0.05},
              {"Spring": 0.4, "Autumn": 0.4, "Formal": 0.6, "Office": 0.7, "Party": 0.1},
              (99, 599), ("Uniqlo", "Zara", "Youngor")),
    _Category("Apparel > Dresses > Dresses", 0.12, ("Dress", "Midi Dress"), ("连衣裙",),
              "dress", ("Cotton", "Silk", "Chiffon", "Polyester", "Linen"), {"Women": 1.0},
              _APPAREL_SIZES, _P_APPAREL, {"Slim Fit": 0.2, "Fashionable": 0.35},
              {"Spring": 0.3, "Summer": 0.6, "Party": 0.55, "Casual": 0.3,
               "Holiday Sale": 0.15}, (129, 1299), ("Zara", "Ochirly", "Peacebird")),
    _Category("Apparel > Bottoms > Jeans", 0.09, ("Jeans",), ("牛仔裤",), "trousers",
              ("Denim",), _G_ADULT, _APPAREL_SIZES, (0.7, 0.1, 0.0, 0.2),
              {"Slim Fit": 0.35, "Casual": 0.3},
              {"Spring": 0.3, "Autumn": 0.5, "Casual": 0.8, "Travel": 0.2}, (99, 799),
              ("Levi's", "Uniqlo", "Lee")),
    _Category("Footwear > Sneakers > Running Shoes", 0.11, ("Running Shoes", "Running Sneakers"),
              ("跑鞋", "运动鞋"), "shoe", ("Mesh", "Canvas", "Leather"), _G_ADULT, _SHOE_SIZES,
              (0.6, 0.2, 0.0, 0.2), {"Comfortable": 0.4, "Casual": 0.2},
              {"Summer": 0.2, "Sport": 0.9, "Casual": 0.4, "Travel": 0.2}, (199, 1499),
              ("Nike", "Adidas", "Li-Ning", "Anta")),
    _Category("Footwear > Boots > Ankle Boots", 0.04, ("Ankle Boots",), ("短靴", "马丁靴"),
              "boot", ("Leather", "Suede"), _G_ADULT, _SHOE_SIZES, (0.85, 0.0, 0.1, 0.05),
              {"Fashionable": 0.3, "Luxury": 0.1},
              {"Autumn": 0.6, "Winter": 0.8, "Casual": 0.5, "Travel": 0.3}, (299, 1999),
              ("Dr. Martens", "Clarks", "Belle")),
    _Category("Accessories > Watches > Watches", 0.06, ("Watch", "Wristwatch"), ("手表", "腕表"),
              "watch", ("Stainless Steel", "Leather", "Silicone"), _G_ADULT, {},
              (0.9, 0.0, 0.0, 0.1), {"Luxury": 0.35},
              {"Formal": 0.6, "Office": 0.5, "Party": 0.3, "Sport": 0.1}, (299, 9999),
              ("Casio", "Fossil", "Tissot")),
    _Category("Accessories > Bags > Handbags", 0.07, ("Handbag", "Tote Bag"), ("手提包", "托特包"),
              "bag", ("Leather", "Canvas", "Nylon"), {"Women": 0.8, "Unisex": 0.2}, {},
              (0.5, 0.15, 0.15, 0.2), {"Luxury": 0.3},
              {"Office": 0.4, "Party": 0.4, "Travel": 0.3, "Casual": 0.3}, (199, 4999),
              ("Coach", "Samsonite", "Michael Kors")),
    _Category("Electronics > Audio > Headphones", 0.08, ("Headphones", "Over-Ear Headphones"),
              ("耳机", "头戴式耳机"), "headphones", ("Plastic", "Aluminum"),
              {"Unisex": 0.6}, {}, _P_MOSTLY_SOLID, {"Comfortable": 0.3},
              {"Sport": 0.4, "Travel": 0.5, "Office": 0.4}, (99, 2999),
              ("Sony", "Xiaomi", "Anker", "Huawei")),
    _Category("Electronics > Phone Accessories > Phone Cases", 0.05, ("Phone Case",),
              ("手机壳",), "phone", ("Silicone", "Plastic", "Leather"), {"Unisex": 0.5}, {},
              _P_MOSTLY_SOLID, {"Fashionable": 0.3},
              {"Casual": 0.5, "Travel": 0.2}, (19, 199), ("Anker", "Spigen", "Xiaomi")),
    _Category("Home > Bedding > Duvet Covers", 0.03, ("Duvet Cover", "Bedding Set"),
              ("被套", "四件套"), "bedding", ("Cotton", "Silk", "Linen"), {}, {}, _P_APPAREL,
              {"Comfortable": 0.5, "Luxury": 0.1},
              {"Autumn": 0.3, "Winter": 0.5, "Holiday Sale": 0.15}, (199, 1599),
              ("Muji", "IKEA", "Fuanna")),
    _Category("Home > Kitchen > Mugs", 0.015, ("Mug", "Coffee Mug"), ("马克杯",), "mug",
              ("Ceramic", "Glass"), {}, {}, (0.5, 0.2, 0.0, 0.3), {},
              {"Office": 0.6, "Casual": 0.3, "Holiday Sale": 0.2}, (19, 129),
              ("Muji", "IKEA")),
    _Category("Beauty > Skincare > Face Creams", 0.02, ("Face Cream", "Moisturizer"),
              ("面霜", "保湿霜"), "jar", (), {"Women": 0.7, "Unisex": 0.3}, {},
              (0.9, 0.0, 0.0, 0.1), {"Luxury": 0.25},
              {"Autumn": 0.3, "Winter": 0.3, "Travel": 0.2, "Holiday Sale": 0.2}, (89, 1999),
              ("L'Oréal", "Estée Lauder", "Proya")),
    _Category("Accessories > Scarves > Scarves", 0.01, ("Scarf",), ("围巾",), "scarf",
              ("Wool", "Cashmere", "Silk"), {"Women": 0.6, "Unisex": 0.4}, {}, _P_APPAREL,
              {"Luxury": 0.3, "Comfortable": 0.2},
              {"Autumn": 0.6, "Winter": 0.8, "Casual": 0.3, "Formal": 0.2}, (59, 1599),
              ("Uniqlo", "Burberry")),
)
_COLOR_WEIGHTS = (0.20, 0.16, 0.14, 0.10, 0.10, 0.08, 0.08, 0.07, 0.07)
_DEFAULT_STYLE_P = {"Fashionable": 0.2, "Comfortable": 0.15, "Casual": 0.1, "Luxury": 0.03}
_DEFAULT_OCCASION_P = {"Holiday Sale": 0.08}
# Price formats: ¥199.00, 199元, RMB 1,299, $29.99, USD 45, ￥２９９, empty.
_PRICE_FORMAT_WEIGHTS = (0.35, 0.18, 0.14, 0.10, 0.06, 0.07, 0.10)
_PRICE_EMPTY = 6
_CNY_PER_USD = 7.2
_TITLE_MODE_WEIGHTS = (0.40, 0.35, 0.25)  # Chinese only, English only, mixed
_DESC_MODE_WEIGHTS = (0.30, 0.40, 0.30)  # English, Chinese, both
_ZH_PREFIXES = ("", "【包邮】", "【正品】", "【热卖】")
_EMPTY_TITLES = ("", "   ", "<br>")
_NEWER_SUFFIX = (" 新款", " New Arrival", " 新款")  # by title mode
_WAREHOUSES = 5

_T_START = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp())
_T_SNAPSHOT = int(datetime(2026, 11, 1, 8, tzinfo=UTC).timestamp())
_T_DELTA = int(datetime(2026, 11, 15, 8, tzinfo=UTC).timestamp())

# Image states.
_IMG_OK, _IMG_NONE, _IMG_MISSING, _IMG_CORRUPT, _IMG_SMALL = range(5)
# Title defects.
_TITLE_OK, _TITLE_EMPTY, _TITLE_FULLWIDTH = range(3)

_ASCII = [chr(c) for c in range(0x21, 0x7F)]
_FULLWIDTH = [chr(c + 0xFEE0) for c in range(0x21, 0x7F)]
_FULLWIDTH_DIGITS = [chr(0xFF10 + d) for d in range(10)]


def _to_fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if 0x21 <= ord(c) <= 0x7E else c for c in text)


def _normalised(rows: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float64)
    return matrix / matrix.sum(axis=1, keepdims=True)


_COLOR_NAMES = tuple(COLORS)
_PATTERN_NAMES = tuple(PATTERNS)
_STYLE_NAMES = tuple(STYLES)
_OCCASION_NAMES = tuple(OCCASIONS)
_MATERIAL_NAMES = ("",) + tuple(MATERIALS)
_GENDER_NAMES = ("",) + GENDERS
_SIZE_NAMES = ("",) + tuple(_APPAREL_SIZES) + tuple(_SHOE_SIZES)
_CAT_P = np.array([c.weight for c in _CATEGORIES]) / sum(c.weight for c in _CATEGORIES)
_COLOR_P = np.array(_COLOR_WEIGHTS) / sum(_COLOR_WEIGHTS)
_PATTERN_P = _normalised([list(c.patterns) for c in _CATEGORIES])
_MATERIAL_P = _normalised([
    [1.0 if (m in c.materials or (m == "" and not c.materials)) else 0.0
     for m in _MATERIAL_NAMES] for c in _CATEGORIES
])
_GENDER_P = _normalised([
    [c.genders.get(g, 0.0) if g else max(0.0, 1.0 - sum(c.genders.values()))
     for g in _GENDER_NAMES] for c in _CATEGORIES
])
_SIZE_P = _normalised([
    [c.sizes.get(s, 0.0) if s else float(not c.sizes) for s in _SIZE_NAMES]
    for c in _CATEGORIES
])
_STYLE_P = np.array([[c.styles.get(s, _DEFAULT_STYLE_P.get(s, 0.0)) for s in _STYLE_NAMES]
                     for c in _CATEGORIES])
_OCCASION_P = np.array([[c.occasions.get(o, _DEFAULT_OCCASION_P.get(o, 0.0))
                         for o in _OCCASION_NAMES] for c in _CATEGORIES])
_PRICE_LOG_LO = np.log([c.price_cny[0] for c in _CATEGORIES])
_PRICE_LOG_HI = np.log([c.price_cny[1] for c in _CATEGORIES])


def _padded(lists: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray, int]:
    """Flatten per-category word lists; entry (cat, k) sits at ``cat * width + k``."""
    width = max(len(words) for words in lists)
    flat = [words[k] if k < len(words) else "" for words in lists for k in range(width)]
    return flat, np.array([len(words) for words in lists]), width


_NOUN_EN, _NOUN_EN_N, _NOUN_EN_W = _padded([c.nouns_en for c in _CATEGORIES])
_NOUN_ZH, _NOUN_ZH_N, _NOUN_ZH_W = _padded([c.nouns_zh for c in _CATEGORIES])
_BRAND, _BRAND_N, _BRAND_W = _padded([c.brands for c in _CATEGORIES])


@dataclass(frozen=True)
class DemoManifest:
    """What a catalog writer produced, counted over the data rows as written.

    Every ``n_*`` count is over all rows of all data files (a product written twice, once in
    the snapshot and once as a newer version, is two rows). Image counts are per row: two rows
    naming the same image file both count.

    Attributes:
        files: the data files written (CSV / JSON Lines), in write order.
        n_rows: data rows across ``files``.
        n_products: distinct non-empty ``sku`` values.
        n_superseded: rows for which a later row with the same ``sku`` and a later
            ``updated_at`` exists (that later row has a non-empty title). Such rows never have
            an empty ``sku`` or an empty title, so downstream they are superseded, not rejected.
        n_empty_title: rows whose title is empty, white space only, or only ``<br>``.
        n_missing_id: rows with an empty ``sku``.
        n_html_description: rows whose description holds HTML tags or entities.
        n_fullwidth_title: rows whose title holds full-width ASCII forms (U+FF01..U+FF5E).
        n_missing_image_file: rows whose ``image`` path names a file that does not exist.
        n_corrupt_image: rows whose image file exists but is not a decodable image.
        n_small_image: rows whose image decodes but is only 8x8 pixels.
        n_no_image: rows with an empty ``image``.
        categories: the distinct leaf category paths (``A > B > C``), sorted.
    """

    files: list[Path]
    n_rows: int
    n_products: int
    n_superseded: int
    n_empty_title: int
    n_missing_id: int
    n_html_description: int
    n_fullwidth_title: int
    n_missing_image_file: int
    n_corrupt_image: int
    n_small_image: int
    n_no_image: int
    categories: list[str]


def _sample_rows(rng: np.random.Generator, probs: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """One draw per row from the row's category distribution ``probs[cat]``."""
    cum = np.cumsum(probs, axis=1)
    # Dividing by the row total makes the last cumulative value exactly 1.0, so a zero-weight
    # trailing entry can never be drawn through rounding.
    cum = (cum / cum[:, -1:])[cat]
    return (rng.random(len(cat))[:, None] >= cum).sum(axis=1)


def _pick_in_category(rng: np.random.Generator, counts: np.ndarray, width: int,
                      cat: np.ndarray) -> np.ndarray:
    return cat * width + rng.integers(0, 1 << 30, len(cat)) % counts[cat]


def _round9(cny: np.ndarray) -> np.ndarray:
    """Shop-style prices ending in 9 (199, 1299)."""
    return (np.floor(cny / 10) * 10 + 9).astype(np.int64)


def _count(n: int, rate: float) -> int:
    return int(n * rate + 0.5)


def _choose(rng: np.random.Generator, eligible: np.ndarray, k: int) -> np.ndarray:
    """A mask with ``k`` (or all, if fewer) of the eligible rows set."""
    candidates = np.flatnonzero(eligible)
    chosen = np.zeros(len(eligible), dtype=bool)
    chosen[rng.choice(candidates, size=min(k, len(candidates)), replace=False)] = True
    return chosen


def _draw_products(rng: np.random.Generator, n: int, cat: np.ndarray | None = None,
                   color: np.ndarray | None = None,
                   pattern: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Draw every tag and presentation choice of ``n`` products as index arrays."""
    if cat is None:
        cat = rng.choice(len(_CATEGORIES), size=n, p=_CAT_P)
    if color is None:
        color = rng.choice(len(_COLOR_NAMES), size=n, p=_COLOR_P)
    if pattern is None:
        pattern = _sample_rows(rng, _PATTERN_P, cat)
    styles = rng.random((n, len(_STYLE_NAMES))) < _STYLE_P[cat]
    occasions = rng.random((n, len(_OCCASION_NAMES))) < _OCCASION_P[cat]
    # Every product gets at least its category's most likely occasion.
    bare = np.flatnonzero(~occasions.any(axis=1))
    occasions[bare, _OCCASION_P[cat[bare]].argmax(axis=1)] = True
    log_price = _PRICE_LOG_LO[cat] + rng.random(n) * (_PRICE_LOG_HI[cat] - _PRICE_LOG_LO[cat])
    draws = {
        "_cat": cat, "_color": color, "_pattern": pattern,
        "_material": _sample_rows(rng, _MATERIAL_P, cat),
        "_gender": _sample_rows(rng, _GENDER_P, cat),
        "_size": _sample_rows(rng, _SIZE_P, cat),
        "_warehouse": rng.integers(1, _WAREHOUSES + 1, n),
        "_cny": _round9(np.exp(log_price)),
        "_fmt": rng.choice(len(_PRICE_FORMAT_WEIGHTS), size=n,
                           p=np.array(_PRICE_FORMAT_WEIGHTS) / sum(_PRICE_FORMAT_WEIGHTS)),
        "_tmode": rng.choice(3, size=n, p=_TITLE_MODE_WEIGHTS),
        "_dmode": rng.choice(3, size=n, p=_DESC_MODE_WEIGHTS),
        "_brand": _pick_in_category(rng, _BRAND_N, _BRAND_W, cat),
        "_brand_in_title": rng.random(n) < 0.3,
        "_prefix": np.where(rng.random(n) < 0.2, rng.integers(1, len(_ZH_PREFIXES), n), 0),
        "_noun_en": _pick_in_category(rng, _NOUN_EN_N, _NOUN_EN_W, cat),
        "_noun_zh": _pick_in_category(rng, _NOUN_ZH_N, _NOUN_ZH_W, cat),
        "_empty_kind": rng.integers(0, len(_EMPTY_TITLES), n),
    }
    for j in range(len(_STYLE_NAMES)):
        draws[f"_s{j}"] = styles[:, j]
    for j in range(len(_OCCASION_NAMES)):
        draws[f"_o{j}"] = occasions[:, j]
    return draws


def _lookup(column: str, table: Sequence[str]) -> pl.Expr:
    return pl.col(column).replace_strict(list(range(len(table))), list(table),
                                         return_dtype=pl.String)


def _join_flags(prefix: str, words: Sequence[str], separator: str) -> pl.Expr:
    """The words whose flag column ``<prefix><j>`` is set, joined ("" when none is)."""
    return pl.concat_str([pl.when(pl.col(f"{prefix}{j}")).then(pl.lit(w))
                          for j, w in enumerate(words)], separator=separator, ignore_nulls=True)


def _opt(condition: pl.Expr, *parts: pl.Expr | str) -> pl.Expr:
    """``parts`` concatenated where ``condition`` holds, else the empty string."""
    pieces = [pl.lit(p) if isinstance(p, str) else p for p in parts]
    return pl.when(condition).then(pl.concat_str(pieces)).otherwise(pl.lit(""))


def _price_expr() -> pl.Expr:
    cny = pl.col("_cny")
    text = cny.cast(pl.String)
    usd = (cny.cast(pl.Float64) / _CNY_PER_USD).round(0).cast(pl.Int64).clip(lower_bound=1)
    grouped = (pl.when(cny >= 1000)
               .then(pl.concat_str([(cny // 1000).cast(pl.String), pl.lit(","),
                                    (cny % 1000).cast(pl.String).str.zfill(3)]))
               .otherwise(text))
    fmt = pl.col("_fmt")
    return (pl.when(fmt == 0).then(pl.concat_str([pl.lit("¥"), text, pl.lit(".00")]))
            .when(fmt == 1).then(pl.concat_str([text, pl.lit("元")]))
            .when(fmt == 2).then(pl.concat_str([pl.lit("RMB "), grouped]))
            .when(fmt == 3).then(pl.concat_str([pl.lit("$"), (usd - 1).cast(pl.String),
                                                pl.lit(".99")]))
            .when(fmt == 4).then(pl.concat_str([pl.lit("USD "), usd.cast(pl.String)]))
            .when(fmt == 5).then(pl.concat_str([
                pl.lit("￥"), text.str.replace_many(list("0123456789"), _FULLWIDTH_DIGITS)]))
            .otherwise(pl.lit("")))


def _timestamp_expr() -> pl.Expr:
    return pl.from_epoch(pl.col("_ts"), time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")


def _render(draws: dict[str, np.ndarray], number: np.ndarray, ts: np.ndarray,
            sku_width: int) -> pl.DataFrame:
    """Build the text columns from drawn indices; hidden helper columns start with ``_``."""
    frame = pl.DataFrame({"_n": number, "_ts": ts, **draws})
    has_material = pl.col("_material") != 0
    frame = frame.with_columns(
        _sku=pl.concat_str([pl.lit("SKU-"), pl.col("_n").cast(pl.String).str.zfill(sku_width)]),
        category_path=_lookup("_cat", [c.path for c in _CATEGORIES]),
        _color_en=_lookup("_color", _COLOR_NAMES),
        _color_zh=_lookup("_color", [COLORS[c][0] for c in _COLOR_NAMES]),
        _color_fw=_lookup("_color", [_to_fullwidth(c.upper()) for c in _COLOR_NAMES]),
        _pattern_en=_lookup("_pattern", _PATTERN_NAMES),
        _pattern_zh=_lookup("_pattern", [PATTERNS[p] for p in _PATTERN_NAMES]),
        _material_en=_lookup("_material", _MATERIAL_NAMES),
        _material_zh=_lookup("_material", [MATERIALS.get(m, "") for m in _MATERIAL_NAMES]),
        _gender_en=_lookup("_gender", _GENDER_NAMES),
        _size_en=_lookup("_size", _SIZE_NAMES),
        _noun_en_s=_lookup("_noun_en", _NOUN_EN),
        _noun_zh_s=_lookup("_noun_zh", _NOUN_ZH),
        _brand_s=_lookup("_brand", _BRAND),
        _prefix_s=_lookup("_prefix", _ZH_PREFIXES),
        _styles_en=_join_flags("_s", _STYLE_NAMES, " "),
        _styles_zh=_join_flags("_s", [STYLES[s] for s in _STYLE_NAMES], " "),
        _styles_en_list=_join_flags("_s", _STYLE_NAMES, ", "),
        _styles_zh_list=_join_flags("_s", [STYLES[s] for s in _STYLE_NAMES], "、"),
        occasions=_join_flags("_o", _OCCASION_NAMES, OCCASION_SEPARATOR),
        _occ_en_list=_join_flags("_o", _OCCASION_NAMES, ", "),
        _occ_en_amp=_join_flags("_o", _OCCASION_NAMES, " &amp; "),
        _occ_zh_list=_join_flags("_o", [OCCASIONS[o] for o in _OCCASION_NAMES], "、"),
        price=_price_expr(),
        updated_at=_timestamp_expr(),
    )
    c = pl.col
    # About one title in four does not name the colour: only the photo shows it (as in real
    # exports), so a text-only model cannot know it and the image backend earns its place.
    # Derived from the product number, so it draws nothing from the generator.
    named = (c("_n") * 40503) % 100 >= _COLOR_UNNAMED_PERCENT
    frame = frame.with_columns(
        _color_en_t=pl.when(named).then(c("_color_en")).otherwise(pl.lit("")),
        _color_zh_t=pl.when(named).then(c("_color_zh")).otherwise(pl.lit("")),
    )
    has_styles = c("_styles_en") != ""
    title_zh = pl.concat_str([c("_prefix_s"), c("_color_zh_t"), c("_pattern_zh"),
                              c("_material_zh"), c("_noun_zh_s"), pl.lit(" "), c("_styles_zh")])
    title_en = pl.concat_str([_opt(c("_brand_in_title"), c("_brand_s"), " "), c("_color_en_t"),
                              pl.lit(" "), c("_pattern_en"), pl.lit(" "), c("_material_en"),
                              pl.lit(" "), c("_noun_en_s"), pl.lit(" "), c("_styles_en")])
    title_mixed = pl.concat_str([c("_brand_s"), pl.lit(" "), c("_color_zh_t"), pl.lit(" "),
                                 c("_pattern_en"), pl.lit(" "), c("_noun_en_s"), pl.lit(" "),
                                 c("_noun_zh_s"), pl.lit(" "), c("_styles_zh")])
    desc_en = pl.concat_str([
        c("_pattern_en"), pl.lit(" "), c("_noun_en_s"),
        _opt(has_material, " made of ", c("_material_en")), pl.lit("."),
        _opt(has_styles, " Style: ", c("_styles_en_list"), "."),
        pl.lit(" Perfect for "), c("_occ_en_list"), pl.lit("."),
    ])
    desc_zh = pl.concat_str([
        c("_pattern_zh"), c("_noun_zh_s"), _opt(has_material, "，", c("_material_zh"), "材质"),
        _opt(has_styles, "，", c("_styles_zh_list")), pl.lit("，适合"), c("_occ_zh_list"),
        pl.lit("。"),
    ])
    mode = c("_tmode")
    dmode = c("_dmode")
    return frame.with_columns(
        _title_clean=(pl.when(mode == 0).then(title_zh).when(mode == 1).then(title_en)
                      .otherwise(title_mixed).str.replace_all(" +", " ").str.strip_chars()),
        _desc_plain=(pl.when(dmode == 0).then(desc_en).when(dmode == 1).then(desc_zh)
                     .otherwise(pl.concat_str([desc_en, pl.lit(" "), desc_zh]))),
        attributes=pl.concat_str([
            pl.concat_str([pl.lit("color: "), c("_color_en")]),
            pl.when(has_material).then(pl.concat_str([pl.lit("material: "), c("_material_en")])),
            pl.when(c("_gender") != 0).then(pl.concat_str([pl.lit("gender: "), c("_gender_en")])),
            pl.when(c("_size") != 0).then(pl.concat_str([pl.lit("size: "), c("_size_en")])),
            pl.concat_str([pl.lit("warehouse: WH"), c("_warehouse").cast(pl.String)]),
        ], separator=ATTRIBUTE_SEPARATOR, ignore_nulls=True),
    )


def _apply_text_defects(frame: pl.DataFrame) -> pl.DataFrame:
    """Write ``sku``, ``title`` and ``description`` from the clean text and the defect flags."""
    c = pl.col
    fullwidth = c("_title_clean").str.replace_many(_ASCII, _FULLWIDTH)
    # A Chinese title without ASCII letters gets the colour in full-width capitals instead.
    fullwidth = (pl.when(fullwidth == c("_title_clean"))
                 .then(pl.concat_str([c("_color_fw"), pl.lit(" "), fullwidth]))
                 .otherwise(fullwidth))
    html = pl.concat_str([
        pl.lit("<p>"),
        c("_desc_plain").str.replace_all(". ", ".<br/>", literal=True)
        .str.replace_all("。", "。<br/>", literal=True),
        pl.lit("</p><p><b>"), c("_occ_en_amp"), pl.lit("</b>&nbsp;</p>"),
    ])
    return frame.with_columns(
        sku=pl.when(c("_missing_id")).then(pl.lit("")).otherwise(c("_sku")),
        title=(pl.when(c("_title_defect") == _TITLE_EMPTY).then(_lookup("_empty_kind",
                                                                          _EMPTY_TITLES))
               .when(c("_title_defect") == _TITLE_FULLWIDTH).then(fullwidth)
               .otherwise(c("_title_clean"))),
        description=pl.when(c("_html")).then(html).otherwise(c("_desc_plain")),
    )


def _mark_defects(rng: np.random.Generator, n: int, may_supersede: np.ndarray,
                  n_superseded: int,
                  image_rates: Sequence[tuple[int, float]]) -> dict[str, np.ndarray]:
    """Choose which products carry which defect (exact counts, from the rates above).

    The ``n_superseded`` products that get a newer version are chosen among the rows of
    ``may_supersede`` that keep their id; they are kept clear of empty titles so that
    downstream they count as superseded, not rejected.
    """
    missing_id = _choose(rng, np.ones(n, dtype=bool), _count(n, MISSING_ID_RATE))
    superseded = _choose(rng, may_supersede & ~missing_id, n_superseded)
    title_defect = np.full(n, _TITLE_OK, dtype=np.int8)
    empty = _choose(rng, ~superseded, _count(n, EMPTY_TITLE_RATE))
    title_defect[empty] = _TITLE_EMPTY
    title_defect[_choose(rng, ~empty, _count(n, FULLWIDTH_RATE))] = _TITLE_FULLWIDTH
    html = _choose(rng, np.ones(n, dtype=bool), _count(n, HTML_RATE))
    image_state = np.full(n, _IMG_OK, dtype=np.int8)
    order = rng.permutation(n)
    start = 0
    for state, rate in image_rates:
        k = _count(n, rate)
        image_state[order[start:start + k]] = state
        start += k
    return {"_missing_id": missing_id, "_sup": superseded, "_title_defect": title_defect,
            "_html": html, "_image_state": image_state}


def _newer_versions(base: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Later versions of ``base`` rows: same sku, later ``updated_at``, new title and price."""
    k = base.height
    old = base["_cny"].to_numpy()
    new = _round9(old * rng.choice([0.8, 0.85, 1.1, 1.2], size=k))
    new = np.where(new == old, new + 10, new)
    suffix = _lookup("_tmode", _NEWER_SUFFIX)
    frame = base.with_columns(
        _cny=pl.Series(new),
        _fmt=pl.when(pl.col("_fmt") == _PRICE_EMPTY).then(0).otherwise(pl.col("_fmt")),
        _ts=pl.Series(rng.integers(_T_SNAPSHOT, _T_DELTA, size=k)),
        _title_clean=pl.concat_str([pl.col("_title_clean"), suffix]),
        _title_defect=pl.lit(_TITLE_OK, dtype=pl.Int8),
        _sup=pl.lit(False),
    )
    return _apply_text_defects(frame.with_columns(price=_price_expr(),
                                                  updated_at=_timestamp_expr()))


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


def _draw_image(cat: int, color: int, pattern: int, offset: int) -> Image.Image:
    """A 64x64 product picture: colour fill, the pattern, the category's outline glyph.

    The pattern covers at most a third of the picture, so the product colour stays dominant.
    """
    rgb = COLORS[_COLOR_NAMES[color]][1]
    fg = _contrast(rgb)
    img = Image.new("RGB", (IMAGE_PX, IMAGE_PX), rgb)
    draw = ImageDraw.Draw(img)
    name = _PATTERN_NAMES[pattern]
    if name == "Striped":
        for y in range(0, IMAGE_PX, 8):
            draw.rectangle((0, y, IMAGE_PX - 1, y + 1), fill=fg)
    elif name == "Checked":
        for v in range(0, IMAGE_PX, 12):
            draw.rectangle((0, v, IMAGE_PX - 1, v + 1), fill=fg)
            draw.rectangle((v, 0, v + 1, IMAGE_PX - 1), fill=fg)
    elif name == "Printed":
        for j, y in enumerate(range(5 + offset % 4, IMAGE_PX, 14)):
            for x in range(5 + (j % 2) * 7, IMAGE_PX, 14):
                draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=fg)
    _GLYPHS[_CATEGORIES[cat].glyph](draw, fg)
    return img


def _png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def _corrupt_bytes(rng: np.random.Generator, variant: int) -> bytes:
    """Bytes a broken download leaves behind: an error page, or a PNG signature and noise."""
    head = (b"<html><body><h1>502 Bad Gateway</h1></body></html>\n" if variant % 2 == 0
            else b"\x89PNG\r\n\x1a\n")
    return head + rng.bytes(256)


def _write_image(path: Path, state: int, cat: int, color: int, pattern: int, offset: int,
                 rng: np.random.Generator) -> None:
    if state == _IMG_MISSING:
        path.unlink(missing_ok=True)  # a file left by an earlier run would hide the defect
        return
    if state == _IMG_CORRUPT:
        _atomic_write_bytes(path, _corrupt_bytes(rng, offset))
        return
    img = _draw_image(cat, color, pattern, offset)
    if state == _IMG_SMALL:
        img = img.resize((SMALL_IMAGE_PX, SMALL_IMAGE_PX), Image.Resampling.NEAREST)
    _atomic_write_bytes(path, _png_bytes(img))


@contextmanager
def _atomic_file(path: Path, binary: bool = False) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success move it onto ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if binary:
            handle = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        with handle:
            yield handle
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; landing files are read by other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with _atomic_file(path, binary=True) as handle:
        handle.write(data)


def _write_csv(path: Path, frame: pl.DataFrame) -> None:
    with _atomic_file(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(frame.select(COLUMNS).iter_rows())


def _write_jsonl(path: Path, frame: pl.DataFrame) -> None:
    with _atomic_file(path) as handle:
        for row in frame.select(COLUMNS).iter_rows(named=True):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _defect_totals(frame: pl.DataFrame) -> dict[str, int]:
    state = frame["_image_state"]
    return {
        "n_empty_title": int((frame["_title_defect"] == _TITLE_EMPTY).sum()),
        "n_fullwidth_title": int((frame["_title_defect"] == _TITLE_FULLWIDTH).sum()),
        "n_missing_id": int(frame["_missing_id"].sum()),
        "n_html_description": int(frame["_html"].sum()),
        "n_no_image": int((state == _IMG_NONE).sum()),
        "n_missing_image_file": int((state == _IMG_MISSING).sum()),
        "n_corrupt_image": int((state == _IMG_CORRUPT).sum()),
        "n_small_image": int((state == _IMG_SMALL).sum()),
    }


def _sku_width(n: int) -> int:
    return max(6, len(str(n)))


def generate_demo_catalog(out_dir: Path, n_products: int = 2000, seed: int = 7) -> DemoManifest:
    """Write the bilingual demo catalog's landing files into ``out_dir``.

    Writes ``images/<sku>.png`` first, then ``products_2026-11-01.csv`` (about 60% of the
    products, ``updated_at`` up to 2026-11-01T08:00:00) and ``products_2026-11-15.jsonl``
    (the other products plus newer versions of about 3% of the snapshot's products, all
    updated later). Both files have the columns :data:`COLUMNS`, every value a string (empty
    when missing). Defects (empty or full-width titles, missing ids, HTML descriptions,
    missing, corrupt or 8x8 images) are placed at the module's ``*_RATE`` shares; see
    :class:`DemoManifest` for how they are counted.

    Args:
        out_dir: the landing folder; created if needed. Files of the same names are replaced;
            other files are left alone, so use a folder of its own.
        n_products: products to draw (rows written: this plus the newer versions).
        seed: seed of every random choice; the same arguments give byte-identical files.

    Returns:
        The manifest of what was written.

    Raises:
        ValueError: if ``n_products`` is less than 1.
    """
    if n_products < 1:
        raise ValueError(f"generate_demo_catalog: n_products must be at least 1, got {n_products}")
    out_dir = Path(out_dir)
    image_dir = out_dir / IMAGE_DIR
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = n_products
    draws = _draw_products(rng, n)
    first = _choose(rng, np.ones(n, dtype=bool), max(1, _count(n, SNAPSHOT_SHARE)))
    ts = np.where(first, rng.integers(_T_START, _T_SNAPSHOT, n),
                  rng.integers(_T_SNAPSHOT, _T_DELTA, n))
    flags = _mark_defects(rng, n, first, _count(int(first.sum()), SUPERSEDED_RATE), [
        (_IMG_NONE, NO_IMAGE_RATE), (_IMG_MISSING, MISSING_IMAGE_FILE_RATE),
        (_IMG_CORRUPT, CORRUPT_IMAGE_RATE), (_IMG_SMALL, SMALL_IMAGE_RATE),
    ])
    frame = _render({**draws, **flags, "_first": first}, np.arange(1, n + 1), ts,
                    _sku_width(n))
    frame = _apply_text_defects(frame.with_columns(
        image=pl.when(pl.col("_image_state") == _IMG_NONE).then(pl.lit(""))
        .otherwise(pl.concat_str([pl.lit(f"{IMAGE_DIR}/"), pl.col("_sku"), pl.lit(".png")])),
    ))
    newer = _newer_versions(frame.filter(pl.col("_sup")), rng)

    for sku, state, cat, color, pattern, number in frame.select(
        "_sku", "_image_state", "_cat", "_color", "_pattern", "_n"
    ).iter_rows():
        if state != _IMG_NONE:
            _write_image(image_dir / f"{sku}.png", state, cat, color, pattern, number, rng)

    snapshot = frame.filter(pl.col("_first")).sort("_n")
    delta = pl.concat([frame.filter(~pl.col("_first")), newer]).sort(["_ts", "_n"])
    files = [out_dir / SNAPSHOT_FILE, out_dir / DELTA_FILE]
    _write_csv(files[0], snapshot)
    _write_jsonl(files[1], delta)

    written = pl.concat([snapshot, delta])
    return DemoManifest(
        files=files,
        n_rows=written.height,
        n_products=written.filter(pl.col("sku") != "")["sku"].n_unique(),
        n_superseded=newer.height,
        categories=sorted(written["category_path"].unique().to_list()),
        **_defect_totals(written),
    )


def _pool_probabilities(pool_cat: np.ndarray) -> np.ndarray:
    """Pick pool images so that categories keep their weights, whatever the pool holds."""
    per_category = np.bincount(pool_cat, minlength=len(_CATEGORIES))
    p = _CAT_P[pool_cat] / per_category[pool_cat]
    return p / p.sum()


def write_scaled_catalog(out_dir: Path, n_rows: int, image_pool: int = 64,
                         chunk_rows: int = 100_000, seed: int = 7) -> DemoManifest:
    """Write a large catalog with the demo's columns, chunk by chunk, for benchmarks.

    Draws ``image_pool`` images once into ``out_dir/images/pool_NNN.png`` (the first ones
    cover every category); each row takes its category, colour and pattern from the pool
    image it names, so images and tags agree. Rows go to one CSV file,
    ``products_2026-12-01.csv``, built ``chunk_rows`` at a time with numpy and polars and
    appended, so memory stays bounded by one chunk. Each chunk ends with newer versions
    (same sku, later ``updated_at``, new title and price) of about 3% of its products; empty
    and full-width titles, HTML descriptions, missing ids and rows without image come at the
    demo's rates. Image files are all valid here, so the image-defect counts other than
    ``n_no_image`` are zero.

    Args:
        out_dir: the landing folder; created if needed.
        n_rows: data rows to write, newer versions included.
        image_pool: distinct image files the rows share.
        chunk_rows: rows built and written at a time.
        seed: seed of every random choice; the same arguments give byte-identical files.

    Returns:
        The manifest, with counts taken from the generated arrays.

    Raises:
        ValueError: if ``n_rows``, ``image_pool`` or ``chunk_rows`` is less than 1.
    """
    for name, value in (("n_rows", n_rows), ("image_pool", image_pool),
                        ("chunk_rows", chunk_rows)):
        if value < 1:
            raise ValueError(f"write_scaled_catalog: {name} must be at least 1, got {value}")
    out_dir = Path(out_dir)
    image_dir = out_dir / IMAGE_DIR
    image_dir.mkdir(parents=True, exist_ok=True)

    pool_rng = np.random.default_rng([seed, 0])
    pool_cat = np.concatenate([
        np.arange(min(image_pool, len(_CATEGORIES))),
        pool_rng.choice(len(_CATEGORIES), size=max(0, image_pool - len(_CATEGORIES)), p=_CAT_P),
    ])
    pool_color = pool_rng.choice(len(_COLOR_NAMES), size=image_pool, p=_COLOR_P)
    pool_pattern = _sample_rows(pool_rng, _PATTERN_P, pool_cat)
    for k in range(image_pool):
        img = _draw_image(int(pool_cat[k]), int(pool_color[k]), int(pool_pattern[k]), k)
        _atomic_write_bytes(image_dir / f"pool_{k:03d}.png", _png_bytes(img))
    pool_p = _pool_probabilities(pool_cat)

    totals = dict.fromkeys(("n_empty_title", "n_fullwidth_title", "n_missing_id",
                            "n_html_description", "n_no_image", "n_missing_image_file",
                            "n_corrupt_image", "n_small_image"), 0)
    n_written = n_products = n_superseded = next_number = 0
    seen_categories: set[int] = set()
    path = out_dir / SCALED_FILE
    sku_width = _sku_width(n_rows)
    with _atomic_file(path, binary=True) as handle:
        for chunk_index, start in enumerate(range(0, n_rows, chunk_rows)):
            rng = np.random.default_rng([seed, 1, chunk_index])
            rows = min(chunk_rows, n_rows - start)
            n_newer = min(_count(rows, SUPERSEDED_RATE), (rows - 1) // 2)
            n = rows - n_newer
            pool = rng.choice(image_pool, size=n, p=pool_p)
            draws = _draw_products(rng, n, pool_cat[pool], pool_color[pool], pool_pattern[pool])
            flags = _mark_defects(rng, n, np.ones(n, dtype=bool), n_newer,
                                  [(_IMG_NONE, NO_IMAGE_RATE)])
            number = np.arange(next_number + 1, next_number + n + 1)
            next_number += n
            frame = _render({**draws, **flags, "_pool": pool}, number,
                            rng.integers(_T_START, _T_SNAPSHOT, n), sku_width)
            frame = _apply_text_defects(frame.with_columns(
                image=pl.when(pl.col("_image_state") == _IMG_NONE).then(pl.lit(""))
                .otherwise(pl.concat_str([pl.lit(f"{IMAGE_DIR}/pool_"),
                                          pl.col("_pool").cast(pl.String).str.zfill(3),
                                          pl.lit(".png")])),
            ))
            newer = _newer_versions(frame.filter(pl.col("_sup")), rng)
            chunk = pl.concat([frame, newer])
            chunk.select(COLUMNS).write_csv(handle, include_header=chunk_index == 0)
            for key, value in _defect_totals(chunk).items():
                totals[key] += value
            n_products += n - int(flags["_missing_id"].sum())
            n_superseded += newer.height
            n_written += chunk.height
            seen_categories.update(np.unique(draws["_cat"]).tolist())
    return DemoManifest(
        files=[path],
        n_rows=n_written,
        n_products=n_products,
        n_superseded=n_superseded,
        categories=sorted(_CATEGORIES[c].path for c in seen_categories),
        **totals,
    )
