"""Property-based tests (hypothesis): random bytes and random CSV / JSON Lines shapes fed to the
catalog, sales and feedback loaders and to the product-file reader of ``tag``. None crashes,
and every line is accounted for: loaded with its own line number, or rejected at that line
with a reason (an empty line is skipped, and still counted in the line numbers)."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tag_pipeline.lib.catalog.ingest import ingest_catalog
from tag_pipeline.lib.catalog.profile import ProfileError, load_profile
from tag_pipeline.lib.cli.files import InputFileError, ProductFile
from tag_pipeline.lib.events import EventIngestError, ingest_events
from tag_pipeline_tests.support import BASIC_PROFILE, HEADER, csv_body, data_lines, field_text

T0 = datetime(2026, 11, 12, 8, 0, 0)
KEY = b"test-pseudonym-key-0123456789"
SALES = "order_id,product_id,quantity,price,timestamp,user_id"
FEEDBACK = "product_id,tag,action,user_id,timestamp,note"
# 60 examples each, the same ones every run; TAG_PIPELINE_PROPERTY_EXAMPLES=400 searches more
PROPERTY = settings(max_examples=int(os.environ.get("TAG_PIPELINE_PROPERTY_EXAMPLES", "60")),
                    deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _catalog(folder: Path, body: bytes):
    data = folder / "data"
    (data / "images").mkdir(parents=True, exist_ok=True)
    (data / "a.csv").write_bytes(body)
    (folder / "shop.yaml").write_text(yaml.safe_dump(BASIC_PROFILE), encoding="utf-8")
    return load_profile(str(folder / "shop.yaml"), {})


def _lines(con, sql: str) -> list[int]:
    return [r[0] for r in con.execute(sql).fetchall()]


def _check_accounted(loaded: list[int], rejected: list[int], expected: set[int]) -> None:
    assert len(set(loaded)) == len(loaded) and len(set(rejected)) == len(rejected)
    assert set(loaded).isdisjoint(rejected)
    assert set(loaded) | set(rejected) == expected


@PROPERTY
@given(csv_body(HEADER))
def test_catalog_loader_accounts_for_every_line(body):
    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as con:
        profile = _catalog(Path(folder), body)
        report = ingest_catalog(con, profile, T0)
        loaded = _lines(con, "SELECT source_line FROM raw_products")
        rejected = _lines(con, "SELECT source_line FROM raw_product_rejects")
        assert report.rows_loaded == len(loaded) and report.rows_rejected == len(rejected)
        _check_accounted(loaded, rejected, data_lines(body, 2))


@PROPERTY
@given(st.binary(max_size=400))
def test_catalog_loader_survives_any_bytes_after_its_header(noise):
    body = HEADER.encode() + b"\n" + noise
    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as con:
        profile = _catalog(Path(folder), body)
        try:
            report = ingest_catalog(con, profile, T0)
        except ProfileError as exc:  # only a file DuckDB cannot read at all, named
            assert "a.csv" in str(exc)
            return
        loaded = _lines(con, "SELECT source_line FROM raw_products")
        rejected = _lines(con, "SELECT source_line FROM raw_product_rejects")
        assert report.rows_loaded + report.rows_rejected == len(loaded) + len(rejected)
        assert set(loaded).isdisjoint(rejected)


@pytest.mark.parametrize(("kind", "header"), [("sales", SALES), ("feedback", FEEDBACK)])
@PROPERTY
@given(data=st.data())
def test_event_loaders_account_for_every_line(kind, header, data):
    body = data.draw(csv_body(header))
    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as con:
        (Path(folder) / "a.csv").write_bytes(body)
        try:
            report = ingest_events(con, kind, Path(folder), key=KEY, loaded_at=T0)
        except EventIngestError as exc:
            pytest.fail(f"{kind}: {exc}")
        (f,) = report.files
        table = "raw_sales" if kind == "sales" else "raw_feedback"
        loaded = _lines(con, f"SELECT source_line FROM {table}")
        rejected = _lines(con, f"SELECT source_line FROM event_rejects WHERE kind = '{kind}'")
        assert (f.rows_loaded, f.rows_rejected) == (len(loaded), len(rejected))
        _check_accounted(loaded, rejected, data_lines(body, 2))


@PROPERTY
@given(st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["product_id", "title", "description", "x"]),
                    st.one_of(field_text, st.integers(), st.none()), max_size=4).map(json.dumps),
    st.sampled_from(["[1, 2]", "null", "not json", "{", ""]),
), max_size=25), st.sampled_from(["\n", "\r\n"]))
def test_product_file_reader_accounts_for_every_json_line(lines, end):
    body = "".join(line + end for line in lines).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.jsonl"
        path.write_bytes(body)
        try:
            products = ProductFile(path)
        except InputFileError as exc:  # a file whose objects never name the columns
            assert "lacks column(s)" in str(exc)
            return
        with products:
            good = [n for batch in products.batches(7) for n in batch["_line"].to_list()]
            bad = [b.line for b in products.bad_rows]
        blank = {i for i, line in enumerate(lines, 1) if not line.strip()}
        _check_accounted(good, bad, set(range(1, len(lines) + 1)) - blank)


@PROPERTY
@given(csv_body("product_id,title,description"))
def test_product_file_reader_accounts_for_every_csv_line(body):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.csv"
        path.write_bytes(body)
        with ProductFile(path) as products:
            good = [n for batch in products.batches(5) for n in batch["_line"].to_list()]
            bad = [b.line for b in products.bad_rows]
            assert products.rows == len(good)
        _check_accounted(good, bad, data_lines(body, 2))
