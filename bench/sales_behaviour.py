"""Ingest N generated sales order lines (default 10,000,000) and build the behaviour tags.

The landing CSV files are written first by DuckDB in a separate process (COPY from range(),
untimed, not in this process's RSS): ~3 lines per order (each its own product), 50k products
in 50 categories, 1M users, 400 days of history before the as-of time, with some products
peaking in November and some selling more in the last four weeks. Then, timed separately,
on a warehouse file with DuckDB's memory_limit as in production:

1. ``ingest_events('sales', ...)``: read, validate, pseudonymise, append, one file at a time;
2. the ``dbt_like_sql/behaviour`` models, in dependency order.

Beside them, as a baseline, DuckDB alone reads the same files and sums units per product.
Wall and CPU seconds (``time.process_time``, all threads of this process) are both printed:
on a shared machine the wall time depends on the other load, the CPU time much less.

    nice -n 5 .venv/bin/python bench/sales_behaviour.py [--lines 10000000] [--files 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SQL_ROOT, peak_rss_mb, report  # noqa: E402

from tag_pipeline.lib.events import behaviour_vars, ingest_events  # noqa: E402
from tag_pipeline.lib.sql import discover_models, run_model, topological_order  # noqa: E402

AS_OF = datetime(2026, 12, 1)
KEY = b"benchmark-only-pseudonym-key-0001"
PRODUCTS = 50_000
USERS = 1_000_000


def generate(folder: Path, lines: int, files: int) -> None:
    """Write ``lines`` order lines as ``files`` CSV files with DuckDB (no Python loops)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    per_file = -(-lines // files)
    for n in range(files):
        start, stop = n * per_file, min(lines, (n + 1) * per_file)
        con.execute(
            f"""
            COPY (
                WITH g AS (
                    SELECT i, (hash(i * 5 + 1) % {PRODUCTS})::BIGINT AS p
                    FROM range({start}, {stop}) r(i)
                )
                SELECT 'O' || (i // 3) AS order_id, 'P' || p AS product_id,
                       1 + hash(i * 31) % 3 AS quantity,
                       round(5 + (p % 200) * 0.5, 2) AS price,
                       strftime(CASE
                           WHEN p % 10 = 0 AND i % 3 = 0
                               THEN TIMESTAMP '2026-11-01'
                                    + to_seconds((hash(i * 7) % 2592000)::BIGINT)
                           WHEN p % 7 = 0 AND i % 4 = 0
                               THEN TIMESTAMP '{AS_OF}'
                                    - to_seconds((1 + hash(i * 11) % 2419200)::BIGINT)
                           ELSE TIMESTAMP '{AS_OF}'
                                - to_seconds((1 + hash(i * 13) % 34560000)::BIGINT)
                       END, '%Y-%m-%d %H:%M:%S') AS "timestamp",
                       'user_' || (hash(i * 17) % {USERS}) AS user_id
                FROM g
            ) TO '{folder / f"sales_{n:03d}.csv"}' (HEADER)
            """
        )
    con.close()


def product_labels(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        CREATE OR REPLACE TABLE product_labels AS
        SELECT 'P' || p AS product_id, 'Dept' || (p % 5) AS tag, 'category' AS tag_type,
               'l1' AS facet, NULL::VARCHAR AS parent, 1 AS level, 'catalog' AS source
        FROM range({PRODUCTS}) r(p)
        UNION ALL
        SELECT 'P' || p, 'Cat' || (p % 50), 'category', 'l2', 'Dept' || (p % 5), 2, 'catalog'
        FROM range({PRODUCTS}) r(p)
        """
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--memory-limit", default="1GB",
                        help="DuckDB memory_limit, as TAG_PIPELINE_DUCKDB_MEMORY_LIMIT (1GB)")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.generate, args.lines, args.files)
        return
    with tempfile.TemporaryDirectory(prefix="tp_bench_sales_") as tmp:
        landing = Path(tmp) / "sales"
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--generate", str(landing),
                        "--lines", str(args.lines), "--files", str(args.files)], check=True)
        generated = time.perf_counter() - started
        files = sorted(landing.glob("*.csv"))
        size_mb = sum(f.stat().st_size for f in files) / 1e6

        con = duckdb.connect(str(Path(tmp) / "warehouse.duckdb"),
                             config={"memory_limit": args.memory_limit})
        product_labels(con)
        started, cpu = time.perf_counter(), time.process_time()
        ingested = ingest_events(con, "sales", landing, key=KEY, loaded_at=AS_OF)
        ingest_s, ingest_cpu = time.perf_counter() - started, time.process_time() - cpu

        variables = behaviour_vars(AS_OF)
        models = [m for m in discover_models(SQL_ROOT) if m.folder == "behaviour"]
        seconds: dict[str, float] = {}
        counts: dict[str, int] = {}
        started, cpu = time.perf_counter(), time.process_time()
        for model in topological_order(models):
            step = time.perf_counter()
            counts[model.name] = run_model(con, model, SQL_ROOT, variables)
            seconds[model.name] = time.perf_counter() - step
        models_s, models_cpu = time.perf_counter() - started, time.process_time() - cpu
        by_tag = con.execute("SELECT tag, count(*) FROM behaviour_tags GROUP BY 1 ORDER BY 1"
                             ).fetchall()
        con.close()
        rss = peak_rss_mb()

        baseline = duckdb.connect(str(Path(tmp) / "baseline.duckdb"),
                                  config={"memory_limit": args.memory_limit})
        started, cpu = time.perf_counter(), time.process_time()
        baseline.execute(
            "CREATE TABLE t AS SELECT product_id, sum(quantity) AS units "
            "FROM read_csv(?) GROUP BY product_id", [[str(f) for f in files]])
        baseline_s, baseline_cpu = time.perf_counter() - started, time.process_time() - cpu
        baseline.close()

    lines = ingested.rows_loaded + ingested.rows_rejected
    total = ingest_s + models_s
    report([
        ("order lines generated", f"{args.lines:,} in {len(files)} CSV files ({size_mb:,.0f} MB, "
                                  f"{generated:.1f} s, untimed)"),
        ("ingest_events", f"{ingest_s:.1f} s, CPU {ingest_cpu:.1f} s  "
                          f"({lines / ingest_s:,.0f} lines/s; {ingested.rows_loaded:,} loaded, "
                          f"{ingested.rows_rejected:,} rejected)"),
        ("behaviour models", f"{models_s:.1f} s, CPU {models_cpu:.1f} s  "
                             f"({lines / models_s:,.0f} lines/s)"),
        ("  per model", ", ".join(f"{k} {v:.1f}s ({counts[k]:,} rows)"
                                  for k, v in seconds.items())),
        ("ingest + models", f"{total:.1f} s, CPU {ingest_cpu + models_cpu:.1f} s  "
                            f"({lines / total:,.0f} lines/s); target < 60 s"),
        ("behaviour_tags", ", ".join(f"{t} {n:,}" for t, n in by_tag)),
        ("peak RSS (ingest + models)", f"{rss:,.0f} MB  (memory_limit {args.memory_limit})"),
        ("baseline: read_csv + GROUP BY", f"{baseline_s:.1f} s, CPU {baseline_cpu:.1f} s  "
                                          f"({lines / baseline_s:,.0f} "
                                          f"lines/s); ours/baseline {total / baseline_s:.1f}x"),
    ])


if __name__ == "__main__":
    main()
