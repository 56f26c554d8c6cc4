"""Write product_tags for N generated products (default 1,000,000 x 5 tags) and print seconds.

Candidates are generated inside DuckDB (``range``), untimed, into the warehouse file. Then,
timed: the first write (from empty), the same candidates again (must append no history), a
write where 1% of the products have new scores, and a scoped write that rescores 1% of the
products (10,000 of 1,000,000, as a feedback load does). Beside them, as a baseline, a plain
``CREATE TABLE AS SELECT`` of the same candidates: the floor any write of that table pays. The
ratio "1% rescored / first write" is the issue's target for a daily retag (under 10%).

    nice -n 5 .venv/bin/python bench/product_tags_write.py [--products 1000000]
        [--tags-per-product 5] [--memory-limit 1GB]
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
from _common import peak_rss_mb, report  # noqa: E402

from tag_pipeline.lib.tags.store import TagWriteResult, write_product_tags  # noqa: E402

TAG_TYPES = ["category", "color", "style", "scene", "material", "pattern", "fit", "season"]


def generate(con: duckdb.DuckDBPyConnection, products: int, tags_per_product: int) -> None:
    """``candidates`` (the full set), ``candidates_1pct`` (1% of products rescored) and
    ``candidates_scoped`` (another 1% rescored, with their products in ``scope_1pct``)."""
    types = "[" + ", ".join(f"'{t}'" for t in TAG_TYPES) + "]"
    con.execute(f"""
        CREATE TABLE candidates AS
        SELECT
            'p' || lpad(CAST(p AS VARCHAR), 8, '0') AS product_id,
            {types}[t % {len(TAG_TYPES)} + 1] || '_' || CAST((p * 31 + t * 7) % 200 AS VARCHAR)
                || CASE WHEN t >= {len(TAG_TYPES)} THEN '_' || CAST(t AS VARCHAR) ELSE '' END
                AS tag,
            {types}[t % {len(TAG_TYPES)} + 1] AS tag_type,
            {types}[t % {len(TAG_TYPES)} + 1] AS facet,
            CASE WHEN t = 0 THEN 1.0 ELSE ((p * 17 + t * 3) % 1000) / 1000.0 END AS score,
            CASE WHEN t = 0 THEN 'catalog' ELSE 'model' END AS source,
            CASE WHEN t = 0 THEN NULL
                ELSE 'words ' || CAST(p % 97 AS VARCHAR) || ' ' || CAST(t AS VARCHAR) END
                AS explanation,
            CASE WHEN t = 0 THEN NULL ELSE 'v3' END AS tagger_version,
            CASE WHEN t = 0 THEN NULL ELSE 'r2' END AS refiner_version
        FROM range({products}) AS r(p), range({tags_per_product}) AS s(t)
    """)
    con.execute("""
        CREATE TABLE candidates_1pct AS
        SELECT * REPLACE (
            CASE WHEN hash(product_id) % 100 = 0 AND source = 'model'
                THEN abs(round(1 - score, 3) - 0.0005) ELSE score END AS score)
        FROM candidates
    """)
    con.execute("""
        CREATE TABLE scope_1pct AS
        SELECT DISTINCT product_id FROM candidates WHERE hash(product_id) % 100 = 1
    """)
    con.execute("""
        CREATE TABLE candidates_scoped AS
        SELECT * REPLACE (
            CASE WHEN source = 'model' THEN abs(round(1 - score, 3) - 0.0005) ELSE score END
                AS score)
        FROM candidates_1pct SEMI JOIN scope_1pct USING (product_id)
    """)


def timed(write: Callable[[], TagWriteResult]) -> tuple[TagWriteResult, float]:
    """A write and the CPU seconds it took (wall time depends on what else the cores run)."""
    started = time.process_time()
    result = write()
    return result, time.process_time() - started


def line(timing: tuple[TagWriteResult, float]) -> str:
    result, cpu = timing
    return (f"{result.seconds:6.1f} s  ({result.rows / result.seconds:,.0f} rows/s; CPU "
            f"{cpu:.1f} s); history "
            f"+{result.history_rows:,} (added {result.added:,}, changed {result.changed:,}, "
            f"removed {result.removed:,}, unchanged {result.unchanged:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--tags-per-product", type=int, default=5)
    parser.add_argument("--memory-limit", default="1GB",
                        help="DuckDB memory_limit, as TAG_PIPELINE_DUCKDB_MEMORY_LIMIT (1GB)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config = {"memory_limit": args.memory_limit, "threads": args.threads}
    at = datetime(2024, 6, 1, 3, 0)
    with tempfile.TemporaryDirectory(prefix="tp_bench_tags_") as tmp:
        con = duckdb.connect(str(Path(tmp) / "warehouse.duckdb"), config=config)
        con.execute("SET enable_progress_bar = false")
        started = time.perf_counter()
        generate(con, args.products, args.tags_per_product)
        con.execute("CHECKPOINT")
        generated = time.perf_counter() - started
        tags = con.execute("SELECT count(*) FROM candidates").fetchone()[0]

        started, cpu_started = time.perf_counter(), time.process_time()
        con.execute("CREATE TABLE baseline AS SELECT * FROM candidates")
        baseline_s = time.perf_counter() - started
        baseline_cpu = time.process_time() - cpu_started
        con.execute("DROP TABLE baseline")
        con.execute("CHECKPOINT")

        first = timed(lambda: write_product_tags(con, "candidates", run_id="bench-1", at=at))
        same = timed(lambda: write_product_tags(con, "candidates", run_id="bench-2",
                                                at=at + timedelta(days=1)))
        changed = timed(lambda: write_product_tags(con, "candidates_1pct", run_id="bench-3",
                                                   at=at + timedelta(days=2)))
        scoped = timed(lambda: write_product_tags(con, "candidates_scoped", run_id="bench-4",
                                                  at=at + timedelta(days=3), scope="scope_1pct"))
        scope_products = con.execute("SELECT count(*) FROM scope_1pct").fetchone()[0]
        history = con.execute("SELECT count(*) FROM product_tag_history").fetchone()[0]
        con.close()
        size_mb = (Path(tmp) / "warehouse.duckdb").stat().st_size / 1e6

    rows = [
        ("candidates", f"{args.products:,} products x {args.tags_per_product} = {tags:,} tags "
                       f"(generated in DuckDB, {generated:.1f} s, untimed)"),
        ("first write (from empty)", line(first)),
        ("same candidates again", line(same)),
        ("1% of products rescored", line(changed)),
        ("1% rescored / first write", f"{changed[0].seconds / first[0].seconds:.1%} (CPU "
                                      f"{changed[1] / first[1]:.1%}; target under 10%)"),
        (f"scoped write, {scope_products:,} products", line(scoped)),
        ("baseline: CREATE TABLE AS SELECT", f"{baseline_s:6.1f} s  ({tags / baseline_s:,.0f} "
                                             f"rows/s; CPU {baseline_cpu:.1f} s); first write / "
                                             f"baseline {first[0].seconds / baseline_s:.1f}x"),
        ("history rows in all", f"{history:,}"),
        ("warehouse file", f"{size_mb:,.0f} MB (candidates, product_tags, history)"),
        ("load average (1 min)", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"),
        ("peak RSS", f"{peak_rss_mb():,.0f} MB (DuckDB memory_limit {args.memory_limit}, "
                     f"threads {args.threads})"),
    ]
    report(rows)
    if same[0].history_rows != 0:
        raise SystemExit(f"identical rewrite appended {same[0].history_rows} history rows")


if __name__ == "__main__":
    main()
