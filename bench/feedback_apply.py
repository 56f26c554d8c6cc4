"""Apply one feedback load to a large product_tags and print seconds, history rows and memory.

Generated inside DuckDB, untimed, into a warehouse file: N products (default 1,000,000) in
cleaned_products, one catalog tag each in product_labels, four model tags each in model_tags,
the tag_taxonomy, and product_tags written from them by a full retag (about 5 tags a product).
Then one feedback load of E events (default 10,000) on random products: rejects and accepts of
their model tags, adds (pinning a model tag or a new one; half without tag_type, resolved from
the taxonomy), withdraws, and adds that cannot be resolved. Timed: ``apply_feedback`` of that
load, and the same apply again (must append no history).

    nice -n 5 .venv/bin/python bench/feedback_apply.py [--products 1000000] [--events 10000]
        [--memory-limit 1GB] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SQL_ROOT, peak_rss_mb, report  # noqa: E402

from tag_pipeline.lib.tags.candidates import candidate_view  # noqa: E402
from tag_pipeline.lib.tags.feedback import FeedbackResult, apply_feedback  # noqa: E402
from tag_pipeline.lib.tags.store import write_product_tags  # noqa: E402

TAG_TYPES = ["category", "color", "style", "scene", "material", "pattern", "fit", "season"]
LOAD_ID = "bench-load-1"


TYPES = "[" + ", ".join(f"'{t}'" for t in TAG_TYPES) + "]"
PID = "'p' || lpad(CAST(p AS VARCHAR), 8, '0')"


def generate_catalog(con: duckdb.DuckDBPyConnection, products: int) -> None:
    """The catalog, model tags and taxonomy, built in DuckDB."""
    types, pid = TYPES, PID
    con.execute(f"CREATE TABLE cleaned_products AS SELECT {pid} AS product_id "
                f"FROM range({products}) AS r(p)")
    con.execute(f"""
        CREATE TABLE product_labels AS
        SELECT {pid} AS product_id, 'category_' || CAST(p % 200 AS VARCHAR) AS tag,
            'category' AS tag_type, 'category' AS facet, NULL::VARCHAR AS parent,
            1 AS level, 'catalog' AS source
        FROM range({products}) AS r(p)
    """)
    # Four model tags a product, in the types after category (the catalog fills category).
    con.execute(f"""
        CREATE TABLE model_tags AS
        SELECT {pid} AS product_id,
            {types}[t + 1] || '_' || CAST((p * 31 + t * 7) % 200 AS VARCHAR) AS tag,
            {types}[t + 1] AS tag_type, {types}[t + 1] AS facet,
            ((p * 17 + t * 3) % 900) / 1000.0 AS score, 'model' AS source,
            'words ' || CAST(p % 97 AS VARCHAR) AS explanation, 'v3' AS tagger_version,
            NULL::VARCHAR AS refiner_version
        FROM range({products}) AS r(p), range(1, 5) AS s(t)
    """)
    con.execute(f"""
        CREATE TABLE tag_taxonomy AS
        SELECT tag_type || '_' || CAST(i AS VARCHAR) AS tag, tag_type, tag_type AS facet,
            NULL::VARCHAR AS parent, 1 AS level, 1 AS product_count
        FROM unnest({types}) AS u(tag_type), range(200) AS r(i)
    """)


def generate_feedback(con: duckdb.DuckDBPyConnection, products: int, events: int,
                      at: datetime) -> None:
    """One raw_feedback load of ``events`` rows, built in DuckDB."""
    types, pid = TYPES, PID
    # Events on random products: kind by r (0-39 reject, 40-69 accept, 70-74 withdraw of a
    # model tag; 75-94 add of a tag of a random type, 95-99 add of a tag no table knows).
    con.execute(f"""
        CREATE TABLE raw_feedback AS
        WITH picks AS (
            SELECT i, CAST(hash(i, 'product') % {products} AS BIGINT) AS p,
                CAST(hash(i, 'kind') % 100 AS BIGINT) AS r,
                CAST(hash(i, 'type') % 4 AS BIGINT) + 1 AS t
            FROM range({events}) AS e(i)
        )
        SELECT
            '{LOAD_ID}' AS load_id, 'feedback_2024_06.csv' AS source_file,
            CAST(i + 2 AS BIGINT) AS source_line,
            TIMESTAMP '{at.isoformat(sep=" ")}' AS loaded_at,
            {pid} AS product_id,
            CASE
                WHEN r < 75 THEN {types}[t + 1] || '_' || CAST((p * 31 + t * 7) % 200 AS VARCHAR)
                WHEN r < 95 THEN {types}[t + 1] || '_' || CAST((p * 13 + 5) % 200 AS VARCHAR)
                ELSE 'mystery_' || CAST(i AS VARCHAR)
            END AS tag,
            CASE WHEN r >= 95 OR i % 2 = 0 THEN NULL ELSE {types}[t + 1] END AS tag_type,
            CASE WHEN r < 40 THEN 'reject' WHEN r < 70 THEN 'accept' WHEN r < 75 THEN 'withdraw'
                ELSE 'add' END AS action,
            'user_' || CAST(hash(i, 'user') % 500 AS VARCHAR) AS user_key,
            TIMESTAMP '{at.isoformat(sep=" ")}' - INTERVAL 1 DAY + i * INTERVAL 1 SECOND
                AS created_at,
            NULL::VARCHAR AS note
        FROM picks
    """)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux), so the apply's own peak can be
    read; False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_since_reset_mb() -> float:
    """VmHWM of this process in MB (the peak since the last reset)."""
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def timed(apply: Callable[[], FeedbackResult]) -> tuple[FeedbackResult, float]:
    """An apply and the CPU seconds it took (wall time depends on what else the cores run)."""
    started = time.process_time()
    result = apply()
    return result, time.process_time() - started


def line(timing: tuple[FeedbackResult, float]) -> str:
    result, cpu = timing
    return (f"{result.seconds:6.1f} s (CPU {cpu:.1f} s); {result.events:,} events "
            f"({result.unapplied:,} unapplied) on {result.products:,} products; history "
            f"+{result.history_rows:,} (removed {result.removed:,}, added {result.added:,}, "
            f"changed {result.changed:,} of which boosted {result.boosted:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    at = datetime(2024, 6, 1, 3, 0)
    with tempfile.TemporaryDirectory(prefix="tp_bench_feedback_") as tmp:
        con = duckdb.connect(str(Path(tmp) / "warehouse.duckdb"))
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
        con.execute(f"SET threads = {args.threads}")
        con.execute("SET enable_progress_bar = false")
        started = time.perf_counter()
        generate_catalog(con, args.products)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        full = write_product_tags(con, candidate_view(con, SQL_ROOT, True), run_id="retag-1",
                                  at=at)
        retag_s = time.perf_counter() - started
        generate_feedback(con, args.products, args.events, at + timedelta(hours=12))
        con.execute("CHECKPOINT")

        can_reset = reset_peak_rss()
        first = timed(lambda: apply_feedback(con, run_id="feedback-1", at=at + timedelta(1),
                                             load_ids=[LOAD_ID]))
        apply_peak = peak_rss_since_reset_mb() if can_reset else None
        again = timed(lambda: apply_feedback(con, run_id="feedback-2", at=at + timedelta(2),
                                             load_ids=[LOAD_ID]))
        rows, history = con.execute(
            "SELECT (SELECT count(*) FROM product_tags), "
            "(SELECT count(*) FROM product_tag_history)").fetchone()
        by_source = dict(con.execute("SELECT source, count(*) FROM product_tags "
                                     "GROUP BY source ORDER BY source").fetchall())
        con.close()

    report([
        ("warehouse", f"{args.products:,} products; {full.rows:,} product_tags after a full "
                      f"retag (generated {generated:.1f} s, retag {retag_s:.1f} s, untimed)"),
        ("apply_feedback (one load)", line(first)),
        ("same load again", line(again)),
        ("product_tags after", f"{rows:,} rows; by source {by_source}"),
        ("history rows in all", f"{history:,} (full retag {full.history_rows:,} + feedback)"),
        ("load average (1 min)", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"),
        ("peak RSS, whole run", f"{peak_rss_mb():,.0f} MB (generation and full retag included; "
                                f"DuckDB memory_limit {args.memory_limit}, threads "
                                f"{args.threads})"),
        ("peak RSS, first apply", f"{apply_peak:,.0f} MB" if apply_peak is not None
         else "n/a (cannot reset the peak-RSS mark here)"),
    ])
    if again[0].history_rows != 0:
        raise SystemExit(f"re-applying the same load appended {again[0].history_rows} "
                         "history rows")


if __name__ == "__main__":
    main()
