import json
from datetime import datetime

import polars as pl
import pytest

from tag_pipeline.lib.catalog.ingest import ingest_catalog
from tag_pipeline.lib.catalog.profile import ProfileError
from tag_pipeline_tests.support import HEADER

T0 = datetime(2026, 11, 1, 8, 0, 0)


def rows(con, sql):
    return con.execute(sql).fetchall()


def csv_text(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


GOOD = "P1,Red Shirt,Nice,images/P1.png,¥10,2026-11-01T00:00:00,A > B > C,color: Red,Summer,Acme"


def test_csv_rows_keep_file_line_and_load(write_catalog, con):
    profile = write_catalog({"a.csv": csv_text(GOOD, GOOD.replace("P1", "P2"))})
    report = ingest_catalog(con, profile, T0, run_id="r1")
    assert report.rows_loaded == 2 and report.files[0].status == "new"
    got = rows(con, "SELECT source_file, source_line, product_id, title, loaded_at "
                    "FROM raw_products ORDER BY source_line")
    assert got == [("a.csv", 2, "P1", "Red Shirt", T0), ("a.csv", 3, "P2", "Red Shirt", T0)]
    fields = rows(con, "SELECT tag_fields['attributes'] FROM raw_products LIMIT 1")
    assert fields == [("color: Red",)]


def test_rerun_loads_nothing_and_changed_file_only_it(write_catalog, con, tmp_path):
    profile = write_catalog({"a.csv": csv_text(GOOD), "b.csv": csv_text(GOOD.replace("P1", "P9"))})
    ingest_catalog(con, profile, T0)
    again = ingest_catalog(con, profile, T0)
    assert [f.status for f in again.files] == ["unchanged", "unchanged"]
    assert rows(con, "SELECT count(*) FROM raw_products") == [(2,)]
    (tmp_path / "data" / "b.csv").write_text(
        csv_text(GOOD.replace("P1", "P9").replace("Red Shirt", "Blue Shirt")), encoding="utf-8")
    changed = ingest_catalog(con, profile, T0)
    assert {f.source_file: f.status for f in changed.files} == {"a.csv": "unchanged",
                                                               "b.csv": "changed"}
    assert changed.rows_loaded == 1
    assert rows(con, "SELECT count(*) FROM ingest_files") == [(3,)]


def test_same_content_under_new_name_is_not_loaded_twice(write_catalog, con, tmp_path):
    profile = write_catalog({"a.csv": csv_text(GOOD)})
    ingest_catalog(con, profile, T0)
    (tmp_path / "data" / "copy.csv").write_text(csv_text(GOOD), encoding="utf-8")
    report = ingest_catalog(con, profile, T0)
    assert {f.source_file: f.status for f in report.files}["copy.csv"] == "duplicate_content"
    assert rows(con, "SELECT count(*) FROM raw_products") == [(1,)]


def test_malformed_lines_and_invalid_utf8_are_quarantined_with_line(write_catalog, con):
    data = (HEADER + "\n" + GOOD + "\n"
            + "P2,too,many,columns,here,x,y,z,w,v,u,extra\n").encode()
    data += "P3,Caf\xe9 title,d,,,,A,,,\n".encode("latin-1")
    data += (GOOD.replace("P1", "P4") + "\n").encode()
    profile = write_catalog({"bad.csv": data})
    report = ingest_catalog(con, profile, T0)
    assert report.rows_loaded == 2 and report.rows_rejected == 2
    rejects = rows(con, "SELECT source_line, error_type FROM raw_product_rejects ORDER BY 1")
    assert rejects == [(3, "malformed_line"), (4, "invalid_encoding")]
    # accepted rows keep their true line numbers around the rejected ones
    assert rows(con, "SELECT product_id, source_line FROM raw_products ORDER BY 2") == [
        ("P1", 2), ("P4", 5)]


BAD_QUOTE = '"M0","Unclosed quote shirt,"Apparel","red",""'


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_one_badly_quoted_line_costs_only_itself_wherever_it_sits(write_catalog, con, where):
    # DuckDB's dialect sniffing reads the first ~20,000 lines: a bad line there used to make
    # the whole file unreadable. The columns now come from the header, the dialect from the
    # profile, so the line is quarantined as itself at any position.
    n = 26_000
    at = {"start": 1, "middle": n // 2, "end": n}[where]
    lines = [GOOD.replace("P1", f"P{i}") for i in range(1, n + 1)]
    lines.insert(at - 1, BAD_QUOTE)
    profile = write_catalog({"big.csv": csv_text(*lines)})
    report = ingest_catalog(con, profile, T0)
    assert report.rows_loaded == n and report.rows_rejected == 1
    bad_line = at + 1  # the header is line 1
    assert rows(con, "SELECT source_line, error_type FROM raw_product_rejects") == [
        (bad_line, "malformed_line")]
    # every other line is loaded with its own line number
    loaded = {r[0] for r in rows(con, "SELECT source_line FROM raw_products")}
    assert loaded == set(range(2, n + 3)) - {bad_line}


def mix_line_breaks(text: str) -> bytes:
    """The text's lines ending, in turn, in \\r\\n, \\n and a lone \\r."""
    lines = text.encode("utf-8").split(b"\n")
    ends = (b"\r\n", b"\n", b"\r")
    return b"".join(line + ends[i % 3] for i, line in enumerate(lines[:-1])) + lines[-1]


def test_mixed_line_breaks_cost_no_line_and_keep_their_numbers(write_catalog, con):
    # DuckDB takes one line break per file: mixed ones used to fail the whole file. Such a
    # file is read through a copy with one kind, line for line.
    n = 26_000
    lines = [GOOD.replace("P1", f"P{i}") for i in range(1, n + 1)]
    lines.insert(n // 2 - 1, BAD_QUOTE)
    profile = write_catalog({"mixed.csv": mix_line_breaks(csv_text(*lines))})
    report = ingest_catalog(con, profile, T0)
    assert report.rows_loaded == n and report.rows_rejected == 1
    assert rows(con, "SELECT source_line, error_type FROM raw_product_rejects") == [
        (n // 2 + 1, "malformed_line")]
    loaded = {r[0] for r in rows(con, "SELECT source_line FROM raw_products")}
    assert loaded == set(range(2, n + 3)) - {n // 2 + 1}
    assert rows(con, "SELECT count(*) FROM raw_products WHERE title LIKE '%' || chr(13) || '%'"
                ) == [(0,)]


def test_a_header_without_names_is_a_profile_error_naming_the_file(write_catalog, con):
    profile = write_catalog({"a.csv": "\n" + GOOD + "\n"})
    with pytest.raises(ProfileError, match=r"a\.csv.*line 1 is empty"):
        ingest_catalog(con, profile, T0)


def test_missing_column_is_a_clear_schema_error(write_catalog, con):
    profile = write_catalog({"a.csv": "sku,title\nP1,x\n"})
    with pytest.raises(ProfileError) as err:
        ingest_catalog(con, profile, T0)
    message = str(err.value)
    assert "profile 'shop'" in message and "a.csv" in message
    assert "'description'" in message and "columns.description" in message
    assert rows(con, "SELECT count(*) FROM raw_products") == [(0,)]
    assert rows(con, "SELECT count(*) FROM ingest_files") == [(0,)]


def test_jsonl_with_bad_lines(write_catalog, con):
    good = {"sku": "J1", "title": "红色 连衣裙", "description": "", "image": "", "price": "",
            "updated_at": "", "category_path": "A > B", "attributes": "", "occasions": "",
            "brand": "X"}
    lines = [json.dumps(good, ensure_ascii=False), "{not json", "[1, 2]", "",
             json.dumps({**good, "sku": "J2"}, ensure_ascii=False)]
    profile = write_catalog({"a.jsonl": "\n".join(lines) + "\n"})
    report = ingest_catalog(con, profile, T0)
    assert report.rows_loaded == 2 and report.rows_rejected == 2
    assert rows(con, "SELECT product_id, source_line, title FROM raw_products ORDER BY 2") == [
        ("J1", 1, "红色 连衣裙"), ("J2", 5, "红色 连衣裙")]
    assert rows(con, "SELECT source_line, error_message FROM raw_product_rejects ORDER BY 1") == [
        (2, "not valid JSON"), (3, "JSON value is ARRAY, expected an object")]


def test_parquet_is_read_with_row_numbers(write_catalog, con, tmp_path):
    frame = pl.DataFrame({c: ["v1", "v2"] for c in HEADER.split(",")}).with_columns(
        sku=pl.Series(["Q1", "Q2"]), price=pl.Series([9.5, 10.0]))
    write_catalog({})
    frame.write_parquet(tmp_path / "data" / "p.parquet")
    profile = write_catalog({})
    ingest_catalog(con, profile, T0)
    assert rows(con, "SELECT product_id, source_line, price_raw FROM raw_products ORDER BY 2") == [
        ("Q1", 1, "9.5"), ("Q2", 2, "10.0")]


def test_sql_metacharacters_stay_data(write_catalog, con):
    evil_id = "x'); DROP TABLE raw_products; --"
    line = GOOD.replace("P1", '"' + evil_id + '"')
    profile = write_catalog({"a.csv": csv_text(line)})
    ingest_catalog(con, profile, T0)
    assert rows(con, "SELECT product_id FROM raw_products") == [(evil_id,)]


def test_one_megabyte_title_is_loaded_not_crashing(write_catalog, con):
    line = GOOD.replace("Red Shirt", "x" * 1_000_000)
    profile = write_catalog({"a.csv": csv_text(line, GOOD.replace("P1", "P2"))})
    report = ingest_catalog(con, profile, T0)
    assert report.rows_loaded == 2
    assert rows(con, "SELECT max(length(title)) FROM raw_products") == [(1_000_000,)]


def test_no_matching_file_is_a_profile_error(write_catalog, con):
    profile = write_catalog({"notes.txt": "nothing to load"})
    with pytest.raises(ProfileError, match=r"key 'source.files' .* matches no file under"):
        ingest_catalog(con, profile, T0)
