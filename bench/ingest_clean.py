"""Ingest + clean N generated product rows (default 1,000,000) and print rows/s and peak RSS.

The catalog is written first by a separate process (not timed, not in this process's RSS):
the demo generator scaled up, text columns and image paths that repeat a small pool of files.
Beside it, as a baseline, DuckDB alone reads the same file into a table: the floor any
ingest over DuckDB pays.

    .venv/bin/python bench/ingest_clean.py [--rows 1000000] [--labels]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SQL_ROOT, peak_rss_mb, report, write_generated_catalog  # noqa: E402

from tag_pipeline.lib.catalog.chain import run_catalog_chain  # noqa: E402
from tag_pipeline.lib.catalog.profile import load_profile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-limit", default="1GB",
                        help="DuckDB memory_limit, as TAG_PIPELINE_DUCKDB_MEMORY_LIMIT (1GB)")
    parser.add_argument("--labels", action="store_true",
                        help="also build product_labels and tag_taxonomy (reported apart)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tp_bench_") as tmp:
        landing = Path(tmp) / "landing"
        started = time.perf_counter()
        write_generated_catalog(landing / "demo", args.rows)
        generated = time.perf_counter() - started
        csv_files = sorted((landing / "demo").glob("*.csv"))
        size_mb = sum(f.stat().st_size for f in csv_files) / 1e6

        baseline = duckdb.connect(str(Path(tmp) / "baseline.duckdb"),
                                  config={"memory_limit": args.memory_limit})
        started = time.perf_counter()
        baseline.execute("CREATE TABLE t AS SELECT * FROM read_csv(?, all_varchar = true)",
                         [[str(f) for f in csv_files]])
        baseline_s = time.perf_counter() - started
        baseline.close()

        profile = load_profile("demo", {"landing": str(landing)})
        con = duckdb.connect(str(Path(tmp) / "warehouse.duckdb"),
                             config={"memory_limit": args.memory_limit})
        started = time.perf_counter()
        result = run_catalog_chain(con, profile, SQL_ROOT, with_labels=args.labels)
        total = time.perf_counter() - started
        label_s = sum(result.seconds.get(k, 0.0) for k in
                      ("label_rules", "product_labels", "tag_taxonomy"))
        clean_s = total - label_s
        raw, accounted = con.execute(
            "SELECT sum(raw_rows), sum(accounted) FROM row_accounting").fetchone()
        cleaned = con.execute("SELECT count(*) FROM cleaned_products").fetchone()[0]
        con.close()

    rows = [
        ("rows generated", f"{args.rows:,} ({size_mb:,.0f} MB CSV, {generated:.1f} s, untimed)"),
        ("ingest + clean wall", f"{clean_s:.1f} s  ({args.rows / clean_s:,.0f} rows/s)"),
        ("  per step", ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())),
        ("baseline: DuckDB read_csv only", f"{baseline_s:.1f} s  ({args.rows / baseline_s:,.0f} "
                                           f"rows/s); ratio ours/baseline "
                                           f"{clean_s / baseline_s:.1f}x"),
        ("rows accounted", f"raw {raw:,} = accounted {accounted:,}; cleaned {cleaned:,}"),
        ("images", f"{result.images.refs} refs, {result.images.decoded} decoded"),
        ("peak RSS", f"{peak_rss_mb():,.0f} MB (DuckDB memory_limit {args.memory_limit})"),
    ]
    if args.labels:
        rows.insert(3, ("labels (product_labels, taxonomy)", f"{label_s:.1f} s"))
    report(rows)


if __name__ == "__main__":
    main()
