"""The demo shop's vocabulary and the distributions its products are drawn from.

Colours (with the RGB the images are painted in), patterns, styles, occasions, materials and
the category table (each leaf's nouns, glyph, materials, genders, sizes, pattern, style and
occasion weights, price range and brands), the defect rates, and the per-category
probability tables that :mod:`tag_pipeline.lib.catalog.demo` draws rows from. Plain data:
nothing here draws or writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

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
COLOR_UNNAMED_PERCENT = 25

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
CATEGORIES: tuple[_Category, ...] = (
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
PRICE_FORMAT_WEIGHTS = (0.35, 0.18, 0.14, 0.10, 0.06, 0.07, 0.10)
PRICE_EMPTY = 6
CNY_PER_USD = 7.2
TITLE_MODE_WEIGHTS = (0.40, 0.35, 0.25)  # Chinese only, English only, mixed
DESC_MODE_WEIGHTS = (0.30, 0.40, 0.30)  # English, Chinese, both
ZH_PREFIXES = ("", "【包邮】", "【正品】", "【热卖】")
EMPTY_TITLES = ("", "   ", "<br>")
NEWER_SUFFIX = (" 新款", " New Arrival", " 新款")  # by title mode
WAREHOUSES = 5

T_START = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp())
T_SNAPSHOT = int(datetime(2026, 11, 1, 8, tzinfo=UTC).timestamp())
T_DELTA = int(datetime(2026, 11, 15, 8, tzinfo=UTC).timestamp())

# Title defects.
TITLE_OK, TITLE_EMPTY, TITLE_FULLWIDTH = range(3)

ASCII = [chr(c) for c in range(0x21, 0x7F)]
FULLWIDTH = [chr(c + 0xFEE0) for c in range(0x21, 0x7F)]
FULLWIDTH_DIGITS = [chr(0xFF10 + d) for d in range(10)]


def to_fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if 0x21 <= ord(c) <= 0x7E else c for c in text)


def _normalised(rows: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float64)
    return matrix / matrix.sum(axis=1, keepdims=True)


COLOR_NAMES = tuple(COLORS)
PATTERN_NAMES = tuple(PATTERNS)
STYLE_NAMES = tuple(STYLES)
OCCASION_NAMES = tuple(OCCASIONS)
MATERIAL_NAMES = ("",) + tuple(MATERIALS)
GENDER_NAMES = ("",) + GENDERS
SIZE_NAMES = ("",) + tuple(_APPAREL_SIZES) + tuple(_SHOE_SIZES)
CAT_P = np.array([c.weight for c in CATEGORIES]) / sum(c.weight for c in CATEGORIES)
COLOR_P = np.array(_COLOR_WEIGHTS) / sum(_COLOR_WEIGHTS)
PATTERN_P = _normalised([list(c.patterns) for c in CATEGORIES])
MATERIAL_P = _normalised([
    [1.0 if (m in c.materials or (m == "" and not c.materials)) else 0.0
     for m in MATERIAL_NAMES] for c in CATEGORIES
])
GENDER_P = _normalised([
    [c.genders.get(g, 0.0) if g else max(0.0, 1.0 - sum(c.genders.values()))
     for g in GENDER_NAMES] for c in CATEGORIES
])
SIZE_P = _normalised([
    [c.sizes.get(s, 0.0) if s else float(not c.sizes) for s in SIZE_NAMES]
    for c in CATEGORIES
])
STYLE_P = np.array([[c.styles.get(s, _DEFAULT_STYLE_P.get(s, 0.0)) for s in STYLE_NAMES]
                     for c in CATEGORIES])
OCCASION_P = np.array([[c.occasions.get(o, _DEFAULT_OCCASION_P.get(o, 0.0))
                         for o in OCCASION_NAMES] for c in CATEGORIES])
PRICE_LOG_LO = np.log([c.price_cny[0] for c in CATEGORIES])
PRICE_LOG_HI = np.log([c.price_cny[1] for c in CATEGORIES])


def _padded(lists: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray, int]:
    """Flatten per-category word lists; entry (cat, k) sits at ``cat * width + k``."""
    width = max(len(words) for words in lists)
    flat = [words[k] if k < len(words) else "" for words in lists for k in range(width)]
    return flat, np.array([len(words) for words in lists]), width


NOUN_EN, NOUN_EN_N, NOUN_EN_W = _padded([c.nouns_en for c in CATEGORIES])
NOUN_ZH, NOUN_ZH_N, NOUN_ZH_W = _padded([c.nouns_zh for c in CATEGORIES])
BRAND, BRAND_N, BRAND_W = _padded([c.brands for c in CATEGORIES])


