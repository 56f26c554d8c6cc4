"""The demo catalog writers: byte-identical output, defects as counted, images that carry tags."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from PIL import Image

from tag_pipeline.lib.catalog.demo import DemoManifest, generate_demo_catalog, write_scaled_catalog
from tag_pipeline.lib.catalog.demo_shop import (
    COLOR_RGB,
    COLORS,
    COLUMNS,
    DELTA_FILE,
    GENDERS,
    MATERIALS,
    OCCASIONS,
    PATTERNS,
    SCALED_FILE,
    SNAPSHOT_FILE,
)
from tag_pipeline.lib.catalog.ingest import ingest_catalog
from tag_pipeline.lib.catalog.profile import load_profile
from tag_pipeline_tests.support import REPO_ROOT

HTML = re.compile(r"<[A-Za-z/][^>]*>|&[A-Za-z]+;|&#\d+;")
FULLWIDTH = re.compile("[\uff01-\uff5e]")
HAN = re.compile("[\u4e00-\u9fff]")
LATIN = re.compile("[A-Za-z]")
PRICE_FORMATS = {
    "yuan_sign": re.compile(r"^¥\d+\.00$"),
    "yuan_word": re.compile(r"^\d+元$"),
    "rmb": re.compile(r"^RMB \d{1,3}(,\d{3})*$"),
    "dollar": re.compile(r"^\$\d+\.99$"),
    "usd": re.compile(r"^USD \d+$"),
    "fullwidth": re.compile("^￥[\uff10-\uff19]+$"),
}


def read_rows(files: list[Path]) -> pl.DataFrame:
    """All data rows as strings, with the file each came from."""
    frames = []
    for path in files:
        if path.suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False, empty_string_is_null=False)
        else:
            frame = pl.read_ndjson(path, schema=dict.fromkeys(COLUMNS, pl.String))
        frames.append(frame.with_columns(file=pl.lit(path.name)))
    return pl.concat(frames)


def image_status(root: Path, image: str) -> str:
    if image == "":
        return "none"
    path = root / image
    if not path.exists():
        return "missing"
    try:
        with Image.open(path) as img:
            img.load()
            size = img.size
    except (OSError, SyntaxError):
        return "corrupt"
    return "small" if size == (8, 8) else "ok" if size == (64, 64) else f"size {size}"


def digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def attributes(text: str) -> dict[str, str]:
    pairs = [part.split(": ", 1) for part in text.split("; ")]
    return {key: value for key, value in pairs}


def is_empty_title(title: str) -> bool:
    return title.strip() in ("", "<br>")


def pattern_of(description: str) -> str:
    found = {en for en, zh in PATTERNS.items() if en in description or zh in description}
    assert len(found) == 1, description
    return found.pop()


def dominant_colour(img: Image.Image) -> tuple[int, int, int]:
    return Counter(img.convert("RGB").getdata()).most_common(1)[0][0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoManifest, pl.DataFrame]:
    out = tmp_path_factory.mktemp("demo") / "landing"
    manifest = generate_demo_catalog(out)
    return out, manifest, read_rows(manifest.files)


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    first = generate_demo_catalog(tmp_path / "a", n_products=300, seed=3)
    generate_demo_catalog(tmp_path / "b", n_products=300, seed=3)
    files_a = digest(tmp_path / "a")
    assert files_a == digest(tmp_path / "b")
    assert len(files_a) > 200  # two data files and the images
    # Writing again over an existing catalog gives the same files and manifest.
    assert generate_demo_catalog(tmp_path / "a", n_products=300, seed=3) == first
    assert digest(tmp_path / "a") == files_a
    generate_demo_catalog(tmp_path / "c", n_products=300, seed=4)
    assert digest(tmp_path / "c")[SNAPSHOT_FILE] != files_a[SNAPSHOT_FILE]


def test_files_follow_the_column_contract(demo: tuple[Path, DemoManifest, pl.DataFrame]) -> None:
    out, manifest, rows = demo
    assert manifest.files == [out / SNAPSHOT_FILE, out / DELTA_FILE]
    assert sorted(p.name for p in out.iterdir()) == sorted([SNAPSHOT_FILE, DELTA_FILE, "images"])
    assert not [p for p in (out / "images").iterdir() if p.name.startswith(".")]  # no temp files
    header = (out / SNAPSHOT_FILE).read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(COLUMNS)
    for line in (out / DELTA_FILE).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert list(record) == list(COLUMNS)
        assert all(isinstance(value, str) for value in record.values())
    assert "红色" in (out / DELTA_FILE).read_text(encoding="utf-8")  # not \u-escaped
    assert rows.filter(pl.col("sku") != "")["sku"].str.contains(r"^SKU-\d{6}$").all()
    for stamp in rows["updated_at"]:
        datetime.fromisoformat(stamp)
    # The snapshot holds about 60% of the products.
    assert 0.55 < (rows["file"] == SNAPSHOT_FILE).sum() / manifest.n_rows < 0.65


def test_manifest_counts_match_the_files(demo: tuple[Path, DemoManifest, pl.DataFrame]) -> None:
    out, manifest, rows = demo
    with_id = rows.filter(pl.col("sku") != "")
    status = Counter(image_status(out, image) for image in rows["image"])
    assert status.keys() <= {"none", "missing", "corrupt", "small", "ok"}
    assert manifest.n_rows == rows.height
    assert manifest.n_products == with_id["sku"].n_unique()
    assert manifest.n_superseded == with_id.height - with_id["sku"].n_unique()
    assert manifest.n_missing_id == rows.height - with_id.height
    assert manifest.n_empty_title == sum(is_empty_title(t) for t in rows["title"])
    assert manifest.n_fullwidth_title == sum(bool(FULLWIDTH.search(t)) for t in rows["title"])
    assert manifest.n_html_description == sum(bool(HTML.search(d)) for d in rows["description"])
    assert manifest.n_no_image == status["none"]
    assert manifest.n_missing_image_file == status["missing"]
    assert manifest.n_corrupt_image == status["corrupt"]
    assert manifest.n_small_image == status["small"]
    assert manifest.categories == sorted(rows["category_path"].unique().to_list())


def test_defects_come_at_realistic_rates(demo: tuple[Path, DemoManifest, pl.DataFrame]) -> None:
    _, m, _ = demo
    n = 2000  # products drawn
    assert m.n_rows == n + m.n_superseded
    expected = {
        "n_superseded": 0.03 * 0.6, "n_html_description": 0.10, "n_fullwidth_title": 0.03,
        "n_empty_title": 0.01, "n_missing_id": 0.005, "n_no_image": 0.25,
        "n_missing_image_file": 0.02, "n_corrupt_image": 0.01, "n_small_image": 0.005,
    }
    for name, rate in expected.items():
        # Counts are per written row; a superseded product's defects may be counted twice.
        assert rate * n <= getattr(m, name) <= rate * n * 1.1 + 1, name


def test_newer_versions_are_later_with_new_title_and_price(
        demo: tuple[Path, DemoManifest, pl.DataFrame]) -> None:
    _, manifest, rows = demo
    versions = rows.filter(pl.col("sku") != "").filter(pl.len().over("sku") > 1)
    assert versions.height == 2 * manifest.n_superseded > 0
    for _, group in versions.sort("updated_at").group_by("sku", maintain_order=True):
        old, new = group.row(0, named=True), group.row(1, named=True)
        assert (old["file"], new["file"]) == (SNAPSHOT_FILE, DELTA_FILE)
        assert datetime.fromisoformat(new["updated_at"]) > datetime.fromisoformat(
            old["updated_at"])
        assert new["title"] != old["title"] and not is_empty_title(old["title"])
        assert new["price"] != old["price"] and new["price"] != ""
        assert new["category_path"] == old["category_path"] and new["image"] == old["image"]


def test_categories_are_hierarchical_with_a_long_tail(
        demo: tuple[Path, DemoManifest, pl.DataFrame]) -> None:
    _, manifest, rows = demo
    assert len(manifest.categories) >= 8
    levels = [path.split(" > ") for path in manifest.categories]
    assert all(len(parts) == 3 and all(parts) for parts in levels)
    assert len({parts[0] for parts in levels}) >= 4
    shares = rows["category_path"].value_counts()["count"]
    assert shares.max() >= 10 * shares.min()


def test_titles_and_descriptions_are_bilingual_and_name_the_tags(
        demo: tuple[Path, DemoManifest, pl.DataFrame]) -> None:
    _, _, rows = demo
    clean = rows.filter(~pl.col("title").str.contains("[\uff01-\uff5e]")
                        & (pl.col("title").str.strip_chars().str.len_chars() > 4))
    kinds = Counter(
        "zh" if HAN.search(t) and not re.search("[A-Za-z]{2,}", t)
        else "en" if not HAN.search(t) else "mixed"
        for t in clean["title"]
    )
    assert min(kinds["zh"], kinds["en"], kinds["mixed"]) > 0.15 * clean.height, kinds
    assert sum(bool(HAN.search(d)) and bool(LATIN.search(d)) for d in rows["description"]) > 200
    unnamed = 0
    for row in clean.iter_rows(named=True):
        attrs = attributes(row["attributes"])
        colour, title, desc = attrs["color"], row["title"].lower(), row["description"]
        # about one title in four leaves the colour to the photo
        unnamed += not (colour.lower() in title or COLORS[colour][0] in title)
        pattern = pattern_of(desc)
        assert pattern.lower() in title or PATTERNS[pattern] in title, row
        if "material" in attrs:
            material = attrs["material"]
            assert material in desc or MATERIALS[material] in desc, row
        for occasion in row["occasions"].split("|"):
            assert occasion in desc or OCCASIONS[occasion] in desc, row
    assert 0.15 * clean.height < unnamed < 0.35 * clean.height, unnamed


def test_attributes_and_occasions_follow_the_category(
        demo: tuple[Path, DemoManifest, pl.DataFrame]) -> None:
    _, _, rows = demo
    by_leaf: dict[str, list[set[str]]] = {}
    for row in rows.iter_rows(named=True):
        attrs = attributes(row["attributes"])
        top = row["category_path"].split(" > ")[0]
        assert set(attrs) <= {"color", "material", "gender", "size", "warehouse"}
        assert attrs["color"] in COLOR_RGB and re.fullmatch(r"WH\d", attrs["warehouse"])
        assert ("size" in attrs) == (top in ("Apparel", "Footwear"))
        assert attrs.get("gender", "Unisex") in GENDERS
        if top == "Electronics":
            assert attrs.get("gender", "Unisex") == "Unisex"
        occasions = set(row["occasions"].split("|"))
        assert occasions <= set(OCCASIONS)
        by_leaf.setdefault(row["category_path"].split(" > ")[-1], []).append(occasions)

    def share(leaf: str, wanted: set[str]) -> float:
        return sum(bool(o & wanted) for o in by_leaf[leaf]) / len(by_leaf[leaf])

    assert share("Running Shoes", {"Sport"}) > 0.8
    assert share("Shirts", {"Formal", "Office"}) > 0.7
    assert share("Ankle Boots", {"Winter"}) > 2 * share("T-Shirts", {"Winter"})
    assert any(len(o) > 1 for sets in by_leaf.values() for o in sets)


def test_prices_come_in_varied_formats(demo: tuple[Path, DemoManifest, pl.DataFrame]) -> None:
    _, _, rows = demo
    seen = Counter()
    for price in rows["price"]:
        matched = [name for name, pattern in PRICE_FORMATS.items() if pattern.match(price)]
        assert price == "" or len(matched) == 1, price
        seen[matched[0] if matched else "empty"] += 1
    assert set(seen) == {*PRICE_FORMATS, "empty"}
    assert any("," in p for p in rows["price"] if p.startswith("RMB"))


def test_images_carry_colour_pattern_and_size(
        demo: tuple[Path, DemoManifest, pl.DataFrame]) -> None:
    out, _, rows = demo
    checked = Counter()
    for row in rows.filter(pl.col("image") != "").unique("image").iter_rows(named=True):
        if image_status(out, row["image"]) != "ok":
            continue
        with Image.open(out / row["image"]) as img:
            rgb = img.convert("RGB")
        colour = attributes(row["attributes"])["color"]
        assert dominant_colour(rgb) == COLOR_RGB[colour], row
        top_line = {rgb.getpixel((x, 0)) for x in range(64)}
        pattern = pattern_of(row["description"])
        if pattern == "Solid":
            assert top_line == {COLOR_RGB[colour]}
        elif pattern == "Striped":
            assert COLOR_RGB[colour] not in top_line
        checked[pattern] += 1
    assert set(checked) == set(PATTERNS) and sum(checked.values()) > 1000


def test_broken_images_fail_to_decode_and_small_ones_are_8px(
        demo: tuple[Path, DemoManifest, pl.DataFrame]) -> None:
    out, _, rows = demo
    status = {p: image_status(out, p) for p in rows["image"].unique() if p}
    corrupt = [out / p for p, s in status.items() if s == "corrupt"]
    small = [out / p for p, s in status.items() if s == "small"]
    assert len(corrupt) >= 0.01 * 2000 and len(small) >= 0.005 * 2000
    for path in corrupt:
        assert path.suffix == ".png" and path.stat().st_size > 0
        with pytest.raises((OSError, SyntaxError)):
            with Image.open(path) as img:
                img.load()
    for path in small:
        with Image.open(path) as img:
            assert (img.format, img.size) == ("PNG", (8, 8))


def test_the_ingest_path_reads_every_row(tmp_path: Path) -> None:
    manifest = generate_demo_catalog(tmp_path / "landing" / "demo", n_products=200)
    profile = load_profile("demo", {"landing": str(tmp_path / "landing"),
                                    "shared_data": str(tmp_path)})
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        report = ingest_catalog(con, profile, datetime(2026, 11, 20))
        per_line = con.execute("SELECT count(DISTINCT (source_file, source_line)) "
                               "FROM raw_products").fetchone()[0]
    assert report.rows_loaded == manifest.n_rows == per_line
    assert report.rows_rejected == 0


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_products"):
        generate_demo_catalog(tmp_path, n_products=0)
    with pytest.raises(ValueError, match="chunk_rows"):
        write_scaled_catalog(tmp_path, n_rows=10, chunk_rows=0)
    with pytest.raises(ValueError, match="image_pool"):
        write_scaled_catalog(tmp_path, n_rows=10, image_pool=0)
    assert not list(tmp_path.iterdir())


def test_scaled_writer_writes_the_requested_rows_in_chunks(tmp_path: Path) -> None:
    manifest = write_scaled_catalog(tmp_path / "a", n_rows=5000, image_pool=16, chunk_rows=1000)
    assert manifest.files == [tmp_path / "a" / SCALED_FILE]
    rows = read_rows(manifest.files)
    assert rows.columns[:-1] == list(COLUMNS)
    assert rows.height == manifest.n_rows == 5000
    with_id = rows.filter(pl.col("sku") != "")
    assert manifest.n_products == with_id["sku"].n_unique()
    assert manifest.n_superseded == with_id.height - with_id["sku"].n_unique() >= 140
    assert manifest.n_missing_id == rows.height - with_id.height
    assert manifest.n_empty_title == sum(is_empty_title(t) for t in rows["title"]) >= 45
    assert manifest.n_fullwidth_title == sum(bool(FULLWIDTH.search(t)) for t in rows["title"])
    assert manifest.n_html_description == sum(bool(HTML.search(d)) for d in rows["description"])
    assert manifest.n_no_image == (rows["image"] == "").sum()
    assert manifest.n_fullwidth_title >= 140 and manifest.n_html_description >= 480
    assert manifest.categories == sorted(rows["category_path"].unique().to_list())
    assert len(manifest.categories) >= 8

    # Newer versions follow their product in the file, with a later updated_at.
    versions = (with_id.with_columns(pl.col("updated_at").str.to_datetime())
                .group_by("sku", maintain_order=True)
                .agg(pl.len().alias("n"), pl.col("updated_at").first().alias("first"),
                     pl.col("updated_at").last().alias("last"))
                .filter(pl.col("n") > 1))
    assert versions.height == manifest.n_superseded and versions["n"].max() == 2
    assert (versions["last"] > versions["first"]).all()

    # Every row names one of the pool's real images, and the image shows the row's colour.
    pool = sorted(p.name for p in (tmp_path / "a" / "images").iterdir())
    assert pool == [f"pool_{k:03d}.png" for k in range(16)]
    for image, group in rows.filter(pl.col("image") != "").group_by("image"):
        colours = {attributes(a)["color"] for a in group["attributes"]}
        assert len(colours) == 1
        with Image.open(tmp_path / "a" / image[0]) as img:
            assert img.size == (64, 64)
            assert dominant_colour(img) == COLOR_RGB[colours.pop()]

    # The same arguments give a byte-identical catalog and the same manifest.
    again = write_scaled_catalog(tmp_path / "b", n_rows=5000, image_pool=16, chunk_rows=1000)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert again.n_superseded == manifest.n_superseded
    assert again.n_html_description == manifest.n_html_description
    # A partial last chunk still gives exactly the rows asked for.
    assert write_scaled_catalog(tmp_path / "c", n_rows=2345, image_pool=4,
                                chunk_rows=1000).n_rows == 2345
    assert read_rows([tmp_path / "c" / SCALED_FILE]).height == 2345


def test_library_does_not_import_dagster() -> None:
    code = ("import sys, tag_pipeline.lib.catalog.demo; "
            "sys.exit(any(m.split('.')[0] == 'dagster' for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0
