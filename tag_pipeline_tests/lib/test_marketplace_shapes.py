"""Marketplace export shapes loaded by a profile with no preprocessing, checked to the labels.

The fixtures are of our own making, in the shapes real marketplace exports come in: no header
line, tab-separated and gzip-compressed, category trees wrapped as JSON arrays with uneven
depth and the product's name as the last level, specifications as lists of {key, value}
objects in JSON or Ruby's '=>' hash syntax, and time stamps with a '+0000' offset. The same
profiles with a mistake are caught by ``profile check`` with a message that says what to
change.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from tag_pipeline.lib.catalog.chain import run_catalog_chain
from tag_pipeline.lib.catalog.inspect import ERROR, WARNING, inspect_profile
from tag_pipeline.lib.catalog.profile import ProfileError, load_profile
from tag_pipeline_tests.support import SQL_ROOT

COLUMNS = ["uniq_id", "crawl_timestamp", "product_name", "product_category_tree",
           "retail_price", "product_specifications"]

# (category path without the product-name leaf, name, specifications as (key, value) pairs)
PRODUCTS = [
    (["Clothing", "Women's Clothing", "Sports Wear", "Shorts"],
     "Alisha Solid Women's Cycling Shorts",
     [("Fabric", "Cotton Lycra"), ("Ideal For", "Women, Girls"), ("Pattern", "Solid")]),
    (["Clothing", "Men's Clothing", "Shirts"], "Roadster Men's Checked Casual Shirt",
     [("Fabric", "Cotton"), ("ideal for", "Men"), ("Pattern", "Checked")]),
    (["Footwear", "Women's Footwear"], "Bata Women's Red Sandals",
     [("Outer Material", "Synthetic"), ("Ideal  For", "Women")]),
    (["Watches"], "Titan Analog Watch for Men",
     [("Strap Material", "Leather"), ("Ideal For", "Men")]),
]


def spec_hash(pairs, with_keyless: bool = True) -> str:
    """Specifications in Ruby's hash syntax, as one marketplace export writes them (a first
    entry without a key, and a nil value, included)."""
    items = ['{"value"=>"Ships in 2 days"}'] if with_keyless else []
    items += [f'{{"key"=>"{k}", "value"=>"{v}"}}' for k, v in pairs]
    items.append('{"key"=>"Color", "value"=>nil}')
    return '{"product_specification"=>[' + ", ".join(items) + "]}"


def spec_json(pairs) -> str:
    return json.dumps({"product_specification": [{"key": k, "value": v} for k, v in pairs]})


def export_rows(n: int) -> list[list[str]]:
    """``n`` products cycling through PRODUCTS, each with its own name (the leaf)."""
    rows = []
    for i in range(n):
        path, name, pairs = PRODUCTS[i % len(PRODUCTS)]
        name = f"{name} {i}"
        tree = json.dumps([" >> ".join([*path, name])])
        spec = spec_hash(pairs) if i % 2 == 0 else spec_json(pairs)
        stamp = f"2016-03-{1 + i % 28:02d} 22:59:23 +0000"
        rows.append([f"p{i:04d}", stamp, name, tree, str(100 + i), spec])
    return rows


def tsv(rows: list[list[str]]) -> str:
    return "".join("\t".join(r) + "\n" for r in rows)


PROFILE = {
    "name": "market",
    "root": "data",
    "source": {"files": "*.tsv.gz", "header": False, "column_names": COLUMNS},
    "columns": {"id": "uniq_id", "title": "product_name", "price": "retail_price",
                "updated_at": "crawl_timestamp"},
    "tags": [
        {"name": "category", "column": "product_category_tree", "type": "category",
         "shape": "path", "separator": " >> ", "level_names": ["category_l1", "category_l2"],
         "max_depth": 3, "max_single_product_share": 0.5},
        {"name": "spec", "column": "product_specifications", "type": "attribute",
         "shape": "attributes", "keys": ["Fabric", "Ideal For", "Outer Material"],
         "key_synonyms": {"Ideal For": "gender", "Outer Material": "fabric"},
         "value_separator": ",", "values": {"girls": "Women"}},
    ],
}


def write(tmp_path: Path, rows: list[list[str]], profile: dict = PROFILE,
          name: str = "export.tsv.gz") -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    with gzip.open(data / name, "wt", encoding="utf-8") as handle:
        handle.write(tsv(rows))
    path = tmp_path / "market.yaml"
    path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    return path


def labels(con) -> set[tuple]:
    return set(con.execute("SELECT product_id, facet, tag, parent FROM product_labels"
                           ).fetchall())


def test_a_headerless_gzipped_tsv_export_loads_to_the_right_labels(tmp_path, con):
    rows = export_rows(40)
    profile = load_profile(str(write(tmp_path, rows)), {})
    result = run_catalog_chain(con, profile, SQL_ROOT, check_images=False)
    assert result.ingest.rows_loaded == 40 and result.ingest.rows_rejected == 0
    # every line is data: the first product is line 1
    assert con.execute("SELECT source_line FROM raw_products WHERE product_id = 'p0000'"
                       ).fetchone() == (1,)
    got = labels(con)
    # the JSON array is unwrapped, the product-name leaf dropped, depth capped at 3
    assert {("p0000", "category_l1", "Clothing", None),
            ("p0000", "category_l2", "Women's Clothing", "Clothing"),
            ("p0000", "category_l3", "Sports Wear", "Women's Clothing")} <= got
    assert not any(f == "category_l4" or t.startswith(("[", '"')) or t.endswith(("]", '"'))
                   for _, f, t, _ in got)
    # a two-level path keeps its category and loses only the name; a one-level one likewise
    assert {(f, t) for p, f, t, _ in got if p == "p0003" and f.startswith("category")} == {
        ("category_l1", "Watches")}
    assert {(f, t) for p, f, t, _ in got if p == "p0002" and f.startswith("category")} == {
        ("category_l1", "Footwear"), ("category_l2", "Women's Footwear")}
    # specifications: '=>' and JSON alike, keys folded and mapped, values split and mapped;
    # the keyless first entry and the nil value give nothing, and nothing is lost before them
    spec = {(p, f, t) for p, f, t, _ in got if f.startswith("spec.")}
    assert {("p0000", "spec.fabric", "Cotton Lycra"), ("p0000", "spec.gender", "Women"),
            ("p0001", "spec.fabric", "Cotton"), ("p0001", "spec.gender", "Men"),
            ("p0002", "spec.fabric", "Synthetic"), ("p0002", "spec.gender", "Women"),
            ("p0003", "spec.gender", "Men")} <= spec
    assert {f for _, f, _ in spec} == {"spec.fabric", "spec.gender"}  # keys: kept only these
    assert len({(p, f) for p, f, t in spec if p == "p0000"}) == 2  # Women, Girls -> Women
    # '+0000' time stamps are understood, as UTC
    assert con.execute("SELECT updated_at FROM cleaned_products WHERE product_id = 'p0001'"
                       ).fetchone() == (datetime(2016, 3, 2, 22, 59, 23),)
    assert con.execute("SELECT sum(updated_at_unparsed) FROM row_accounting").fetchone() == (0,)


def test_several_paths_in_one_json_array_each_give_their_tags(tmp_path, con):
    rows = export_rows(12)
    rows[0][3] = json.dumps(["Clothing >> Women's Clothing >> A 0",
                             "Clothing >> Sale >> Clearance >> A 0"])
    profile = load_profile(str(write(tmp_path, rows)), {})
    run_catalog_chain(con, profile, SQL_ROOT, check_images=False)
    mine = {(f, t) for p, f, t, _ in labels(con) if p == "p0000" and f.startswith("category")}
    assert mine == {("category_l1", "Clothing"), ("category_l2", "Women's Clothing"),
                    ("category_l2", "Sale"), ("category_l3", "Clearance")}


def test_extra_levels_are_named_after_the_rule_and_mostly_unique_levels_drop(tmp_path, con):
    rows = export_rows(40)
    profile = dict(PROFILE, tags=[dict(PROFILE["tags"][0], max_depth=None,
                                       max_single_product_share=None)])
    run_catalog_chain(con, load_profile(str(write(tmp_path, rows, profile)), {}), SQL_ROOT,
                      check_images=False)
    facets = {f for _, f, _, _ in labels(con)}
    # past level_names: <name>_l<i>; without the threshold the leaf names are kept (and
    # profile check says so, see below)
    assert {"category_l1", "category_l2", "category_l3", "category_l4", "category_l5"} <= facets


def test_unparsed_time_stamps_are_counted_per_file_never_silently_null(tmp_path, con):
    rows = export_rows(10)
    rows[3][1] = "25/03/2016"
    rows[5][1] = "last tuesday"
    rows[6][1] = "1458946763"          # epoch seconds
    rows[7][1] = "2016-03-25T22:59:23Z"
    rows[8][1] = "2016-03-25 22:59:23 -0500"
    run_catalog_chain(con, load_profile(str(write(tmp_path, rows)), {}), SQL_ROOT,
                      check_images=False)
    assert con.execute("SELECT source_file, updated_at_unparsed FROM row_accounting"
                       ).fetchall() == [("export.tsv.gz", 2)]
    stamps = dict(con.execute("SELECT product_id, updated_at FROM cleaned_products").fetchall())
    assert stamps["p0003"] is None and stamps["p0005"] is None
    assert stamps["p0006"] == datetime(2016, 3, 25, 22, 59, 23)
    assert stamps["p0007"] == datetime(2016, 3, 25, 22, 59, 23)
    assert stamps["p0008"] == datetime(2016, 3, 26, 3, 59, 23)


def test_a_plain_tsv_with_a_header_and_a_bad_line_costs_only_that_line(tmp_path, con):
    rows = export_rows(8)
    data = tmp_path / "data"
    data.mkdir()
    lines = ["\t".join(COLUMNS)] + ["\t".join(r) for r in rows]
    lines[4] = "p9999\tonly two fields"
    (data / "export.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    profile = dict(PROFILE, source={"files": "*.tsv"})
    path = tmp_path / "market.yaml"
    path.write_text(yaml.safe_dump(profile), encoding="utf-8")
    result = run_catalog_chain(con, load_profile(str(path), {}), SQL_ROOT, check_images=False)
    assert (result.ingest.rows_loaded, result.ingest.rows_rejected) == (7, 1)
    assert con.execute("SELECT source_line FROM raw_product_rejects").fetchall() == [(5,)]


@pytest.mark.parametrize("source, message", [
    ({"files": "*.tsv.gz", "header": False}, "'source.column_names' must list"),
    ({"files": "*.tsv.gz", "column_names": COLUMNS}, "only read when 'source.header' is false"),
    ({"files": "*.tsv.gz", "header": "no", "column_names": COLUMNS}, "'source.header' must be"),
    ({"files": "*.tsv.gz", "header": False, "column_names": ["a", "A"]}, "names ['a'] twice"),
])
def test_header_settings_are_validated(tmp_path, source, message):
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_profile(str(write(tmp_path, export_rows(2), dict(PROFILE, source=source))), {})


@pytest.mark.parametrize("key, value, message", [
    ("max_depth", 0, "max_depth' must be a positive integer"),
    ("max_single_product_share", 1.5, "max_single_product_share' must be a number"),
])
def test_path_settings_are_validated(tmp_path, key, value, message):
    profile = dict(PROFILE, tags=[dict(PROFILE["tags"][0], **{key: value})])
    with pytest.raises(ProfileError, match=message):
        load_profile(str(write(tmp_path, export_rows(2), profile)), {})


def check(tmp_path: Path, profile: dict, rows=None):
    path = write(tmp_path, export_rows(40) if rows is None else rows, profile)
    return inspect_profile(lambda: load_profile(str(path), {}), SQL_ROOT, check_images=False)


def test_profile_check_passes_the_right_profile_and_shows_the_labels(tmp_path):
    report = check(tmp_path, PROFILE)
    assert report.errors == [] and report.warnings == []
    assert report.products == 40
    facets = {r["facet"]: r for r in report.facets.iter_rows(named=True)}
    assert set(facets) == {"category_l1", "category_l2", "category_l3", "spec.fabric",
                           "spec.gender"}
    assert facets["category_l1"]["examples"].startswith("Clothing (20)")
    assert ("columns.updated_at", "crawl_timestamp") in report.column_map


def only(report, level, where_part):
    found = [f for f in report.findings if f.level == level and where_part in f.where]
    assert found, [f.line() for f in report.findings]
    return found[0].message


def test_profile_check_says_to_declare_a_missing_header(tmp_path):
    report = check(tmp_path, dict(PROFILE, source={"files": "*.tsv.gz"}))
    message = only(report, ERROR, "files")
    assert "source.header: false" in message and "source.column_names" in message


def test_profile_check_names_a_column_that_does_not_exist(tmp_path):
    profile = dict(PROFILE, columns=dict(PROFILE["columns"], title="name"))
    message = only(check(tmp_path, profile), ERROR, "files")
    assert "key 'columns.title' names column 'name'" in message


def test_profile_check_flags_a_product_name_leaf_and_says_which_key_fixes_it(tmp_path):
    profile = dict(PROFILE, tags=[dict(PROFILE["tags"][0], max_depth=None,
                                       max_single_product_share=None)])
    message = only(check(tmp_path, profile), WARNING, "tags[0] (category)")
    assert "are on one product only" in message and "max_single_product_share" in message


def test_profile_check_flags_quote_debris_of_a_wrapped_column_read_as_plain(tmp_path):
    profile = dict(PROFILE, tags=[{"name": "tree", "column": "product_category_tree",
                                   "type": "category"}])
    rows = export_rows(40)
    for r in rows:  # the tree without its leaf, so the facet is not also mostly unique
        r[3] = json.dumps([json.loads(r[3])[0].rsplit(" >> ", 1)[0]])
    message = only(check(tmp_path, profile, rows), WARNING, "tags[0] (tree)")
    assert "bracket or quote debris" in message and "shape: path" in message


def test_profile_check_flags_specifications_read_with_the_wrong_shape(tmp_path):
    profile = dict(PROFILE, tags=[{"name": "spec", "column": "product_specifications",
                                   "type": "attribute", "shape": "key_value",
                                   "pair_separator": ",", "kv_separator": "=>",
                                   "keys": ["Fabric"]}])
    message = only(check(tmp_path, profile), WARNING, "tags[0] (spec)")
    assert "gave no tag on any product" in message


def test_profile_check_flags_text_that_is_no_attribute_document(tmp_path):
    rows = export_rows(40)
    rows[4][5] = "Fabric: Cotton; Ideal For: Women"
    message = only(check(tmp_path, PROFILE, rows), WARNING, "tags[1] (spec)")
    assert "1 of 40 value(s)" in message and "shape: key_value" in message


def test_profile_check_flags_unparsed_time_stamps_with_an_example(tmp_path):
    rows = export_rows(40)
    rows[2][1] = "25/03/2016"
    message = only(check(tmp_path, PROFILE, rows), WARNING, "columns.updated_at")
    assert "'25/03/2016'" in message and "+0000" in message


def test_profile_check_command_exits_1_on_errors(tmp_path, monkeypatch, capsys):
    from tag_pipeline import cli

    monkeypatch.setenv("TAG_PIPELINE_HOME", str(tmp_path / "home"))
    good = write(tmp_path, export_rows(20))
    assert cli.main(["profile", "check", str(good), "--no-images"]) == 0
    out = capsys.readouterr().out
    assert "Labels per facet" in out and "0 error(s)" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(dict(PROFILE, source={"files": "*.tsv.gz"})), encoding="utf-8")
    assert cli.main(["profile", "check", str(bad), "--no-images"]) == 1
    assert "source.header: false" in capsys.readouterr().out


def test_a_raw_export_is_read_through_its_profile_for_tag_and_eval(tmp_path):
    from tag_pipeline.lib.cli.profile_file import ProfileFile

    rows = export_rows(12)
    rows[3][2] = ""                      # no title: rejected
    rows[5][0] = rows[4][0]              # a second version of p0004, older: superseded
    rows[5][1] = "2016-01-01 00:00:00 +0000"
    path = write(tmp_path, rows)
    profile = load_profile(str(path), {})
    with ProfileFile(profile, tmp_path / "data" / "export.tsv.gz") as products:
        assert products.rows == 10
        assert products.columns == ["product_id", "title"]  # no description or image here
        assert [(b.line, b.reason) for b in products.bad_rows] == [(4, "empty_title"),
                                                                  (6, "superseded")]
        assert "newer version on line 5" in products.bad_rows[1].detail
        batch = pl.concat(products.batches(4))
        assert batch["product_id"].to_list()[:3] == ["p0000", "p0001", "p0002"]
        assert batch["_line"].to_list()[:3] == [1, 2, 3]
        labels = products.labels()
        assert ("p0000", "attribute", "spec.gender", "Women") in labels.rows()


def test_other_exports_shapes_the_fixtures_do_not_use_load_too(tmp_path, con):
    """Shapes beyond the walk-through's: specifications as a plain JSON object with list
    values, {name, value} entries, several wrapper keys absent, a JSON Lines file, a path
    that is not wrapped at all, and time stamps with Z, +05:30 and epoch milliseconds."""
    data = tmp_path / "data"
    data.mkdir()
    records = [
        {"id": "a1", "name": "Red Cotton Kurta", "tree": '["Clothing >> Kurtas >> Red Kurta a1"]',
         "spec": json.dumps({"Fabric": "Cotton", "Ideal For": ["Women", "Girls"]}),
         "ts": "2016-03-25T22:59:23Z"},
        {"id": "a2", "name": "Blue Linen Shirt", "tree": "Clothing >> Shirts >> Blue Shirt a2",
         "spec": json.dumps([{"name": "FABRIC", "value": "Linen"},
                             {"name": "ideal-for", "value": "Men"}]),
         "ts": "2016-03-25 22:59:23+05:30"},
        {"id": "a3", "name": "Black Watch", "tree": '["Watches >> Black Watch a3"]',
         "spec": '{"Strap"=>"Leather", "Ideal For"=>"Men", "Warranty"=>nil}',
         "ts": "1458946763000"},
    ]
    # more products in the same categories, so the levels above the names are shared
    records += [{"id": f"b{i}", "name": f"Kurta {i}", "ts": "2016-01-01",
                 "tree": json.dumps([f"Clothing >> {leaf} >> Item b{i}"])}
                for i, leaf in enumerate(["Kurtas", "Shirts"])]
    (data / "shop.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records),
                                     encoding="utf-8")
    profile = {
        "name": "other", "root": "data", "source": {"files": "*.jsonl"},
        "columns": {"id": "id", "title": "name", "updated_at": "ts"},
        "tags": [
            {"name": "cat", "column": "tree", "type": "category", "shape": "path",
             "separator": " >> ", "max_single_product_share": 0.5},
            {"name": "spec", "column": "spec", "type": "attribute", "shape": "attributes",
             "key_synonyms": {"ideal for": "gender"}, "values": {"girls": "Women"}},
        ],
    }
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(profile), encoding="utf-8")
    run_catalog_chain(con, load_profile(str(path), {}), SQL_ROOT, check_images=False)
    got = {(p, f, t) for p, f, t, _ in labels(con) if p.startswith("a")}
    assert got == {
        ("a1", "cat_l1", "Clothing"), ("a1", "cat_l2", "Kurtas"),
        ("a1", "spec.fabric", "Cotton"), ("a1", "spec.gender", "Women"),
        ("a2", "cat_l1", "Clothing"), ("a2", "cat_l2", "Shirts"),
        ("a2", "spec.fabric", "Linen"), ("a2", "spec.gender", "Men"),
        ("a3", "cat_l1", "Watches"),
        ("a3", "spec.strap", "Leather"), ("a3", "spec.gender", "Men"),
    }
    stamps = dict(con.execute("SELECT product_id, updated_at FROM cleaned_products "
                              "WHERE product_id LIKE 'a%'").fetchall())
    assert stamps == {"a1": datetime(2016, 3, 25, 22, 59, 23),
                      "a2": datetime(2016, 3, 25, 17, 29, 23),
                      "a3": datetime(2016, 3, 25, 22, 59, 23)}
