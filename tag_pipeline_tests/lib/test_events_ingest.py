"""Event ingestion and pseudonymisation on real DuckDB files in tmp_path."""

import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from tag_pipeline.lib.events import (
    EventIngestError,
    PseudonymKeyError,
    ingest_events,
    load_key,
    pseudonymise,
    register_pseudonym_function,
    unknown_products,
)

KEY = b"test-pseudonym-key-0123456789"
OTHER_KEY = b"another-pseudonym-key-987654321"
T0 = datetime(2026, 11, 12, 8, 0, 0)
T1 = datetime(2026, 11, 13, 8, 0, 0)
SALES = "order_id,product_id,quantity,price,timestamp,user_id"
FEEDBACK = "product_id,tag,action,user_id,timestamp,note"
RAW_IDS = ("alice@example.com", "bob-7731", "carol_99", "dave.x", "erin#1")


def rows(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def csv(header: str, *lines: str) -> str:
    return "\n".join([header, *lines]) + "\n"


# --- pseudonyms -----------------------------------------------------------------------------

def test_pseudonym_is_stable_keyed_and_never_the_raw_id():
    first = pseudonymise(["alice", "bob", None, "alice"], KEY).to_pylist()
    again = pseudonymise(pa.array(["alice", "bob", None, "alice"]), KEY).to_pylist()
    other = pseudonymise(["alice", "bob", None, "alice"], OTHER_KEY).to_pylist()
    assert first == again
    assert first[0] == first[3] and first[0] != first[1]
    assert first[2] is None and other[2] is None
    assert other[0] != first[0] and other[1] != first[1]
    for value in first[:2] + other[:2]:
        assert value.startswith("u_") and len(value) == 34
        assert "alice" not in value and "bob" not in value


def test_pseudonym_is_hmac_sha256_of_the_utf8_id():
    long_key = b"k" * 100  # longer than SHA-256's block: hashed first, as RFC 2104 says
    for key in (KEY, long_key):
        expected = "u_" + hmac.new(key, "José 李".encode(), hashlib.sha256).hexdigest()[:32]
        assert pseudonymise(["José 李"], key)[0].as_py() == expected


def test_sql_function_matches_python_and_keeps_null(con):
    register_pseudonym_function(con, KEY)
    got = rows(con, "SELECT pseudonym(u) FROM (VALUES ('alice'), (NULL), ('bob')) t(u)")
    assert [g[0] for g in got] == pseudonymise(["alice", None, "bob"], KEY).to_pylist()
    register_pseudonym_function(con, OTHER_KEY)  # re-registering replaces it
    assert rows(con, "SELECT pseudonym('alice')")[0][0] == pseudonymise(["alice"],
                                                                        OTHER_KEY)[0].as_py()


def test_short_or_missing_key_is_refused_without_showing_it():
    with pytest.raises(PseudonymKeyError) as err:
        load_key("short-secret", setting="TAG_PIPELINE_PSEUDONYM_KEY")
    assert "TAG_PIPELINE_PSEUDONYM_KEY" in str(err.value)
    assert "short-secret" not in str(err.value)
    with pytest.raises(PseudonymKeyError, match="TAG_PIPELINE_PSEUDONYM_KEY is not set"):
        load_key(None, setting="TAG_PIPELINE_PSEUDONYM_KEY")
    assert load_key("a-long-enough-secret-key", setting="X") == b"a-long-enough-secret-key"
    with pytest.raises(PseudonymKeyError):
        pseudonymise(["alice"], b"short")


# --- sales ----------------------------------------------------------------------------------

def test_csv_sales_rows_keep_file_line_types_and_pseudonyms(con, tmp_path):
    write(tmp_path / "in", "day1/a.csv", csv(
        SALES,
        "O1,P1,2,9.5,2026-11-11 20:15:00,alice@example.com",
        "O1,P2,1,0,2026-11-11T20:15:00+08:00,",
        "O2,P1,3.0,1e1,2026-11-11T12:00:00Z,bob-7731",
    ))
    report = ingest_events(con, "sales", tmp_path / "in", key=KEY, loaded_at=T0, run_id="r1")
    assert [(f.source_file, f.status, f.rows_loaded, f.rows_rejected) for f in report.files] == [
        ("day1/a.csv", "new", 3, 0)]
    alice, bob = pseudonymise(["alice@example.com", "bob-7731"], KEY).to_pylist()
    assert rows(con, "SELECT source_file, source_line, loaded_at, order_id, product_id, "
                     "quantity, price, ordered_at, user_key FROM raw_sales ORDER BY 2") == [
        ("day1/a.csv", 2, T0, "O1", "P1", 2, 9.5, datetime(2026, 11, 11, 20, 15), alice),
        ("day1/a.csv", 3, T0, "O1", "P2", 1, 0.0, datetime(2026, 11, 11, 12, 15), None),
        ("day1/a.csv", 4, T0, "O2", "P1", 3, 10.0, datetime(2026, 11, 11, 12, 0), bob),
    ]
    assert rows(con, "SELECT kind, source_file, file_format, status, rows_loaded, "
                     "rows_rejected, run_id FROM event_files") == [
        ("sales", "day1/a.csv", "csv", "new", 3, 0, "r1")]


def test_user_id_column_is_optional_for_sales(con, tmp_path):
    write(tmp_path / "in", "a.csv", csv("order_id,product_id,quantity,price,timestamp",
                                        "O1,P1,1,1,2026-11-11"))
    ingest_events(con, "sales", tmp_path / "in", key=KEY, loaded_at=T0)
    assert rows(con, "SELECT product_id, user_key FROM raw_sales") == [("P1", None)]


def test_jsonl_sales_with_bad_and_blank_lines(con, tmp_path):
    good = {"order_id": "J1", "product_id": "P1", "quantity": 2, "price": 5.5,
            "timestamp": "2026-11-11T10:00:00", "user_id": "carol_99", "extra": "ignored"}
    lines = [json.dumps(good), "{not json", "", "[1, 2]", json.dumps({**good, "order_id": "J2"})]
    write(tmp_path / "in", "a.jsonl", "\n".join(lines) + "\n")
    report = ingest_events(con, "sales", tmp_path / "in", key=KEY, loaded_at=T0)
    assert (report.rows_loaded, report.rows_rejected) == (2, 2)
    assert rows(con, "SELECT order_id, source_line, quantity, price FROM raw_sales "
                     "ORDER BY 2") == [("J1", 1, 2, 5.5), ("J2", 5, 2, 5.5)]
    assert rows(con, "SELECT source_line, reason, detail, raw_line FROM event_rejects "
                     "ORDER BY 1") == [
        (2, "malformed_line", "not valid JSON", None),
        (4, "malformed_line", "JSON value is ARRAY, expected an object", None)]


def test_parquet_sales_with_typed_columns(con, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    con.execute(
        f"""COPY (SELECT * FROM (VALUES
            ('O1', 'P1', 2, 9.5, TIMESTAMP '2026-11-11 10:00:00', 1234),
            ('O2', 'P2', 0, 1.0, TIMESTAMP '2026-11-11 11:00:00', 5678))
            t(order_id, product_id, quantity, price, "timestamp", user_id))
        TO '{folder / "a.parquet"}' (FORMAT parquet)"""
    )
    report = ingest_events(con, "sales", folder, key=KEY, loaded_at=T0)
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    assert rows(con, "SELECT source_line, quantity, price, ordered_at, user_key "
                     "FROM raw_sales") == [
        (1, 2, 9.5, datetime(2026, 11, 11, 10), pseudonymise(["1234"], KEY)[0].as_py())]
    assert rows(con, "SELECT source_line, reason FROM event_rejects") == [(2, "bad_quantity")]
    assert rows(con, "SELECT file_format FROM event_files") == [("parquet",)]


def test_file_loaded_once_and_changed_content_reloaded(con, tmp_path):
    folder = tmp_path / "in"
    write(folder, "a.csv", csv(SALES, "O1,P1,1,1,2026-11-11,u1"))
    write(folder, "b.csv", csv(SALES, "O2,P2,1,1,2026-11-11,u2"))
    ingest_events(con, "sales", folder, key=KEY, loaded_at=T0)
    again = ingest_events(con, "sales", folder, key=KEY, loaded_at=T1)
    assert [f.status for f in again.files] == ["unchanged", "unchanged"]
    assert rows(con, "SELECT count(*) FROM raw_sales") == [(2,)]
    write(folder, "b.csv", csv(SALES, "O2,P2,5,1,2026-11-11,u2"))
    write(folder, "copy.csv", csv(SALES, "O1,P1,1,1,2026-11-11,u1"))
    changed = ingest_events(con, "sales", folder, key=KEY, loaded_at=T1)
    assert {f.source_file: f.status for f in changed.files} == {
        "a.csv": "unchanged", "b.csv": "changed", "copy.csv": "duplicate_content"}
    assert changed.rows_loaded == 1
    assert rows(con, "SELECT order_id, quantity, loaded_at FROM raw_sales ORDER BY loaded_at, "
                     "order_id") == [("O1", 1, T0), ("O2", 1, T0), ("O2", 5, T1)]
    assert rows(con, "SELECT status, count(*) FROM event_files GROUP BY 1 ORDER BY 1") == [
        ("changed", 1), ("new", 2)]
    # The same content is a separate ledger for the other kind.
    assert rows(con, "SELECT DISTINCT kind FROM event_files") == [("sales",)]


def test_every_sales_reject_reason_one_per_row(con, tmp_path):
    data = csv(
        SALES,
        "O1,P1,1,1,2026-11-11,alice@example.com",           # 2 ok
        "O2,,1,1,2026-11-11,bob-7731",                     # 3 missing_product_id
        "O3,  ,x,y,nope,bob-7731",                         # 4 missing_product_id (first check)
        "O4,P1,0,1,2026-11-11,carol_99",                   # 5 bad_quantity
        "O5,P1,2.5,1,2026-11-11,carol_99",                 # 6 bad_quantity
        "O6,P1,-1,1,2026-11-11,dave.x",                    # 7 bad_quantity
        "O7,P1,1,-0.5,2026-11-11,dave.x",                  # 8 bad_price
        "O8,P1,1,¥10,2026-11-11,dave.x",                   # 9 bad_price
        "O9,P1,1,1,11/11/2026,erin#1",                     # 10 bad_timestamp
        "O10,P1,1,1,,erin#1",                              # 11 bad_timestamp
        "O11,P1,1,1,2026-11-11,erin#1,too,many",           # 12 malformed_line
    ).encode()
    data += "O12,P1,1,1,2026-11-11,caf\xe9\n".encode("latin-1")  # 13 invalid_encoding
    data += b"O13,P2,4,2.5,2026-11-12,alice@example.com\n"        # 14 ok
    write(tmp_path / "in", "bad.csv", data)
    report = ingest_events(con, "sales", tmp_path / "in", key=KEY, loaded_at=T0)
    assert (report.rows_loaded, report.rows_rejected) == (2, 11)
    assert rows(con, "SELECT source_line, reason FROM event_rejects ORDER BY 1") == [
        (3, "missing_product_id"), (4, "missing_product_id"), (5, "bad_quantity"),
        (6, "bad_quantity"), (7, "bad_quantity"), (8, "bad_price"), (9, "bad_price"),
        (10, "bad_timestamp"), (11, "bad_timestamp"), (12, "malformed_line"),
        (13, "invalid_encoding")]
    # Accepted rows keep their true lines around the rejected ones.
    assert rows(con, "SELECT order_id, source_line FROM raw_sales ORDER BY 2") == [
        ("O1", 2), ("O13", 14)]
    detail, raw_line = rows(con, "SELECT detail, raw_line FROM event_rejects "
                                 "WHERE source_line = 12")[0]
    assert detail.startswith("TOO MANY COLUMNS: Expected Number of Columns: 6") and not raw_line
    detail, raw_line = rows(con, "SELECT detail, raw_line FROM event_rejects "
                                 "WHERE source_line = 6")[0]
    assert detail == "quantity '2.5' is not a positive whole number"
    assert json.loads(raw_line) == {
        "order_id": "O5", "product_id": "P1", "quantity": "2.5", "price": "1",
        "timestamp": "2026-11-11", "user_key": pseudonymise(["carol_99"], KEY)[0].as_py()}


def test_every_feedback_reject_reason_and_actions(con, tmp_path):
    write(tmp_path / "fb", "f.csv", csv(
        FEEDBACK + ",tag_type",
        "P1,Red,Accept ,alice@example.com,2026-11-11 10:00:00,looks right,attribute",  # 2
        "P1,Red,withdraw,alice@example.com,2026-11-11 11:00:00,,",                    # 3
        ",Red,accept,bob-7731,2026-11-11,,",                  # 4 missing_product_id
        "P2, ,accept,bob-7731,2026-11-11,,",                  # 5 missing_tag
        "P2,Blue,like,bob-7731,2026-11-11,,",                 # 6 unknown_action
        "P2,Blue,add,bob-7731,yesterday,,",                   # 7 bad_timestamp
        "P2,Blue,reject,,2026-11-11,\"a, quoted note\",",     # 8 ok, anonymous
    ))
    report = ingest_events(con, "feedback", tmp_path / "fb", key=KEY, loaded_at=T0)
    assert (report.kind, report.rows_loaded, report.rows_rejected) == ("feedback", 3, 4)
    alice = pseudonymise(["alice@example.com"], KEY)[0].as_py()
    assert rows(con, "SELECT source_line, product_id, tag, tag_type, action, user_key, "
                     "created_at, note FROM raw_feedback ORDER BY 1") == [
        (2, "P1", "Red", "attribute", "accept", alice, datetime(2026, 11, 11, 10), "looks right"),
        (3, "P1", "Red", None, "withdraw", alice, datetime(2026, 11, 11, 11), None),
        (8, "P2", "Blue", None, "reject", None, datetime(2026, 11, 11), "a, quoted note"),
    ]
    assert rows(con, "SELECT kind, source_line, reason FROM event_rejects ORDER BY 2") == [
        ("feedback", 4, "missing_product_id"), ("feedback", 5, "missing_tag"),
        ("feedback", 6, "unknown_action"), ("feedback", 7, "bad_timestamp")]


def test_feedback_tag_type_column_is_optional_jsonl(con, tmp_path):
    line = {"product_id": "P1", "tag": "Summer", "action": "add", "user_id": "erin#1",
            "timestamp": "2026-11-11T10:00:00Z", "note": None}
    write(tmp_path / "fb", "f.jsonl", json.dumps(line) + "\n")
    ingest_events(con, "feedback", tmp_path / "fb", key=KEY, loaded_at=T0)
    assert rows(con, "SELECT tag, tag_type, action, note FROM raw_feedback") == [
        ("Summer", None, "add", None)]


def test_every_line_is_accounted_for(con, tmp_path):
    folder = tmp_path / "in"
    write(folder, "a.csv", csv(SALES, *[f"O{i},P{i % 3},{i % 4},1,2026-11-11,u{i}"
                                        for i in range(50)], "x,y"))
    write(folder, "b.jsonl", "\n".join(
        [json.dumps({"order_id": f"J{i}", "product_id": "P1", "quantity": i % 3 + 1,
                     "price": "1", "timestamp": "2026-11-1" + str(i % 12),
                     "user_id": f"u{i}"}) for i in range(30)] + ["oops"]) + "\n")
    report = ingest_events(con, "sales", folder, key=KEY, loaded_at=T0)
    data_lines = {"a.csv": 51, "b.jsonl": 31}
    for f in report.files:
        assert f.rows_loaded + f.rows_rejected == data_lines[f.source_file]
    assert rows(con, """
        SELECT f.source_file, f.rows_loaded, f.rows_rejected,
               (SELECT count(*) FROM raw_sales s WHERE s.load_id = f.load_id),
               (SELECT count(*) FROM event_rejects r WHERE r.load_id = f.load_id)
        FROM event_files f ORDER BY 1""") == [
        ("a.csv", 37, 14, 37, 14), ("b.jsonl", 26, 5, 26, 5)]


@pytest.mark.parametrize("kind", ["sales", "feedback"])
@pytest.mark.parametrize("where", ["start", "end"])
def test_one_badly_quoted_line_costs_only_itself(con, tmp_path, kind, where):
    # the dialect comes from the loader, the columns from the header: no sniffing of data
    # lines, so an unclosed quote in the first 20,000 lines no longer loses the whole file
    n = 25_500
    if kind == "sales":
        header, line = SALES, "O{i},P1,1,2.5,2026-11-11,u{i}"
    else:
        header, line = FEEDBACK, "P1,color: Red,accept,u{i},2026-11-11,"
    lines = [line.format(i=i) for i in range(n)]
    lines.insert(0 if where == "start" else n, '"P0","unclosed,"confirm","u",""')
    write(tmp_path / "in", "a.csv", csv(header, *lines))
    report = ingest_events(con, kind, tmp_path / "in", key=KEY, loaded_at=T0)
    (f,) = report.files
    assert (f.rows_loaded, f.rows_rejected) == (n, 1)
    bad_line = 2 if where == "start" else n + 2
    assert rows(con, "SELECT source_line, reason FROM event_rejects") == [
        (bad_line, "malformed_line")]


@pytest.mark.parametrize("kind", ["sales", "feedback"])
def test_mixed_line_breaks_cost_no_line(con, tmp_path, kind):
    # lines ending in \r\n, \n and a lone \r in one file: read line for line, numbers kept
    n = 25_500
    if kind == "sales":
        header, line = SALES, "O{i},P1,1,2.5,2026-11-11,u{i}"
    else:
        header, line = FEEDBACK, "P1,color: Red,accept,u{i},2026-11-11,"
    lines = [line.format(i=i) for i in range(n)]
    lines.insert(n // 2, '"P0","unclosed,"confirm","u",""')
    raw = csv(header, *lines).encode().split(b"\n")
    ends = (b"\r\n", b"\n", b"\r")
    write(tmp_path / "in", "a.csv",
          b"".join(part + ends[i % 3] for i, part in enumerate(raw[:-1])) + raw[-1])
    report = ingest_events(con, kind, tmp_path / "in", key=KEY, loaded_at=T0)
    (f,) = report.files
    assert (f.rows_loaded, f.rows_rejected) == (n, 1)
    assert rows(con, "SELECT source_line, reason FROM event_rejects") == [
        (n // 2 + 2, "malformed_line")]


def test_rows_for_products_the_catalog_lacks_are_counted_with_a_reason(con, tmp_path):
    con.execute("CREATE TABLE cleaned_products AS SELECT 'P1' AS product_id")
    write(tmp_path / "in", "a.csv", csv(SALES, "O1,P1,1,2,2026-11-11,u1",
                                        "O2,P7,1,2,2026-11-11,u2", "O3,P7,2,2,2026-11-11,u3",
                                        "O4,P8,1,2,2026-11-11,u4"))
    ingest_events(con, "sales", tmp_path / "in", key=KEY, loaded_at=T0, run_id="r1")
    unknown = unknown_products(con, "sales", "r1")
    assert (unknown.rows, unknown.products, unknown.examples) == (3, 2, ("P7", "P8"))
    assert "3 sales row(s) name 2 product(s) not in cleaned_products" in unknown.reason("sales")
    # counted per run: another run's loads are not this one's
    assert unknown_products(con, "sales", "r2").rows == 0
    write(tmp_path / "fb", "f.csv", csv(FEEDBACK, "P9,Red,accept,u1,2026-11-11,"))
    ingest_events(con, "feedback", tmp_path / "fb", key=KEY, loaded_at=T0, run_id="r2")
    fb = unknown_products(con, "feedback", "r2")
    assert (fb.rows, fb.examples) == (1, ("P9",))
    assert "never applied" in fb.reason("feedback")


def test_raw_user_ids_reach_no_table(con, tmp_path):
    folder = tmp_path / "in"
    write(folder, "a.csv", csv(SALES, *[f"O{i},P1,{i % 3},1,2026-11-11,{u}"
                                        for i, u in enumerate(RAW_IDS)],
                               "O9,P1,1,1,2026-11-11,alice@example.com,extra"))
    write(folder, "b.jsonl", "\n".join(
        json.dumps({"order_id": "J", "product_id": "P", "quantity": 1, "price": -1,
                    "timestamp": "2026-11-11", "user_id": u}) for u in RAW_IDS)
        + '\n{"user_id": "carol_99", broken\n')
    write(tmp_path / "fb", "f.csv", csv(FEEDBACK, *[f"P1,Red,nope,{u},2026-11-11,n"
                                                    for u in RAW_IDS]))
    ingest_events(con, "sales", folder, key=KEY, loaded_at=T0)
    ingest_events(con, "feedback", tmp_path / "fb", key=KEY, loaded_at=T0)
    assert rows(con, "SELECT count(*) FROM event_rejects") == [(14,)]
    columns = rows(con, "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                        "WHERE data_type = 'VARCHAR' AND NOT internal")
    assert {c[1] for c in columns} >= {"raw_sales", "raw_feedback", "event_rejects"}
    for schema, table, column in columns:
        for raw in RAW_IDS:
            hits = rows(con, f'SELECT count(*) FROM "{schema}"."{table}" '
                             f'WHERE contains("{column}", ?)', [raw])[0][0]
            assert hits == 0, f"{raw!r} found in {table}.{column}"
    # The keyed function does not outlive the ingest.
    with pytest.raises(duckdb.CatalogException):
        con.execute("SELECT _events_pseudonym('x')")


def test_ids_across_files_and_formats_get_the_hmac_pseudonym(con, tmp_path):
    # One ingest hashes an id once across files; every stored pseudonym must still be exactly
    # "u_" + HMAC-SHA256(key, UTF-8 id)[:32], so earlier and later loads stay joinable.
    ids = ["alice", "José 李", "😀 x", " padded ", "a" * 300, "ü", ""]
    folder = tmp_path / "in"
    write(folder, "a.csv", csv(SALES, *[f"A{i},P1,1,1,2026-11-11,{u}"
                                        for i, u in enumerate(ids[:-1])]))
    write(folder, "b.jsonl", "\n".join(
        json.dumps({"order_id": f"B{i}", "product_id": "P", "quantity": 1, "price": 1,
                    "timestamp": "2026-11-11", "user_id": u}) for i, u in enumerate(ids)))
    write(folder, "c.csv", csv(SALES, *[f"C{i},P1,1,1,2026-11-11,{u}"
                                        for i, u in enumerate(reversed(ids[:-1]))]))
    ingest_events(con, "sales", folder, key=KEY, loaded_at=T0)
    stored = rows(con, "SELECT order_id, user_key FROM raw_sales")
    assert len(stored) == 3 * len(ids) - 2
    by_order = dict(stored)
    for i, raw in enumerate(ids):
        want = "u_" + hmac.new(KEY, raw.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
        assert by_order[f"B{i}"] == want, raw
        if raw:  # DuckDB's CSV reader reads an empty field as NULL: no user, no pseudonym
            assert by_order[f"A{i}"] == by_order[f"C{len(ids) - 2 - i}"] == want, raw
    # The (digest, pseudonym) pairs do not outlive the ingest.
    assert rows(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_ev%'") == [
        (0,)]


def test_missing_column_refuses_the_file_naming_file_and_column(con, tmp_path):
    folder = tmp_path / "in"
    write(folder, "a.csv", csv(SALES, "O1,P1,1,1,2026-11-11,u1"))
    write(folder, "b.csv", csv("order_id,product_id,price,timestamp", "O2,P2,1,2026-11-11"))
    with pytest.raises(EventIngestError) as err:
        ingest_events(con, "sales", folder, key=KEY, loaded_at=T0)
    message = str(err.value)
    assert "b.csv" in message and "'quantity'" in message
    # The file before it stays loaded; nothing of b.csv is stored.
    assert rows(con, "SELECT source_file FROM event_files") == [("a.csv",)]
    assert rows(con, "SELECT count(*) FROM raw_sales WHERE source_file = 'b.csv'") == [(0,)]


def test_missing_jsonl_feedback_column_is_named(con, tmp_path):
    write(tmp_path / "fb", "f.jsonl", json.dumps({"product_id": "P1", "tag": "Red",
                                                  "action": "add", "timestamp": "2026-11-11",
                                                  "note": ""}) + "\n")
    with pytest.raises(EventIngestError, match=r"feedback file .*f\.jsonl has no column "
                                                r"'user_id'"):
        ingest_events(con, "feedback", tmp_path / "fb", key=KEY, loaded_at=T0)


def test_unknown_kind_and_missing_folder_are_errors(con, tmp_path):
    with pytest.raises(EventIngestError, match="event kind 'clicks'"):
        ingest_events(con, "clicks", tmp_path, key=KEY, loaded_at=T0)
    with pytest.raises(EventIngestError, match="does not exist"):
        ingest_events(con, "sales", tmp_path / "nope", key=KEY, loaded_at=T0)
