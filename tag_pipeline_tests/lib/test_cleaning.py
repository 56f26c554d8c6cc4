"""The SQL cleaning and label models, run for real in DuckDB over small literal catalogs."""

import csv
import io

from PIL import Image

from tag_pipeline.lib.catalog.chain import run_catalog_chain
from tag_pipeline_tests.support import HEADER, SQL_ROOT

COLUMNS = HEADER.split(",")


def catalog_csv(*records: dict) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({c: record.get(c, "") for c in COLUMNS})
    return out.getvalue()


def product(sku: str, **fields) -> dict:
    base = {"sku": sku, "title": f"Product {sku}", "category_path": "Apparel > Tops > Shirts"}
    return {**base, **fields}


def png(size: int = 64, colour=(200, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def build(write_catalog, con, files):
    profile = write_catalog(files)
    return run_catalog_chain(con, profile, SQL_ROOT), profile


def one(con, sql, *params):
    return con.execute(sql, list(params)).fetchone()


def test_text_is_normalised(write_catalog, con):
    records = [
        product("A", title="ＲＥＤ　Ｔ－ｓｈｉｒｔ  １２３",
                description="<p>Soft &amp; light</p><br/>cotton&nbsp;tee"),
        product("B", title="\ufeff红色  连衣裙"),
    ]
    build(write_catalog, con, {"a.csv": catalog_csv(*records)})
    assert one(con, "SELECT title, description FROM cleaned_products WHERE product_id = 'A'") == (
        "RED T-shirt 123", "Soft & light cotton tee")
    assert one(con, "SELECT title FROM cleaned_products WHERE product_id = 'B'") == ("红色 连衣裙",)


def test_language_detection(write_catalog, con):
    records = [product("zh", title="红色条纹纯棉T恤 修身"), product("en", title="Red Cotton Shirt"),
               product("mixed", title="Nike 红色 Running Sneakers 运动鞋"),
               product("other", title="12345 !!")]
    build(write_catalog, con, {"a.csv": catalog_csv(*records)})
    got = dict(con.execute("SELECT product_id, text_lang FROM cleaned_products").fetchall())
    assert got == {"zh": "zh", "en": "en", "mixed": "mixed", "other": "other"}


def test_latest_version_wins_and_rest_superseded(write_catalog, con):
    first = catalog_csv(product("A", title="Old", updated_at="2026-11-01T00:00:00"),
                        product("B", title="Only"))
    second = catalog_csv(product("A", title="New", updated_at="2026-11-05T00:00:00"),
                         product("A", title="Older", updated_at="2026-10-01T00:00:00"))
    build(write_catalog, con, {"a.csv": first, "b.csv": second})
    assert one(con, "SELECT title FROM cleaned_products WHERE product_id = 'A'") == ("New",)
    assert one(con, "SELECT count(*) FROM stg_products WHERE row_status = 'superseded'") == (2,)


def test_rejections_have_reasons_and_accounting_holds(write_catalog, con):
    records = [product("A"), product("", title="no id"), product("B", title="  <br/> "),
               product("C", title="x" * 3000), product("D" * 300)]
    bad_line = "E,too,many,columns,a,b,c,d,e,f,g,h\n"
    build(write_catalog, con, {"a.csv": catalog_csv(*records) + bad_line})
    assert sorted(r[0] for r in con.execute(
        "SELECT reject_reason FROM rejected_products").fetchall()) == sorted(
        ["missing_id", "empty_title", "title_too_long", "id_too_long", "malformed_line"])
    raw, parse, cleaned, rejected, superseded, accounted = one(
        con, "SELECT raw_rows, parse_rejected, cleaned, rejected, superseded, accounted "
             "FROM row_accounting")
    assert (raw, parse, cleaned, rejected, superseded) == (6, 1, 1, 4, 0)
    assert accounted == raw
    detail = one(con, "SELECT detail FROM rejected_products WHERE reject_reason = "
                      "'title_too_long'")[0]
    assert "3000 characters (max 2000)" in detail


def test_prices_are_normalised(write_catalog, con):
    records = [product("a", price="¥199.00"), product("b", price="1,299元"),
               product("c", price="$29.99"), product("d", price="￥２９９"),
               product("e", price="RMB 1,299"), product("f", price="")]
    build(write_catalog, con, {"a.csv": catalog_csv(*records)})
    got = dict((r[0], (r[1], r[2])) for r in con.execute(
        "SELECT product_id, price, currency FROM cleaned_products").fetchall())
    assert got == {"a": (199.0, "CNY"), "b": (1299.0, "CNY"), "c": (29.99, "USD"),
                   "d": (299.0, "CNY"), "e": (1299.0, "CNY"), "f": (None, None)}


def test_images_flagged_not_rejected_and_never_read_outside(write_catalog, con, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png())
    records = [product("ok", image="images/ok.png"), product("tiny", image="images/tiny.png"),
               product("bad", image="images/bad.png"), product("gone", image="images/gone.png"),
               product("escape", image="../secret.png"),
               product("passwd", image="../../../../../../etc/passwd"),
               product("abs", image=str(secret)), product("remote", image="http://x/y.png"),
               product("noimg", image="")]
    files = {"a.csv": catalog_csv(*records), "images/ok.png": png(),
             "images/tiny.png": png(8), "images/bad.png": b"\x89PNG garbage"}
    result, _ = build(write_catalog, con, files)
    got = dict((r[0], r[1]) for r in con.execute(
        "SELECT product_id, image_status FROM cleaned_products").fetchall())
    assert got == {"ok": "ok", "tiny": "too_small", "bad": "corrupt", "gone": "missing",
                   "escape": "outside_root", "passwd": "outside_root", "abs": "outside_root",
                   "remote": "unsupported", "noimg": "none"}
    assert one(con, "SELECT count(*) FROM image_checks WHERE image_path IS NOT NULL") == (1,)
    # only the three files inside the image folder were hashed, nothing outside it
    assert result.images.hashed == 3


def test_image_verification_is_cached_by_content(write_catalog, con, tmp_path):
    files = {"a.csv": catalog_csv(product("x", image="images/x.png"),
                                  product("y", image="images/y.png")),
             "images/x.png": png(), "images/y.png": png()}
    result, profile = build(write_catalog, con, files)
    assert (result.images.hashed, result.images.decoded) == (2, 1)  # same content, one decode
    again = run_catalog_chain(con, profile, SQL_ROOT)
    assert (again.images.hashed, again.images.decoded) == (0, 0)


def test_label_shapes(write_catalog, con):
    records = [product("A", title="Solid Slim Fit shirt", category_path="Apparel > Tops > Shirts",
                       attributes="color: Red; gender: Men; warehouse: WH3",
                       occasions="Summer|Party", brand="Acme"),
               product("B", title="纯色修身连衣裙 Solidarity", category_path="Apparel > Dresses",
                       attributes="Color:Blue", occasions="", brand="")]
    build(write_catalog, con, {"a.csv": catalog_csv(*records)})
    labels = set(con.execute(
        "SELECT product_id, tag, tag_type, facet, parent, level FROM product_labels").fetchall())
    assert labels == {
        ("A", "Apparel", "category", "l1", None, 1), ("A", "Tops", "category", "l2", "Apparel", 2),
        ("A", "Shirts", "category", "l3", "Tops", 3),
        ("A", "Red", "attribute", "color", None, 1), ("A", "Men", "attribute", "gender", None, 1),
        ("A", "Acme", "attribute", "brand", None, 1),
        ("A", "Summer", "scene", "occasions", None, 1),
        ("A", "Party", "scene", "occasions", None, 1),
        ("A", "Solid", "style", "style", None, 1), ("A", "Slim Fit", "style", "style", None, 1),
        ("B", "Apparel", "category", "l1", None, 1),
        ("B", "Dresses", "category", "l2", "Apparel", 2),
        ("B", "Blue", "attribute", "Color", None, 1),
        ("B", "Solid", "style", "style", None, 1), ("B", "Slim Fit", "style", "style", None, 1),
    }
    taxonomy = dict(((r[0], r[1]), r[2]) for r in con.execute(
        "SELECT tag, facet, product_count FROM tag_taxonomy").fetchall())
    assert taxonomy[("Apparel", "l1")] == 2 and taxonomy[("Tops", "l2")] == 1


def test_lexicon_needles_match_the_sql_text_preparation(con):
    from tag_pipeline.lib.catalog.rules import term_needle
    from tag_pipeline.lib.sql import prepare_connection

    prepare_connection(con, SQL_ROOT)
    cases = [("Slim-Fit shirt", "slim fit", True), ("Solidarity tee", "solid", False),
             ("纯色修身连衣裙", "修身", True), ("SOLID纯色", "solid", True),
             ("T恤 修 身", "修身", False), ("slimfit", "slim fit", False)]
    for text, term, hit in cases:
        script, needle = term_needle(term)
        prepared = con.execute("SELECT CASE ? WHEN 'han' THEN lower(?) ELSE latin_match_text(?) "
                               "END", [script, text, text]).fetchone()[0]
        assert (needle in prepared) is hit, (text, term, prepared)


def test_a_hostile_catalog_loses_no_line_and_gives_each_defect_its_reason(write_catalog, con):
    # every defect class of the README's "Bad input" list at the start, the middle and the end
    # of a file of more than 25,000 lines (past DuckDB's sniffer sample), with line breaks
    # mixed: nothing fatal, every line accounted for, each bad one with its reason
    n = 26_000
    ok = png()

    def good(i: int) -> dict:
        return product(f"P{i}", title=f"Red cotton shirt {i}")

    def line(record: dict) -> bytes:
        return catalog_csv(record).split("\n", 1)[1].rstrip("\n").encode()

    defects = {  # defect -> (the line's bytes, where it ends up, reason)
        "bad_quote": (b'"Q0","Unclosed quote shirt,"Apparel > Tops","red",""', "parse",
                      "malformed_line"),
        "too_many_fields": (b"E0,a,b,c,d,e,f,g,h,i,j,k,l", "parse", "malformed_line"),
        "invalid_utf8": (b"U0,Caf\xe9 \xff shirt,,,,,Apparel > Tops > Shirts,,,", "parse",
                         "invalid_encoding"),
        "missing_id": (line(product("", title="no id")), "clean", "missing_id"),
        "empty_title": (line(product("T0", title="  <br/> ")), "clean", "empty_title"),
        "title_too_long": (line(product("L0", title="x" * 3000)), "clean", "title_too_long"),
        "id_too_long": (line(product("I" * 300)), "clean", "id_too_long"),
    }
    flagged = {  # loaded and cleaned, the image flagged and never opened
        "outside_root": line(product("O0", image="../../../../etc/passwd")),
        "sql_in_id": line(product("x'); DROP TABLE raw_products; --")),
    }
    kinds = list(defects) + list(flagged)
    places = {"start": 2, "middle": n // 2, "end": n - len(kinds) + 1}
    lines, expected = [HEADER.encode()], {}
    i = 0
    while len(lines) < n:
        at = len(lines) + 1  # the line number this one will have
        where = next((w for w, first in places.items() if first <= at < first + len(kinds)),
                     None)
        if where is None:
            i += 1
            lines.append(line(good(i)))
            continue
        kind = kinds[at - places[where]]
        raw = defects[kind][0] if kind in defects else flagged[kind]
        # each copy gets its own id, so none supersedes another
        raw = raw.replace(b"0,", f"{where[0]}{at},".encode(), 1) if kind not in (
            "missing_id", "id_too_long", "sql_in_id") else raw
        lines.append(raw)
        expected[at] = kind
    ends = (b"\n", b"\r\n", b"\n", b"\r")
    body = b"".join(text + ends[k % len(ends)] for k, text in enumerate(lines))
    result, _ = build(write_catalog, con, {"hostile.csv": body, "images/ok.png": ok})

    raw_rows, parse, cleaned, rejected, superseded, accounted = one(
        con, "SELECT raw_rows, parse_rejected, cleaned, rejected, superseded, accounted "
             "FROM row_accounting")
    assert raw_rows == n - 1 == accounted  # every data line, the header aside
    got = dict(con.execute("SELECT source_line, reject_reason FROM rejected_products"
                           ).fetchall())
    want = {at: defects[kind][2] for at, kind in expected.items() if kind in defects}
    assert got == want
    assert parse == sum(1 for at, kind in expected.items()
                        if kind in defects and defects[kind][1] == "parse")
    # the sql_in_id product twice over the file (start, middle, end) is one product, two
    # versions superseded; no other line superseded any
    assert superseded == 2
    assert rejected == len(want) - parse
    assert cleaned == n - 1 - len(want) - superseded
    statuses = dict(con.execute(
        "SELECT product_id, image_status FROM cleaned_products WHERE product_id LIKE 'O%' "
        "AND image_status <> 'none'").fetchall())
    assert set(statuses.values()) == {"outside_root"} and len(statuses) == 3
    assert one(con, "SELECT count(*) FROM cleaned_products WHERE product_id = "
                    "'x''); DROP TABLE raw_products; --'") == (1,)
    assert one(con, "SELECT count(*) FROM raw_products")[0] == n - 1 - parse
    assert result.images.hashed == 0  # /etc/passwd was never read
