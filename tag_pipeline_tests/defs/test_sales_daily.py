"""Daily partitions of sales: sales_daily written one UTC day at a time from a crafted sales
file, through the library and through real Dagster runs of sales_daily_job (GX check
included), and the daily schedule's partition."""

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tag_pipeline.definitions import build_definitions
from tag_pipeline.defs.automation.schedules import sales_daily_schedule
from tag_pipeline.defs.events.assets import raw_sales, sales_daily
from tag_pipeline.defs.events.checks import sales_daily_expectations
from tag_pipeline.lib.events import ingest_events
from tag_pipeline.lib.events.daily import write_sales_day
from tag_pipeline_tests.support import SQL_ROOT, job_resources

# these tests train taggers or refiners, or run whole jobs (make test-fast skips them)
pytestmark = pytest.mark.slow

KEY = b"sales-daily-test-key-0123456789"
HEADER = "order_id,product_id,quantity,price,timestamp,user_id"
# 2026-11-11 (UTC): O1 P1 x2 (u1), O1 P2 x1 (u1), O2 P1 x3 (u2), a line without an order id
# (P2 x4, u3), and O4 P1 at 07:30+08:00 on the 12th, which is 23:30 on the 11th in UTC.
# 2026-11-12: O3 P1 x5 (u1) and O5 P2 x1 with no user. A bad line is rejected at ingest.
FIRST = [
    "O1,P1,2,10.0,2026-11-11 09:00:00,u1",
    "O1,P2,1,20.0,2026-11-11 09:00:00,u1",
    "O2,P1,3,10.0,2026-11-11T12:00:00Z,u2",
    ",P2,4,20.0,2026-11-11 13:00:00,u3",
    "O4,P1,1,10.0,2026-11-12T07:30:00+08:00,u2",
    "O3,P1,5,10.0,2026-11-12 08:00:00,u1",
    "O5,P2,1,20.0,2026-11-12 10:00:00,",
    "O6,P3,zero,1.0,2026-11-11 10:00:00,u4",
]
# A later delivery corrects O2 P1 to 1 unit and moves it to the 12th.
LATE = ["O2,P1,1,10.0,2026-11-12 09:00:00,u2"]


