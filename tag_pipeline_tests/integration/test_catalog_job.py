"""The catalog job run for real: Dagster instance, DuckDB file and GX checks in tmp_path."""


import dagster as dg
import duckdb
import pytest

from tag_pipeline_tests.support import (
    check_results,
    query,
    run_catalog_job,
    shared_data_or_skip,
)


@pytest.mark.slow
def test_demo_catalog_job_end_to_end(tmp_path):
    result = run_catalog_job(tmp_path)
    assert result.success
    checks = check_results(result)
    assert len(checks) == 13 and all(checks.values()), checks
    [(raw, accounted, cleaned)] = query(
        tmp_path, "SELECT sum(raw_rows), sum(accounted), sum(cleaned) FROM row_accounting")
    assert raw == accounted and cleaned >= 1500
    reasons = dict(query(tmp_path, "SELECT reject_reason, count(*) FROM rejected_products "
                                   "GROUP BY 1"))
    assert reasons.get("empty_title", 0) > 0 and reasons.get("missing_id", 0) > 0
    statuses = dict(query(tmp_path, "SELECT image_status, count(*) FROM cleaned_products "
                                    "GROUP BY 1"))
    assert {"ok", "none", "corrupt", "missing"} <= set(statuses)
    assert dict(query(tmp_path, "SELECT text_lang, 1 FROM cleaned_products GROUP BY 1")).keys() \
        >= {"zh", "en", "mixed"}
    tag_types = {r[0] for r in query(tmp_path, "SELECT DISTINCT tag_type FROM product_labels")}
    assert tag_types == {"category", "attribute", "scene", "style"}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "tag_taxonomy" in materialized
    metadata = result.asset_materializations_for_node("raw_products")[0].metadata
    assert metadata["dagster/row_count"].value == raw - metadata["rows_rejected_this_run"].value
    # Every warehouse table the run wrote describes its columns as they are in DuckDB.
    for asset in ("raw_products", "cleaned_products", "image_checks", "product_labels"):
        schema = result.asset_materializations_for_node(asset)[0].metadata[
            "dagster/column_schema"].value
        [(described,)] = query(tmp_path, f"SELECT list(column_name) FROM (DESCRIBE {asset})")
        assert [c.name for c in schema.columns] == described, asset
    columns = {c.name: c for c in result.asset_materializations_for_node("raw_products")[0]
               .metadata["dagster/column_schema"].value.columns}
    assert columns["source_file"].type == "VARCHAR"

    # A second run with no new files duplicates nothing.
    again = run_catalog_job(tmp_path)
    assert again.success and all(check_results(again).values())
    assert query(tmp_path, "SELECT count(*) FROM raw_products")[0][0] == raw - sum(
        r[0] for r in query(tmp_path, "SELECT count(*) FROM raw_product_rejects"))
    assert query(tmp_path, "SELECT count(*) FROM ingest_files")[0][0] == 2

    # A changed file is loaded again, alone; its products' newer rows supersede the old ones.
    landing = tmp_path / "landing" / "demo"
    jsonl = sorted(landing.glob("*.jsonl"))[0]
    first_line = jsonl.read_text(encoding="utf-8").splitlines()[0]
    with jsonl.open("a", encoding="utf-8") as handle:
        handle.write(first_line.replace('"updated_at": "', '"updated_at": "2027') + "\n")
    third = run_catalog_job(tmp_path)
    assert third.success
    statuses = [r[0] for r in query(tmp_path, "SELECT status FROM ingest_files ORDER BY loaded_at")]
    assert statuses.count("changed") == 1 and len(statuses) == 3
    [(raw3, accounted3)] = query(tmp_path, "SELECT sum(raw_rows), sum(accounted) "
                                           "FROM row_accounting")
    assert raw3 == accounted3


@pytest.mark.slow
def test_blocking_check_stops_downstream(tmp_path):
    assert run_catalog_job(tmp_path).success
    # Someone writes a duplicate raw row behind the pipeline's back.
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb")) as con:
        con.execute("INSERT INTO raw_products SELECT * FROM raw_products LIMIT 1")
        [(dup_file, dup_line)] = con.execute(
            "SELECT source_file, source_line FROM raw_products GROUP BY ALL "
            "HAVING count(*) > 1").fetchall()
        # and a parse reject of an unknown kind, which only the non-blocking check sees
        con.execute("INSERT INTO raw_product_rejects VALUES "
                    "('planted', 'x.csv', 7, now(), 'bogus', NULL, NULL)")
    result = run_catalog_job(tmp_path, raise_on_error=False)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = evaluations["raw_products_expectations"]
    assert not failed.passed
    assert failed.severity == dg.AssetCheckSeverity.ERROR
    warned = evaluations["raw_product_rejects_expectations"]
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert "bogus" in warned.metadata["report"].value
    report = failed.metadata["report"].value
    assert dup_file in report and str(dup_line) in report
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "raw_products" in materialized
    assert "stg_products" not in materialized and "cleaned_products" not in materialized


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("profile", ["myntra", "cn_reviews"])
def test_real_catalogs_end_to_end(tmp_path, profile):
    shared_data_or_skip({"myntra": "myntra/products.csv",
                         "cn_reviews": "cn_reviews/reviews.csv"}[profile])
    result = run_catalog_job(tmp_path, profile)
    assert result.success
    checks = check_results(result)
    assert all(checks.values()), checks
    [(raw, accounted)] = query(tmp_path, "SELECT sum(raw_rows), sum(accounted) FROM row_accounting")
    assert raw == accounted
    if profile == "myntra":
        assert raw == 37812
        assert query(tmp_path, "SELECT count(*) FROM cleaned_products "
                               "WHERE image_status = 'ok'")[0][0] == 10102
        facets = {r[0] for r in query(tmp_path, "SELECT DISTINCT facet FROM product_labels")}
        assert {"articleType", "subCategory", "masterCategory", "gender", "baseColour",
                "season", "usage", "style"} == facets
    else:
        assert raw == 53488
        assert query(tmp_path, "SELECT count(*) FROM rejected_products")[0][0] == 1
        tags = {r[0] for r in query(tmp_path, "SELECT DISTINCT tag FROM product_labels "
                                              "WHERE facet = 'sentiment'")}
        assert tags == {"positive", "negative"}
