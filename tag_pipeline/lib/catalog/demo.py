"""A deterministic, bilingual demo shop: landing files shaped like a real catalog export.

Two writers share one vocabulary (:mod:`.demo_shop`), one picture painter
(:mod:`.demo_images`) and one vectorised row builder:

* :func:`generate_demo_catalog` writes a small export (a CSV snapshot, a later JSON Lines
  delta and one Pillow-drawn image per product) with realistic, counted defects.
* :func:`write_scaled_catalog` writes the same columns at benchmark scale, chunk by chunk.

Every value comes from a seeded ``numpy`` generator, so the same arguments give byte-identical
files. Each file is written under a temporary name in its folder and moved into place with
``os.replace``, so a reader never sees a half-written file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tag_pipeline.lib.catalog import demo_shop as shop
from tag_pipeline.lib.catalog.demo_files import (
    atomic_file,
    atomic_write_bytes,
    write_csv,
    write_jsonl,
)
from tag_pipeline.lib.catalog.demo_images import (
    IMG_CORRUPT,
    IMG_MISSING,
    IMG_NONE,
    IMG_OK,
    IMG_SMALL,
    draw_image,
    png_bytes,
    write_image,
)


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
        n_fullwidth_title: rows whose title holds full-width shop.ASCII forms (U+FF01..U+FF5E).
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
        cat = rng.choice(len(shop.CATEGORIES), size=n, p=shop.CAT_P)
    if color is None:
        color = rng.choice(len(shop.COLOR_NAMES), size=n, p=shop.COLOR_P)
    if pattern is None:
        pattern = _sample_rows(rng, shop.PATTERN_P, cat)
    styles = rng.random((n, len(shop.STYLE_NAMES))) < shop.STYLE_P[cat]
    occasions = rng.random((n, len(shop.OCCASION_NAMES))) < shop.OCCASION_P[cat]
    # Every product gets at least its category's most likely occasion.
    bare = np.flatnonzero(~occasions.any(axis=1))
    occasions[bare, shop.OCCASION_P[cat[bare]].argmax(axis=1)] = True
    lo, hi = shop.PRICE_LOG_LO[cat], shop.PRICE_LOG_HI[cat]
    log_price = lo + rng.random(n) * (hi - lo)
    draws = {
        "_cat": cat, "_color": color, "_pattern": pattern,
        "_material": _sample_rows(rng, shop.MATERIAL_P, cat),
        "_gender": _sample_rows(rng, shop.GENDER_P, cat),
        "_size": _sample_rows(rng, shop.SIZE_P, cat),
        "_warehouse": rng.integers(1, shop.WAREHOUSES + 1, n),
        "_cny": _round9(np.exp(log_price)),
        "_fmt": rng.choice(len(shop.PRICE_FORMAT_WEIGHTS), size=n,
                           p=np.array(shop.PRICE_FORMAT_WEIGHTS) / sum(shop.PRICE_FORMAT_WEIGHTS)),
        "_tmode": rng.choice(3, size=n, p=shop.TITLE_MODE_WEIGHTS),
        "_dmode": rng.choice(3, size=n, p=shop.DESC_MODE_WEIGHTS),
        "_brand": _pick_in_category(rng, shop.BRAND_N, shop.BRAND_W, cat),
        "_brand_in_title": rng.random(n) < 0.3,
        "_prefix": np.where(rng.random(n) < 0.2, rng.integers(1, len(shop.ZH_PREFIXES), n), 0),
        "_noun_en": _pick_in_category(rng, shop.NOUN_EN_N, shop.NOUN_EN_W, cat),
        "_noun_zh": _pick_in_category(rng, shop.NOUN_ZH_N, shop.NOUN_ZH_W, cat),
        "_empty_kind": rng.integers(0, len(shop.EMPTY_TITLES), n),
    }
    for j in range(len(shop.STYLE_NAMES)):
        draws[f"_s{j}"] = styles[:, j]
    for j in range(len(shop.OCCASION_NAMES)):
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
    usd = (cny.cast(pl.Float64) / shop.CNY_PER_USD).round(0).cast(pl.Int64).clip(lower_bound=1)
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
                pl.lit("￥"), text.str.replace_many(list("0123456789"), shop.FULLWIDTH_DIGITS)]))
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
        category_path=_lookup("_cat", [c.path for c in shop.CATEGORIES]),
        _color_en=_lookup("_color", shop.COLOR_NAMES),
        _color_zh=_lookup("_color", [shop.COLORS[c][0] for c in shop.COLOR_NAMES]),
        _color_fw=_lookup("_color", [shop.to_fullwidth(c.upper()) for c in shop.COLOR_NAMES]),
        _pattern_en=_lookup("_pattern", shop.PATTERN_NAMES),
        _pattern_zh=_lookup("_pattern", [shop.PATTERNS[p] for p in shop.PATTERN_NAMES]),
        _material_en=_lookup("_material", shop.MATERIAL_NAMES),
        _material_zh=_lookup("_material", [shop.MATERIALS.get(m, "") for m in shop.MATERIAL_NAMES]),
        _gender_en=_lookup("_gender", shop.GENDER_NAMES),
        _size_en=_lookup("_size", shop.SIZE_NAMES),
        _noun_en_s=_lookup("_noun_en", shop.NOUN_EN),
        _noun_zh_s=_lookup("_noun_zh", shop.NOUN_ZH),
        _brand_s=_lookup("_brand", shop.BRAND),
        _prefix_s=_lookup("_prefix", shop.ZH_PREFIXES),
        _styles_en=_join_flags("_s", shop.STYLE_NAMES, " "),
        _styles_zh=_join_flags("_s", [shop.STYLES[s] for s in shop.STYLE_NAMES], " "),
        _styles_en_list=_join_flags("_s", shop.STYLE_NAMES, ", "),
        _styles_zh_list=_join_flags("_s", [shop.STYLES[s] for s in shop.STYLE_NAMES], "、"),
        occasions=_join_flags("_o", shop.OCCASION_NAMES, shop.OCCASION_SEPARATOR),
        _occ_en_list=_join_flags("_o", shop.OCCASION_NAMES, ", "),
        _occ_en_amp=_join_flags("_o", shop.OCCASION_NAMES, " &amp; "),
        _occ_zh_list=_join_flags("_o", [shop.OCCASIONS[o] for o in shop.OCCASION_NAMES], "、"),
        price=_price_expr(),
        updated_at=_timestamp_expr(),
    )
    c = pl.col
    # About one title in four does not name the colour: only the photo shows it (as in real
    # exports), so a text-only model cannot know it and the image backend earns its place.
    # Derived from the product number, so it draws nothing from the generator.
    named = (c("_n") * 40503) % 100 >= shop.COLOR_UNNAMED_PERCENT
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
        ], separator=shop.ATTRIBUTE_SEPARATOR, ignore_nulls=True),
    )


def _apply_text_defects(frame: pl.DataFrame) -> pl.DataFrame:
    """Write ``sku``, ``title`` and ``description`` from the clean text and the defect flags."""
    c = pl.col
    fullwidth = c("_title_clean").str.replace_many(shop.ASCII, shop.FULLWIDTH)
    # A Chinese title without shop.ASCII letters gets the colour in full-width capitals instead.
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
        title=(pl.when(c("_title_defect") == shop.TITLE_EMPTY).then(_lookup("_empty_kind",
                                                                          shop.EMPTY_TITLES))
               .when(c("_title_defect") == shop.TITLE_FULLWIDTH).then(fullwidth)
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
    missing_id = _choose(rng, np.ones(n, dtype=bool), _count(n, shop.MISSING_ID_RATE))
    superseded = _choose(rng, may_supersede & ~missing_id, n_superseded)
    title_defect = np.full(n, shop.TITLE_OK, dtype=np.int8)
    empty = _choose(rng, ~superseded, _count(n, shop.EMPTY_TITLE_RATE))
    title_defect[empty] = shop.TITLE_EMPTY
    title_defect[_choose(rng, ~empty, _count(n, shop.FULLWIDTH_RATE))] = shop.TITLE_FULLWIDTH
    html = _choose(rng, np.ones(n, dtype=bool), _count(n, shop.HTML_RATE))
    image_state = np.full(n, IMG_OK, dtype=np.int8)
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
    suffix = _lookup("_tmode", shop.NEWER_SUFFIX)
    frame = base.with_columns(
        _cny=pl.Series(new),
        _fmt=pl.when(pl.col("_fmt") == shop.PRICE_EMPTY).then(0).otherwise(pl.col("_fmt")),
        _ts=pl.Series(rng.integers(shop.T_SNAPSHOT, shop.T_DELTA, size=k)),
        _title_clean=pl.concat_str([pl.col("_title_clean"), suffix]),
        _title_defect=pl.lit(shop.TITLE_OK, dtype=pl.Int8),
        _sup=pl.lit(False),
    )
    return _apply_text_defects(frame.with_columns(price=_price_expr(),
                                                  updated_at=_timestamp_expr()))


def _defect_totals(frame: pl.DataFrame) -> dict[str, int]:
    state = frame["_image_state"]
    return {
        "n_empty_title": int((frame["_title_defect"] == shop.TITLE_EMPTY).sum()),
        "n_fullwidth_title": int((frame["_title_defect"] == shop.TITLE_FULLWIDTH).sum()),
        "n_missing_id": int(frame["_missing_id"].sum()),
        "n_html_description": int(frame["_html"].sum()),
        "n_no_image": int((state == IMG_NONE).sum()),
        "n_missing_image_file": int((state == IMG_MISSING).sum()),
        "n_corrupt_image": int((state == IMG_CORRUPT).sum()),
        "n_small_image": int((state == IMG_SMALL).sum()),
    }


def _sku_width(n: int) -> int:
    return max(6, len(str(n)))


def generate_demo_catalog(out_dir: Path, n_products: int = 2000, seed: int = 7) -> DemoManifest:
    """Write the bilingual demo catalog's landing files into ``out_dir``.

    Writes ``images/<sku>.png`` first, then ``products_2026-11-01.csv`` (about 60% of the
    products, ``updated_at`` up to 2026-11-01T08:00:00) and ``products_2026-11-15.jsonl``
    (the other products plus newer versions of about 3% of the snapshot's products, all
    updated later). Both files have the columns :data:`shop.COLUMNS`, every value a string (empty
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
    image_dir = out_dir / shop.IMAGE_DIR
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = n_products
    draws = _draw_products(rng, n)
    first = _choose(rng, np.ones(n, dtype=bool), max(1, _count(n, shop.SNAPSHOT_SHARE)))
    ts = np.where(first, rng.integers(shop.T_START, shop.T_SNAPSHOT, n),
                  rng.integers(shop.T_SNAPSHOT, shop.T_DELTA, n))
    flags = _mark_defects(rng, n, first, _count(int(first.sum()), shop.SUPERSEDED_RATE), [
        (IMG_NONE, shop.NO_IMAGE_RATE), (IMG_MISSING, shop.MISSING_IMAGE_FILE_RATE),
        (IMG_CORRUPT, shop.CORRUPT_IMAGE_RATE), (IMG_SMALL, shop.SMALL_IMAGE_RATE),
    ])
    frame = _render({**draws, **flags, "_first": first}, np.arange(1, n + 1), ts,
                    _sku_width(n))
    frame = _apply_text_defects(frame.with_columns(
        image=pl.when(pl.col("_image_state") == IMG_NONE).then(pl.lit(""))
        .otherwise(pl.concat_str([pl.lit(f"{shop.IMAGE_DIR}/"), pl.col("_sku"), pl.lit(".png")])),
    ))
    newer = _newer_versions(frame.filter(pl.col("_sup")), rng)

    for sku, state, cat, color, pattern, number in frame.select(
        "_sku", "_image_state", "_cat", "_color", "_pattern", "_n"
    ).iter_rows():
        if state != IMG_NONE:
            write_image(image_dir / f"{sku}.png", state, cat, color, pattern, number, rng)

    snapshot = frame.filter(pl.col("_first")).sort("_n")
    delta = pl.concat([frame.filter(~pl.col("_first")), newer]).sort(["_ts", "_n"])
    files = [out_dir / shop.SNAPSHOT_FILE, out_dir / shop.DELTA_FILE]
    write_csv(files[0], snapshot)
    write_jsonl(files[1], delta)

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
    per_category = np.bincount(pool_cat, minlength=len(shop.CATEGORIES))
    p = shop.CAT_P[pool_cat] / per_category[pool_cat]
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
    image_dir = out_dir / shop.IMAGE_DIR
    image_dir.mkdir(parents=True, exist_ok=True)

    pool_rng = np.random.default_rng([seed, 0])
    pool_cat = np.concatenate([
        np.arange(min(image_pool, len(shop.CATEGORIES))),
        pool_rng.choice(len(shop.CATEGORIES), size=max(0, image_pool - len(shop.CATEGORIES)),
                        p=shop.CAT_P),
    ])
    pool_color = pool_rng.choice(len(shop.COLOR_NAMES), size=image_pool, p=shop.COLOR_P)
    pool_pattern = _sample_rows(pool_rng, shop.PATTERN_P, pool_cat)
    for k in range(image_pool):
        img = draw_image(int(pool_cat[k]), int(pool_color[k]), int(pool_pattern[k]), k)
        atomic_write_bytes(image_dir / f"pool_{k:03d}.png", png_bytes(img))
    pool_p = _pool_probabilities(pool_cat)

    totals = dict.fromkeys(("n_empty_title", "n_fullwidth_title", "n_missing_id",
                            "n_html_description", "n_no_image", "n_missing_image_file",
                            "n_corrupt_image", "n_small_image"), 0)
    n_written = n_products = n_superseded = next_number = 0
    seen_categories: set[int] = set()
    path = out_dir / shop.SCALED_FILE
    sku_width = _sku_width(n_rows)
    with atomic_file(path, binary=True) as handle:
        for chunk_index, start in enumerate(range(0, n_rows, chunk_rows)):
            rng = np.random.default_rng([seed, 1, chunk_index])
            rows = min(chunk_rows, n_rows - start)
            n_newer = min(_count(rows, shop.SUPERSEDED_RATE), (rows - 1) // 2)
            n = rows - n_newer
            pool = rng.choice(image_pool, size=n, p=pool_p)
            draws = _draw_products(rng, n, pool_cat[pool], pool_color[pool], pool_pattern[pool])
            flags = _mark_defects(rng, n, np.ones(n, dtype=bool), n_newer,
                                  [(IMG_NONE, shop.NO_IMAGE_RATE)])
            number = np.arange(next_number + 1, next_number + n + 1)
            next_number += n
            frame = _render({**draws, **flags, "_pool": pool}, number,
                            rng.integers(shop.T_START, shop.T_SNAPSHOT, n), sku_width)
            frame = _apply_text_defects(frame.with_columns(
                image=pl.when(pl.col("_image_state") == IMG_NONE).then(pl.lit(""))
                .otherwise(pl.concat_str([pl.lit(f"{shop.IMAGE_DIR}/pool_"),
                                          pl.col("_pool").cast(pl.String).str.zfill(3),
                                          pl.lit(".png")])),
            ))
            newer = _newer_versions(frame.filter(pl.col("_sup")), rng)
            chunk = pl.concat([frame, newer])
            chunk.select(shop.COLUMNS).write_csv(handle, include_header=chunk_index == 0)
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
        categories=sorted(shop.CATEGORIES[c].path for c in seen_categories),
        **totals,
    )