def _land(folder: Path, name: str, lines: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")


def _day(con: duckdb.DuckDBPyConnection, day: str) -> list[tuple]:
    return con.execute(
        "SELECT product_id, units, order_lines, revenue, buyers FROM sales_daily "
        "WHERE sales_date = ?::DATE ORDER BY product_id", [day]).fetchall()


def test_a_day_counts_each_order_line_once_and_is_replaced_whole(con, tmp_path):
    landing = tmp_path / "sales"
    _land(landing, "a.csv", FIRST)
    ingest_events(con, "sales", landing, key=KEY, loaded_at=datetime(2026, 11, 13, 1))
    day = write_sales_day(con, SQL_ROOT, date(2026, 11, 11), run_id="r1")
    assert (day.products, day.units, day.order_lines, day.replaced_rows) == (2, 11, 5, 0)
    assert _day(con, "2026-11-11") == [("P1", 6, 3, 60.0, 2), ("P2", 5, 2, 100.0, 2)]
    assert write_sales_day(con, SQL_ROOT, date(2026, 11, 12)).units == 6
    assert _day(con, "2026-11-12") == [("P1", 5, 1, 50.0, 1), ("P2", 1, 1, 20.0, 0)]

    # Writing a day again replaces it: same rows, none twice.
    again = write_sales_day(con, SQL_ROOT, date(2026, 11, 11), run_id="r2")
    assert (again.replaced_rows, again.units) == (2, 11)
    assert con.execute("SELECT count(*) FROM sales_daily").fetchone()[0] == 4

    # A late correction moves O2 P1 to the 12th: once both days are rewritten, it counts
    # there only, with its corrected quantity.
    _land(landing, "b.csv", LATE)
    ingest_events(con, "sales", landing, key=KEY, loaded_at=datetime(2026, 11, 13, 2))
    write_sales_day(con, SQL_ROOT, date(2026, 11, 11))
    write_sales_day(con, SQL_ROOT, date(2026, 11, 12))
    assert _day(con, "2026-11-11") == [("P1", 3, 2, 30.0, 2), ("P2", 5, 2, 100.0, 2)]
    assert _day(con, "2026-11-12") == [("P1", 6, 2, 60.0, 2), ("P2", 1, 1, 20.0, 0)]
    # A day without sales has no rows, and says so.
    empty = write_sales_day(con, SQL_ROOT, date(2026, 11, 20))
    assert (empty.products, empty.units) == (0, 0)


def _resources(tmp_path: Path) -> dict:
    return job_resources(tmp_path)


def test_sales_daily_job_materializes_one_day_with_its_check(tmp_path, monkeypatch):
    monkeypatch.setenv("TAG_PIPELINE_TEST_PSEUDONYM_KEY", KEY.decode())
    _land(tmp_path / "landing" / "sales", "a.csv", FIRST)
    defs = build_definitions(_resources(tmp_path))
    (tmp_path / "dagster").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster"))
    loaded = dg.materialize([raw_sales], resources=_resources(tmp_path), instance=instance)
    meta = loaded.asset_materializations_for_node("raw_sales")[0].metadata
    assert meta["order_days_loaded"].value == 2
    assert (meta["first_order_day"].value, meta["last_order_day"].value) == (
        "2026-11-11", "2026-11-12")

    job = defs.resolve_job_def("sales_daily_job")
    assert job.partitions_def is not None
    result = job.execute_in_process(instance=instance, partition_key="2026-11-11")
    assert result.success
    [mat] = result.asset_materializations_for_node("sales_daily")
    assert mat.partition == "2026-11-11"
    assert (mat.metadata["units"].value, mat.metadata["order_lines"].value,
            mat.metadata["dagster/row_count"].value) == (11, 5, 2)
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "sales_daily_expectations" and check.passed
    assert check.metadata["days_validated"].value == "2026-11-11"
    assert check.metadata["rows_validated"].value == 2

    # The same partition again: one row per product, the check still passes.
    again = job.execute_in_process(instance=instance, partition_key="2026-11-11")
    [mat] = again.asset_materializations_for_node("sales_daily")
    assert mat.metadata["replaced_rows"].value == 2
    assert again.get_asset_check_evaluations()[0].passed
    status = instance.get_status_by_partition(dg.AssetKey("sales_daily"), ["2026-11-11",
                                              "2026-11-12"], job.partitions_def)
    assert status == {"2026-11-11": dg.AssetPartitionStatus.MATERIALIZED,
                      "2026-11-12": None}


def test_sales_daily_check_fails_on_a_bad_day_and_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TAG_PIPELINE_TEST_PSEUDONYM_KEY", KEY.decode())
    database = tmp_path / "home" / "warehouse.duckdb"
    database.parent.mkdir(parents=True)
    _land(tmp_path / "landing" / "sales", "a.csv", FIRST)
    with duckdb.connect(str(database)) as con:
        ingest_events(con, "sales", tmp_path / "landing" / "sales", key=KEY,
                      loaded_at=datetime(2026, 11, 13, 1))
        write_sales_day(con, SQL_ROOT, date(2026, 11, 11))
        # Damage the stored day: more buyers than order lines.
        con.execute("UPDATE sales_daily SET buyers = 9 WHERE product_id = 'P1'")
    # The check on its own (as from the asset's Checks tab): it validates the latest day.
    result = dg.materialize(
        [sales_daily, sales_daily_expectations], resources=_resources(tmp_path),
        selection=dg.AssetSelection.checks_for_assets(sales_daily), raise_on_error=False)
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["days_validated"].value == "2026-11-11"
    assert "P1" in evaluation.metadata["report"].value


@pytest.mark.parametrize("at, partition", [
    (datetime(2026, 11, 29, 0, 30, tzinfo=UTC), "2026-11-28"),
    (datetime(2026, 1, 1, 0, 30, tzinfo=UTC), "2025-12-31"),
])
def test_daily_schedule_targets_the_day_that_just_ended(at, partition, tmp_path):
    defs = build_definitions(_resources(tmp_path))
    schedule = sales_daily_schedule(defs.resolve_job_def("sales_daily_job"))
    assert schedule.cron_schedule == "30 0 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    context = dg.build_schedule_context(scheduled_execution_time=at)
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == partition
