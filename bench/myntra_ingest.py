"""The myntra catalog end to end through the catalog chain: seconds per step and the row
accounting (raw = parse-rejected + cleaned + rejected + superseded).

    .venv/bin/python bench/myntra_ingest.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, SQL_ROOT, peak_rss_mb, report  # noqa: E402

from tag_pipeline.lib.catalog.chain import run_catalog_chain  # noqa: E402
from tag_pipeline.lib.catalog.profile import load_profile  # noqa: E402


def main() -> None:
    if not (SHARED_DATA / "myntra" / "products.csv").exists():
        sys.exit(f"myntra data not found under {SHARED_DATA}")
    profile = load_profile("myntra", {"shared_data": str(SHARED_DATA)})
    with tempfile.TemporaryDirectory(prefix="tp_bench_myntra_") as tmp:
        con = duckdb.connect(str(Path(tmp) / "warehouse.duckdb"), config={"memory_limit": "1GB"})
        started = time.perf_counter()
        result = run_catalog_chain(con, profile, SQL_ROOT)
        total = time.perf_counter() - started
        accounting = con.execute(
            "SELECT sum(raw_rows), sum(parse_rejected), sum(cleaned), sum(rejected), "
            "sum(superseded), sum(accounted) FROM row_accounting").fetchone()
        images = dict(con.execute(
            "SELECT image_status, count(*) FROM cleaned_products GROUP BY 1").fetchall())
        labels = dict(con.execute(
            "SELECT tag_type, count(*) FROM product_labels GROUP BY 1").fetchall())
        taxonomy = con.execute("SELECT count(*) FROM tag_taxonomy").fetchone()[0]
    raw, parse, cleaned, rejected, superseded, accounted = accounting
    report([
        ("total wall", f"{total:.1f} s"),
        ("per step", ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())),
        ("row accounting", f"raw {raw:,} = parse-rejected {parse:,} + cleaned {cleaned:,} + "
                           f"rejected {rejected:,} + superseded {superseded:,} "
                           f"(accounted {accounted:,})"),
        ("image status", str(images)),
        ("images", f"{result.images.hashed:,} hashed, {result.images.decoded:,} decoded"),
        ("labels", f"{labels} over {taxonomy} taxonomy tags"),
        ("peak RSS", f"{peak_rss_mb():,.0f} MB"),
    ])


if __name__ == "__main__":
    main()
