"""Helpers shared by the benchmark scripts (not part of the package or the tests)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SQL_ROOT = REPO_ROOT / "dbt_like_sql"
SHARED_DATA = Path(os.environ.get("TAG_PIPELINE_SHARED_DATA", REPO_ROOT.parent / "shared/data"))
# the SQL models the chain needs up to cleaned_products and product_labels
CATALOG_SQL_FOLDERS = ("macros", "staging", "cleaned", "labels")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")


def write_generated_catalog(folder: Path, rows: int) -> None:
    """The demo catalog scaled to ``rows`` rows, written into ``folder`` by a separate process
    (so neither its time nor its memory counts in the calling benchmark's figures)."""
    subprocess.run(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; "
         "from tag_pipeline.lib.catalog.demo import write_scaled_catalog; "
         "write_scaled_catalog(Path(sys.argv[1]), int(sys.argv[2]))",
         str(folder), str(rows)],
        check=True,
    )


def cleaned_catalog(profile_name: str):
    """(profile, cleaned products, product labels) of a shipped profile (or a profile file):
    the catalog chain up to ``cleaned_products`` and ``product_labels``, run into a temporary
    DuckDB file with a copy of the SQL models."""
    import shutil
    import tempfile

    import duckdb

    from tag_pipeline.lib.catalog.chain import run_catalog_chain
    from tag_pipeline.lib.catalog.profile import load_profile

    profile = load_profile(profile_name, {"shared_data": str(SHARED_DATA)})
    with tempfile.TemporaryDirectory(prefix="tp_bench_catalog_") as tmp:
        sql_root = Path(tmp) / "dbt_like_sql"
        for name in CATALOG_SQL_FOLDERS:
            shutil.copytree(SQL_ROOT / name, sql_root / name)
        con = duckdb.connect(str(Path(tmp) / "w.duckdb"), config={"memory_limit": "1GB"})
        try:
            run_catalog_chain(con, profile, sql_root)
            products = con.sql("SELECT product_id, title, description, image_path, tag_fields "
                               "FROM cleaned_products").pl()
            labels = con.sql("SELECT product_id, tag, tag_type, facet, level, parent "
                             "FROM product_labels").pl()
        finally:
            con.close()
    return profile, products, labels
